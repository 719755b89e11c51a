"""Batches: one image per row of a list or a DataFrame, against the emulator over loopback.

Every row is checked before anything is sent; a row that fails leaves the others alone and
its error in the manifest; running the same batch again replays what finished and sends only
the rest; an interrupt stops sending and keeps what finished. The magic's ``--each`` is
tested in a real InteractiveShell.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.error import UsageError

import aigate_nb
from aigate_nb.core.errors import InputError
from aigate_nb.emulator import Emulator
from aigate_nb.runs import batches
from aigate_nb.runs.batches import BatchResult, read_manifest
from aigate_nb.runs.sheet import SHEET_BUDGET, contact_sheet
from aigate_nb.runs.waiting import progress_bar
from aigate_nb.session.session import Request
from support import REPO, TEST_KEY, max_in_flight, wait_for

FLASH = "google/gemini-3.1-flash-image-preview"
PRO = "google/gemini-3-pro-image"
OLD = "google/gemini-2.5-flash-image"
MANIFEST_KEYS = {"row", "label", "prompt", "inputs", "status", "entry", "file", "cost", "error", "finished"}
#: Seconds the slow emulator holds each generation reply: long enough for requests to overlap.
LATENCY = 0.3


@pytest.fixture
def session(session_on, emu):
    return session_on(emu.url)


@pytest.fixture(scope="module")
def slow_emulator():
    with Emulator(api_key=TEST_KEY, latency=LATENCY) as emu:
        yield emu


@pytest.fixture
def slow_session(slow_emulator, session_on):
    slow_emulator.clear()
    yield session_on(slow_emulator.url)
    slow_emulator.clear()


def run(rows, prompt=None, **options) -> BatchResult:
    """``batch()`` as a script calls it: no bar, no sheet."""
    options.setdefault("progress", False)
    options.setdefault("display", False)
    return aigate_nb.batch(rows, prompt, **options)


def sent(emu) -> list:
    return [record for record in emu.requests if record.prompt is not None]


# -- rows -------------------------------------------------------------------------------------


def test_a_list_of_prompts_makes_one_image_per_row_each_in_the_history(session, emu):
    result = run(["a red door", "a blue door", "a green door"], session=session)
    assert [row.status for row in result] == ["done", "done", "done"]
    assert sorted(record.prompt for record in sent(emu)) == ["a blue door", "a green door", "a red door"]
    assert {row.entry_id for row in result} == session.history.ids()
    assert [row.result.prompt for row in result] == ["a red door", "a blue door", "a green door"]


def test_a_template_is_filled_from_each_dict(session, emu):
    rows = [{"colour": "red", "thing": "kite"}, {"colour": "blue", "thing": "boat"}]
    result = run(rows, "a {colour} {thing}, watercolour", session=session)
    assert [row.prompt for row in result] == ["a red kite, watercolour", "a blue boat, watercolour"]
    assert sorted(record.prompt for record in sent(emu)) == ["a blue boat, watercolour", "a red kite, watercolour"]
    assert result[0].inputs == {"colour": "red", "thing": "kite"}


def test_dataframe_columns_set_each_rows_options_and_edit_a_history_entry(session, emu):
    first = session.run(Request("a plain hen", image_size="512"))
    frame = pd.DataFrame([
        {"animal": "fox", "model": PRO, "aspect_ratio": "16:9", "image_size": "1K"},
        {"animal": "owl", "route": "google", "aspect_ratio": "1:1", "image_size": "512"},
        {"animal": "hen", "edit": 0, "image_size": "512"},  # the column holds NaN elsewhere: 0 reads as 0.0
    ])
    result = run(frame, "a {animal}", session=session)
    fox, owl, hen = (row.result for row in result)
    assert (fox.model, fox.aspect_ratio, fox.image_size, fox.route) == (PRO, "16:9", "1K", "chat")
    assert (owl.model, owl.aspect_ratio, owl.route) == (FLASH, "1:1", "google")
    assert hen.parent_id == first.id and hen.prompt == "a hen"
    paths = {record.prompt: record.path for record in sent(emu)}
    assert paths["a owl"].endswith(":generateContent") and paths["a fox"] == "/v1/chat/completions"
    assert [len(record.images) for record in sent(emu) if record.prompt == "a hen"] == [1]


def test_a_dataframes_index_labels_the_rows_and_indexes_to_pandas(session):
    frame = pd.DataFrame({"subject": ["cat", "dog"]}, index=["c1", "d7"])
    result = run(frame, "a {subject}", session=session)
    table = result.to_pandas()
    assert list(table.index) == ["c1", "d7"]
    assert list(table["status"]) == ["done", "done"]
    assert list(table["entry"]) == [row.entry_id for row in result]
    joined = frame.join(table[["status", "entry"]])
    assert joined.loc["d7", "entry"] == result[1].entry_id
    assert run(["a cat"], session=session).to_pandas().index.name == "row"


# -- refused before anything is sent -------------------------------------------------------------


def test_a_template_field_that_is_no_column_is_refused_before_anything_is_sent(session, emu):
    with pytest.raises(InputError, match=r"Row 0: the template's \{colour\} is not a column of the rows "
                                         r"\(columns: thing\)"):
        run([{"thing": "kite"}, {"thing": "boat"}], "a {colour} {thing}", session=session)
    assert emu.requests == []


def test_an_empty_cell_the_template_needs_is_refused_naming_the_row(session, emu):
    frame = pd.DataFrame({"colour": ["red", None, "blue"]})
    with pytest.raises(InputError, match="Row 1: the column 'colour' is empty there"):
        run(frame, "a {colour} door", session=session)
    assert emu.requests == []


def test_a_row_the_model_refuses_is_refused_naming_the_row_before_sending(session, emu):
    rows = [{"subject": "cat"}, {"subject": "dog", "model": OLD, "aspect_ratio": "1:4"}]
    with pytest.raises(InputError, match=r"^Row 1: aspect ratio '1:4' is not one of .* for google/gemini-2\.5"):
        run(rows, "a {subject}", session=session)
    assert emu.requests == []


@pytest.mark.parametrize("rows, options, message", [
    ("a red door", {}, "not a single str"),
    ([], {}, "The batch has no rows"),
    ([3], {}, "Row 0 is a int"),
    ([{"subject": "cat"}], {}, "Row 0 has no 'prompt' column"),
    (["a cat"], {"colour": "red"}, "batch\\(\\) has no option 'colour'"),
    (["a cat"], {"concurrency": 0}, "concurrency=0: send 1 to 16"),
    (["a cat"], {"manifest": "out.csv"}, "the manifest is a JSONL file"),
    (["a cat"], {"edit": "nothing_here"}, "Row 0: 'nothing_here' is neither a history index"),
])
def test_bad_input_gets_one_line_and_nothing_is_sent(session, emu, rows, options, message):
    with pytest.raises(InputError, match=message) as caught:
        run(rows, session=session, **options)
    assert "\n" not in str(caught.value)
    assert emu.requests == []


# -- failures, the manifest, resuming --------------------------------------------------------------


def test_a_failed_row_does_not_stop_the_others_and_its_error_is_kept(session, emu):
    emu.inject_fault("prompt-blocked", count=1)  # the first request sent: row 0, one at a time
    result = run(["a cat", "a dog", "an owl"], session=session, concurrency=1)
    assert [row.status for row in result] == ["failed", "done", "done"]
    assert [row.number for row in result.failed] == [0]
    assert "block" in result.failed[0].error.lower() and "\n" not in result.failed[0].error
    lines = read_manifest(result.manifest)
    assert [(line["row"], line["status"]) for line in lines] == [(0, "failed"), (1, "done"), (2, "done")]
    assert lines[0]["error"] == result.failed[0].error and lines[0]["entry"] is None
    assert "1 failed" in result.summary()


def test_the_manifest_has_one_json_line_per_finished_row(session, tmp_path):
    path = tmp_path / "shots.jsonl"
    result = run([{"prompt": "a cat", "image_size": "512"}, {"prompt": "a dog"}], session=session, manifest=path,
                 concurrency=1)
    assert result.manifest == path
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [(line["row"], line["status"]) for line in raw] == [(0, "claimed"), (0, "done"), (1, "claimed"), (1, "done")]
    lines = [line for line in raw if line["status"] != "claimed"]
    assert lines == read_manifest(path)
    assert all(set(line) == MANIFEST_KEYS for line in lines)
    assert set(raw[0]) == {"row", "status", "batch", "pid", "host", "token", "claimed"}
    cat = lines[0]
    assert (cat["row"], cat["prompt"], cat["inputs"], cat["status"]) == (0, "a cat", {"image_size": "512"}, "done")
    assert cat["entry"] == result[0].entry_id and cat["error"] is None
    assert cat["file"] == str(session.history.get(cat["entry"]).files[0])
    assert "cost" in cat  # None where the reply gives no cost


def test_the_default_manifest_is_named_by_the_rows_and_their_images(session):
    session.run(Request("source one", image_size="512"))
    session.run(Request("source two", image_size="512"))
    again = run(["a cat"], session=session).manifest
    assert again == run(["a cat"], session=session).manifest
    assert again.parent == session.history.folder / "batches"
    edits = {run(["a cat"], session=session, edit=ref).manifest for ref in (0, 1)}
    assert len(edits) == 2 and again not in edits  # an edit of other pictures is another batch


def test_running_the_same_batch_again_sends_nothing(session, emu):
    rows = [{"subject": "cat"}, {"subject": "dog"}]
    first = run(rows, "a {subject}", session=session)
    count = len(emu.requests)
    again = run(rows, "a {subject}", session=session)
    assert len(emu.requests) == count
    assert [row.status for row in again] == ["replayed", "replayed"]
    assert [row.entry_id for row in again] == [row.entry_id for row in first]
    assert again.cost == 0.0
    assert [line["status"] for line in read_manifest(again.manifest)] == ["done", "done", "replayed", "replayed"]


def test_running_again_retries_only_the_failed_rows(session, emu):
    emu.inject_fault("no-image", count=1)
    first = run(["a cat", "a dog", "an owl"], session=session, concurrency=1)
    assert [row.number for row in first.failed] == [0]
    emu.clear()
    again = run(["a cat", "a dog", "an owl"], session=session)
    assert [record.prompt for record in sent(emu)] == ["a cat"]
    assert [row.status for row in again] == ["done", "replayed", "replayed"]
    assert again.failed == []


def test_new_sends_every_row_again(session, emu):
    run(["a cat"], session=session)
    run(["a cat"], session=session, new=True)
    assert [record.prompt for record in sent(emu)] == ["a cat", "a cat"]


def test_an_interrupt_stops_sending_keeps_what_finished_and_says_what_is_left(slow_session, slow_emulator,
                                                                              monkeypatch):
    # A KeyboardInterrupt while waiting is a fault no server can produce: the first wait is
    # real (row 0 finishes), the second is interrupted with row 1 in flight.
    real_wait = concurrent.futures.wait
    calls = []

    def interrupted_wait(futures, timeout=None, return_when=concurrent.futures.ALL_COMPLETED):
        calls.append(1)
        if len(calls) > 1:
            raise KeyboardInterrupt
        return real_wait(futures, return_when=return_when)

    monkeypatch.setattr(concurrent.futures, "wait", interrupted_wait)
    rows = ["a cat", "a dog", "an owl", "a hen", "a fox"]
    with pytest.raises(KeyboardInterrupt, match=r"1 of 5 rows finished, 1 in flight still join the history; "
                                                r"rows 2-4 not sent\. Run the same batch again") as caught:
        run(rows, session=slow_session, concurrency=1)
    monkeypatch.undo()
    assert "\n" not in str(caught.value)
    path = batches.manifest_path(slow_session, batches.plan_batch(rows, session=slow_session), None)
    lines = wait_for(lambda: len(read_manifest(path)) == 2 and read_manifest(path))
    assert [(line["row"], line["status"]) for line in lines] == [(0, "done"), (1, "done")]  # row 1 landed late
    assert [record.prompt for record in sent(slow_emulator)] == ["a cat", "a dog"]  # nothing sent after
    assert len(slow_session.history) == 2
    again = run(rows, session=slow_session, concurrency=3)
    assert [row.status for row in again] == ["replayed", "replayed", "done", "done", "done"]
    assert sorted(record.prompt for record in sent(slow_emulator)) == sorted(rows)


def test_concurrency_is_the_most_requests_in_flight(slow_session, slow_emulator):
    result = run([f"tile {n}" for n in range(6)], session=slow_session, concurrency=2)
    assert len(result.done) == 6
    records = sent(slow_emulator)
    assert len(records) == 6
    # Each is held LATENCY seconds: one at a time, none would overlap; two at a time, never three.
    assert max_in_flight(records) == 2, [(r.started, r.finished) for r in records]


# -- what is shown -----------------------------------------------------------------------------


def test_the_result_shows_as_a_contact_sheet_with_a_failed_row_as_its_reason(session, emu):
    emu.inject_fault("no-image", count=1)
    result = run(["a cat", "a dog"], session=session, concurrency=1)
    bundle = result._repr_mimebundle_()
    sheet = bundle["text/html"]
    assert sheet.count("<img ") == 1
    assert "0 · failed" in sheet and "1 · done" in sheet
    assert "text only and no image" in sheet
    # the cost is the price table's estimate for the one image made ("~"); the failed row cost nothing known
    assert bundle["text/plain"] == result.summary() == "2 rows: 1 done, 1 failed | ~$0.068"
    assert repr(result) == "<BatchResult 2 rows: 1 done, 1 failed | ~$0.068>"


def test_a_long_batchs_sheet_stays_within_its_budget_and_says_how_many_more(session):
    [row] = run(["a cat"], session=session).rows
    rows = [dataclasses.replace(row, number=n) for n in range(200)]
    sheet = contact_sheet(rows, "200 rows")
    shown = sheet.count("<img ")
    assert 10 < shown < 200
    assert len(sheet) < SHEET_BUDGET + 10_000
    assert f"The first {shown} of 200 rows" in sheet
    newest = contact_sheet(rows, "200 rows", newest=True)
    assert f"The newest {shown} of 200 rows" in newest
    assert re.search(r">199 · done[ ·~$0-9.]*<", newest) and not re.search(r">0 · done[ ·~$0-9.]*<", newest)


def test_the_progress_bar_counts_done_failed_and_replayed_on_stderr_in_a_terminal(session, emu, capsys):
    run(["a cat"], session=session)
    emu.inject_fault("no-image", count=1)
    aigate_nb.batch(["a cat", "a dog", "an owl"], session=session, concurrency=1, display=False)
    out, err = capsys.readouterr()
    assert "Batch of 3 rows: 2 to send, 1 replayed from the history" in out
    assert "Manifest: " in out
    final = err.replace("\r", "\n").strip().splitlines()[-1]
    assert final.startswith("images: 100%") and "3/3" in final
    assert "done=1" in final and "failed=1" in final and "replayed=1" in final
    assert "spent=$0.068" in final  # the one image sent; the replayed one cost nothing now
    # Every state drawn after the start counts what it shows: the counts are set before the bar moves.
    for line in err.replace("\r", "\n").splitlines():
        match = re.search(r"(\d)/3 \[", line)
        if match and int(match.group(1)) > 1:  # 1/3: the replayed row, counted from the start
            counts = [int(n) for n in re.findall(r"(?:done|failed|replayed)=(\d+)", line)]
            assert sum(counts) == int(match.group(1)), line


def test_the_bar_is_text_outside_a_kernel_whatever_was_imported(capsys):
    import ipykernel.zmqshell  # noqa: F401 - once imported, tqdm.auto would draw widgets in a terminal too

    bar = progress_bar(2, desc="rows")
    bar.update(2)
    bar.close()
    assert type(bar).__module__ == "tqdm.std"
    assert "rows: 100%" in capsys.readouterr().err


# -- %%gemini_image --each -------------------------------------------------------------------------


@pytest.fixture
def ip(magics_on, session):
    return magics_on(session)


def each(ip, line: str, body: str):
    return ip.run_cell_magic("gemini_image", line, body)


def usage_error(ip, capsys, code: str) -> str:
    """Run ``code`` as a cell; check it fails with one UsageError line (beside the progress
    bar a terminal shows on stderr), no traceback and no key."""
    capsys.readouterr()
    result = ip.run_cell(code)
    out, err = capsys.readouterr()
    assert type(result.error_in_exec) is UsageError, (out, err)
    assert TEST_KEY not in out + err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("images: ")]
    assert len(lines) == 1 and lines[0].startswith("UsageError: ") and "Traceback" not in out + err, err
    return lines[0].removeprefix("UsageError: ")


def test_each_fills_the_cell_body_from_each_row(ip, emu):
    ip.user_ns["shots"] = [{"colour": "red"}, {"colour": "blue", "aspect_ratio": "16:9"}]
    result = each(ip, "--each shots -s 512 --as made", "a {colour} door")
    assert isinstance(result, BatchResult) and ip.user_ns["made"] is result
    assert [row.prompt for row in result] == ["a red door", "a blue door"]
    assert [(row.result.aspect_ratio, row.result.image_size) for row in result] == [(None, "512"), ("16:9", "512")]
    assert sorted(record.prompt for record in sent(emu)) == ["a blue door", "a red door"]


def test_each_takes_a_dataframe_and_a_template_field_from_the_notebook(ip, emu):
    ip.user_ns.update(frame=pd.DataFrame({"animal": ["cat", "dog"]}), style="ink")
    result = each(ip, "--each frame --concurrency 2", "a {animal} in {style}")
    assert [row.prompt for row in result] == ["a cat in ink", "a dog in ink"]


def test_each_edits_the_image_named_by_e(ip, session):
    source = session.run(Request("a plain wall", image_size="512"))
    ip.user_ns["rows"] = ["paint it red", "paint it blue"]
    result = each(ip, "--each rows -e 0", "{prompt}")  # a list of prompts is a column called prompt
    assert [row.result.parent_id for row in result] == [source.id, source.id]


@pytest.mark.parametrize("line, message", [
    ("--each nowhere", "--each nowhere: no variable 'nowhere' in this notebook"),
    ("--each rows -n 2", "-n does not go with --each"),
    ("--each rows -o out.png", "-o does not go with --each"),
    ("--each rows -m a,b", "a batch takes one value per option"),
    ("--each rows --concurrency 40", "--concurrency 40: send 1 to 16"),
    ("--concurrency 2", "--concurrency goes with --each ROWS"),
    ("--each rows -a 7:3", "Row 0: aspect ratio '7:3' is not one of"),
])
def test_each_option_errors_are_one_line_and_send_nothing(ip, emu, capsys, line, message):
    ip.user_ns["rows"] = ["a cat", "a dog"]
    assert message in usage_error(ip, capsys, f"%%gemini_image {line}\n{{prompt}}")
    assert emu.requests == []


def test_each_template_field_that_is_nowhere_is_refused(ip, emu, capsys):
    ip.user_ns["rows"] = [{"colour": "red"}]
    message = usage_error(ip, capsys, "%%gemini_image --each rows\na {colour} {thing}")
    assert message.startswith("Row 0: the template's {thing} is not a column")
    assert emu.requests == []


def test_an_interrupted_each_cell_ends_in_one_line(ip, session, emu, capsys, monkeypatch):
    def interrupted_wait(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(concurrent.futures, "wait", interrupted_wait)  # a fault no server can produce
    ip.user_ns["rows"] = ["a cat", "a dog", "an owl"]
    message = usage_error(ip, capsys, "%%gemini_image --each rows --concurrency 1\n{prompt}")
    assert message.startswith("Batch interrupted: 0 of 3 rows finished, 1 in flight still join the history; "
                              "rows 1-2 not sent.")
    wait_for(lambda: len(session.history) == 1)  # the one in flight lands all the same
    assert [record.prompt for record in sent(emu)] == ["a cat"]


def test_the_sheet_grows_in_place_where_the_front_end_can_redraw(ip, shell):
    shell.display_pub, original = CapturingDisplayPublisher(), shell.display_pub
    try:
        ip.user_ns["rows"] = ["a cat", "a dog"]
        shell.run_cell("%%gemini_image --each rows -s 512\n{prompt}")
        outputs = shell.display_pub.outputs
    finally:
        shell.display_pub = original
    sheets = [o for o in outputs if "aigate-batch-live" in o["data"].get("text/html", "")]
    first, last = sheets[0], sheets[-1]
    assert not first["update"] and "waiting for the first image" in first["data"]["text/html"]
    assert last["update"] and last["data"]["text/html"].count("<img ") == 2
    assert re.search(r"2 rows: 2 done \| ~\$0\.\d{3}<", last["data"]["text/html"])


def test_below_its_growing_sheet_the_result_is_one_line_and_the_sheet_in_a_later_cell(ip, shell):
    shell.display_pub, original = CapturingDisplayPublisher(), shell.display_pub
    try:
        shell.run_cell("made = aigate_nb.batch(['a cat', 'a dog'], progress=False)\n"
                       "inside = made._repr_mimebundle_()")
    finally:
        shell.display_pub = original
    made = shell.user_ns["made"]
    assert shell.user_ns["inside"] == {"text/plain": "2 rows: 2 done | ~$0.136"}  # the images are not shown twice
    assert made._repr_mimebundle_()["text/html"].count("<img ") == 2  # the cell has ended
    assert run(["a cat"])._repr_mimebundle_()["text/html"].count("<img ") == 1  # no sheet grew: shown at once


# -- budget, quota and pacing -------------------------------------------------------------------


def test_a_batch_over_the_budget_is_refused_before_anything_is_sent(session, emu):
    from aigate_nb.core.errors import BudgetError

    session.set_defaults(budget="0.25")  # a 1K flash image costs about $0.07: three fit, four do not
    with pytest.raises(BudgetError, match=r"this batch: 4 images of google/gemini-3.1-flash-image-preview"):
        run(["a cat", "a dog", "an owl", "a fox"], session=session)
    assert sent(emu) == []
    # Rows the history replays cost nothing: only those to send count against the budget.
    run(["a cat", "a dog"], session=session)
    with pytest.warns(aigate_nb.BudgetWarning):  # past 80 % of the budget with the third
        result = run(["a cat", "a dog", "an owl"], session=session)
    assert [row.status for row in result] == ["replayed", "replayed", "done"]


def test_a_batch_counts_what_requests_in_flight_hold_and_is_refused_before_sending(slow_session, slow_emulator):
    from aigate_nb.core.errors import BudgetError

    session = slow_session
    session.set_defaults(budget="0.25")  # three 1K flash images fit, four do not
    in_flight = session.submit(Request("a moth"), count=2)
    with pytest.raises(BudgetError, match="requests not finished hold"):
        run(["a cat", "a dog"], session=session)
    [future.result(timeout=30) for future in in_flight]
    assert [record.prompt for record in sent(slow_emulator)] == ["a moth", "a moth"]
    assert session.spent() <= 0.25


@pytest.mark.filterwarnings("ignore::aigate_nb.BudgetWarning")  # the batch takes 81 % of it
def test_while_a_batch_runs_its_queued_rows_are_held_from_other_requests(slow_session, slow_emulator):
    from aigate_nb.core.errors import BudgetError

    session = slow_session
    session.set_defaults(budget="0.25")  # the batch's three rows fit, and nothing more
    done = concurrent.futures.ThreadPoolExecutor(1).submit(
        run, ["a cat", "a dog", "an owl"], session=session, concurrency=1)
    wait_for(lambda: sent(slow_emulator))  # the first row is in flight, the other two queued
    with pytest.raises(BudgetError):
        session.submit(Request("a fox"))
    assert [row.status for row in done.result(timeout=30)] == ["done", "done", "done"]
    assert [record.prompt for record in sent(slow_emulator)] == ["a cat", "a dog", "an owl"]
    assert session.reserved() == 0


@pytest.mark.filterwarnings("ignore::aigate_nb.BudgetWarning")  # the batch takes 81 % of it
def test_a_batch_stopped_early_lets_go_of_what_its_unsent_rows_held(session, emu):
    session.set_defaults(budget="0.25")
    emu.set_limits(daily_quota=1, style="google")
    result = run(["a cat", "a dog", "an owl"], session=session, concurrency=1)
    assert [row.status for row in result] == ["done", "failed", "skipped"]
    assert session.reserved() == 0


def test_a_batch_whose_gateway_cannot_be_reached_stops_after_a_few_rows_and_says_how_to_resume(
        session_on, capsys):
    from aigate_nb.emulator import Emulator
    from aigate_nb.runs.batches import MAX_UNREACHABLE

    with Emulator(api_key=TEST_KEY) as gone:
        url = gone.url
    session = session_on(url)  # nothing listens there any more: every connection is refused
    result = run([f"shot {k}" for k in range(10)], session=session, concurrency=1)
    statuses = [row.status for row in result]
    assert statuses == ["failed"] * MAX_UNREACHABLE + ["skipped"] * (10 - MAX_UNREACHABLE)
    assert "could not be reached" in result.stopped and "run the same batch again" in result.stopped
    assert [line["status"] for line in read_manifest(result.manifest)] == ["failed"] * MAX_UNREACHABLE
    assert "The batch stopped: the gateway at " + url in capsys.readouterr().out


def test_fewer_connection_failures_in_a_row_than_the_limit_leave_the_batch_going(session, emu):
    from aigate_nb.gateway.transport import DEFAULT_MAX_RETRIES

    emu.inject_fault("reset", count=2 * (DEFAULT_MAX_RETRIES + 1))  # every attempt of the first two rows
    result = run(["a cat", "a dog", "an owl", "a fox"], session=session, concurrency=1)
    assert [row.status for row in result] == ["failed", "failed", "done", "done"] and result.stopped is None


@pytest.mark.parametrize("where", ["folder", "missing folder"])
def test_a_manifest_that_cannot_be_written_is_refused_before_anything_is_sent(session, emu, tmp_path, where):
    target = {"folder": tmp_path, "missing folder": tmp_path / "no such folder" / "shots.jsonl"}[where]
    with pytest.raises(InputError, match="is a folder" if where == "folder" else "does not exist"):
        run(["a cat", "a dog", "an owl", "a fox", "a hen"], session=session, manifest=target)
    assert sent(emu) == []
    (tmp_path / "shots.jsonl").mkdir()
    with pytest.raises(InputError, match="is a folder"):
        run(["a cat"], session=session, manifest=tmp_path / "shots.jsonl")
    assert sent(emu) == []


def test_a_used_up_daily_quota_stops_the_batch_cleanly_and_a_rerun_sends_the_rest(session, emu):
    emu.set_limits(daily_quota=2, style="google")
    rows = [f"shot {k}" for k in range(5)]
    result = run(rows, session=session, concurrency=1)
    assert [row.status for row in result] == ["done", "done", "failed", "skipped", "skipped"]
    assert "daily" in result.stopped.lower() and "quota" in result.stopped.lower()
    assert len(sent(emu)) == 3  # the third was refused by the quota and not retried; the rest never sent
    lines = read_manifest(result.manifest)
    assert [line["status"] for line in lines] == ["done", "done", "failed"]
    emu.set_limits()  # a new day
    again = run(rows, session=session, concurrency=1)
    assert [row.status for row in again] == ["replayed", "replayed", "done", "done", "done"]
    assert len(sent(emu)) == 6


@pytest.mark.parametrize("style", ["google", "openai"])
def test_a_rate_limited_gateway_gets_every_row_through_with_fewer_in_flight(session, emu, style):
    emu.set_limits(rate_limit="4/s", style=style)
    result = run([f"tile {k}" for k in range(10)], session=session, concurrency=4)
    assert [row.status for row in result] == ["done"] * 10
    limited = [record for record in emu.requests if record.status == 429]
    assert limited, "the limit was never reached: the test proves nothing"
    assert session.client.pacer is None  # the batch's pacer goes with it


def test_a_rate_cap_spaces_the_rows_as_asked(session, emu):
    run([f"slow {k}" for k in range(4)], session=session, concurrency=4, rate="8/s")
    starts = sorted(record.started for record in sent(emu))
    assert starts[-1] - starts[0] >= 3 / 8 - 0.1  # one start every 1/8 s, less the first's late arrival


def test_a_bad_rate_is_refused_before_anything_is_sent(session, emu):
    from aigate_nb.core.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="rate '60 a minute'"):
        run(["a cat"], session=session, rate="60 a minute")
    assert sent(emu) == []


def test_a_row_whose_rate_limit_outlasts_its_retries_goes_back_in_the_queue(session, emu):
    from aigate_nb.gateway.transport import DEFAULT_MAX_RETRIES

    emu.inject_fault("429", count=DEFAULT_MAX_RETRIES + 1, retry_after=0.01)  # every attempt of the first try
    result = run(["a patient heron", "a quick wren"], session=session, concurrency=1)
    assert [row.status for row in result] == ["done", "done"]
    assert result[0].requeued == 1 and result[1].requeued == 0
    heron = [record.status for record in emu.attempts("a patient heron")]
    assert heron == [429] * (DEFAULT_MAX_RETRIES + 1) + [200]
    assert [line["status"] for line in read_manifest(result.manifest)] == ["done", "done"]  # no line for the requeue


def test_a_row_the_rate_limit_never_lets_through_fails_after_a_few_tries(session, emu):
    from aigate_nb.gateway.transport import DEFAULT_MAX_RETRIES
    from aigate_nb.runs.batches import MAX_REQUEUES

    emu.inject_fault("429", count=None, retry_after=0.01)  # until cleared
    result = run(["a stubborn mule"], session=session, concurrency=1)
    assert [row.status for row in result] == ["failed"]
    assert len(emu.attempts("a stubborn mule")) == (DEFAULT_MAX_RETRIES + 1) * (MAX_REQUEUES + 1)
    assert [line["status"] for line in read_manifest(result.manifest)] == ["failed"]


def test_a_row_put_back_in_the_queue_when_the_batch_stopped_is_sent_by_the_next_run(session, emu):
    from aigate_nb.gateway.transport import DEFAULT_MAX_RETRIES

    emu.inject_fault("429", count=DEFAULT_MAX_RETRIES + 1, retry_after=0.01)  # row 0 goes back in the queue
    emu.set_limits(daily_quota=DEFAULT_MAX_RETRIES + 1, style="google")  # ...and row 1 meets the quota
    rows = ["a patient heron", "a quick wren", "a slow snail"]
    stopped = run(rows, session=session, concurrency=1)
    assert [row.status for row in stopped] == ["skipped", "failed", "skipped"] and stopped.stopped
    emu.set_limits()
    # Row 0 was claimed and never sent: the next run in this kernel sends it, and does not wait for it.
    again = concurrent.futures.ThreadPoolExecutor(1).submit(run, rows, session=session, concurrency=1)
    assert [row.status for row in again.result(timeout=30)] == ["done", "done", "done"]


def test_clearing_the_history_removes_its_batches_manifests_but_not_one_kept_elsewhere(session, emu, tmp_path):
    own = run(["a cat"], session=session).manifest
    elsewhere = run(["a dog"], session=session, manifest=tmp_path / "shots.jsonl").manifest
    assert own.is_file() and own.parent == session.history.folder / "batches"
    session.history.clear()
    assert not own.parent.exists()
    assert elsewhere.is_file()
    again = run(["a cat"], session=session)  # nothing to replay now: sent anew, a fresh manifest
    assert [row.status for row in again] == ["done"] and len(read_manifest(again.manifest)) == 1


# -- two runs of one batch at once ----------------------------------------------------------------

#: A script that runs a batch of N rows against URL with the history ROOT/shared, as a second
#: kernel or a scheduled script would, and prints the rows' statuses.
RUN_BATCH = """
import json, sys
import aigate_nb
from aigate_nb.gateway.client import Client
from aigate_nb.session.session import Session
from aigate_nb.records.store import History
url, root, key, count = sys.argv[1:5]
with Client(api_key=key, base_url=url, retry_backoff=0.01, timeout=(5, 120)) as client:
    session = Session(client, History("shared", root=root))
    rows = [f"a shared row, number {k}" for k in range(int(count))]
    result = aigate_nb.batch(rows, session=session, concurrency=2, progress=False, display=False)
    print(json.dumps([row.status for row in result]))
"""


def start_batch(url: str, root, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", RUN_BATCH, url, str(root), TEST_KEY, str(count)], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def statuses(process: subprocess.Popen) -> list[str]:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_two_processes_running_the_same_batch_pay_for_each_row_once(tmp_path):
    with Emulator(api_key=TEST_KEY, latency=0.5) as emu:
        first, second = start_batch(emu.url, tmp_path, 12), start_batch(emu.url, tmp_path, 12)
        ran = [statuses(first), statuses(second)]
        assert len(sent(emu)) == 12  # each row once, whichever process sent it
    for run_statuses in ran:
        assert set(run_statuses) <= {"done", "replayed"}
    assert sum(run_statuses.count("done") for run_statuses in ran) == 12


def test_a_row_claimed_by_a_killed_process_is_sent_by_the_next_run(tmp_path):
    with Emulator(api_key=TEST_KEY) as emu:
        emu.inject_fault("timeout", count=2, delay=60)  # the first two requests hang
        killed = start_batch(emu.url, tmp_path, 4)
        wait_for(lambda: len(sent(emu)) == 2, timeout=30)  # its two rows in flight, claimed
        killed.kill()
        killed.wait()
        claims = [line for line in map(json.loads, next((tmp_path / "shared" / "batches").iterdir()).open())
                  if line["status"] == "claimed"]
        assert len(claims) == 2 and {line["pid"] for line in claims} == {killed.pid}
        assert statuses(start_batch(emu.url, tmp_path, 4)) == ["done"] * 4
        assert len(sent(emu)) == 6
