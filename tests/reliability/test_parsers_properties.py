"""Property tests of the reply and error parsers with replies shaped like the real ones:
valid envelopes of both routes with random leaves, random data URLs, random and broken
base64, large payloads that take the fast byte-level path, and error bodies of any bytes.
Whatever arrives, the only exceptions are the package's own, and what comes back is usable.
Where a value can be built and read back (data URLs, base64, replies built by hand from
generated images and text, error bodies built by the emulator), reading gives back what
was built.

``tests/test_wire.py`` feeds the parsers arbitrary JSON; these strategies get past the
first checks, into the code that decodes images and text.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import random
import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aigate_nb.core.errors import (
    AigateError,
    AuthenticationError,
    BadRequestError,
    GatewayError,
    NoImageError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from aigate_nb.core.images import b64decode, b64encode, decode_data_url, encode_data_url
from aigate_nb.core.text import one_line
from aigate_nb.emulator.errors import ApiError, google_error_body, openai_error_body
from aigate_nb.gateway.wire import (
    MESSAGE_LIMIT,
    Reply,
    ReplyImage,
    error_from_body,
    load_reply,
    model_turn,
    parse_chat_reply,
    parse_google_reply,
    parse_model_ids,
)

PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ROUND_TRIP = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

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
            (2, st.fixed_dictionaries({"type": st.just("image_url"),
                                       "image_url": st.fixed_dictionaries({"url": url})})),
            (1, json_values)), max_size=3))))
    choice: dict = {"index": 0, "message": draw(maybe(st.just(message)))}
    if sometimes(draw, 1):
        choice["finish_reason"] = draw(maybe(st.sampled_from(["stop", "content_filter", "length", "error"])))
    if sometimes(draw, 1):
        choice["native_finish_reason"] = draw(maybe(st.sampled_from(["STOP", "IMAGE_SAFETY", "NO_IMAGE"])))
    choices = st.lists(weighted((4, st.just(choice)), (1, json_values)), min_size=1, max_size=2)
    reply: dict = {"choices": draw(maybe(choices))}
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
    payload = maybe(weighted((2, base64_text()), (1, large_payloads)))
    inline = st.fixed_dictionaries({mime_key: maybe(MIMES), "data": payload})
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
        candidates = st.lists(weighted((4, st.just(candidate)), (1, json_values)), min_size=1, max_size=2)
        reply["candidates"] = draw(maybe(candidates))
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
            "details": maybe(st.lists(
                st.fixed_dictionaries({}, optional={"reason": leaves, "@type": leaves}) | json_values,
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


# -- round trips ----------------------------------------------------------------------------------

IMAGE_MIMES = st.sampled_from(["image/png", "image/jpeg", "image/webp", "image/heic", "image/gif"])
any_bytes = weighted((4, st.binary(max_size=300)),
                     (1, st.integers(0, 2**32).map(lambda seed: random.Random(seed).randbytes(70_000))))
images = st.lists(st.tuples(IMAGE_MIMES, any_bytes), min_size=1, max_size=3)
usages = st.dictionaries(st.sampled_from(["prompt_tokens", "completion_tokens", "totalTokenCount"]),
                         st.integers(0, 10_000), max_size=3)


def stdlib_base64(data: bytes) -> str:
    """Base64 by the standard library, an encoder independent of the package's."""
    return base64.b64encode(data).decode("ascii")


def joined_text(texts) -> str | None:
    """The text a reply gives: its non-blank texts, one per line, or None."""
    return "\n".join(text for text in texts if text.strip()) or None


def read_both_ways(parse, body: dict, route: str) -> list[Reply]:
    """``body`` parsed from its JSON and from its bytes (where large images skip the JSON parser)."""
    raw = json.dumps(body).encode()
    return [parse(json.loads(raw)), parse(*load_reply(raw, route))]


@ROUND_TRIP
@given(IMAGE_MIMES | st.from_regex(r"[a-z]{1,11}/[a-z0-9.+-]{1,20}", fullmatch=True), any_bytes)
def test_a_data_url_of_any_bytes_decodes_back_to_its_type_and_bytes(mime, data):
    url = f"data:{mime};base64,{stdlib_base64(data)}"
    assert encode_data_url(mime, data) == url
    assert decode_data_url(url) == (mime, data)


@ROUND_TRIP
@given(any_bytes)
def test_base64_of_any_bytes_decodes_back_to_them(data):
    text = stdlib_base64(data)
    assert b64encode(data) == text
    for encoded in (text, text.encode(), memoryview(text.encode())):  # load_reply passes memoryviews
        assert b64decode(encoded) == data


@st.composite
def chat_replies_built_from(draw) -> tuple[dict, Reply]:
    """A chat reply built by hand from generated images and text, and the ``Reply`` it holds.

    The images are in ``message.images``, or (as some gateways send one image) an ``image_url``
    part of ``content`` beside a text part.
    """
    in_content = draw(st.booleans())
    pictures = draw(images)[:1] if in_content else draw(images)
    items = [{"type": "image_url", "image_url": {"url": f"data:{mime};base64,{stdlib_base64(data)}"}}
             for mime, data in pictures]
    text = draw(st.none() | st.text(max_size=40))
    if in_content:
        texts = [] if text is None else [{"type": "text", "text": text}]
        message = {"role": "assistant", "content": draw(st.permutations(texts + items))}
    else:
        message = {"role": "assistant", "content": text, "images": items}
    finish = draw(st.none() | st.sampled_from(["stop", "length", "content_filter"]))
    usage = draw(usages)
    reply_id = draw(st.text(min_size=1, max_size=12))
    body = {"id": reply_id, "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}
    expected = Reply([ReplyImage(mime, data) for mime, data in pictures],
                     joined_text([] if text is None else [text]), finish, usage, response_id=reply_id)
    return body, expected


@ROUND_TRIP
@given(chat_replies_built_from())
def test_a_chat_reply_built_from_images_and_text_gives_them_back(built):
    body, expected = built
    for reply in read_both_ways(parse_chat_reply, body, "chat"):
        assert reply == expected


@st.composite
def google_replies_built_from(draw) -> tuple[dict, Reply, list[dict]]:
    """A ``generateContent`` reply built by hand from generated images and texts in any order,
    some parts signed, sometimes after a thought text and a thought image; the ``Reply`` it
    holds (``model_parts`` aside) and its parts without the thoughts."""
    pictures = draw(images)
    texts = draw(st.lists(st.text(max_size=30), max_size=2))
    order = draw(st.permutations([("image", picture) for picture in pictures] + [("text", text) for text in texts]))
    parts = []
    for kind, value in order:
        if kind == "image":
            part = {"inlineData": {"mimeType": value[0], "data": stdlib_base64(value[1])}}
        else:
            part = {"text": value}
        if draw(st.booleans()):
            part["thoughtSignature"] = draw(st.text(min_size=1, max_size=12))
        parts.append(part)
    thoughts = [{"text": draw(st.text(max_size=30)), "thought": True},
                {"inlineData": {"mimeType": "image/png", "data": stdlib_base64(draw(st.binary(max_size=50)))},
                 "thought": True}] if draw(st.booleans()) else []
    finish = draw(st.none() | st.sampled_from(["STOP", "MAX_TOKENS"]))
    usage = draw(usages)
    response_id = draw(st.text(min_size=1, max_size=12))
    candidate = {"content": {"role": "model", "parts": thoughts + parts}, "index": 0}
    if finish is not None:
        candidate["finishReason"] = finish
    body = {"candidates": [candidate], "usageMetadata": usage, "responseId": response_id}
    expected = Reply([ReplyImage(value[0], value[1]) for kind, value in order if kind == "image"],
                     joined_text([value for kind, value in order if kind == "text"]), finish, usage,
                     response_id=response_id)
    return body, expected, parts


@ROUND_TRIP
@given(google_replies_built_from())
def test_a_google_reply_built_from_images_and_text_gives_them_back_without_the_thoughts(built):
    body, expected, _ = built
    for reply in read_both_ways(parse_google_reply, body, "google"):
        assert dataclasses.replace(reply, model_parts=None) == expected


@ROUND_TRIP
@given(google_replies_built_from())
def test_a_google_replys_model_turn_sends_back_the_parts_received_without_the_thoughts(built):
    body, _, parts = built
    for reply in read_both_ways(parse_google_reply, body, "google"):
        turn = model_turn(reply.model_parts, [(image.mime, image.data) for image in reply.images])
        assert turn == {"role": "model", "parts": parts}


# A message in the gateway's own words: any text but blank, long enough at times to be clipped, and
# without braces, which would make the client look for an upstream error wrapped inside it.
error_texts = weighted((3, st.text(min_size=1, max_size=60)), (1, st.text(min_size=450, max_size=600))).filter(
    lambda message: message.strip() and "{" not in message)


# Every status the client treats apart, and any other.
error_statuses = st.sampled_from([400, 401, 403, 404, 429, 500, 502, 503, 504]) | st.integers(400, 599)


def expected_error_type(status: int, kind: str | None, code: str | None) -> type[GatewayError]:
    """The documented class: an authentication error for 401, 403 or a kind or code saying so,
    then by status."""
    if status in (401, 403) or kind in ("authentication_error", "UNAUTHENTICATED", "PERMISSION_DENIED") \
            or code == "API_KEY_INVALID":
        return AuthenticationError
    if status == 429:
        return RateLimitError
    return ServerError if status >= 500 else BadRequestError


def check_error(error: GatewayError, status: int, message: str, code: str | None, kind: str | None) -> None:
    """``error`` carries what the body said, its message on one line, and shows it after the status."""
    assert type(error) is expected_error_type(status, kind, code)
    expected = (status, one_line(message, MESSAGE_LIMIT), code, kind)
    assert (error.status, error.message, error.code, error.error_type) == expected
    assert str(error).startswith(f"HTTP {status}: {error.message.rstrip('. ')}")


@ROUND_TRIP
@given(error_statuses, error_texts,
       st.none() | st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=20),
       st.sampled_from([None, "invalid_request_error", "server_error", "authentication_error"]))
def test_an_openai_error_body_gives_back_its_status_message_code_and_type(status, message, code, kind):
    sent = ApiError(status, message, code=code, kind=kind)
    error = error_from_body(status, json.dumps(openai_error_body(sent)))
    check_error(error, status, message, code, sent.kind)


@ROUND_TRIP
@given(error_statuses, error_texts, st.none() | st.sampled_from(["API_KEY_INVALID", "RATE_LIMIT_EXCEEDED"]))
def test_a_google_error_body_gives_back_its_status_message_reason_and_status_name(status, message, reason):
    details = reason and [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": reason}]
    body = google_error_body(ApiError(status, message, details=details))
    error = error_from_body(status, json.dumps(body))
    check_error(error, status, message, reason or str(status), body["error"]["status"])


@ROUND_TRIP
@given(error_statuses, error_texts)
def test_an_upstream_error_wrapped_in_the_gateways_message_gives_the_upstream_message(status, inner):
    wrapped = f"Provider returned error: {status} " + json.dumps({"error": {"message": inner, "code": status}})
    for body in (openai_error_body(ApiError(status, wrapped)), google_error_body(ApiError(status, wrapped))):
        assert error_from_body(status, json.dumps(body)).message == one_line(inner, MESSAGE_LIMIT)
