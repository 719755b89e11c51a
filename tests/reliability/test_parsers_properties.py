"""Property tests of the reply and error parsers with replies shaped like the real ones:
valid envelopes of both routes with random leaves, random data URLs, random and broken
base64, large payloads that take the fast byte-level path, and error bodies of any bytes.
Whatever arrives, the only exceptions are the package's own, and what comes back is usable.

``tests/test_wire.py`` feeds the parsers arbitrary JSON; these strategies get past the
first checks, into the code that decodes images and text.
"""

from __future__ import annotations

import base64
import json
import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigate_nb.errors import AigateError, GatewayError, NoImageError, ResponseError
from aigate_nb.images import b64decode, decode_data_url
from aigate_nb.wire import (
    ReplyImage,
    error_from_body,
    load_reply,
    parse_chat_reply,
    parse_google_reply,
    parse_model_ids,
)

PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaves = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True, allow_infinity=True)
          | st.text(max_size=30))
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=10)


def weighted(*choices):
    """One of the strategies, each drawn in proportion to its weight: ``weighted((4, a), (1, b))``."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda n: table[n])


def maybe(strategy):
    """Mostly a value of the real shape, sometimes a random leaf in its place."""
    return weighted((4, strategy), (1, leaves))


MIMES = weighted((4, st.sampled_from(["image/png", "image/jpeg", "image/webp"])),
                 (1, st.sampled_from(["text/plain", "", "image/"]) | st.text(max_size=12)))
IMAGE_HEADS = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"RIFF\x00\x00\x00\x00WEBP", b""]


@st.composite
def base64_text(draw) -> str:
    """Valid base64 of random bytes (often with an image's magic number), or broken base64."""
    data = draw(st.sampled_from(IMAGE_HEADS)) + draw(st.binary(max_size=64))
    good = base64.b64encode(data).decode()
    broken = st.sampled_from([
        good[:-1],  # cut off
        good + "%%",  # junk after
        good.replace("A", "-"),  # the URL-safe alphabet
        " " + good + "\n",  # whitespace around
        "",
    ]) | st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=\n -_", max_size=40)
    return draw(weighted((3, st.just(good)), (2, broken)))


large_payloads = st.integers(0, 2**32).map(lambda seed: base64.b64encode(
    b"\x89PNG\r\n\x1a\n" + random.Random(seed).randbytes(70_000)).decode())  # beyond the fast path's threshold


@st.composite
def data_urls(draw) -> str:
    payload = draw(weighted((2, base64_text()), (1, large_payloads)))
    head = draw(weighted((4, st.just("data:{mime};base64,")), (1, st.sampled_from([
        "data:{mime},", "data:;base64,", "{mime};base64,", "data:{mime};charset=utf-8;base64,",
        "https://example.org/x?"]))))
    return head.format(mime=draw(MIMES)) + payload


def image_item(url):
    return weighted(
        (4, st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": url})})),
        (1, st.fixed_dictionaries({"image_url": url})),
        (1, json_values),
    )


def sometimes(draw, weight_in: int = 3) -> bool:
    """Whether to put an optional member in: ``weight_in`` times in ``weight_in + 1``."""
    return draw(st.integers(0, weight_in)) > 0


@st.composite
def chat_replies(draw) -> dict:
    url = data_urls()
    text = weighted((3, st.text(max_size=40)), (1, url.map(lambda u: f"here: ![image]({u}) done")))
    message: dict = {"role": "assistant"}
    if sometimes(draw):
        message["images"] = draw(maybe(st.lists(image_item(url), min_size=1, max_size=3)))
    if sometimes(draw, 1):
        message["content"] = draw(maybe(st.one_of(st.none(), text, st.lists(weighted(
            (2, st.fixed_dictionaries({"type": st.just("text"), "text": text})),
            (2, st.fixed_dictionaries({"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": url})})),
            (1, json_values)), max_size=3))))
    choice: dict = {"index": 0, "message": draw(maybe(st.just(message)))}
    if sometimes(draw, 1):
        choice["finish_reason"] = draw(maybe(st.sampled_from(["stop", "content_filter", "length", "error"])))
    if sometimes(draw, 1):
        choice["native_finish_reason"] = draw(maybe(st.sampled_from(["STOP", "IMAGE_SAFETY", "NO_IMAGE"])))
    reply: dict = {"choices": draw(maybe(st.lists(weighted((4, st.just(choice)), (1, json_values)), min_size=1, max_size=2)))}
    for name, value in (("id", st.text(max_size=10)), ("usage", json_values),
                        ("prompt_feedback", st.fixed_dictionaries({"block_reason": maybe(st.text(max_size=10))}))):
        if sometimes(draw, 1):
            reply[name] = draw(maybe(value))
    if not sometimes(draw, 5):
        reply["error"] = draw(json_values)
    return reply


@st.composite
def google_replies(draw) -> dict:
    inline_key = draw(st.sampled_from(["inlineData", "inlineData", "inline_data"]))
    mime_key = draw(st.sampled_from(["mimeType", "mimeType", "mime_type"]))
    inline = st.fixed_dictionaries({mime_key: maybe(MIMES), "data": maybe(weighted((2, base64_text()), (1, large_payloads)))})
    signature = {"thoughtSignature": st.text(max_size=10)}
    thought = {"thought": maybe(st.booleans())}
    part = weighted(
        (1, st.fixed_dictionaries({"text": maybe(st.text(max_size=30))}, optional={**thought, **signature})),
        (4, st.fixed_dictionaries({inline_key: maybe(inline)}, optional={**thought, **signature})),
        (1, json_values))
    candidate: dict = {}
    if sometimes(draw, 6):
        candidate["content"] = draw(maybe(st.fixed_dictionaries(
            {"role": st.just("model"), "parts": maybe(st.lists(part, min_size=1, max_size=4))})))
    if sometimes(draw, 1):
        candidate["finishReason"] = draw(maybe(st.sampled_from(["STOP", "IMAGE_SAFETY", "NO_IMAGE", "IMAGE_OTHER"])))
    if not sometimes(draw):
        candidate["finishMessage"] = draw(maybe(st.text(max_size=30)))
    reply: dict = {}
    if sometimes(draw, 6):
        reply["candidates"] = draw(maybe(st.lists(weighted((4, st.just(candidate)), (1, json_values)), min_size=1, max_size=2)))
    if not sometimes(draw):
        reply["promptFeedback"] = draw(maybe(st.fixed_dictionaries({}, optional={
            "blockReason": maybe(st.sampled_from(["SAFETY", "OTHER", "PROHIBITED_CONTENT"])),
            "blockReasonMessage": maybe(st.text(max_size=20))})))
    for name, value in (("usageMetadata", json_values), ("responseId", st.text(max_size=10))):
        if sometimes(draw, 1):
            reply[name] = draw(maybe(value))
    if not sometimes(draw, 5):
        reply["error"] = draw(json_values)
    return reply


def check_reply(reply) -> None:
    """What a successful parse hands on is usable: images of bytes with a MIME type, text or None."""
    assert reply.images and all(isinstance(i, ReplyImage) for i in reply.images)
    assert all(isinstance(i.data, bytes) and isinstance(i.mime, str) and i.mime for i in reply.images)
    assert reply.text is None or isinstance(reply.text, str)
    assert reply.finish_reason is None or isinstance(reply.finish_reason, str)
    assert isinstance(reply.usage, dict)


def outcome(parse, data, payloads=None):
    """A comparable summary: the images and text, or the kind of package error."""
    try:
        reply = parse(data, payloads)
    except AigateError as exc:
        assert str(exc) and "\n" not in str(exc).strip() or isinstance(exc, NoImageError)
        return type(exc).__name__
    check_reply(reply)
    return [(i.mime, i.data) for i in reply.images], reply.text, reply.finish_reason


@PROPERTY
@given(chat_replies())
def test_chat_replies_of_the_real_shape_give_a_reply_or_a_package_error(data):
    outcome(parse_chat_reply, data)


@PROPERTY
@given(google_replies())
def test_google_replies_of_the_real_shape_give_a_reply_or_a_package_error(data):
    outcome(parse_google_reply, data)


@PROPERTY
@given(st.one_of(chat_replies().map(lambda d: ("chat", d)), google_replies().map(lambda d: ("google", d))))
def test_reading_a_reply_from_its_bytes_gives_what_parsing_its_json_gives(route_and_data):
    """The byte-level path (large payloads decoded straight from the body) changes nothing."""
    route, data = route_and_data
    parse = parse_chat_reply if route == "chat" else parse_google_reply
    raw = json.dumps(data).encode()
    loaded, payloads = load_reply(raw, route)
    assert outcome(parse, loaded, payloads) == outcome(parse, json.loads(raw))


@PROPERTY
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()))
def test_any_bytes_as_a_reply_are_json_or_refused_as_json(raw):
    for route, parse in (("chat", parse_chat_reply), ("google", parse_google_reply)):
        try:
            data, payloads = load_reply(raw, route)
        except ValueError:  # the client turns this into a ResponseError
            continue
        outcome(parse, data, payloads)


@PROPERTY
@given(json_values | st.fixed_dictionaries({"data": st.lists(
    st.fixed_dictionaries({"id": maybe(st.text(max_size=20))}, optional={"architecture": json_values}) | json_values,
    max_size=4)}))
def test_model_lists_give_ids_or_a_package_error(data):
    try:
        ids = parse_model_ids(data, image_only=True) + parse_model_ids(data)
    except AigateError:
        return
    assert all(isinstance(model, str) for model in ids)


@PROPERTY
@given(st.text(max_size=80) | data_urls())
def test_data_urls_and_base64_of_any_text_decode_or_raise_response_error(text):
    for decode in (decode_data_url, b64decode):
        try:
            decode(text)
        except ResponseError:
            pass


# -- error bodies ---------------------------------------------------------------------------------

error_messages = st.text(max_size=60) | json_values.map(lambda v: "upstream said: " + json.dumps({"error": v}))
error_bodies = st.one_of(
    st.binary(max_size=400),
    st.fixed_dictionaries({"error": st.one_of(
        error_messages,
        st.fixed_dictionaries({}, optional={
            "message": maybe(error_messages), "type": maybe(st.text(max_size=20)), "param": leaves,
            "code": maybe(st.integers(0, 999) | st.text(max_size=10)), "status": maybe(st.text(max_size=20)),
            "details": maybe(st.lists(st.fixed_dictionaries({}, optional={"reason": leaves, "@type": leaves}) | json_values,
                                      max_size=2))}),
        json_values)}).map(lambda v: json.dumps(v).encode()),
    st.text(max_size=100).map(lambda t: f"<html><head><title>{t}</title></head><body>{t}</body></html>".encode()),
    st.integers(1, 50_000).map(lambda n: b"[" * n + b"]" * n),
    st.integers(1, 50_000).map(lambda n: b'{"error": {"message": "wrapped ' + b"[" * n + b'"}}'),
)


@PROPERTY
@given(st.integers(min_value=400, max_value=599), error_bodies)
def test_an_error_body_of_any_bytes_gives_one_typed_error(status, raw):
    error = error_from_body(status, raw.decode("utf-8", "replace"), attempts=3)
    assert isinstance(error, GatewayError) and error.status == status
    text = str(error)
    assert text.startswith(f"HTTP {status}: ")
    assert isinstance(error.code, (str, type(None))) and isinstance(error.error_type, (str, type(None)))
