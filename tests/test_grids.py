"""Comparison grids: one prompt across models, ratios, sizes or prompts, against the emulator
over loopback: one request per combination, a combination the model refuses marked and not
sent, a failed one showing its reason, each image its own history entry, replay, the saved
PNG and its text chunks, and the magic's comma lists in a real InteractiveShell.
"""

from __future__ import annotations

import json
import re

import pytest
from IPython.core.error import UsageError
from IPython.lib.pretty import pretty
from PIL import Image

import aigate_nb
from aigate_nb.core.errors import BudgetError, InputError
from aigate_nb.emulator import Emulator
from aigate_nb.runs.grids import MAX_CELLS, Grid
from aigate_nb.session.session import Request
from support import TEST_KEY

FLASH = "google/gemini-3.1-flash-image-preview"
PRO = "google/gemini-3-pro-image"
OLD = "google/gemini-2.5-flash-image"


@pytest.fixture
def session(session_on, emu):
    return session_on(emu.url)


@pytest.fixture
def slow_session(session_on):
    """A session of an emulator of its own that holds each reply a moment: requests overlap."""
    with Emulator(api_key=TEST_KEY, latency=0.3) as slow:
        yield session_on(slow.url), slow


def compare(prompt=None, **options) -> Grid:
    options.setdefault("progress", False)
    return aigate_nb.compare(prompt, **options)


def sent(emu) -> list:
    return [record for record in emu.requests if record.prompt is not None]


def ratio_of(record) -> str | None:
    return record.body.get("image_config", {}).get("aspect_ratio")


# -- the combinations -------------------------------------------------------------------------


def test_one_request_per_combination_models_down_the_left_ratios_across_the_top(session, emu):
    grid = compare("a kite", models=[FLASH, OLD], aspect_ratios="1:1,16:9", session=session)
    assert (grid.row_axis, grid.column_axes) == ("model", ["aspect_ratio"])
    assert grid.rows == [FLASH, OLD] and grid.columns == [("1:1",), ("16:9",)]
    assert [[(cell.values["model"], cell.values["aspect_ratio"]) for cell in row] for row in grid.cells] == [
        [(FLASH, "1:1"), (FLASH, "16:9")], [(OLD, "1:1"), (OLD, "16:9")]]
    assert sorted((record.model, ratio_of(record)) for record in sent(emu)) == sorted(
        [(FLASH, "1:1"), (FLASH, "16:9"), (OLD, "1:1"), (OLD, "16:9")])
    assert [(cell.result.model, cell.result.aspect_ratio) for cell in grid] == [
        (FLASH, "1:1"), (FLASH, "16:9"), (OLD, "1:1"), (OLD, "16:9")]
    assert grid.axes() == {"model": [FLASH, OLD], "aspect_ratio": ["1:1", "16:9"]}


def test_one_varying_option_makes_one_row_and_a_fixed_one_goes_to_every_tile(session, emu):
    grid = compare("a kite", models=[PRO], image_sizes=["1K", "2K"], aspect_ratios="4:3", session=session)
    assert (grid.row_axis, grid.column_axes, grid.rows) == (None, ["image_size"], [""])
    assert [(cell.result.model, cell.result.aspect_ratio, cell.result.image_size) for cell in grid] == [
        (PRO, "4:3", "1K"), (PRO, "4:3", "2K")]


def test_prompts_can_be_an_axis(session, emu):
    grid = compare(prompts=["a red kite", "a blue kite"], models=[FLASH, OLD], session=session)
    assert grid.rows == [FLASH, OLD] and grid.columns == [("a red kite",), ("a blue kite",)]
    assert sorted(record.prompt for record in sent(emu)) == ["a blue kite", "a blue kite", "a red kite", "a red kite"]


def test_three_axes_put_the_last_two_together_across_the_top(session):
    grid = compare("a kite", models=[FLASH, PRO], aspect_ratios=["1:1", "16:9"], image_sizes="1K,2K",
                   session=session)
    assert grid.rows == [FLASH, PRO]
    assert [grid.column_label(column) for column in grid.columns] == ["1:1 · 1K", "1:1 · 2K", "16:9 · 1K",
                                                                       "16:9 · 2K"]
    assert len(grid.results) == 8


def test_each_image_is_its_own_history_entry(session):
    grid = compare("a kite", aspect_ratios="1:1,3:4,16:9", session=session)
    ids = [cell.result.id for cell in grid]
    assert len(set(ids)) == 3 and set(ids) == session.history.ids()
    assert sorted(cell.result.index for cell in grid) == [0, 1, 2]


def test_every_tile_can_edit_the_same_image(session, emu):
    source = session.run(Request("a plain wall", image_size="512"))
    grid = compare("paint it red", aspect_ratios="1:1,16:9", edit=0, session=session)
    assert [cell.result.parent_id for cell in grid] == [source.id, source.id]
    assert [len(record.images) for record in sent(emu)][1:] == [1, 1]


def test_running_the_same_grid_again_replays_it_and_sends_nothing(session, emu):
    first = compare("a kite", aspect_ratios="1:1,16:9", session=session)
    count = len(emu.requests)
    again = compare("a kite", aspect_ratios="1:1,16:9", session=session)
    assert len(emu.requests) == count
    assert [cell.status for cell in again] == ["replayed", "replayed"]
    assert [cell.result.id for cell in again] == [cell.result.id for cell in first]
    assert all(cell.short_caption().endswith("replayed · $0") for cell in again)
    assert compare("a kite", aspect_ratios="1:1,16:9", session=session, new=True)
    assert len(sent(emu)) == 4


# -- refused, failed --------------------------------------------------------------------------


def test_a_combination_the_model_refuses_is_marked_and_not_sent(session, emu):
    grid = compare("a kite", models=[FLASH, OLD], aspect_ratios="1:1,1:4", session=session)
    [refused] = grid.refused
    assert refused.values == {"model": OLD, "aspect_ratio": "1:4"} and refused.status == "refused"
    assert refused.short_caption().startswith("not sent: aspect ratio '1:4' is not one of")
    assert len(sent(emu)) == 3
    assert (OLD, "1:4") not in {(record.model, ratio_of(record)) for record in sent(emu)}
    assert "1 refused" in grid.summary()


def test_a_grid_nothing_of_which_can_be_sent_is_refused_before_sending(session, emu):
    with pytest.raises(InputError, match="No combination can be sent: aspect ratio '1:4'"):
        compare("a kite", models=[OLD], aspect_ratios="1:4,1:8", session=session)
    assert emu.requests == []


def test_a_failed_combination_shows_its_one_line_reason_and_the_others_their_images(session, emu):
    emu.inject_fault("no-image", count=1)
    grid = compare("a kite", aspect_ratios="1:1,16:9,4:3", session=session)
    [failed] = grid.failed
    assert failed.error.startswith("The model answered with text only and no image") and "\n" not in failed.error
    assert failed.short_caption() == failed.error
    assert len(grid.results) == 2
    page = grid._repr_html_()
    assert page.count("<img ") == 2
    assert failed.error[:40] in page
    assert "1 failed" in grid.summary()


@pytest.mark.parametrize("options, message", [
    ({"aspect_ratios": "1:1"}, "A grid compares at least two values of one option"),
    ({"aspect_ratios": "1:1,"}, None),  # one value left: no grid either
    ({"models": [FLASH, FLASH]}, f"models= names '{FLASH}' twice"),
    ({"aspect_ratios": []}, "aspect_ratios= is empty"),
    ({"aspect_ratios": 3}, "aspect_ratios= takes a list of values"),
    ({"prompts": ["a", "b"], "aspect_ratios": "1:1,16:9"}, "Give either prompt or prompts"),
    ({"aspect_ratios": "1:1,2:3,3:2,3:4,4:3,4:5,5:4", "image_sizes": "512,1K,2K,4K", "models": [FLASH, PRO]},
     f"56 combinations is more than a grid shows \\({MAX_CELLS}\\)"),
])
def test_bad_axes_get_one_line_and_nothing_is_sent(session, emu, options, message):
    with pytest.raises(InputError, match=message or "at least two values") as caught:
        compare("a kite", session=session, **options)
    assert "\n" not in str(caught.value)
    assert emu.requests == []


# -- what is shown ----------------------------------------------------------------------------


def test_the_grid_shows_the_values_on_its_edges_and_each_tile_with_its_time(session):
    grid = compare("a kite", models=[FLASH, OLD], aspect_ratios="1:1,16:9", session=session)
    page = grid._repr_html_()
    assert page.count("<img ") == 4
    head, body = page.split("<tbody>")
    assert ">1:1</th>" in head and ">16:9</th>" in head and "model / ratio" in head
    assert f">{FLASH}</th>" in body and f">{OLD}</th>" in body
    for cell in grid:
        caption = cell.short_caption()
        assert re.fullmatch(r"\[\d+\] · \d+x\d+ · in \d+\.\d s · ~\$0\.\d{3}", caption), caption
        assert cell.short_caption() in page
    text = pretty(grid)
    assert text.splitlines()[0] == grid.summary()
    assert re.fullmatch(r"4 combinations: 4 images \| ~\$0\.\d{3} \| prompt: a kite", grid.summary())
    assert f"  {OLD} | 16:9: [" in text


def test_save_writes_one_png_whose_text_chunks_hold_the_axes(session, tmp_path):
    grid = compare("a kite", models=[FLASH, OLD], aspect_ratios="1:1,1:4", session=session)
    path = grid.save(tmp_path / "out" / "grid.png", tile=128)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 2 * 128 and image.height > 2 * 128
        chunks = dict(image.text)
    assert chunks["aigate_nb:prompt"] == "a kite"
    assert json.loads(chunks["aigate_nb:axes"]) == {"model": [FLASH, OLD], "aspect_ratio": ["1:1", "1:4"]}
    cells = json.loads(chunks["aigate_nb:cells"])
    assert [(c["model"], c["aspect_ratio"], c["status"]) for c in cells] == [
        (FLASH, "1:1", "done"), (FLASH, "1:4", "done"), (OLD, "1:1", "done"), (OLD, "1:4", "refused")]
    assert [c["history_id"] for c in cells[:3]] == [cell.result.id for cell in list(grid)[:3]]
    assert cells[3]["reason"].startswith("aspect ratio '1:4' is not one of")


@pytest.mark.parametrize("name", ["grid.jpg", "grid"])
def test_save_refuses_a_name_that_is_not_png(session, tmp_path, name):
    grid = compare("a kite", aspect_ratios="1:1,16:9", session=session)
    with pytest.raises(InputError, match="a grid is saved as PNG"):
        grid.save(tmp_path / "saved" / name)
    assert not (tmp_path / "saved").exists()


# -- %%gemini_image with comma lists -------------------------------------------------------------


@pytest.fixture
def ip(magics_on, session):
    return magics_on(session)


def test_comma_lists_in_the_magic_make_a_grid(ip, emu):
    ip.user_ns["thing"] = "kite"
    grid = ip.run_cell_magic("gemini_image", f"-m {FLASH},{OLD} -a 1:1,16:9 --as compared", "a {thing}")
    assert isinstance(grid, Grid) and ip.user_ns["compared"] is grid
    assert grid.prompt == "a kite" and grid.rows == [FLASH, OLD] and grid.columns == [("1:1",), ("16:9",)]
    assert len(sent(emu)) == 4


def test_a_single_value_beside_a_comma_list_goes_to_every_tile(ip, emu):
    grid = ip.run_cell_magic("gemini_image", f"-m {PRO} -s 1K,2K -a 3:2", "a kite")
    assert [(cell.result.model, cell.result.aspect_ratio, cell.result.image_size) for cell in grid] == [
        (PRO, "3:2", "1K"), (PRO, "3:2", "2K")]


@pytest.mark.parametrize("line, message", [
    (f"-m {FLASH},{OLD} -n 2", "-n does not go with a comparison grid"),
    ("-a 1:1,16:9 -o grid.png", "-o does not go with a comparison grid"),
    ("-a 1:1,16:9 -e 0 --multi-turn", "--multi-turn does not go with a comparison grid"),
    ("-a 1:1,,16:9", "-a 1:1,,16:9: a comma list needs a value between each comma"),
    ("-a 1:1,1:1", "aspect_ratios= names '1:1' twice"),
    (f"-m {OLD} -a 1:4,1:8", "No combination can be sent"),
    ("-a 1:1,16:9 --concurrency 2", "--concurrency goes with --each ROWS"),
])
def test_comma_list_errors_are_one_line_and_send_nothing(ip, emu, capsys, line, message):
    capsys.readouterr()
    result = ip.run_cell(f"%%gemini_image {line}\na kite")
    out, err = capsys.readouterr()
    assert type(result.error_in_exec) is UsageError, (out, err)
    lines = [text for text in err.splitlines() if text.strip()]
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in out + err, err
    assert emu.requests == []


def test_a_grid_counts_what_requests_in_flight_hold_and_is_refused_before_sending(slow_session):
    session, slow = slow_session
    session.set_defaults(budget="0.25")  # three 1K flash images fit, four do not
    in_flight = session.submit(Request("a moth", model=FLASH, image_size="1K"), count=2)
    with pytest.raises(BudgetError, match="requests not finished hold"):
        compare("a lighthouse", aspect_ratios=["1:1", "16:9"], session=session)
    [future.result(timeout=30) for future in in_flight]
    assert [record.prompt for record in sent(slow)] == ["a moth", "a moth"]
