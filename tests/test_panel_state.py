"""The panel's state and decisions in plain Python, with no widgets, against the emulator."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from PIL import Image

from aigate_nb.frontends.panel_state import GALLERY_SLOTS, NO_SOURCE, UPLOADED, Form, PanelState
from aigate_nb.session.session import Request, Session
from support import wait_for


@pytest.fixture
def session(emu, session_on) -> Session:
    return session_on(emu.url)


@pytest.fixture
def state(session):
    made = PanelState(session)
    heard: list[str] = []
    made.watch(heard.append)
    made.heard = heard
    made.load_models()
    made.refresh()
    yield made
    made.stop_waiting()


def form(prompt: str, **choices) -> Form:
    return Form(prompt=prompt, model=choices.pop("model", "google/gemini-3-pro-image"), **choices)


def click(state: PanelState, action, *args) -> None:
    """What a button does: the action, its failure one line in the status; then wait for its requests."""
    state.guarded(action, *args)
    wait_for(lambda: not state.busy, timeout=20)


def fill_history(session, prompts: list[str]) -> None:
    for prompt in prompts:
        session.run(Request(prompt, image_size="512", new=True))


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 40, 40)).save(buf, format="PNG")
    return buf.getvalue()


def shown(state: PanelState) -> list[int]:
    return [entry.index for entry in state.gallery.entries]


def test_the_state_imports_no_widget_library():
    code = ("import sys, aigate_nb.frontends.panel_state; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'ipywidgets', 'anywidget'}))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "[]\n"


def test_generate_makes_a_picture_selects_it_and_says_what_it_made(state, session, emu):
    click(state, state.generate, form("a lighthouse at dusk", aspect_ratio="16:9"))
    [entry] = list(session.history)
    assert (entry.prompt, entry.aspect_ratio) == ("a lighthouse at dusk", "16:9")
    assert state.selected == 0 and shown(state) == [0]
    assert not state.status.error and state.status.text.startswith("Made [0] in ")
    assert [result.index for result, _ in state.made] == [0]


def test_an_empty_model_default_choice_sends_no_ratio_or_size(state, session, emu):
    click(state, state.generate, form("the model decides", aspect_ratio="", image_size=""))
    [sent] = emu.attempts("the model decides")
    assert session.history[0].aspect_ratio is None and session.history[0].image_size is None
    assert sent.path.endswith(":generateContent")


def test_a_click_while_a_request_runs_sends_nothing_and_the_state_is_busy_until_it_ends(state, session, emu):
    emu.inject_fault("timeout", delay=1.0)
    state.generate(form("a slow one"))
    assert state.busy and state.elapsed is not None and "busy" in state.heard
    state.generate(form("a second click"))
    wait_for(lambda: "elapsed" in state.heard)
    state.wait(20)
    assert not state.busy and state.elapsed is None
    assert len(emu.attempts("a slow one")) == 1 and not emu.attempts("a second click")


def test_stop_waiting_is_idle_at_once_and_a_late_result_joins_the_history_not_this_panel(state, session, emu):
    emu.inject_fault("timeout", delay=1.0)
    state.generate(form("a result nobody waits for"))
    wait_for(lambda: emu.attempts("a result nobody waits for"))
    state.stop_waiting()
    assert not state.busy and state.status.text.startswith("Stopped waiting after")
    state.wait(1)
    wait_for(lambda: shown(state) == [0])
    assert state.made == [] and state.snapshot()[1]["aigate_nb"]["panel"] == []


def test_a_failed_request_is_one_line_in_the_status(state, emu):
    emu.inject_fault("500", count=None)
    click(state, state.generate, form("this will fail"))
    assert state.status.error and "HTTP 500" in state.status.text and "\n" not in state.status.text


def test_variants_report_how_many_of_them_failed(state, emu):
    emu.inject_fault("500", count=None)
    click(state, state.generate, form("three that fail", variants=3))
    assert state.status.error and state.status.text.startswith("3 of 3 failed: ")


def test_selecting_an_entry_turns_the_searched_gallery_to_its_page(state, session):
    fill_history(session, [f"{'cat' if k % 2 else 'dog'} picture {k}" for k in range(2 * GALLERY_SLOTS + 4)])
    state.search("cat")
    assert state.gallery.summary.startswith(f"{GALLERY_SLOTS + 2} of {2 * GALLERY_SLOTS + 4} images found")
    state.select(1)
    assert state.gallery.number == 1 and 1 in shown(state) and state.selection.entry.index == 1


def test_a_new_search_starts_at_its_first_page_and_pages_turn_within_it(state, session):
    fill_history(session, [f"picture number {k}" for k in range(2 * GALLERY_SLOTS + 3)])
    state.refresh()
    assert state.gallery.has_older and not state.gallery.has_newer
    state.turn_page(1)
    state.turn_page(1)
    assert shown(state) == [2, 1, 0] and not state.gallery.has_older
    state.search("number")
    assert state.gallery.number == 0 and "page 1 of 3" in state.gallery.summary
    state.search("submarine")
    assert shown(state) == [] and state.gallery.summary.endswith("nothing matches the search")


def test_a_new_result_clears_a_search_that_would_hide_it(state, session):
    fill_history(session, ["a red door"])
    state.search("door")
    click(state, state.generate, form("a lighthouse"))
    assert state.query == "" and "query" in state.heard and shown(state) == [1, 0]


def test_the_selection_says_why_multi_turn_is_not_offered(state, session):
    session.run(Request("by google", route="google"))
    session.run(Request("by chat", route="chat"))
    state.refresh()
    state.select(0)
    assert state.selection.continues and state.selection.why_not == ""
    state.select(1)
    assert not state.selection.continues
    assert "Google route" in state.selection.why_not and "chat route" in state.selection.why_not


def test_a_region_edit_continues_no_conversation_and_keeps_its_sources_shape(state, session, emu):
    session.run(Request("a red barn", route="google"))
    state.refresh()
    state.select(0)
    click(state, state.edit_region, form("paint the door blue", aspect_ratio="16:9"), "0.25,0.25,0.5,0.5", "guide")
    assert not state.status.error, state.status.text
    edit = session.history[1]
    assert edit.region["mode"] == "guide" and edit.size == session.history[0].size
    assert state.selected == 1 and not state.selection.continues and "is a region edit" in state.selection.why_not
    assert "region 256,256,512,512 guide" in state.selection.facts


def test_multi_turn_is_sent_only_where_the_selection_continues_a_conversation(state, session, emu):
    session.run(Request("a glass of milk", route="chat"))
    state.refresh()
    state.select(0)
    click(state, state.edit_selected, form("add a straw", route="chat"), True)
    assert emu.attempts("add a straw")[0].path.endswith("/chat/completions")  # not offered: a plain edit
    session.run(Request("a glass of water", route="google"))
    state.refresh()
    state.select(2)
    click(state, state.edit_selected, form("add ice", route="chat"), True)
    contents = emu.attempts("add ice")[0].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]


def test_the_lineage_of_a_long_chain_keeps_its_first_picture_and_latest_steps(state, session):
    fill_history(session, ["step 0"])
    for k in range(1, 9):
        session.run(Request(f"step {k}", images=(session.history[k - 1],), new=True))
    session.run(Request("a fork", images=(session.history[0],), new=True))
    state.refresh()
    state.select(8)
    lineage = state.selection.lineage
    assert [e.index for e in lineage.chain] == [0, 4, 5, 6, 7, 8] and lineage.cut and lineage.children == []
    state.select(0)
    lineage = state.selection.lineage
    assert [e.index for e in lineage.children] == [1, 9] and lineage.more == 0 and lineage.shown
    assert state.selection.origin == "An original (not an edit)"


def test_a_selection_cleared_from_the_history_is_dropped_not_aimed_at_the_new_entry_of_that_number(
    state, session, emu
):
    fill_history(session, ["an old lantern"])
    state.refresh()
    state.select(0)
    session.history.clear()
    session.run(Request("a new kettle"))
    click(state, state.edit_selected, form("light it"))
    assert state.status.error and "no longer in the history" in state.status.text
    assert state.selection is None and emu.attempts("light it") == []
    with pytest.raises(Exception, match="Select an image"):
        state.save_selected("anywhere.png")


def test_a_source_chosen_before_a_clear_is_dropped_not_swapped_for_the_new_entry_of_that_number(state, session, emu):
    fill_history(session, ["an old lantern"])
    state.refresh()
    assert state.choose_source(0) == session.history[0].id
    session.history.clear()
    session.run(Request("a new kettle"))
    click(state, state.generate, form("light it"))
    assert state.status.error and "no longer in the history" in state.status.text
    assert state.source == NO_SOURCE and ("[0] a new kettle", 0) in state.source_options()


def test_an_upload_becomes_the_source_and_a_file_that_is_no_image_is_refused(state, session, emu):
    assert state.upload_file("notes.txt", b"hello") is None
    assert state.status.error and "notes.txt" in state.status.text and state.source == NO_SOURCE
    image = state.upload_file("sketch.png", png_bytes())
    assert state.source == UPLOADED and ("Uploaded: sketch.png", UPLOADED) in state.source_options()
    assert state.kept_shape(image, "google/gemini-3-pro-image") == ("4:3", "1K")
    click(state, state.generate, form("paint the sketch"))
    assert session.history[0].edited_from() == "sketch.png"


def test_the_history_is_read_again_only_when_it_changed_and_new_entries_turn_to_the_newest(state, session):
    fill_history(session, [f"filler {k}" for k in range(GALLERY_SLOTS + 1)])
    state.refresh()
    state.turn_page(1)
    heard = len(state.heard)
    state.refresh_if_changed()
    assert len(state.heard) == heard and state.gallery.number == 1
    session.run(Request("made by a cell"))
    state.refresh_if_changed()
    assert state.gallery.number == 0 and shown(state)[0] == GALLERY_SLOTS + 1


def test_the_edit_cell_keeps_braces_literal_and_asks_for_multi_turn_only_where_offered(state, session):
    session.run(Request("a map of {city}", route="chat"))
    state.refresh()
    state.select(0)
    assert state.edit_cell_text(multi_turn=True) == "%%gemini_image --edit 0\na map of {{city}}"


def test_the_snapshot_holds_each_result_made_here_with_a_thumbnail(state):
    click(state, state.generate, form("one for the snapshot", variants=2))
    data, metadata = state.snapshot()
    assert sorted(item["index"] for item in metadata["aigate_nb"]["panel"]) == [0, 1]
    assert data["text/html"].count("data:image/jpeg;base64,") == 2 and "run this cell again" in data["text/plain"]
