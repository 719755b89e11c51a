"""The panel driven as a user would (set values, click buttons) against the emulator, with no browser."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image, ImageChops
from traitlets.config import Config

from aigate_nb.core.models import BASE_RATIOS, DEFAULT_MODEL
from aigate_nb.frontends.panel import GALLERY_SLOTS, MODEL_DEFAULT, NO_SOURCE, UPLOADED, Panel, edit_cell_text
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.session.session import Request, Session
from support import TEST_KEY, wait_for


@pytest.fixture
def session(emu, tmp_path):
    s = Session(Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01), History(name="panel", root=tmp_path))
    yield s
    s.close()


@pytest.fixture
def panel(session):
    p = Panel(session)
    p.wait(10)
    yield p
    p.close()


def generate(panel: Panel, prompt: str) -> None:
    panel.prompt.value = prompt
    panel.generate_button.click()
    panel.wait(20)
    assert not panel.status_is_error, panel.status_text


def png_bytes(colour=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, format="PNG")
    return buf.getvalue()


def visible_slots(panel: Panel) -> list[str]:
    return panel.gallery.shown()


def lineage_shown(panel: Panel) -> list[str]:
    """The lineage row as shown: the chain's buttons, then "edits", then the edits' buttons."""
    if panel.lineage.layout.display == "none":
        return []
    shown = []
    for widget in panel.lineage.children:
        if isinstance(widget, type(panel.edit_button)):
            shown.append(widget.description)
        elif "Edits of it" in widget.value:
            shown.append("edits")
    return shown


def highlighted_slots(panel: Panel) -> list[str]:
    return panel.gallery.highlighted()


def click_thumbnail(panel: Panel, index: int) -> None:
    next(slot for slot in panel.gallery.slots if slot.index == index).button.click()


def upload(panel: Panel, name: str, data: bytes) -> None:
    """What choosing a file in the Upload button does."""
    panel.upload.set_state(
        {"value": [{"name": name, "type": "image/png", "size": len(data),
                    "last_modified": 1_700_000_000_000, "content": memoryview(data)}]}
    )


class RecordingPublisher(DisplayPublisher):
    """Keeps every display message, as a Jupyter front end would receive it."""

    def __init__(self, shell) -> None:
        super().__init__(shell=shell)
        self.messages: list[dict] = []

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs) -> None:
        self.messages.append({"data": data, "metadata": metadata or {}, "transient": transient or {}, "update": update})


@pytest.fixture
def shell():
    """An IPython shell, as the panel finds with ``get_ipython()`` in a kernel, publishing into a recorder."""
    config = Config()
    config.HistoryAccessor.enabled = False
    ip = InteractiveShell.instance(config=config)
    original = ip.display_pub
    ip.display_pub = RecordingPublisher(ip)
    yield ip
    ip.display_pub = original


# -- models, ratios and sizes ------------------------------------------------------------------


def test_model_list_holds_the_gateways_image_models_with_the_default_first(panel, session):
    listed = session.image_models()
    assert panel.model.options[0] == DEFAULT_MODEL
    assert set(panel.model.options) == set(listed) | {DEFAULT_MODEL}
    assert panel.model.value == DEFAULT_MODEL


def test_ratio_and_size_lists_follow_the_model(panel):
    panel.model.value = "google/gemini-2.5-flash-image"
    assert [v for _, v in panel.aspect_ratio.options] == [MODEL_DEFAULT, *BASE_RATIOS]
    assert panel.image_size.disabled

    panel.model.value = "google/gemini-3-pro-image"
    assert [v for _, v in panel.image_size.options] == [MODEL_DEFAULT, "1K", "2K", "4K"]
    assert not panel.image_size.disabled
    assert "1:8" not in panel.aspect_ratio.options

    panel.aspect_ratio.value = "16:9"
    panel.image_size.value = "2K"
    panel.model.value = "google/gemini-3.1-flash-image"
    assert ("1:8", "1:8") in panel.aspect_ratio.options
    assert ("512", "512") in panel.image_size.options
    assert (panel.aspect_ratio.value, panel.image_size.value) == ("16:9", "2K")  # still offered, so kept


def test_failed_model_listing_falls_back_to_the_default_model_with_a_note(emu, tmp_path):
    wrong_key = Session(Client(api_key="sk-wrong-key-000000000000", base_url=emu.url, retry_backoff=0.01),
                        History(name="panel", root=tmp_path))
    panel = Panel(wrong_key)
    panel.wait(10)
    assert panel.model.options == (DEFAULT_MODEL,)
    assert panel.status_is_error and "\n" not in panel.status_text
    assert DEFAULT_MODEL in panel.status_text
    panel.close()
    wrong_key.close()


# -- generating, selecting, editing ---------------------------------------------------------------


def test_generate_adds_an_entry_and_shows_it(panel, session, emu):
    panel.model.value = "google/gemini-3-pro-image"
    panel.aspect_ratio.value = "16:9"
    generate(panel, "a lighthouse at dusk")

    assert len(session.history) == 1
    entry = session.history[0]
    assert (entry.prompt, entry.model, entry.aspect_ratio) == (
        "a lighthouse at dusk", "google/gemini-3-pro-image", "16:9")
    assert emu.attempts("a lighthouse at dusk")
    assert panel.selected == 0 and panel.picture.image
    assert visible_slots(panel) == ["[0]"]
    data, metadata = panel.snapshot()
    assert [shown["history_id"] for shown in metadata["aigate_nb"]["panel"]] == [entry.id]
    assert "data:image/jpeg;base64," in data["text/html"] and "[0]" in data["text/plain"]
    assert "[0]" in panel.status_text


def test_variants_each_join_the_history(panel, session):
    panel.variants.value = 3
    generate(panel, "three variants of a teapot")
    assert len(session.history) == 3
    shown = panel.snapshot()[1]["aigate_nb"]["panel"]
    assert sorted(item["index"] for item in shown) == [0, 1, 2]
    assert visible_slots(panel) == ["[2]", "[1]", "[0]"]  # newest first


def test_selecting_an_entry_shows_it_larger_with_its_prompt(panel):
    generate(panel, "first picture")
    generate(panel, "second picture")
    older = next(slot for slot in panel.gallery.slots if slot.index == 0)
    older.button.click()
    assert panel.selected == 0
    assert "first picture" in panel.details.value
    assert older.button.button_style == "info"
    assert panel.edit_button.description == "Edit [0]" and not panel.edit_button.disabled
    assert len(panel.picture.image) < 200_000  # a preview, not the original


def test_edit_from_the_selection_records_the_parent_and_sends_the_original_bytes(panel, session, emu):
    generate(panel, "a plain blue vase")
    panel.select(0)
    edit_prompt = "paint flowers on the vase"
    panel.prompt.value = edit_prompt
    panel.edit_button.click()
    panel.wait(20)

    original, edit = session.history[0], session.history[1]
    assert edit.parent == original.id and edit.parent_index == 0
    [request] = emu.attempts(edit_prompt)
    assert [image.sha256 for image in request.images] == [original.sha256s[0]]
    assert panel.selected == 1
    assert lineage_shown(panel) == ["[0]", "[1]"]


def test_multi_turn_is_offered_for_google_route_images_and_continues_their_conversation(panel, session, emu):
    session.set_defaults(route="google")
    generate(panel, "a glass of water")
    session.set_defaults(route="chat")
    generate(panel, "a glass of milk")
    panel.select(1)
    assert panel.multi_turn.disabled and not panel.multi_turn.value  # a chat-route image: nothing to continue
    panel.select(0)
    assert not panel.multi_turn.disabled
    panel.multi_turn.value = True
    panel.prompt.value = "add ice cubes"
    panel.edit_button.click()
    panel.wait(20)
    assert not panel.status_is_error, panel.status_text
    [request] = emu.attempts("add ice cubes")
    contents = request.body["contents"]
    assert request.path.endswith(":generateContent")
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[0]["parts"] == [{"text": "a glass of water"}]
    assert session.history[2].parent_index == 0 and session.history[2].route == "google"
    panel.select(1)
    assert panel.multi_turn.disabled and not panel.multi_turn.value


def test_a_history_entry_chosen_as_source_is_edited_by_generate(panel, session, emu):
    generate(panel, "a red door")
    assert ("[0] a red door", 0) in panel.source.options
    panel.source.value = 0
    generate(panel, "make the door green")
    assert session.history[1].parent == session.history[0].id
    assert emu.attempts("make the door green")[0].images[0].sha256 == session.history[0].sha256s[0]


def test_an_uploaded_file_is_the_source(panel, session, emu):
    data = png_bytes()
    panel.upload.set_state(
        {"value": [{"name": "sketch.png", "type": "image/png", "size": len(data),
                    "last_modified": 1_700_000_000_000, "content": memoryview(data)}]}
    )
    assert panel.source.value == UPLOADED
    assert ("Uploaded: sketch.png", UPLOADED) in panel.source.options
    generate(panel, "turn the sketch into a painting")
    [request] = emu.attempts("turn the sketch into a painting")
    assert [image.sha256 for image in request.images] == [hashlib.sha256(data).hexdigest()]
    assert session.history[0].parent is None

    panel.source.value = NO_SOURCE
    generate(panel, "no source this time")
    assert emu.attempts("no source this time")[0].images == ()


def test_an_upload_that_is_not_an_image_is_refused_in_one_line(panel):
    panel.upload.set_state(
        {"value": [{"name": "notes.txt", "type": "text/plain", "size": 5,
                    "last_modified": 1_700_000_000_000, "content": memoryview(b"hello")}]}
    )
    assert panel.source.value == NO_SOURCE
    assert panel.status_is_error and "notes.txt" in panel.status_text


# -- while a request runs ---------------------------------------------------------------------


def test_buttons_are_disabled_while_a_request_runs(panel, session, emu):
    generate(panel, "something to select")
    emu.inject_fault("timeout", delay=1.0)
    panel.prompt.value = "a slow one"
    panel.generate_button.click()

    assert panel.generate_button.disabled and panel.edit_button.disabled
    assert panel.stop_button.layout.display != "none" and panel.busy.layout.display != "none"
    wait_for(lambda: panel.elapsed.value.endswith(" s"))
    panel.generate_button.click()  # ignored while busy
    panel.wait(20)

    assert not panel.generate_button.disabled and not panel.edit_button.disabled
    assert panel.stop_button.layout.display == "none" and panel.busy.layout.display == "none"
    assert len(emu.attempts("a slow one")) == 1
    assert len(session.history) == 2


def test_stop_waiting_gives_the_buttons_back_and_a_late_result_still_joins_the_history(panel, session, emu):
    emu.inject_fault("timeout", delay=1.0)
    panel.prompt.value = "a result nobody waits for"
    panel.generate_button.click()
    wait_for(lambda: emu.attempts("a result nobody waits for"))
    panel.stop_button.click()

    assert not panel.generate_button.disabled
    assert panel.stop_button.layout.display == "none"
    assert "Stopped waiting" in panel.status_text
    panel.wait(1)  # idle at once

    wait_for(lambda: len(session.history) == 1)
    wait_for(lambda: visible_slots(panel) == ["[0]"])
    assert panel.snapshot()[1]["aigate_nb"]["panel"] == []  # not shown as a result of a later click


def test_a_failed_request_is_one_line_in_the_status(panel, emu):
    emu.inject_fault("500", count=None)
    panel.prompt.value = "this will fail"
    panel.generate_button.click()
    panel.wait(20)
    assert panel.status_is_error
    assert "HTTP 500" in panel.status_text and "\n" not in panel.status_text
    assert "Traceback" not in panel.status.value
    assert not panel.generate_button.disabled


def test_an_empty_prompt_is_one_line_in_the_status(panel, emu):
    panel.prompt.value = "   "
    panel.generate_button.click()
    panel.wait(10)
    assert panel.status_is_error and "prompt is empty" in panel.status_text
    assert emu.requests == [r for r in emu.requests if r.path.endswith("/models")]


# -- the selected entry's actions ----------------------------------------------------------------


def test_new_cell_queues_an_edit_cell_with_the_prompt(panel, monkeypatch):
    generate(panel, "a map of {city} at night")
    calls = []

    class Shell:
        def set_next_input(self, text, replace=False):
            calls.append(text)

    monkeypatch.setattr("IPython.get_ipython", lambda: Shell())
    panel.select(0)
    panel.new_cell_button.click()
    assert calls == ["%%gemini_image --edit 0\na map of {{city}} at night"]
    assert not panel.status_is_error


def test_edit_cell_text_keeps_braces_literal(session, panel):
    generate(panel, "json {\"a\": 1}")
    assert edit_cell_text(session.history[0]) == '%%gemini_image --edit 0\njson {{"a": 1}}'
    assert edit_cell_text(session.history[0], multi_turn=True).startswith("%%gemini_image --edit 0 --multi-turn\n")


def test_save_writes_the_full_size_image(panel, session, tmp_path):
    generate(panel, "something worth keeping")
    panel.select(0)
    target = tmp_path / "out" / "kept.png"
    panel.save_path.value = str(target)
    panel.save_button.click()
    assert not panel.status_is_error, panel.status_text
    with Image.open(target) as saved:
        assert saved.size == session.history[0].size
        assert saved.info.get("prompt") == "something worth keeping"


def test_actions_without_a_selection_say_so(panel):
    panel.save_button.click()
    assert panel.status_is_error and "Select an image" in panel.status_text
    assert panel.edit_button.disabled


def test_the_panel_displays_as_its_widget(panel):
    data = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in data
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.widget.model_id


def test_entries_the_magic_adds_appear_on_refresh(panel, session):
    session.run(Request(prompt="made elsewhere"))
    assert visible_slots(panel) == []
    panel.refresh_button.click()
    assert visible_slots(panel) == ["[0]"]


def test_defaults_set_elsewhere_show_in_the_panel(panel, session):
    session.set_defaults(model="google/gemini-3-pro-image", aspect_ratio="16:9", image_size="2K")
    assert (panel.model.value, panel.aspect_ratio.value, panel.image_size.value) == (
        "google/gemini-3-pro-image", "16:9", "2K")
    session.set_defaults(aspect_ratio=None, image_size=None)
    assert (panel.aspect_ratio.value, panel.image_size.value) == (MODEL_DEFAULT, MODEL_DEFAULT)


def test_after_a_clear_the_selection_is_dropped_not_aimed_at_the_new_entry_of_that_number(
    panel, session, emu, tmp_path
):
    generate(panel, "an old lantern")
    panel.select(0)
    session.history.clear()
    session.run(Request("a new kettle"))  # made by a cell after the clear: it is [0] now
    panel.save_path.value = str(tmp_path / "lantern.png")
    panel.save_button.click()
    assert panel.status_is_error and "no longer in the history" in panel.status_text
    assert not (tmp_path / "lantern.png").exists()  # the kettle is not saved under the lantern's name
    panel.select(0)
    session.history.clear()
    session.run(Request("a new kettle"))
    panel.prompt.value = "light it"
    panel.edit_button.click()
    assert panel.status_is_error and "no longer in the history" in panel.status_text
    assert emu.attempts("light it") == [] and panel.selected is None
    assert panel.edit_button.disabled
    panel.select(0)
    panel.refresh()
    assert panel.selected == 0  # still there: kept
    session.history.clear()
    panel.refresh()
    assert panel.selected is None and panel.detail.body.layout.display == "none"


def test_multi_turn_goes_on_with_the_entrys_model_whatever_the_model_list_shows(panel, session, emu):
    session.run(Request("a kite", model="google/gemini-2.5-flash-image", route="google"))
    panel.refresh()
    assert panel.model.value == DEFAULT_MODEL
    panel.select(0)
    panel.multi_turn.value = True
    panel.prompt.value = "give it a long tail"
    panel.edit_button.click()
    panel.wait(20)
    assert not panel.status_is_error, panel.status_text
    assert "gemini-2.5-flash-image" in emu.attempts("give it a long tail")[-1].path


def test_a_source_chosen_before_a_clear_is_not_swapped_for_the_new_entry_of_that_number(panel, session, emu):
    generate(panel, "an old lantern")
    panel.source.value = 0
    session.history.clear()
    session.run(Request("a new kettle"))  # [0] again, made by a cell; the list still shows the lantern
    panel.prompt.value = "light it"
    panel.generate_button.click()
    assert panel.status_is_error and "no longer in the history" in panel.status_text
    assert emu.attempts("light it") == []
    assert panel.source.value == NO_SOURCE and ("[0] a new kettle", 0) in panel.source.options
    panel.source.value = 0
    generate(panel, "polish it")
    assert emu.attempts("polish it")[-1].images[0].sha256 == session.history[0].sha256s[0]


def test_the_panel_opens_and_works_when_an_image_file_was_deleted(session, emu):
    session.run(Request("a kept pear"))
    session.run(Request("a lost plum"))
    session.history[1].path.unlink()
    panel = Panel(session)
    panel.wait(10)
    assert visible_slots(panel)[:2] == ["[1]", "[0]"]
    click_thumbnail(panel, 1)
    assert panel.status_is_error and "is gone" in panel.status_text
    click_thumbnail(panel, 0)
    assert panel.selected == 0 and panel.picture.image
    panel.close()


# -- what the panel's cell keeps ----------------------------------------------------------------


def test_results_update_one_small_snapshot_beside_the_panel_not_a_full_output_each(shell, session):
    panel = Panel(session)
    panel.wait(10)
    panel._ipython_display_()
    recorder = shell.display_pub
    widget, snapshot = recorder.messages
    assert "application/vnd.jupyter.widget-view+json" in widget["data"]
    display_id = snapshot["transient"]["display_id"]
    assert "run this cell again" in snapshot["data"]["text/html"]

    generate(panel, "a small snapshot, first")
    generate(panel, "a small snapshot, second")
    later = recorder.messages[2:]
    assert later and all(m["update"] and m["transient"]["display_id"] == display_id for m in later), (
        "each result updates the one snapshot in place; nothing else is added to the cell")
    final = later[-1]
    assert [item["index"] for item in final["metadata"]["aigate_nb"]["panel"]] == [0, 1]
    assert final["data"]["text/html"].count("data:image/jpeg;base64,") == 2
    stored = len(json.dumps({"data": final["data"], "metadata": final["metadata"]}))
    assert stored < 2 * 25_000, "a thumbnail and provenance per result, far within the 250 KB a result may add"
    assert ".jp-OutputArea:has(.aigate-panel) > .jp-OutputArea-child:has(.aigate-snapshot)" in panel.header.value
    panel.close()


def test_the_panel_follows_the_history_after_every_cell(shell, session):
    panel = Panel(session)
    panel.wait(10)
    session.run(Request(prompt="made by a cell"))
    assert visible_slots(panel) == []
    shell.run_cell("1 + 1")  # any cell: the kernel's post_run_cell event
    assert visible_slots(panel) == ["[0]"]
    assert "1 image" in panel.gallery_title.value
    panel.close()
    session.run(Request(prompt="made after the panel was closed"))
    shell.run_cell("1 + 1")
    assert visible_slots(panel) == ["[0]"]


def test_a_new_result_turns_the_gallery_to_it_and_highlights_it(panel, session):
    for k in range(2 * GALLERY_SLOTS + 1):
        session.run(Request(prompt=f"filler {k}"))
    panel.refresh()
    panel.older_button.click()
    panel.older_button.click()
    assert "page 3 of 3" in panel.gallery_title.value
    generate(panel, "the newest picture")
    assert "page 1 of 3" in panel.gallery_title.value
    newest = f"[{2 * GALLERY_SLOTS + 1}]"
    assert visible_slots(panel)[0] == newest and highlighted_slots(panel) == [newest]
    panel.select(0)  # the oldest: its page is shown, with it highlighted
    assert "page 3 of 3" in panel.gallery_title.value and highlighted_slots(panel) == ["[0]"]


# -- route and multi-turn ----------------------------------------------------------------------


def test_the_route_is_a_choice_google_by_default_and_it_is_sent(panel, session, emu):
    assert panel.route.value == "google" and {v for _, v in panel.route.options} == {"google", "chat"}
    generate(panel, "by the google route")
    assert emu.attempts("by the google route")[0].path.endswith(":generateContent")
    panel.route.value = "chat"
    generate(panel, "by the chat route")
    assert emu.attempts("by the chat route")[0].path.endswith("/chat/completions")
    assert [e.route for e in session.history] == ["google", "chat"]


def test_the_panel_continues_its_own_pictures_and_says_why_not_in_text(panel, session, emu):
    generate(panel, "a glass of water")  # the panel's default route
    panel.select(0)
    assert not panel.multi_turn.disabled and panel.multi_turn_note.value == ""
    panel.multi_turn.value = True
    panel.prompt.value = "add ice cubes"
    panel.edit_button.click()
    panel.wait(20)
    assert not panel.status_is_error, panel.status_text
    contents = emu.attempts("add ice cubes")[0].body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]

    panel.route.value = "chat"
    generate(panel, "a glass of milk")
    panel.select(2)
    assert panel.multi_turn.disabled and not panel.multi_turn.value
    assert "Google route" in panel.multi_turn_note.value and "chat route" in panel.multi_turn_note.value
    assert not panel.multi_turn.tooltip  # nothing that would never show


def test_a_multi_turn_edit_goes_by_the_google_route_whatever_route_is_chosen(panel, session, emu):
    generate(panel, "a paper kite")
    panel.select(0)
    panel.route.value = "chat"
    panel.multi_turn.value = True
    panel.prompt.value = "give the kite a tail"
    panel.edit_button.click()
    panel.wait(20)
    assert not panel.status_is_error, panel.status_text
    assert emu.attempts("give the kite a tail")[0].path.endswith(":generateContent")


# -- clicks always send, and what they send ------------------------------------------------------


def test_generate_twice_makes_two_pictures_never_a_replay(panel, session, emu):
    generate(panel, "the same prompt twice")
    generate(panel, "the same prompt twice")
    assert len(emu.attempts("the same prompt twice")) == 2
    assert len(session.history) == 2 and not panel.futures[0].result().replayed


def test_ctrl_enter_in_the_prompt_generates(panel, session, emu):
    panel.prompt.value = "sent from the keyboard"
    # What the prompt box's browser side sends on Ctrl+Enter (or Shift+Enter): a custom message.
    panel.prompt._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "submit"}}},
                              "buffers": []})
    panel.wait(20)
    assert not panel.status_is_error, panel.status_text
    assert emu.attempts("sent from the keyboard") and session.history[0].prompt == "sent from the keyboard"
    panel.prompt._handle_msg({"content": {"data": {"method": "custom", "content": {"event": "other"}}},
                              "buffers": []})
    panel.wait(20)
    assert len(session.history) == 1


def test_an_edit_of_an_upload_records_the_files_name(panel, session, emu):
    upload(panel, "sketch.png", png_bytes())
    generate(panel, "paint the sketch")
    entry = session.history[0]
    assert entry.inputs[0]["name"] == "sketch.png" and entry.edited_from() == "sketch.png"
    assert "edited from sketch.png" in entry.result().caption()
    panel.select(0)
    assert "Edited from sketch.png" in panel.details.value


def test_selecting_an_image_presets_the_ratio_and_size_its_edit_keeps(panel, session):
    panel.model.value = "google/gemini-3-pro-image"
    panel.aspect_ratio.value = "16:9"
    panel.image_size.value = "2K"
    generate(panel, "a wide harbour")
    panel.aspect_ratio.value = MODEL_DEFAULT
    panel.image_size.value = MODEL_DEFAULT
    panel.select(0)
    assert (panel.aspect_ratio.value, panel.image_size.value) == ("16:9", "2K")
    upload(panel, "small.png", png_bytes())  # 64x48: 4:3, and the smallest size this model takes
    assert (panel.aspect_ratio.value, panel.image_size.value) == ("4:3", "1K")


def test_new_cell_shows_the_cells_text_to_copy_and_says_when_it_appears(panel, monkeypatch):
    generate(panel, "a quiet street")

    class Shell:
        def set_next_input(self, text, replace=False):
            pass

    monkeypatch.setattr("IPython.get_ipython", lambda: Shell())
    panel.select(0)
    assert "next run" in panel.new_cell_button.description
    assert panel.cell_text.layout.display == "none"
    panel.new_cell_button.click()
    assert panel.cell_text.layout.display != "none"
    assert "%%gemini_image --edit 0\na quiet street" in panel.cell_text.value
    assert "next cell you run" in panel.cell_text.value


# -- region edits -------------------------------------------------------------------------------


def padded_box(region: dict, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """The box of a region record grown by its padding, clamped to the picture."""
    x, y, w, h = region["box"]
    p = region["padding"]
    left, top = max(0, x - p), max(0, y - p)
    return left, top, min(size[0], x + w + p) - left, min(size[1], y + h + p) - top


def outside_and_inside(before: Image.Image, after: Image.Image, padded, box) -> tuple[bool, bool]:
    """Whether every pixel outside ``padded`` is the same, and whether any inside ``box`` differs."""
    x, y, w, h = padded
    hole = Image.new("L", before.size, 255)
    hole.paste(0, (x, y, x + w, y + h))
    blank = Image.new("RGB", before.size)
    same_outside = ImageChops.difference(
        Image.composite(before, blank, hole), Image.composite(after, blank, hole)).getbbox() is None
    bx, by, bw, bh = box
    inside = (bx, by, bx + bw, by + bh)
    differs_inside = ImageChops.difference(before.crop(inside), after.crop(inside)).getbbox() is not None
    return same_outside, differs_inside


def test_a_drawn_box_fills_the_region_field_in_the_pictures_pixels(panel):
    generate(panel, "a wide harbour")  # 1024x1024, shown at 512: two source pixels to one
    assert panel.picture.scale == 2.0
    panel.picture.preview_box = [50, 60, 100, 80.5]  # as the browser sends a drawn box
    assert panel.picture.box == [100, 120, 200, 161]
    assert panel.region_text.value == "100,120,200,161"
    panel.picture.preview_box = []  # Clear box, or Esc
    assert panel.region_text.value == ""


def test_a_typed_box_is_drawn_and_the_text_stays_as_typed(panel):
    generate(panel, "a wide harbour")
    panel.region_text.value = "0.25,0.5,0.5,0.25"  # Enter in the field
    assert panel.picture.box == [256, 512, 512, 256]
    assert panel.picture.preview_box == [128, 256, 256, 128]
    assert panel.region_text.value == "0.25,0.5,0.5,0.25"
    panel.region_text.value = "900,900,400,400"  # partly outside: drawn clamped, refused when sent
    assert panel.picture.box == [900, 900, 124, 124]
    assert panel.region_text.value == "900,900,400,400"
    panel.region_text.value = ""
    assert panel.picture.box == []


def test_edit_region_sends_the_prompt_as_a_region_edit_of_the_selection(panel, session, emu):
    generate(panel, "a red barn in a field")
    panel.picture.preview_box = [100, 100, 150, 120]
    panel.prompt.value = "paint the barn door blue"
    panel.aspect_ratio.value = "16:9"  # the lists are for Generate and Edit; a region keeps its source's shape
    panel.region_button.click()
    panel.wait(20)
    assert not panel.status_is_error, panel.status_text

    source, edit = session.history[0], session.history[1]
    assert edit.parent == source.id and edit.size == source.size
    assert edit.region["box"] == [200, 200, 300, 240] and edit.region["mode"] == "crop"
    [sent] = emu.attempts("paint the barn door blue")
    assert sent.images[0].sha256 != source.sha256s[0]  # the crop went, not the whole picture
    before, after = source.image.convert("RGB"), edit.image.convert("RGB")
    same_outside, differs_inside = outside_and_inside(
        before, after, padded_box(edit.region, source.size), edit.region["box"])
    assert same_outside and differs_inside
    assert panel.selected == 1 and panel.picture.box == [200, 200, 300, 240]  # shown with its box
    assert "region 200,200,300,240 crop" in panel.details.value
    assert panel.multi_turn.disabled and "is a region edit" in panel.multi_turn_note.value


def test_edit_region_takes_the_mode_and_a_typed_box_in_fractions(panel, session):
    generate(panel, "a red barn in a field")
    panel.region_text.value = "0.25,0.25,0.5,0.5"
    panel.region_mode.value = "guide"
    panel.prompt.value = "add snow"
    panel.region_button.click()
    panel.wait(20)
    assert not panel.status_is_error, panel.status_text
    assert session.history[1].region["box"] == [256, 256, 512, 512]
    assert session.history[1].region["mode"] == "guide"


@pytest.mark.parametrize(
    "box, message",
    [("10,10,40,40", "too small"), ("900,0,400,400", "not inside"), ("", "not X,Y,W,H")],
)
def test_a_bad_box_is_the_sessions_one_line_in_the_status_and_nothing_is_sent(panel, session, emu, box, message):
    generate(panel, "a red barn in a field")
    panel.region_text.value = box
    panel.prompt.value = "make it night"
    panel.region_button.click()
    panel.wait(5)
    assert panel.status_is_error and message in panel.status_text
    assert "\n" not in panel.status_text
    assert not emu.attempts("make it night") and len(session.history) == 1


def test_selecting_another_entry_clears_the_box(panel):
    generate(panel, "first picture")
    generate(panel, "second picture")
    panel.picture.preview_box = [10, 10, 100, 100]
    panel.select(0)
    assert panel.picture.box == [] and panel.region_text.value == ""


# -- search, pages and lineage ---------------------------------------------------------------------


def fill_history(session, prompts: list[str]) -> None:
    for prompt in prompts:
        session.run(Request(prompt, image_size="512", new=True))


def test_the_search_box_narrows_the_gallery(panel, session):
    fill_history(session, ["a red door", "a blue door", "an indoor garden", "a lighthouse"])
    panel.refresh()
    panel.search.value = "door"
    assert visible_slots(panel) == ["[1]", "[0]"]  # "indoor" does not start with "door"
    assert "2 of 4 images found" in panel.gallery_title.value
    panel.search.value = '"red door"'
    assert visible_slots(panel) == ["[0]"]
    panel.search.value = "submarine"
    assert visible_slots(panel) == [] and "nothing matches" in panel.gallery_title.value
    panel.search.value = ""
    assert len(visible_slots(panel)) == 4


def test_the_gallery_pages_through_a_long_history(panel, session):
    total = 2 * GALLERY_SLOTS + 3
    fill_history(session, [f"picture number {k}" for k in range(total)])
    panel.refresh()
    assert visible_slots(panel)[0] == f"[{total - 1}]" and len(visible_slots(panel)) == GALLERY_SLOTS
    assert "page 1 of 3" in panel.gallery_title.value and panel.newer_button.disabled
    panel.older_button.click()
    panel.older_button.click()
    assert visible_slots(panel) == ["[2]", "[1]", "[0]"] and panel.older_button.disabled
    panel.search.value = "number"  # a new search starts at its first page
    assert "page 1 of 3" in panel.gallery_title.value


def test_selecting_an_entry_turns_the_searched_gallery_to_its_page(panel, session):
    fill_history(session, [f"{'cat' if k % 2 else 'dog'} picture {k}" for k in range(2 * GALLERY_SLOTS + 4)])
    panel.refresh()
    panel.search.value = "cat"
    panel.select(1)  # the oldest cat: on the second page of cats
    assert "page 2 of 2" in panel.gallery_title.value and highlighted_slots(panel) == ["[1]"]


def test_the_selected_entrys_chain_and_edits_are_buttons_that_select_them(panel, session):
    fill_history(session, ["a plain vase"])
    session.run(Request("paint it blue", images=(session.history[0],), new=True))  # [1] from [0]
    session.run(Request("add flowers", images=(session.history[1],), new=True))  # [2] from [1]
    session.run(Request("make it gold", images=(session.history[0],), new=True))  # [3] from [0]
    panel.refresh()
    panel.select(1)
    assert lineage_shown(panel) == ["[0]", "[1]", "edits", "[2]"]
    panel.select(0)
    assert lineage_shown(panel) == ["[0]", "edits", "[1]", "[3]"]
    child = next(w for w in panel.lineage.children if getattr(w, "description", "") == "[3]")
    child.click()
    assert panel.selected == 3 and lineage_shown(panel) == ["[0]", "[3]"]
    first = next(w for w in panel.lineage.children if getattr(w, "description", "") == "[0]")
    first.click()
    assert panel.selected == 0


def test_a_long_chain_shows_its_first_picture_and_its_latest_steps(panel, session):
    fill_history(session, ["step 0"])
    for k in range(1, 9):
        session.run(Request(f"step {k}", images=(session.history[k - 1],), new=True))
    panel.refresh()
    panel.select(8)
    assert lineage_shown(panel) == ["[0]", "[4]", "[5]", "[6]", "[7]", "[8]"]
    assert "…" in "".join(getattr(w, "value", "") for w in panel.lineage.children)


def test_an_original_with_no_edits_shows_no_lineage_row(panel, session):
    fill_history(session, ["a plain vase"])
    panel.refresh()
    panel.select(0)
    assert lineage_shown(panel) == [] and "An original" in panel.details.value


def test_a_new_result_clears_a_search_that_would_hide_it(panel, session):
    fill_history(session, ["a red door"])
    panel.refresh()
    panel.search.value = "door"
    generate(panel, "a lighthouse")
    assert panel.search.value == "" and highlighted_slots(panel) == ["[1]"]
