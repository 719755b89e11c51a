"""Usage and cost: every result says what it used and cost, and where that figure came from
(the gateway's own ``cost``, else the price table); a notebook's spending is summed by model
and by day; a budget refuses, before sending, what would take the spending past it; the
account's balance is shown where the gateway tells it. All against the emulator over loopback.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image
from traitlets.config import Config

from aigate_nb.core.costs import BUILT_IN_PRICES, PriceTable, Usage, load_prices, usage_from_reply
from aigate_nb.core.errors import BudgetError, BudgetWarning, ConfigurationError, InputError, NoImageError
from aigate_nb.emulator import Emulator
from aigate_nb.gateway.client import Client
from aigate_nb.gateway.prepared import estimate
from aigate_nb.records.store import History
from aigate_nb.session.session import Request, Session, set_current_session
from support import TEST_KEY, wait_for

FLASH = "google/gemini-3.1-flash-image-preview"
PRO = "google/gemini-3-pro-image"
REPO = Path(__file__).resolve().parent.parent


def client_of(emu, **options) -> Client:
    return Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01, timeout=(5, 30), **options)


@pytest.fixture
def billed():
    """An emulator of its own whose replies say what they cost, starting from $10."""
    with Emulator(api_key=TEST_KEY, report_cost=True) as emu:
        yield emu


@pytest.fixture
def session(emu, tmp_path):
    with client_of(emu) as client:
        yield Session(client, History("costs", root=tmp_path))


def table_cost(model: str, usage: Usage) -> float:
    return BUILT_IN_PRICES[model.removeprefix("google/")].cost(usage)


# -- usage, alike on both routes --------------------------------------------------------------


@pytest.mark.parametrize("route", ["chat", "google"])
@pytest.mark.parametrize(
    ("model", "size", "image_tokens"), [(FLASH, "2K", 1680), (FLASH, "512", 747), (PRO, "4K", 2000)]
)
def test_usage_names_the_image_tokens_of_the_model_and_size_on_both_routes(emu, route, model, size, image_tokens):
    with client_of(emu) as client:
        result = client.generate("a paper lantern", model=model, image_size=size, route=route)
    usage = result.usage
    assert usage.image_tokens == image_tokens
    assert usage.input_tokens > 0 and usage.thinking_tokens > 0  # Gemini 3 models think
    assert usage.total_tokens == usage.input_tokens + usage.image_tokens + usage.text_tokens + usage.thinking_tokens


def test_both_routes_report_the_same_usage_for_the_same_request(emu):
    with client_of(emu) as client:
        chat = client.generate("a paper lantern", model=PRO, image_size="1K", route="chat")
        google = client.generate("a paper lantern", model=PRO, image_size="1K", route="google")
    assert chat.usage.image_tokens == google.usage.image_tokens == 1120
    assert chat.usage.thinking_tokens == google.usage.thinking_tokens
    assert chat.usage.input_tokens == google.usage.input_tokens


def test_chat_usage_without_details_takes_the_image_tokens_from_the_table():
    # completion_tokens 1345 = 1120 image + 225 reasoning (a Pro 1K call, litellm #17410)
    usage = usage_from_reply({"prompt_tokens": 9, "completion_tokens": 1345}, images=1, tokens_per_image=1120)
    assert usage == Usage(input_tokens=9, image_tokens=1120, text_tokens=225)


def test_google_usage_keeps_thinking_apart_from_the_candidates():
    raw = {
        "promptTokenCount": 14, "candidatesTokenCount": 1130, "thoughtsTokenCount": 200, "totalTokenCount": 1344,
        "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}, {"modality": "TEXT", "tokenCount": 10}],
    }
    assert usage_from_reply(raw) == Usage(input_tokens=14, image_tokens=1120, text_tokens=10, thinking_tokens=200)


# -- the cost and its source -------------------------------------------------------------------


@pytest.mark.parametrize("route", ["chat", "google"])
def test_without_a_gateway_cost_the_price_table_estimates_it(emu, route):
    with client_of(emu) as client:
        result = client.generate("a paper lantern", model=FLASH, image_size="1K", route=route)
    assert result.cost_source == "table"
    assert result.cost == pytest.approx(table_cost(FLASH, result.usage))
    assert f"| ~${result.cost:.3f} " in result.caption()


@pytest.mark.parametrize("route", ["chat", "google"])
def test_the_gateways_own_cost_is_used_when_the_reply_has_one(billed, route):
    with client_of(billed) as client:
        before = client.balance()
        result = client.generate("a paper lantern", model=PRO, image_size="4K", route=route)
        after = client.balance()
    assert result.cost_source == "gateway"
    assert result.cost == pytest.approx(before - after)  # what the gateway charged
    caption = result.caption().splitlines()[0]
    assert f"| ${result.cost:.3f} " in caption and "~$" not in caption


def test_the_gateways_cost_wins_over_a_price_file(billed, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({PRO: {"image_output": 9999}}))
    with client_of(billed, prices=prices) as client:
        result = client.generate("a paper lantern", model=PRO)
    assert result.cost_source == "gateway" and result.cost < 1


def test_a_price_file_in_aigate_prices_overrides_the_built_in_rates(emu, tmp_path, monkeypatch):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({FLASH: {"image_output": 600}, "acme/painter": {
        "input": 1, "image_output": 10, "text_output": 1, "image_tokens": 1000}}))
    monkeypatch.setenv("AIGATE_PRICES", str(prices))
    with client_of(emu) as client:
        result = client.generate("a paper lantern", model=FLASH, image_size="1K")
    assert client.prices.source == str(prices)
    expected = BUILT_IN_PRICES["gemini-3.1-flash-image-preview"]
    usage = result.usage
    assert result.cost == pytest.approx(
        (usage.input_tokens * expected.input + usage.image_tokens * 600
         + (usage.text_tokens + usage.thinking_tokens) * expected.text_output) / 1e6
    )
    assert client.prices.tokens_per_image("acme/painter", None) == 1000


def test_config_prices_sets_the_table_and_default_goes_back(session, tmp_path):
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({FLASH: {"image_output": 600}}))
    session.set_defaults(prices=str(prices))
    assert session.settings()["prices"].endswith("prices.json")
    assert session.run(Request("a paper lantern", image_size="1K")).cost > 0.6
    session.set_defaults(prices=None)
    assert session.settings()["prices"] == "built-in"


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "there is no such file"),
        ("{not json", "it is not valid JSON"),
        ('["a list"]', "must be a JSON object"),
        (json.dumps({FLASH: {"image_price": 1}}), "unknown field 'image_price'"),
        (json.dumps({FLASH: {"input": "cheap"}}), "input must be a number"),
        (json.dumps({"acme/painter": {"input": 1}}), "needs image_output, text_output as well"),
    ],
)
def test_a_bad_price_file_is_refused_in_one_line_naming_it(tmp_path, content, reason):
    path = tmp_path / "prices.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        load_prices(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and reason in message
    assert "AIGATE_PRICES" in message


def test_a_bad_price_file_in_config_changes_nothing(session, tmp_path):
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigurationError):
        session.set_defaults(prices=str(tmp_path / "bad.json"), budget="5")
    assert session.settings()["prices"] == "built-in" and session.defaults.budget is None


def test_a_replayed_result_costs_nothing_and_its_entry_keeps_the_cost(session, emu):
    first = session.run(Request("a paper lantern"))
    again = session.run(Request("a paper lantern"))
    assert again.replayed and (again.cost, again.cost_source) == (0.0, "replay")
    assert again.caption().splitlines()[0].endswith("(--new makes a fresh one) | $0 (emulator)")
    assert session.history[first.index].cost == first.cost > 0


# -- budget ---------------------------------------------------------------------------------------


def test_a_request_past_the_budget_is_refused_before_anything_is_sent(session, emu):
    session.run(Request("a paper lantern", image_size="1K"))
    spent = session.spent()
    session.set_defaults(budget="0.5")
    emu.clear()
    with pytest.raises(BudgetError) as caught:
        session.submit(Request("a castle", model=PRO, image_size="4K"), count=8)
    assert emu.requests == []
    message = str(caught.value)
    assert "\n" not in message
    assert f"spent ${spent:.3f} of its $0.50 budget" in message
    assert "8 x 4K images of google/gemini-3-pro-image" in message and "about $1.920" in message


def test_eight_variants_are_estimated_as_eight(session):
    one = session.estimate(Request("a castle", model=PRO, image_size="4K"))
    eight = session.estimate(Request("a castle", model=PRO, image_size="4K"), count=8)
    assert eight.count == 8 and eight.cost == pytest.approx(8 * one.cost)
    assert one.cost == pytest.approx(0.24, abs=0.001)  # 2000 tokens at $120 per million, and the prompt


def test_only_the_variants_to_be_sent_count_towards_the_estimate(session, emu):
    [f.result(timeout=30) for f in session.submit(Request("three owls"), count=2)]
    planned = session.estimate(Request("three owls"), count=3)
    assert planned.count == 1
    session.set_defaults(budget=session.spent() + planned.cost + 0.001)  # room for one more, not three
    with pytest.warns(BudgetWarning):  # at the budget's very edge
        futures = session.submit(Request("three owls"), count=3)
    results = [f.result(timeout=30) for f in futures]
    assert [r.replayed for r in results] == [True, True, False]


def test_a_replayed_request_passes_a_spent_budget(session, emu):
    session.run(Request("a paper lantern"))
    session.set_defaults(budget="0.01")
    assert session.run(Request("a paper lantern")).replayed
    with pytest.raises(BudgetError):
        session.run(Request("a paper lantern", new=True))


def test_passing_80_percent_of_the_budget_warns(session, emu):
    cost = session.estimate(Request("a paper lantern")).cost
    session.set_defaults(budget=cost / 0.85)
    with pytest.warns(BudgetWarning, match=r"of its \$0\.0\d budget \(8\d%\)"):
        session.run(Request("a paper lantern"))
    session.set_defaults(budget=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error", BudgetWarning)
        session.run(Request("a paper boat"))


@pytest.fixture
def slow_session(tmp_path):
    """A session of an emulator of its own that holds each reply a moment, so that requests
    accepted at once are all in flight together."""
    with Emulator(api_key=TEST_KEY, latency=0.3) as emu, client_of(emu) as client:
        yield Session(client, History("slow", root=tmp_path)), emu


def test_requests_submitted_at_once_from_threads_never_pass_the_budget_together(slow_session):
    session, emu = slow_session
    each = session.estimate(Request("a paper lantern")).cost
    session.set_defaults(budget="0.10")  # about $0.07 an image: one fits, two do not
    start = threading.Barrier(6)
    accepted, refused = [], []

    def submit(k: int) -> None:
        start.wait()
        try:
            accepted.extend(session.submit(Request(f"a paper lantern, number {k}")))
        except BudgetError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=submit, args=(k,)) for k in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(accepted) == 1 and len(refused) == 5
    assert "requests not finished hold $0.0" in str(refused[0])  # unless the one accepted had finished
    accepted[0].result(timeout=30)
    assert len(emu.attempts("a paper lantern")) == 1
    assert session.spent() == pytest.approx(each, abs=0.01) and session.spent() <= 0.10


def test_a_finished_request_gives_back_its_hold_and_counts_its_real_cost_instead(session, emu):
    session.set_defaults(budget="10")
    futures = session.submit(Request("a paper lantern"), count=2)
    assert session.reserved() > 0 or all(f.done() for f in futures)
    results = [f.result(timeout=30) for f in futures]
    wait_for(lambda: session.reserved() == 0)  # settled by each future's callback
    assert session.spent() == pytest.approx(sum(r.cost for r in results))


def test_a_failed_request_gives_back_its_hold(session, emu):
    session.set_defaults(budget="0.10")
    emu.inject_fault("500", count=None)  # every attempt
    [future] = session.submit(Request("a paper lantern"))
    assert future.exception(timeout=30) is not None
    wait_for(lambda: session.reserved() == 0)
    emu.clear()
    assert not session.run(Request("a paper lantern")).replayed  # the budget has room for it again


def test_aigate_budget_sets_the_budget_and_a_bad_one_says_what_it_takes(emu, tmp_path, monkeypatch):
    monkeypatch.setenv("AIGATE_BUDGET", "5")
    with client_of(emu) as client:
        assert Session(client, History("b", root=tmp_path)).defaults.budget == 5.0
        monkeypatch.setenv("AIGATE_BUDGET", "lots")
        with pytest.raises(InputError, match="budget is an amount in USD such as 5"):
            Session(client, History("b", root=tmp_path))


def test_a_batch_runner_estimates_each_request_with_the_same_function(client):
    prepared = [client.prepare(f"a tile {n}", model=PRO, image_size="2K") for n in range(3)]
    total = sum(estimate(p, client.prices).cost for p in prepared)
    assert total == pytest.approx(3 * 1120 * 120 / 1e6, rel=0.01)
    assert estimate(client.prepare("a tile", model="acme/painter"), PriceTable()).cost is None


# -- the balance --------------------------------------------------------------------------------


def test_the_balance_goes_down_as_the_emulator_charges(emu):
    with client_of(emu) as client:
        before = client.balance()
        result = client.generate("a paper lantern", model=PRO, image_size="4K")
        assert client.balance() == pytest.approx(before - result.cost, abs=1e-5)  # same rates as the table


def test_a_gateway_without_a_balance_is_no_error(tmp_path):
    with Emulator(balance=None) as emu, Client(api_key="", base_url=emu.url) as client:
        assert client.balance() is None  # 404


class _HtmlHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        body = b"<html>no such page</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_balance_that_is_not_json_is_no_error():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HtmlHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with Client(api_key="sk-whatever-1234567", base_url=f"http://127.0.0.1:{server.server_port}") as client:
            assert client.balance() is None
    finally:
        server.shutdown()
        server.server_close()


# -- the spending of a history ------------------------------------------------------------------


def test_usage_sums_by_model_and_by_day(session, emu):
    flash = session.run(Request("a paper lantern", image_size="1K"))
    pro = session.run(Request("a paper castle", model=PRO, image_size="2K"))
    session.run(Request("a paper lantern", image_size="1K"))  # replayed: no second entry
    spending = session.history.usage()
    assert spending.total.requests == spending.total.images == 2
    assert spending.cost == pytest.approx(flash.cost + pro.cost)
    assert spending.by_model[PRO].usage == pro.usage and spending.by_model[FLASH].cost == flash.cost
    assert list(spending.by_day) == [flash.created[:10]]
    assert spending.total.usage.image_tokens == 1120 + 1120 and spending.total.estimated


@pytest.fixture
def shell(emu, tmp_path):
    """An InteractiveShell with the magics loaded over a session of the shared emulator."""
    config = Config()
    config.HistoryAccessor.enabled = False
    ip = InteractiveShell.instance(config=config)
    session = Session(client_of(emu), History("magic", root=tmp_path / "history"))
    set_current_session(session)
    ip.run_line_magic("load_ext", "aigate_nb")
    yield ip
    ip.run_line_magic("unload_ext", "aigate_nb")
    set_current_session(None)
    session.close()


def test_aigate_usage_shows_models_days_totals_and_the_balance(shell, emu, capsys):
    shell.run_cell_magic("gemini_image", "-s 1K", "a paper lantern")
    shell.run_cell_magic("gemini_image", f"-m {PRO} -s 4K", "a paper castle")
    capsys.readouterr()
    shell.run_line_magic("aigate", "usage")
    out = capsys.readouterr().out
    assert out.startswith("Spending of history 'magic'")
    lines = out.splitlines()
    assert any(line.strip().startswith(PRO) and "2,000" in line for line in lines)
    total = next(line for line in lines if line.startswith("total"))
    assert total.split()[1:3] == ["2", "2"] and "~$0.3" in total
    assert f"balance: ${emu.balance:,.2f}" in out


def test_aigate_usage_all_covers_every_history_in_the_folder(shell, capsys):
    shell.run_cell_magic("gemini_image", "", "a paper lantern")
    shell.run_line_magic("aigate", "history --name other")
    shell.run_cell_magic("gemini_image", "", "a paper boat")
    capsys.readouterr()
    shell.run_line_magic("aigate", "usage --all")
    out = capsys.readouterr().out
    assert out.startswith("Spending of histories 'magic', 'other'")
    assert next(line for line in out.splitlines() if line.startswith("total")).split()[1] == "2"
    with pytest.raises(UsageError, match="takes --all"):
        shell.run_line_magic("aigate", "usage --everything")


def test_the_magic_refuses_past_the_budget_in_one_line_and_warns_at_80_percent(shell, emu, capsys):
    shell.run_line_magic("aigate", "config budget=0.3")
    capsys.readouterr()
    shell.run_cell_magic("gemini_image", f"-m {PRO} -s 4K", "a paper castle")  # $0.24 of $0.30: 80 %
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "Budget" in line] == [
        next(line for line in err.splitlines() if line.startswith("aigate_nb: Budget: with this request"))
    ]
    emu.clear()
    result = shell.run_cell(f"%%gemini_image -m {PRO} -s 4K -n 8\na paper fortress")
    assert isinstance(result.error_in_exec, UsageError) and emu.requests == []
    assert "Over budget" in str(result.error_in_exec) and "8 x 4K images" in str(result.error_in_exec)


def test_usage_on_a_gateway_without_a_balance_shows_none(shell, tmp_path, capsys):
    with Emulator(api_key=TEST_KEY, balance=None) as bare, client_of(bare) as client:
        set_current_session(Session(client, History("bare", root=tmp_path)))
        shell.run_line_magic("aigate", "usage")
    assert capsys.readouterr().out.strip() == "Spending of history 'bare': nothing yet"


def test_usage_says_in_one_line_why_the_balance_is_not_available(shell, emu, tmp_path, capsys):
    with Client(api_key="sk-not-the-right-key-000", base_url=emu.url) as client:
        set_current_session(Session(client, History("wrong", root=tmp_path)))
        shell.run_line_magic("aigate", "usage")
    out = capsys.readouterr().out
    assert out.splitlines()[-1].startswith("balance: not available (HTTP 401: ")
    assert "sk-not-the-right-key-000" not in out


# -- records written before usage and cost were kept ---------------------------------------------


def test_old_history_records_without_usage_or_cost_still_load(tmp_path):
    history = History("old", root=tmp_path)
    (history.folder / "images").mkdir(parents=True)
    Image.new("RGB", (32, 32), "red").save(history.folder / "images" / "abc-1.png")
    old = {
        "v": 1, "prompt": "a red square", "model": FLASH, "id": "abc123abc123", "index": 0,
        "files": ["images/abc-1.png"], "mimes": ["image/png"], "sha256s": ["0" * 64], "sizes": [[32, 32]],
        "usage": {"promptTokenCount": 5, "candidatesTokenCount": 1120, "thoughtsTokenCount": 90,
                  "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 1120}]},
    }
    no_usage = {**old, "id": "def456def456", "index": 1}
    del no_usage["usage"]
    (history.folder / "index.jsonl").write_text(json.dumps(old) + "\n" + json.dumps(no_usage) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not one line skipped
        loaded = History("old", root=tmp_path)
        entries = list(loaded)
    assert entries[0].usage == Usage(input_tokens=5, image_tokens=1120, thinking_tokens=90)
    assert entries[1].usage == Usage() and entries[1].cost is None and entries[1].cost_source is None
    spending = loaded.usage()
    assert spending.total.unknown == 2 and "(+2 unknown)" in str(spending)


# -- the emulator's options ---------------------------------------------------------------------------


def test_the_emulators_chat_usage_splits_the_completion_tokens(emu):
    body = {"model": PRO, "messages": [{"role": "user", "content": "a kite"}], "modalities": ["image", "text"],
            "image_config": {"image_size": "4K"}}
    usage = requests.post(emu.url + "/v1/chat/completions", json=body, timeout=30,
                          headers={"Authorization": f"Bearer {TEST_KEY}"}).json()["usage"]
    details = usage["completion_tokens_details"]
    assert details["image_tokens"] == 2000 and details["reasoning_tokens"] > 0 and "cost" not in usage
    assert usage["completion_tokens"] >= details["image_tokens"] + details["reasoning_tokens"]


def test_the_control_endpoint_turns_cost_reporting_on_and_sets_the_balance():
    # An emulator of its own: the shared one's pretend balance is charged by whatever another
    # test left in flight.
    auth = {"Authorization": f"Bearer {TEST_KEY}"}
    with Emulator(api_key=TEST_KEY) as emu:
        settings = requests.post(emu.url + "/emulator/billing", json={"report_cost": True, "balance": 3},
                                 headers=auth, timeout=10).json()
        assert settings == {"report_cost": True, "balance": 3.0, "charged": 0.0}
        with client_of(emu) as client:
            result = client.generate("a paper kite", route="google")
            assert result.cost_source == "gateway" and client.balance() == pytest.approx(3 - result.cost)
        bad = requests.post(emu.url + "/emulator/billing", json={"report_cost": "yes"}, headers=auth, timeout=10)
        assert bad.status_code == 400
        emu.clear()  # back as it was started
        assert requests.get(emu.url + "/emulator/billing", headers=auth, timeout=10).json()["report_cost"] is False


def test_the_command_line_flags_report_the_cost_and_set_the_balance():
    process = subprocess.Popen(
        [sys.executable, "-m", "aigate_nb.emulator", "--report-cost", "--balance", "2.5"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert requests.get(url + "/v1/balance", timeout=10).json()["balance"] == 2.5
        with Client(api_key="", base_url=url) as client:
            assert client.generate("a paper kite").cost_source == "gateway"
            assert client.balance() < 2.5
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_panel_shows_the_budget_refusal_and_warning_in_its_status(session, emu):
    from aigate_nb.frontends.panel import Panel

    panel = Panel(session)
    try:
        panel.wait(10)
        cost = session.estimate(Request("a paper lantern")).cost
        session.set_defaults(budget=cost / 0.9)
        panel.prompt.value = "a paper lantern"
        panel.generate_button.click()
        panel.wait(20)
        assert not panel.status_is_error and "Budget: with this request" in panel.status_text
        emu.clear()
        panel.prompt.value = "a paper boat"
        panel.generate_button.click()
        panel.wait(10)
        assert panel.status_is_error and panel.status_text.startswith("Over budget")
        assert [r for r in emu.requests if r.prompt] == []
    finally:
        panel.close()


# -- requests charged without a picture -----------------------------------------------------------


@pytest.mark.parametrize("route", ["chat", "google"])
@pytest.mark.parametrize("kind", ["image-safety", "prompt-blocked"])
def test_a_blocked_reply_that_reports_usage_is_kept_as_an_attempt_and_counted(session, emu, route, kind):
    emu.inject_fault(kind, count=1)
    with pytest.raises(NoImageError) as caught:
        session.run(Request("a kite", route=route))
    [attempt] = session.history.attempts()
    assert attempt is not caught.value.attempt and attempt.created  # as kept, with its time
    assert attempt.prompt == "a kite" and attempt.route == route and attempt.usage.input_tokens > 0
    assert attempt.usage.image_tokens == 0 and attempt.cost == table_cost(FLASH, attempt.usage) > 0
    assert attempt.why() in ("blocked (SAFETY)", "finish reason IMAGE_SAFETY")
    assert len(session.history) == 0
    spending = session.usage()
    assert (spending.total.requests, spending.total.images, spending.total.no_image) == (1, 0, 1)
    assert session.spent() == spending.cost == attempt.cost


def test_the_gateways_charge_for_a_blocked_reply_is_what_is_counted(billed, tmp_path):
    with client_of(billed) as client:
        session = Session(client, History("billed", root=tmp_path))
        billed.inject_fault("image-safety", count=1)
        with pytest.raises(NoImageError):
            session.run(Request("a kite"))
    [attempt] = session.history.attempts()
    assert attempt.cost_source == "gateway" and attempt.cost > 0 and attempt.cost == pytest.approx(10 - billed.balance)


def test_a_charged_attempt_counts_against_the_budget(session, emu):
    emu.inject_fault("prompt-blocked", count=1)
    with pytest.raises(NoImageError):
        session.run(Request("a kite"))
    charged = session.history.attempts()[0].cost
    planned = session.estimate(Request("a kite")).cost
    session.set_defaults(budget=planned + charged / 2)  # room for the next one only if the attempt were free
    emu.clear()
    with pytest.raises(BudgetError, match="Over budget"):
        session.run(Request("a kite"))
    assert emu.requests == []


def test_an_attempt_is_shown_as_such_and_never_as_a_picture(shell, emu, capsys, tmp_path):
    emu.inject_fault("image-safety", count=1)
    shell.run_cell("%%gemini_image\na kite")
    capsys.readouterr()
    shell.run_line_magic("aigate", "usage")
    out = capsys.readouterr().out
    assert "1 of the 1 requests made no picture (blocked for safety, refused or text only) but was charged" in out
    gallery = shell.run_line_magic("aigate", "history")._repr_html_()
    assert "0 entries; 1 request made no picture but was charged (~$0.0" in gallery and "<img " not in gallery
    report = (tmp_path / "report.html")
    shell.run_line_magic("aigate", f"history --export {report}")
    text = report.read_text()
    assert "Charged without a picture (1)" in text and "finish reason IMAGE_SAFETY" in text
    assert "1 request charged without a picture" in text and 'class="card"' not in text
    emu.clear()
    result = shell.run_cell("%%gemini_image\na kite")  # sent again: an attempt is never replayed
    assert result.error_in_exec is None and len(emu.requests) == 1 and not result.result.replayed
    result = shell.run_cell("%%gemini_image -e 1\nmake it red")  # it took no number either
    assert isinstance(result.error_in_exec, UsageError)


def test_clear_removes_the_attempts_too(session, emu):
    emu.inject_fault("image-safety", count=1)
    with pytest.raises(NoImageError):
        session.run(Request("a kite"))
    session.run(Request("a kite"))
    assert session.history.clear() == 1
    assert session.history.attempts() == [] and session.spent() == 0
