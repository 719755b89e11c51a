"""The report of a history full of markup (tests/hostile_history.py: 38 payloads in every text
field, and three entries whose parents loop) opened from ``file://`` in headless Chromium,
once: every card opened in the detail view (which copies its record and full-size images
into the page), the tree shown and searched with a payload. No payload sets
``window.pwned``, opens a dialog, or even makes the page's Content-Security-Policy refuse
something; the parser's view of the same report is tests/reliability/test_held_report.py."""

from __future__ import annotations

import pytest
from hostile_history import LOOP_PROMPTS, PAYLOADS, hostile_history

pytestmark = pytest.mark.browser

WATCH = """
window.__refused = [];
document.addEventListener('securitypolicyviolation',
  e => window.__refused.push(e.violatedDirective + ' ' + e.blockedURI));
"""

OPEN_EVERY_CARD = """() => {
  const titles = [];
  for (const card of document.querySelectorAll('#grid .card')) {
    card.querySelector('.open').click();
    titles.push(document.getElementById('detail-title').textContent);
    document.getElementById('close').click();
  }
  return titles;
}"""


def shown(text: str) -> str:
    """``text`` as the page holds it: an HTML parser drops a NUL between elements."""
    return text.replace("\x00", "")


def test_no_payload_runs_when_the_report_is_opened_read_and_searched(page, tmp_path):
    history = hostile_history(tmp_path / "history")
    report = history.export_html(tmp_path / "hostile.html", full_size=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.add_init_script(WATCH)
    page.goto(report.as_uri())

    titles = page.evaluate(OPEN_EVERY_CARD)
    assert titles == [f"[{entry.index}] {shown(entry.prompt)}" for entry in history]
    page.click("#show-tree")
    for payload in PAYLOADS[:6]:
        page.fill("#q", payload)
    assert page.locator("#tree li:not([hidden])").count() >= 1

    assert page.evaluate("typeof window.pwned") == "undefined"
    assert dialogs == []
    assert page.evaluate("window.__refused") == []
    prompts = page.eval_on_selector_all("#grid .card .prompt", "ps => ps.map(p => p.textContent)")
    assert prompts[1:] == [shown(payload) for payload in PAYLOADS] + list(LOOP_PROMPTS)
    # The detail view walked the chains of parents that loop, and stopped.
    page.fill("#q", "")
    page.click(f'#tree .node[data-go="{history[-1].index}"]')
    assert page.locator("#detail .chain .node").count() == 2
