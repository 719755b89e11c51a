"""Multi-turn edits (Google route): an edit that continues an earlier result's conversation
sends the lineage's prompts and the model's replies, thought signatures and all, as the
Gemini 3 image models require; the emulator checks the signatures as the API does."""

from __future__ import annotations

import hashlib
import io

import pytest
from PIL import Image

from aigate_nb.core.errors import BadRequestError, InputError
from aigate_nb.gateway.client import Client
from aigate_nb.gateway.wire import inline_size, model_turn, user_turn
from aigate_nb.records.store import History
from aigate_nb.session.conversation import conversation_turns
from aigate_nb.session.session import Request, Session
from support import FLASH, TEST_KEY

SIGNATURE = "c2lnbmVk"


def png(colour=(10, 20, 30), size=(16, 12)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture
def session(emu, tmp_path):
    client = Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01, timeout=(5, 30))
    with client:
        yield Session(client, History("turns", root=tmp_path))


def sent_body(emu, prompt: str) -> dict:
    return emu.attempts(prompt)[-1].body


def signatures(turn: dict) -> list[str | None]:
    return [part.get("thoughtSignature") for part in turn["parts"]]


# -- the turns themselves ---------------------------------------------------------------------

def test_a_model_turn_gives_each_stored_part_its_image_back_and_keeps_the_rest_as_received():
    parts = [
        {"text": "Here it is.", "thoughtSignature": SIGNATURE},
        {"inlineData": {"mimeType": "image/png", "imageIndex": 1}, "thoughtSignature": "b25l"},
    ]
    turn = model_turn(parts, [("image/jpeg", b"first"), ("image/png", b"second")])
    assert turn == {"role": "model", "parts": [
        {"text": "Here it is.", "thoughtSignature": SIGNATURE},
        {"inlineData": {"mimeType": "image/png", "data": "c2Vjb25k"}, "thoughtSignature": "b25l"},
    ]}
    assert parts[1]["inlineData"] == {"mimeType": "image/png", "imageIndex": 1}  # the stored parts are untouched
    assert user_turn("make it blue") == {"role": "user", "parts": [{"text": "make it blue"}]}
    assert inline_size([user_turn("x"), turn]) == len("c2Vjb25k")


def test_stored_parts_that_point_past_the_images_are_refused():
    with pytest.raises(InputError, match="do not match its images"):
        model_turn([{"inlineData": {"mimeType": "image/png", "imageIndex": 2}}], [("image/png", b"only one")])


def test_turns_on_the_chat_route_or_out_of_order_are_refused_before_sending(client, emu):
    turns = [user_turn("a fox"), model_turn([{"text": "ok"}], [])]
    with pytest.raises(InputError, match="Google route only"):
        client.generate("make it night", turns=turns)
    with pytest.raises(InputError, match="alternate user and model"):
        client.generate("make it night", route="google", turns=turns[::-1])
    with pytest.raises(InputError, match="alternate user and model"):
        client.generate("make it night", route="google", turns=turns[:1])
    assert emu.requests == []


# -- a conversation along the history -----------------------------------------------------------

def test_each_edit_sends_the_whole_conversation_with_the_signatures_as_received(session, emu):
    first = session.run(Request("a red fox in fresh snow", model=FLASH, route="google"))
    second = session.run(Request("make it night", images=(first,), multi_turn=True))
    third = session.run(Request("add a full moon", images=(session.history[-1],), multi_turn=True))

    body = sent_body(emu, "add a full moon")
    contents = body["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user", "model", "user"]
    prompts = [c["parts"][0].get("text") for c in contents[::2]]
    assert prompts == ["a red fox in fresh snow", "make it night", "add a full moon"]
    kept = History("turns", root=session.history.folder.parent)
    assert signatures(contents[1]) == [p.get("thoughtSignature") for p in kept[0].model_parts]
    assert signatures(contents[3]) == [p.get("thoughtSignature") for p in kept[1].model_parts]
    assert all(signatures(contents[1])) and all(signatures(contents[3]))
    assert contents[4]["parts"] == [{"text": "add a full moon"}]  # the image travels in the model turns
    # the emulator edits the latest image of the conversation: the second result
    assert emu.attempts("add a full moon")[-1].images[0].sha256 == second.sha256
    assert (second.parent_index, third.parent_index) == (0, 1)
    assert third.route == "google" and third.size == first.size


def test_model_turns_without_their_signatures_are_refused_as_the_api_refuses_them(session, emu):
    first = session.run(Request("a lighthouse", model=FLASH, route="google"))
    turns, _ = conversation_turns(session.history, first, model=None, budget=session.client.inline_budget)
    for part in turns[1]["parts"]:
        part.pop("thoughtSignature", None)
    with pytest.raises(BadRequestError, match="missing a thought_signature"):
        session.client.generate("paint it red", route="google", turns=turns)


def test_the_conversation_starts_after_the_last_chat_route_step(session, emu):
    chat = session.run(Request("a teapot", model=FLASH, route="chat"))
    google = session.run(Request("make it porcelain", images=(chat,), route="google"))
    session.run(Request("add steam", images=(google,), multi_turn=True))
    contents = sent_body(emu, "add steam")["contents"]
    assert [c["parts"][0].get("text") for c in contents[::2]] == ["make it porcelain", "add steam"]
    # the first step's user turn holds the image it edited, as it was sent then
    assert contents[0]["parts"][1]["inlineData"]["mimeType"] == chat.mime
    sent = emu.attempts("add steam")[-1]
    assert emu.attempts("make it porcelain")[-1].images[0].sha256 == chat.sha256
    assert sent.images[0].sha256 == google.sha256  # the emulator edits the newest image of the conversation


def test_a_chat_route_result_cannot_be_continued_and_says_what_to_do(session, emu):
    chat = session.run(Request("a teapot", model=FLASH, route="chat"))
    before = len(emu.requests)
    with pytest.raises(InputError, match=r"\[0\] came by the chat route.*without --multi-turn"):
        session.run(Request("add steam", images=(chat,), multi_turn=True))
    with pytest.raises(InputError, match="Google route only"):
        session.run(Request("add steam", images=(chat,), route="chat", multi_turn=True))
    with pytest.raises(InputError, match="name it with -e"):
        session.run(Request("add steam", multi_turn=True))
    assert len(emu.requests) == before and len(session.history) == 1


def test_a_result_from_a_bare_client_continues_its_own_turn(session, emu):
    alone = session.client.generate("a paper crane", model=FLASH, route="google")
    session.run(Request("fold it from gold paper", images=(alone,), multi_turn=True))
    contents = sent_body(emu, "fold it from gold paper")["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[0]["parts"] == [{"text": "a paper crane"}]


def test_the_oldest_turns_are_left_out_when_the_images_pass_the_budget(session, emu):
    first = session.run(Request("a red fox", model=FLASH, route="google"))
    second = session.run(Request("make it night", images=(first,), multi_turn=True))
    one_turn = len(model_turn(second.model_parts, [(second.mime, second.data)])["parts"][-1]["inlineData"]["data"])
    session.client.inline_budget = one_turn + 1000
    with pytest.warns(RuntimeWarning, match="The conversation's first step was left out"):
        session.run(Request("add snow", images=(second,), multi_turn=True))
    contents = sent_body(emu, "add snow")["contents"]
    assert [c["parts"][0].get("text") for c in contents[::2]] == ["make it night", "add snow"]

    session.client.inline_budget = one_turn // 2
    before = len(emu.requests)
    with pytest.raises(InputError, match="edit it without --multi-turn"):
        session.run(Request("add a fence", images=(second,), multi_turn=True))
    assert len(emu.requests) == before


def test_extra_images_ride_along_in_the_new_user_turn(session, emu, tmp_path):
    first = session.run(Request("a bare room", model=FLASH, route="google"))
    chair = tmp_path / "chair.png"
    chair.write_bytes(png((200, 120, 40)))
    session.run(Request("put this chair in it", images=(first, chair), multi_turn=True))
    last = sent_body(emu, "put this chair in it")["contents"][-1]
    assert last["parts"][0] == {"text": "put this chair in it"} and "inlineData" in last["parts"][1]
    sources = {image.sha256 for image in emu.attempts("put this chair in it")[-1].images}
    assert hashlib.sha256(chair.read_bytes()).hexdigest() in sources


def test_a_conversation_goes_on_with_the_model_that_made_it(session, emu):
    older = session.run(Request("a bicycle", model="google/gemini-2.5-flash-image", route="google"))
    newer = session.run(Request("paint it yellow", images=(older,), model=FLASH, route="google"))
    # no -m: the conversation's own model; its steps by another model are not replayed
    session.run(Request("add a basket", images=(newer,), multi_turn=True))
    sent = emu.attempts("add a basket")[-1]
    assert FLASH.split("/")[1] in sent.path
    contents = sent.body["contents"]
    assert [c["parts"][0].get("text") for c in contents[::2]] == ["paint it yellow", "add a basket"]
    assert contents[0]["parts"][1]["inlineData"]  # the bicycle it edited rides in the first user turn
    session.run(Request("add a bell", images=(older,), multi_turn=True))
    assert "gemini-2.5-flash-image" in emu.attempts("add a bell")[-1].path
    before = len(emu.requests)
    with pytest.raises(InputError, match=r"\[0\] was made by google/gemini-2.5-flash-image.*leave out -m"):
        session.run(Request("add a bell", images=(older,), model=FLASH, multi_turn=True))
    assert len(emu.requests) == before


def test_the_result_continued_is_the_parent_whatever_else_goes_along(session, emu):
    chair = session.run(Request("a chair", model=FLASH, route="google"))
    alone = session.client.generate("a bare room", model=FLASH, route="google")
    made = session.run(Request("put the chair in the room", images=(alone, chair), multi_turn=True))
    assert made.parent_id is None and made.parent_index is None  # continued a result outside the history
    again = session.run(Request("paint the walls", images=(made,), multi_turn=True))
    assert again.parent_index == made.index
    contents = sent_body(emu, "paint the walls")["contents"]
    assert contents[0]["parts"] == [{"text": "put the chair in the room"}]


def test_other_images_keep_their_share_and_the_first_steps_give_way(session, emu, tmp_path):
    first = session.run(Request("a red fox", model=FLASH, route="google"))
    second = session.run(Request("make it night", images=(first,), multi_turn=True))
    turns = [model_turn(r.model_parts, [(r.mime, r.data)]) for r in (first, second)]
    replies = [len(turn["parts"][-1]["inlineData"]["data"]) for turn in turns]
    photo = tmp_path / "photo.png"
    Image.effect_noise((160, 120), 60).convert("RGB").save(photo)
    assert (photo.stat().st_size + 2) // 3 * 4 < min(replies)
    # both steps would fill the budget, leaving the photo next to nothing: the first step gives way
    session.client.inline_budget = sum(replies) + 1000
    with pytest.warns(RuntimeWarning, match="first step was left out"):
        session.run(Request("add this photo on the wall", images=(second, photo), multi_turn=True))
    sent = emu.attempts("add this photo on the wall")[-1]
    prompts = [c["parts"][0].get("text") for c in sent.body["contents"][::2]]
    assert prompts == ["make it night", "add this photo on the wall"]
    assert hashlib.sha256(photo.read_bytes()).hexdigest() in {image.sha256 for image in sent.images}  # sent as it is


def test_a_file_is_not_a_conversation_and_says_so(session, emu, tmp_path):
    photo = tmp_path / "photo.png"
    photo.write_bytes(png())
    for ref in (str(photo), "https://example.com/cat.png", png()):
        with pytest.raises(InputError, match="continues an earlier result, not"):
            session.run(Request("add a hat", images=(ref,), multi_turn=True))
    assert emu.requests == []


def test_turns_that_leave_no_room_for_the_other_images_are_refused_before_sending(session, emu, tmp_path):
    first = session.run(Request("a red fox", model=FLASH, route="google"))
    turns, _ = conversation_turns(session.history, first, model=None, budget=session.client.inline_budget)
    photo = tmp_path / "photo.png"
    Image.effect_noise((600, 400), 60).convert("RGB").save(photo)
    session.client.inline_budget = inline_size(turns) + 100
    before = len(emu.requests)
    with pytest.raises(InputError, match="leave too little"):
        session.client.generate("add this photo", route="google", images=[photo], turns=turns)
    assert len(emu.requests) == before


def test_an_index_or_id_continues_with_the_entrys_model_and_not_the_defaults_for_another(session, emu):
    session.set_defaults(model="google/gemini-3-pro-image", image_size="2K")
    older = session.run(Request("a bicycle", model="google/gemini-2.5-flash-image", route="google"))
    for ref in (-1, str(older.index), older.id):
        made = session.run(Request(f"add a bell {ref}", images=(ref,), multi_turn=True))
        sent = emu.attempts(f"add a bell {ref}")[-1]
        assert "gemini-2.5-flash-image" in sent.path and made.model == "google/gemini-2.5-flash-image"
        # 2K was the default of another model; the edit keeps its source's shape instead
        assert sent.body["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1"}
    # however it is spelt, the model that made it may be named
    session.run(Request("add a lamp", images=(older,), model="gemini-2.5-flash-image", multi_turn=True))


def test_the_edited_image_is_left_out_with_a_warning_or_quietly_when_its_file_is_gone(session, emu):
    first = session.run(Request("a red fox", model=FLASH, route="google", ))
    chat_step = session.run(Request("a blue fox", model=FLASH, route="chat"))
    step = session.run(Request("give it a hat", images=(chat_step,), route="google"))
    reply = len(model_turn(step.model_parts, [(step.mime, step.data)])["parts"][-1]["inlineData"]["data"])
    session.client.inline_budget = reply + 1000  # the step, not the blue fox it edited
    with pytest.warns(RuntimeWarning, match="The image the conversation's first step edited was left out"):
        session.run(Request("make the hat red", images=(step,), multi_turn=True))
    assert sent_body(emu, "make the hat red")["contents"][0]["parts"] == [{"text": "give it a hat"}]
    session.client.inline_budget = 18_000_000
    chat_step.files[0].unlink()  # deleted by hand
    session.run(Request("make the hat green", images=(step,), multi_turn=True))
    assert sent_body(emu, "make the hat green")["contents"][0]["parts"] == [{"text": "give it a hat"}]
    assert first.index == 0
