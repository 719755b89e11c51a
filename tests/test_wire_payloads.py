"""``load_reply``: large images decoded straight from a reply's bytes, with exactly
the outcome of parsing the whole reply as JSON, whatever the reply holds."""

from __future__ import annotations

import base64
import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigate_nb.core.errors import AigateError, ResponseError
from aigate_nb.gateway.wire import PAYLOAD_MIN, load_reply, parse_chat_reply, parse_google_reply

PARSERS = {"chat": parse_chat_reply, "google": parse_google_reply}
# Longer than PAYLOAD_MIN as base64, so that these are the strings load_reply cuts out.
BIG = b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(PAYLOAD_MIN)
BIG64 = base64.b64encode(BIG).decode()
OTHER = b"\xff\xd8\xff" + random.Random(8).randbytes(PAYLOAD_MIN + 5)
OTHER64 = base64.b64encode(OTHER).decode()


def chat(url, content=None):
    return {"choices": [{"message": {"content": content, "images": [{"type": "image_url", "image_url": {"url": url}}]},
                         "finish_reason": "stop"}], "usage": {"total_tokens": 3}, "id": "gen-1"}


def google(data, *parts):
    image = {"inlineData": {"mimeType": "image/png", "data": data}, "thoughtSignature": "c2ln"}
    return {"candidates": [{"content": {"role": "model", "parts": [*parts, image]}, "finishReason": "STOP"}],
            "responseId": "r-1"}


def outcome(parse, *args):
    """What a parser gives: the reply's fields, or the error it raises."""
    try:
        reply = parse(*args)
    except AigateError as exc:
        return type(exc), str(exc)
    return reply.images, reply.text, reply.finish_reason, reply.usage, reply.model_parts, reply.response_id


def same_as_json_loads(raw: bytes, route: str):
    """The outcome through load_reply, checked against json.loads; returns the payloads used."""
    try:
        expected = outcome(PARSERS[route], json.loads(raw))
    except ValueError:
        with pytest.raises(ValueError):
            load_reply(raw, route)
        return {}
    data, payloads = load_reply(raw, route)
    assert outcome(PARSERS[route], data, payloads) == expected
    return payloads


def test_a_large_chat_image_is_decoded_from_the_bytes_not_parsed_as_json():
    raw = json.dumps(chat("data:image/png;base64," + BIG64, content="Here it is.")).encode()
    data, payloads = load_reply(raw, "chat")
    url = data["choices"][0]["message"]["images"][0]["image_url"]["url"]
    assert len(url) < 100 and list(payloads.values()) == [BIG]
    reply = parse_chat_reply(data, payloads)
    assert (reply.images[0].mime, reply.images[0].data, reply.text) == ("image/png", BIG, "Here it is.")


def test_a_large_google_image_is_decoded_from_the_bytes_and_its_part_kept_for_replay():
    raw = json.dumps(google(BIG64, {"text": "A picture."})).encode()
    data, payloads = load_reply(raw, "google")
    assert list(payloads.values()) == [BIG]
    reply = parse_google_reply(data, payloads)
    assert reply.images[0].data == BIG and reply.text == "A picture."
    assert reply.model_parts[-1] == {
        "thoughtSignature": "c2ln", "inlineData": {"mimeType": "image/png", "imageIndex": 0}}


def test_small_replies_are_parsed_as_json():
    raw = json.dumps(chat("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\nsmall").decode())).encode()
    assert load_reply(raw, "chat") == (json.loads(raw), {})


@pytest.mark.parametrize("reply,route", [
    (chat("data:image/png;base64," + BIG64, content=BIG64), "chat"),  # base64 as the text too
    (google(BIG64, {"text": BIG64}), "google"),
    (chat("data:image/png;base64," + BIG64) | {"usage": {"note": OTHER64}}, "chat"),
    (google(BIG64) | {BIG64: 1}, "google"),  # as a key
])
def test_base64_anywhere_the_parser_reads_as_text_means_the_whole_reply_is_parsed(reply, route):
    raw = json.dumps(reply).encode()
    assert same_as_json_loads(raw, route) == {}


def test_escapes_in_the_payload_are_left_to_json():
    raw = json.dumps(chat("data:image/png;base64," + BIG64)).replace("/", "\\/").encode()
    assert same_as_json_loads(raw, "chat") == {}
    assert parse_chat_reply(*load_reply(raw, "chat")).images[0].data == BIG


def test_escapes_in_a_data_url_head_are_read_by_json_and_the_payload_still_cut_out():
    text = json.dumps(chat("data:image/jpeg;base64," + BIG64))
    raw = text.replace("data:image/jpeg", "data:image\\/jp\\u0065g").encode()
    assert list(same_as_json_loads(raw, "chat").values()) == [BIG]
    assert parse_chat_reply(*load_reply(raw, "chat")).images[0].mime == "image/jpeg"


def test_corrupt_base64_gives_the_same_error_as_before():
    corrupt = BIG64[:-10] + "!" + BIG64[-9:]
    for reply, route in ((chat("data:image/png;base64," + corrupt), "chat"), (google(corrupt), "google")):
        raw = json.dumps(reply).encode()
        assert same_as_json_loads(raw, route) == {}
        with pytest.raises(ResponseError, match="not valid base64"):
            PARSERS[route](*load_reply(raw, route))


def test_a_dropped_thought_image_is_not_judged_on_either_path():
    thought = {"inlineData": {"mimeType": "image/png", "data": "%%" + BIG64}, "thought": True}
    raw = json.dumps(google(OTHER64, thought)).encode()
    same_as_json_loads(raw, "google")
    assert parse_google_reply(*load_reply(raw, "google")).images[0].data == OTHER


@pytest.mark.parametrize("cut", [10, len(BIG64) // 2, -2])
def test_a_truncated_reply_is_still_invalid_json(cut):
    raw = json.dumps(chat("data:image/png;base64," + BIG64)).encode()
    with pytest.raises(ValueError):
        load_reply(raw[:cut] if cut > 0 else raw[:cut], "chat")


# -- any reply: the same outcome as json.loads ------------------------------------------------

big_strings = st.sampled_from([
    BIG64, OTHER64, "data:image/png;base64," + BIG64, "data:image/jpeg;base64," + OTHER64,
]) | st.sampled_from([
    "data:image/png;base64," + BIG64[:-3] + "*==", "data:;base64," + BIG64, "data:image/png," + BIG64,
    BIG64[:-1], "x" + BIG64, BIG64.replace("A", " "), 'say "' + BIG64 + '"', "\\" + BIG64, BIG64 + "\u00e9",
])
small_leaves = st.none() | st.booleans() | st.integers() | st.text(max_size=8)
keys = st.sampled_from(["choices", "message", "images", "image_url", "url", "content", "candidates", "parts",
                        "inlineData", "inline_data", "data", "mimeType", "text", "thought", "type", "error"])


def json_values(leaves):
    return st.recursive(
        leaves, lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=4),
        max_leaves=12,
    )


# Other values with or without long strings in them, so that both ways of reading are taken often.
anything = json_values(small_leaves | big_strings) | json_values(small_leaves)
shapes = st.one_of(
    json_values(small_leaves | big_strings),
    st.builds(lambda url, content, extra: chat(url, content) | extra, big_strings, anything,
              st.dictionaries(keys, anything, max_size=2)),
    st.builds(lambda data, part, extra: google(data, part) | extra, big_strings, anything,
              st.dictionaries(keys, anything, max_size=2)),
)


@settings(max_examples=300, deadline=None)
@given(shapes, st.sampled_from(["chat", "google"]), st.sampled_from([False, False, True]), st.booleans())
def test_any_reply_has_the_outcome_of_json_loads(value, route, escape_slashes, spaced):
    text = json.dumps(value, separators=(", ", ": ") if spaced else (",", ":"), ensure_ascii=not spaced)
    if escape_slashes:
        text = text.replace("/", "\\/")
    same_as_json_loads(text.encode(), route)
