"""A history as one self-contained HTML file, to send to a colleague or a client or attach to
a ticket: every entry with its preview, prompt, settings, cost and lineage, a search box, and
the lineage as a tree. It opens from disk in any browser: the CSS and a little plain
JavaScript (``report.css``, ``report.js`` beside this file) are inline, the pictures are
``data:`` URLs, and its Content-Security-Policy lets nothing load from anywhere.

``History.export_html(path)``, ``%aigate history --export PATH``, or from a shell:
``python -m aigate_nb report .aigate/<notebook> -o report.html``.

Every piece of text is escaped here; the script reads it back with ``textContent`` and
``dataset`` only, so a prompt can hold any markup and it shows as typed.
"""

from __future__ import annotations

import base64
import hashlib
import html
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..core.costs import Usage
from ..core.errors import AigateError, InputError
from ..core.images import b64encode, make_preview
from ..core.region import region_label
from ..core.results import CAPTION_TEXT_LIMIT, Attempt, names_a_folder
from ..core.text import clip, counted, one_line
from .browse import LineageNode, build_tree, searchable_text
from .layout import PREVIEW_EDGE

if TYPE_CHECKING:  # the store writes reports (History.export_html); a report reads any history
    from .store import History, HistoryEntry

#: The most one entry may add to a report without ``full_size``: its previews, base64 included, and its text.
ENTRY_BUDGET = 300_000
#: The longest prompt or model text written out in full (in the detail view); a longer one is cut,
#: saying so. The card shows the prompt's start in three lines (and the detail view's title), and a
#: search looks in its first ``SEARCH_LIMIT`` characters: however long a prompt, an entry's text is
#: bounded, and its previews get what the budget leaves.
TEXT_LIMIT = 20_000
CARD_TEXT_LIMIT = 2_000
SEARCH_LIMIT = 4_000
#: The most input images listed in an entry's detail (a model takes at most 14), and the most
#: requests charged without a picture listed (the newest).
INPUTS_SHOWN = 16
ATTEMPTS_SHOWN = 500
#: Room kept in an entry's budget for the HTML around its previews.
_HTML_ROOM = 8_000
_ASSETS = Path(__file__).resolve().parent
_ROUTES = {"chat": "chat (/v1/chat/completions)", "google": "google (generateContent)"}


@dataclass(frozen=True)
class Picture:
    """One image of an entry as the report embeds it."""

    mime: str
    data: bytes
    size: tuple[int, int]


# -- writing ------------------------------------------------------------------------------------


def write_report(history: History, path: str | os.PathLike, *, full_size: bool = False) -> Path:
    """Write ``history`` as one HTML file at ``path`` (a folder gets ``<history>.html`` in it), in
    a folder that exists, and return the path written. Written to a temporary name first: the
    file is whole or absent."""
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path).strip():
        raise InputError("export_html() takes the path of the file to write, e.g. export_html('report.html').")
    target = Path(path).expanduser()
    if names_a_folder(path):
        target = target / f"{history.name}.html"
    if not target.parent.is_dir():  # a mistyped folder is said, not made: the report would be lost in it
        missing = "is not a folder" if target.parent.exists() else "does not exist"
        raise InputError(
            f"Cannot write the report to {target} ({target.parent} {missing}); "
            "give a path in a folder you can write to, or create the folder first."
        )
    text = build_report(history, full_size=full_size)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    except OSError as exc:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass  # its folder cannot even be reached: nothing was left there
        raise InputError(
            f"Cannot write the report to {target} ({exc.strerror or exc}); give a path in a folder you can write to."
        ) from None
    return target


def build_report(history: History, *, full_size: bool = False, now: datetime | None = None) -> str:
    """The report of ``history`` as HTML text (see the module's docstring)."""
    entries = list(history)
    by_hash: dict[str, list[HistoryEntry]] = {}
    for entry in entries:
        if entry.request_hash:
            by_hash.setdefault(entry.request_hash, []).append(entry)
    index_of = {entry.id: entry.index for entry in entries}
    # What each card weighs without its pictures: its previews get the rest of its budget.
    text_sizes = [
        len(_card(entry, [None] * len(entry.originals), False, index_of, by_hash.get(entry.request_hash or "", []))
            .encode("utf-8"))
        for entry in entries
    ]
    pictures = _pictures(history, entries, text_sizes)
    cards = "".join(
        _card(entry, pictures[k], full_size, index_of, by_hash.get(entry.request_hash or "", []))
        for k, entry in enumerate(entries)
    )
    tree = "".join(f'<ul class="line">{_line(root)}</ul>' for root in build_tree(entries))
    attempts = history.attempts()
    style = (_ASSETS / "report.css").read_text(encoding="utf-8")
    script = (_ASSETS / "report.js").read_text(encoding="utf-8")
    policy = (
        "default-src 'none'; img-src data:; base-uri 'none'; form-action 'none'; "
        f"style-src '{_digest(style)}'; script-src '{_digest(script)}'"
    )
    title = f"History '{history.name}'"
    empty = "" if entries else '<p class="none">This history is empty: nothing was generated yet.</p>'
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="color-scheme" content="light dark">'
        '<meta name="generator" content="aigate_nb">'
        f"<title>{_text(title)}</title><style>{style}</style></head>\n"
        "<body>\n"
        f'<header><h1>{_text(title)}</h1><p class="summary">{_summary(entries, attempts)}</p>'
        f"{_tools(entries)}</header>\n"
        f'<main>{empty}<p id="nothing" class="none" hidden></p>\n'
        f'<section id="grid" class="grid" aria-label="Entries">{cards}</section>\n'
        f'<section id="tree" class="tree" aria-label="Lineage tree" hidden>{tree}</section>\n'
        f"{_attempts(attempts)}"
        "</main>\n"
        f"{_dialog()}\n"
        f"<footer>{_footer(history, full_size, now)}</footer>\n"
        f"<script>{script}</script>\n"
        "</body></html>\n"
    )


def _digest(text: str) -> str:
    """A Content-Security-Policy source that lets exactly this inline text run."""
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii")


# -- pictures -----------------------------------------------------------------------------------


def _pictures(history: History, entries: list[HistoryEntry], text_sizes: list[int]) -> list[list[Picture | None]]:
    """Each entry's previews (None for an image whose file is gone). The history keeps them in
    ``thumbs/``, made as each entry was appended; those of entries written before are made
    here on a few threads (Pillow decodes and encodes without holding the GIL) and kept, so
    a second export reads them back. ``text_sizes`` are what each entry's card weighs without them."""
    workers = max(1, min(8, os.cpu_count() or 1))
    if len(entries) < 4:
        return [_previews_of(history, entry, size) for entry, size in zip(entries, text_sizes)]
    with ThreadPoolExecutor(workers, thread_name_prefix="aigate-report") as pool:
        return list(pool.map(lambda pair: _previews_of(history, *pair), zip(entries, text_sizes)))


def _previews_of(history: History, entry: HistoryEntry, text_size: int) -> list[Picture | None]:
    share = max(4_000, ENTRY_BUDGET - _HTML_ROOM - text_size) // len(entry.originals) // 4 * 3
    pictures: list[Picture | None] = []
    for k, size in enumerate(entry.sizes):
        try:
            data = history.thumbnail(entry, PREVIEW_EDGE, k)
            mime = "image/jpeg"
            if len(data) > share:  # a photo full of fine detail: lower the quality until it fits
                mime, data, _ = make_preview(entry.originals[k].data, PREVIEW_EDGE, max_bytes=share)
        except (AigateError, OSError, ValueError):  # the file is gone or damaged: the rest still shows
            pictures.append(None)
            continue
        scale = min(1.0, PREVIEW_EDGE / max(size))
        pictures.append(Picture(mime, data, (max(1, round(size[0] * scale)), max(1, round(size[1] * scale)))))
    return pictures


def _img(picture: Picture | None, alt: str, *, lazy: bool = True) -> str:
    if picture is None:
        return '<span class="gone">image file gone</span>'
    loading = ' loading="lazy" decoding="async"' if lazy else ""
    return (
        f'<img src="data:{picture.mime};base64,{b64encode(picture.data)}" width="{picture.size[0]}" '
        f'height="{picture.size[1]}" alt="{_text(alt)}"{loading}>'
    )


def _originals(entry: HistoryEntry) -> str:
    """The full-size images, inert until the detail view opens (a ``template`` is not decoded)."""
    images = []
    for k, (item, size) in enumerate(zip(entry.originals, entry.sizes)):
        try:
            data = item.data
        except AigateError:
            images.append('<span class="gone">image file gone</span>')
            continue
        images.append(
            f'<img src="data:{_text(item.mime)};base64,{b64encode(data)}" width="{size[0]}" height="{size[1]}" '
            f'alt="image {k + 1} of [{entry.index}], full size">'
        )
    return f'<template class="full">{"".join(images)}</template>'


# -- one entry ------------------------------------------------------------------------------------


def _card(
    entry: HistoryEntry,
    pictures: list[Picture | None],
    full_size: bool,
    index_of: dict[str, int],
    same_request: list[HistoryEntry],
) -> str:
    parent = index_of.get(entry.parent) if entry.parent else None
    alt = clip(one_line(entry.prompt), 200)
    count = len(pictures)
    badge = f'<span class="badge">{count} images</span>' if count > 1 else ""
    marks = []
    source = entry.edited_from()
    if parent is not None:
        marks.append(f'<a class="from" href="#e{parent}" data-go="{parent}">from [{parent}]</a>')
    elif source:
        marks.append(f'<span class="from">from {_text(clip(source, 40))}</span>')
    cost = _cost(entry)
    if cost:
        marks.append(f'<span class="cost">{_text(cost)}</span>')
    if len(same_request) > 1:
        marks.append(f'<span title="the same request was made {len(same_request)} times">×{len(same_request)}</span>')
    settings = " · ".join(_text(value) for value in (entry.aspect_ratio, entry.image_size) if value)
    extras = "".join(_img(picture, f"image {k + 2} of [{entry.index}]") for k, picture in enumerate(pictures[1:]))
    more = (
        f'<div class="more" hidden>{_fields(entry, index_of, same_request)}'
        f'{f"<template class=extra>{extras}</template>" if extras else ""}'
        f"{_originals(entry) if full_size else ''}</div>"
    )
    return (
        f'<figure class="card" id="e{entry.index}" data-i="{entry.index}" '
        f'data-parent="{"" if parent is None else parent}" data-model="{_text(entry.model)}" '
        f'data-search="{_text(searchable_text(entry, SEARCH_LIMIT))}">'
        f'<button type="button" class="open" aria-label="Open [{entry.index}]: {_text(clip(alt, 80))}">'
        f"{_img(pictures[0], alt)}{badge}</button>"
        f'<figcaption><div class="head"><span class="num">[{entry.index}]</span>'
        f'{f"<span class=set>{settings}</span>" if settings else ""}'
        f'<span class="model" title="{_text(entry.model)}">{_text(_short_model(entry.model))}</span></div>'
        f'<p class="prompt" title="{_text(clip(entry.prompt, 1000))}">{_text(clip(entry.prompt, CARD_TEXT_LIMIT))}</p>'
        f'<div class="marks">{"".join(marks)}</div></figcaption>{more}</figure>'
    )


def _fields(entry: HistoryEntry, index_of: dict[str, int], same_request: list[HistoryEntry]) -> str:
    """The entry's record as a definition list: every field that has a value."""
    rows: list[tuple[str, str]] = [("Prompt", _long_text(entry.prompt)), ("Model", _text(entry.model))]
    if entry.aspect_ratio:
        rows.append(("Aspect ratio", _text(entry.aspect_ratio)))
    if entry.image_size:
        rows.append(("Image size", _text(entry.image_size)))
    pixels = [f"{width}×{height} {_text(mime.split('/')[-1].upper())}" for (width, height), mime
              in zip(entry.sizes, entry.mimes)]
    rows.append(("Pixels", "<br>".join(pixels)))
    rows.append(("Route", _text(_ROUTES.get(entry.route, entry.route))))
    made = _when(entry.created)
    if made:
        rows.append(("Made", f'<time datetime="{_text(entry.created)}">{_text(made)}</time>'))
    rows.append(("Took", f"{entry.elapsed:.2f} s"))
    cost = _cost(entry)
    if cost:
        source = getattr(entry, "cost_source", None)
        said = {"gateway": "as the gateway reported", "table": "estimated from a price table"}.get(source or "", "")
        rows.append(("Cost", _text(f"{cost} ({said})" if said else cost)))
    usage = getattr(entry, "usage", None)
    if usage:
        rows.append(("Usage", _text(_usage(usage))))
    region = getattr(entry, "region", None)
    if region:
        rows.append(("Region", _text(_region(region))))
    source = entry.edited_from()
    if source:
        parent = index_of.get(entry.parent) if entry.parent else None
        link = (f'<a href="#e{parent}" data-go="{parent}">[{parent}]</a>' if parent is not None
                else _text(clip(source, 200)))
        rows.append(("Edited from", link))
    inputs = [item for item in (entry.inputs or [])[1:] if isinstance(item, dict)]
    if inputs:
        shown = [_text(clip(_input(item), 200)) for item in inputs[:INPUTS_SHOWN]]
        if len(inputs) > INPUTS_SHOWN:
            shown.append(f"and {len(inputs) - INPUTS_SHOWN} more")
        rows.append(("Other inputs", "<br>".join(shown)))
    replay = _replay(entry, same_request)
    if replay:
        rows.append(("Replay", replay))
    if entry.emulated:
        rows.append(("Made by", "the built-in emulator (placeholder pictures)"))
    if entry.finish_reason and entry.finish_reason.upper() not in ("STOP", "FINISH_REASON_STOP"):
        rows.append(("Finish reason", _text(entry.finish_reason)))
    if entry.text and entry.text.strip():
        rows.append(("Model's text", _long_text(entry.text.strip(), CAPTION_TEXT_LIMIT * 5)))
    rows.append(("sha256", "<br>".join(f"<code>{_text(digest)}</code>" for digest in entry.sha256s)))
    rows.append(("Entry id", f"<code>{_text(entry.id)}</code>"))
    return '<dl class="fields">' + "".join(f"<dt>{name}</dt><dd>{value}</dd>" for name, value in rows) + "</dl>"


def _replay(entry: HistoryEntry, same_request: list[HistoryEntry]) -> str:
    """Replay marks: the other entries made by the same request, and which one a re-run shows."""
    others = [other for other in same_request if other.id != entry.id]
    if not others:
        return ""
    links = ", ".join(f'<a href="#e{other.index}" data-go="{other.index}">[{other.index}]</a>' for other in others)
    newest = same_request[-1].id == entry.id
    tail = "; a re-run of the notebook replays this one" if newest else ""
    return f"the same request as {links} (made again with --new){tail}"


def _line(node: LineageNode) -> str:
    """A node and its line of single edits, as list items at one depth: a chain stays a
    straight line, and only a fork (two or more edits of one entry) opens branches."""
    items = []
    while True:
        children = node.children
        branches = ""
        if len(children) > 1:
            branches = f'<div class="fork" aria-label="{len(children)} branches">' + "".join(
                f'<ul class="line branch">{_line(child)}</ul>' for child in children
            ) + "</div>"
        entry = node.entry
        items.append(
            f'<li data-i="{entry.index}"><button type="button" class="node" data-go="{entry.index}">'
            f'<img alt="" width="48" height="48"><span class="num">[{entry.index}]</span>'
            f'<span class="t">{_text(clip(one_line(entry.prompt), 120))}</span>'
            f'<span class="set">{_text(_short_model(entry.model))}</span></button>{branches}</li>'
        )
        if len(children) != 1:
            return "".join(items)
        node = children[0]


# -- the page around the entries ---------------------------------------------------------------------


def _tools(entries: list[HistoryEntry]) -> str:
    counts: dict[str, int] = {}
    for entry in entries:
        counts[entry.model] = counts.get(entry.model, 0) + 1
    options = "".join(
        f'<option value="{_text(model)}">{_text(_short_model(model))} ({count})</option>'
        for model, count in sorted(counts.items())
    )
    return (
        '<div class="tools" role="search">'
        '<input type="search" id="q" placeholder="Search prompts and models  ( / )" '
        'aria-label="Search prompts and models" autocomplete="off" spellcheck="false">'
        f'<select id="model" aria-label="Model"><option value="">All models ({len(entries)})</option>{options}</select>'
        '<div class="views" role="group" aria-label="View">'
        '<button type="button" id="show-grid" aria-pressed="true">Grid</button>'
        '<button type="button" id="show-tree" aria-pressed="false">Tree</button></div>'
        f'<output id="count" aria-live="polite">{counted(len(entries))}</output></div>'
    )


def _summary(entries: list[HistoryEntry], attempts: list[Attempt]) -> str:
    parts = [counted(len(entries))]
    days = sorted(day for day in (_when(entry.created)[:10] for entry in entries) if day)
    if days:
        parts.append(days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}")
    models = sorted({_short_model(entry.model) for entry in entries})
    if models:
        parts.append(", ".join(models))
    costs = [cost for entry in entries if (cost := _number(getattr(entry, "cost", None))) is not None]
    if costs:
        known = "" if len(costs) == len(entries) else f" (known for {len(costs)} of {len(entries)})"
        parts.append(f"cost ${sum(costs):,.2f}{known}")
    if attempts:
        charged = sum(cost for attempt in attempts if (cost := _number(attempt.cost)) is not None)
        parts.append(f"{counted(len(attempts), 'request')} charged without a picture (${charged:,.2f})")
    if sum(entry.emulated for entry in entries):
        parts.append("emulator pictures are placeholders")
    return " · ".join(_text(part) for part in parts)


def _attempts(attempts: list[Attempt]) -> str:
    """The requests charged without a picture, newest first: when, model, why, cost and prompt."""
    if not attempts:
        return ""
    rows = "".join(
        f"<tr><td>{_text(_when(attempt.created))}</td><td>{_text(_short_model(attempt.model))}</td>"
        f"<td>{_text(attempt.why())}</td><td>{_text(_cost(attempt) or 'unknown')}</td>"
        f'<td class="long">{_text(clip(one_line(attempt.prompt), 300))}</td></tr>'
        for attempt in attempts[::-1][:ATTEMPTS_SHOWN]
    )
    older = len(attempts) - ATTEMPTS_SHOWN
    more = f"<p>... and {counted(older, 'older one')}.</p>" if older > 0 else ""
    return (
        '<section id="attempts" class="attempts" aria-label="Requests charged without a picture">'
        f"<h2>Charged without a picture ({len(attempts)})</h2>"
        "<p>These requests were blocked for safety, refused or answered with text only: they made no "
        "picture, and are counted in what the history cost.</p>"
        "<table><thead><tr><th>Made</th><th>Model</th><th>Why no picture</th><th>Cost</th><th>Prompt</th></tr>"
        f"</thead><tbody>{rows}</tbody></table>{more}</section>\n"
    )


def _dialog() -> str:
    return (
        '<dialog id="detail" aria-labelledby="detail-title">'
        '<div class="dialog-head"><h2 id="detail-title"></h2><div class="nav">'
        '<button type="button" id="prev" aria-label="Previous entry" title="Previous (←)">←</button>'
        '<button type="button" id="next" aria-label="Next entry" title="Next (→)">→</button>'
        '<button type="button" id="close" aria-label="Close" title="Close (Esc)">✕</button></div></div>'
        '<div class="dialog-body"><div class="pictures"></div><div class="info"><div class="fields-here"></div>'
        '<section class="chain"><h3>Lineage</h3><ol></ol></section>'
        '<section class="forks" hidden><h3>Edited into</h3><ul></ul></section></div></div></dialog>'
    )


def _footer(history: History, full_size: bool, now: datetime | None) -> str:
    from ..version import __version__

    when = (now or datetime.now().astimezone()).strftime("%Y-%m-%d %H:%M")
    images = ("The original images are embedded." if full_size else
              "Pictures are previews; the originals stay in the notebook's history.")
    return _text(f"History '{history.name}', exported {when} with aigate_nb {__version__}. {images}")


# -- small formatting -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _long_text(text: str, limit: int = TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return f'<span class="long">{_text(text)}</span>'
    return f'<span class="long">{_text(text[:limit])}</span> <em>(cut: {len(text):,} characters in all)</em>'


def _short_model(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def _when(created: str | None) -> str:
    try:
        return datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M") if created else ""
    except (TypeError, ValueError):
        return ""


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cost(entry: HistoryEntry | Attempt) -> str:
    cost = _number(getattr(entry, "cost", None))
    if cost is None:
        return ""
    return f"${cost:.4f}".rstrip("0").rstrip(".") if cost < 0.01 else f"${cost:,.3f}"


def _usage(usage: Any) -> str:
    """Token counts as both routes are read alike: ``input 12 · image 1290 · text 8 · thinking 160 tokens``."""
    counts = Usage.from_record(usage)
    parts = [(name, getattr(counts, f"{name}_tokens")) for name in ("input", "image", "text", "thinking")]
    return " · ".join(f"{name} {value:,}" for name, value in parts if value) + " tokens"


def _region(region: Any) -> str:
    """``400×300 at (120, 80), crop mode, padding 75 px``: a region edit's box in the source's pixels."""
    if isinstance(region, dict) and isinstance(region.get("box"), (list, tuple)) and len(region["box"]) == 4:
        x, y, width, height = region["box"]
        text = f"{width}×{height} at ({x}, {y}), {region.get('mode', 'crop')} mode"
        padding = region.get("padding")
        return text + (f", padding {padding} px" if padding is not None else "")
    return (region_label(region) or "") if isinstance(region, dict) else str(region)  # a region shown is never empty


def _input(item: dict[str, Any]) -> str:
    if item.get("entry"):
        return f"history entry {item['entry']}"
    return str(item.get("name") or f"an image (sha256 {str(item.get('sha256', ''))[:12]})")


def describe(history: History, written: Path) -> str:
    """The line that says a report was written: what, how big, where."""
    size = written.stat().st_size
    weight = f"{size / 1e6:,.1f} MB" if size >= 1e6 else f"{max(1, round(size / 1e3))} KB"
    return (
        f"Report of history '{history.name}': {counted(len(history))}, {weight}, written to {written}; "
        "it opens in any browser, with no server."
    )

