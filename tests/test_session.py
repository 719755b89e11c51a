"""The session's own rules, tested with no kernel and no widgets: the defaults a request
takes, what is refused before anything is sent, the cap on variants, multi-turn edits,
and a result the history cannot keep. The magic and the panel only translate these."""

from __future__ import annotations

import os
import sys

import pytest

from aigate_nb.core.errors import InputError, NoImageError, NotKeptError
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.session.session import MAX_VARIANTS, Defaults, Request, outcome
from support import FLASH, OLD, PRO, TEST_KEY

# -- defaults -----------------------------------------------------------------------------------

def test_a_request_takes_the_defaults_where_it_says_nothing(session):
    session.set_defaults(aspect_ratio="16:9", image_size="2K", route="google")
    filled = session.with_defaults(Request("a kite"))
    assert (filled.model, filled.aspect_ratio, filled.image_size, filled.route) == (FLASH, "16:9", "2K", "google")
    own = session.with_defaults(Request("a kite", aspect_ratio="1:1", image_size="1K", route="chat"))
    assert (own.aspect_ratio, own.image_size, own.route) == ("1:1", "1K", "chat")


def test_defaults_chosen_for_the_default_model_go_to_another_model_only_where_it_takes_them(session):
    session.set_defaults(aspect_ratio="21:9", image_size="4K")
    older = session.with_defaults(Request("a kite", model=OLD))
    assert (older.aspect_ratio, older.image_size) == ("21:9", None)  # 2.5 takes 21:9 but no size
    assert session.with_defaults(Request("a kite", model=PRO)).image_size == "4K"


def test_set_defaults_checks_against_the_model_and_normalises(session):
    assert session.set_defaults(aspect_ratio="16x9", image_size="2k") == Defaults(FLASH, "16:9", "2K", "chat")
    with pytest.raises(InputError, match="not one of"):
        session.set_defaults(aspect_ratio="7:3")
    with pytest.raises(InputError, match="Unknown setting 'colour'"):
        session.set_defaults(colour="red")
    with pytest.raises(InputError, match="route 'fax'"):
        session.set_defaults(route="fax")
    assert session.defaults == Defaults(FLASH, "16:9", "2K", "chat")  # a refused change changes nothing


def test_every_front_end_hears_of_a_change_of_defaults(session):
    seen = []
    stop = session.watch_defaults(seen.append)
    session.set_defaults(image_size="1K")
    stop()
    session.set_defaults(image_size="2K")
    assert [d.image_size for d in seen] == ["1K"]


def test_settings_show_the_key_masked(session):
    settings = session.settings()
    assert TEST_KEY not in repr(settings) and settings["api_key"].endswith(TEST_KEY[-4:])
    assert settings["model"] == FLASH and settings["aspect_ratio"] == "(model default)"


# -- refused before sending ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "request_, message",
    [
        (Request("   "), "The prompt is empty"),
        (Request("a kite", aspect_ratio="7:3"), "aspect ratio '7:3' is not one of"),
        (Request("a kite", model=OLD, image_size="2K"), "takes no image size"),
        (Request("a kite", images=("/no/such/file.png",)), "No image file"),
        (Request("a kite", multi_turn=True), "name it with -e"),
    ],
)
def test_a_bad_request_is_refused_before_anything_is_sent(session, emu, request_, message):
    with pytest.raises(InputError, match=message):
        session.submit(request_)
    assert emu.requests == [] and len(session.history) == 0


@pytest.mark.parametrize("count", [0, -1, MAX_VARIANTS + 1, True, 2.0])
def test_the_number_of_variants_is_capped_for_every_front_end(session, emu, count):
    with pytest.raises(InputError, match=f"ask for 1 to {MAX_VARIANTS} variants"):
        session.submit(Request("a kite"), count=count)
    assert emu.requests == []


def test_variants_are_sent_together_and_each_joins_the_history(session, emu):
    futures = session.submit(Request("three kites"), count=3)
    results = [future.result(timeout=30) for future in futures]
    assert len(emu.attempts("three kites")) == 3
    assert sorted(result.index for result in results) == [0, 1, 2] and len(session.history) == 3


@pytest.mark.parametrize("route", ["chat", "google"])
def test_each_variant_draws_a_picture_of_its_own_the_same_every_time(session, route):
    first = [f.result(timeout=30) for f in session.submit(Request("three kites", route=route), count=3)]
    again = [f.result(timeout=30) for f in session.submit(Request("three kites", route=route, new=True), count=3)]
    assert len({result.sha256 for result in first}) == 3
    assert [result.sha256 for result in again] == [result.sha256 for result in first]  # copy k, picture k


def test_the_first_variant_is_the_picture_of_the_request_alone(session, emu):
    [copy_0, _] = [f.result(timeout=30) for f in session.submit(Request("a lone kite"), count=2)]
    alone = session.run(Request("a lone kite", new=True))
    assert alone.sha256 == copy_0.sha256
    seeds = sorted(str(record.body.get("seed")) for record in emu.attempts("a lone kite"))
    assert seeds == ["1", "None", "None"]  # copy 0 and the single request send no seed


def test_a_variant_carries_its_seed_where_each_route_has_one_and_keeps_the_request_hash(session):
    chat, _ = session.prepare_with_parent(Request("a kite", route="chat"))
    google, _ = session.prepare_with_parent(Request("a kite", route="google"))
    assert chat.as_variant(2).body["seed"] == 2 and "seed" not in chat.body
    assert google.as_variant(2).body["generationConfig"]["seed"] == 2 and "seed" not in google.body["generationConfig"]
    assert chat.as_variant(0).body == chat.body
    assert {chat.as_variant(n).request_hash for n in range(3)} == {chat.request_hash}


def test_the_gateway_gets_every_variant_as_the_request_is():
    with Client(api_key=TEST_KEY, base_url="https://gateway.invalid") as gateway:  # prepared only, never sent
        prepared = gateway.prepare("a kite", model=FLASH)
    copy = prepared.as_variant(3)
    assert copy.variant == 3 and copy.body == prepared.body and copy.request_hash == prepared.request_hash


# -- multi-turn ---------------------------------------------------------------------------------

def test_only_a_google_route_result_can_be_continued(session):
    chat = session.run(Request("a teapot", route="chat"))
    google = session.run(Request("a teapot", route="google"))
    assert not session.can_continue(chat) and not session.can_continue(session.history[0])
    assert session.can_continue(google) and session.can_continue(session.history[1])


def test_a_multi_turn_edit_goes_on_with_the_model_and_route_that_made_the_result(session, emu):
    first = session.run(Request("a teapot", model=PRO, route="google"))
    filled = session.with_defaults(Request("add steam", images=(first,), multi_turn=True))
    assert (filled.model, filled.route) == (PRO, "google")
    with pytest.raises(InputError, match="Google route only"):
        session.submit(Request("add steam", images=(first,), route="chat", multi_turn=True))
    with pytest.raises(InputError, match="goes on with the model that made it"):
        session.submit(Request("add steam", images=(first,), model=FLASH, multi_turn=True))
    assert len(emu.attempts("add steam")) == 0


def test_options_chosen_for_another_model_apply_to_a_continued_conversation_only_where_taken(session):
    first = session.run(Request("a teapot", model=OLD, route="google"))
    filled = session.with_defaults(Request(
        "add steam", images=(first,), multi_turn=True, aspect_ratio="21:9", image_size="4K", options_for=PRO,
    ))
    assert (filled.model, filled.aspect_ratio, filled.image_size) == (OLD, "21:9", None)
    mine = session.with_defaults(Request("a kite", model=PRO, image_size="4K", options_for=PRO))
    assert mine.image_size == "4K"


# -- a result the history cannot keep -----------------------------------------------------------

@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="permission bits do not stop root")
def test_a_result_the_history_cannot_keep_is_handed_over_with_the_reason(session, tmp_path):
    session.history.folder.mkdir(parents=True)
    session.history.folder.chmod(0o500)
    try:
        with pytest.raises(NotKeptError) as caught:
            session.run(Request("a kite"))
    finally:
        session.history.folder.chmod(0o700)
    assert caught.value.result.image.size[0] > 0 and ".save(path)" in str(caught.value)


def test_a_result_the_history_cannot_keep_is_an_outcome_with_its_result(session, tmp_path):
    session.history = History("blocked", root=tmp_path / "file-not-folder")
    (tmp_path / "file-not-folder").write_text("a file where the history folder should be")
    [future] = session.submit(Request("a kite"))
    settled = outcome(future)
    assert settled.error is None and settled.result is not None and settled.result.index is None
    assert isinstance(settled.not_kept, NotKeptError) and "cannot keep it" in str(settled.not_kept)


def test_a_failed_request_is_an_outcome_with_its_error(session, emu):
    emu.inject_fault("no-image", count=1)
    [future] = session.submit(Request("a kite"))
    settled = outcome(future)
    assert settled.result is None and settled.not_kept is None
    assert isinstance(settled.error, NoImageError) and len(session.history) == 0


# -- references to images -----------------------------------------------------------------------

def test_a_reference_is_an_index_an_id_a_variable_or_a_path(session):
    first = session.run(Request("a teapot"))
    assert session.resolve_image("0").id == first.id and session.resolve_image(-1).id == first.id
    assert session.resolve_image(first.id).id == first.id
    assert session.resolve_image("pic", {"pic": first}) is first
    assert session.resolve_image("photos/cat.png") == "photos/cat.png"
    with pytest.raises(InputError, match="neither a history index"):
        session.resolve_image("nothing_here", {})


# -- an edit keeps its source's shape -------------------------------------------------------------

def test_an_edit_with_no_ratio_or_size_keeps_its_sources(session, emu):
    wide = session.run(Request("a harbour", aspect_ratio="21:9", image_size="2K"))
    edit = session.run(Request("add a boat", images=(wide,)))
    assert (edit.aspect_ratio, edit.image_size) == ("21:9", "2K") and edit.size == wide.size
    config = emu.attempts("add a boat")[-1].body["image_config"]
    assert config == {"aspect_ratio": "21:9", "image_size": "2K"}
    by_index = session.with_defaults(Request("add a gull", images=("0",)))
    assert (by_index.aspect_ratio, by_index.image_size) == ("21:9", "2K")


def test_an_edit_keeps_the_nearest_shape_the_model_takes(session):
    tall = session.run(Request("a lighthouse", aspect_ratio="1:4", image_size="512"))
    filled = session.with_defaults(Request("add a gull", images=(tall,), model=PRO))
    assert (filled.aspect_ratio, filled.image_size) == ("9:16", "1K")  # Pro takes neither 1:4 nor 512
    older = session.with_defaults(Request("add a gull", images=(tall,), model=OLD))
    assert older.image_size is None  # 2.5 takes no size at all


def test_an_edit_of_a_file_takes_its_shape_from_its_pixels(session, tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (3000, 2000), (90, 120, 150)).save(photo)
    filled = session.with_defaults(Request("make it night", images=(str(photo),)))
    assert (filled.aspect_ratio, filled.image_size) == ("3:2", "2K")


def test_a_ratio_or_size_given_wins_over_the_sources(session):
    wide = session.run(Request("a harbour", aspect_ratio="21:9", image_size="2K"))
    filled = session.with_defaults(Request("add a boat", images=(wide,), aspect_ratio="1:1"))
    assert (filled.aspect_ratio, filled.image_size) == ("1:1", "2K")


def test_an_edit_of_a_file_records_the_file_it_came_from(session, tmp_path):
    from PIL import Image

    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (90, 120, 150)).save(photo)
    made = session.run(Request("make it night", images=(str(photo),)))
    entry = session.history[-1]
    assert entry.inputs == [{"sha256": made.inputs[0]["sha256"], "name": "photo.png"}]
    assert entry.edited_from() == "photo.png" and "edited from photo.png" in made.caption()
    again = session.run(Request("add stars", images=(made,)))
    assert again.inputs[0]["entry"] == made.id and again.edited_from() == f"[{made.index}]"
