"""The wire format, without a server: request bodies of both routes and replies
in the shapes the gateway and the Gemini API are known to send."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigate_nb.core.errors import (
    AigateError,
    AuthenticationError,
    BadRequestError,
    InputError,
    NoImageError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from aigate_nb.core.images import ImageInput
from aigate_nb.gateway.wire import (
    build_chat_body,
    build_google_body,
    error_from_body,
    parse_chat_reply,
    parse_google_reply,
    parse_model_ids,
    read_error_body,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"png-bytes"
JPEG = b"\xff\xd8\xff" + b"jpeg-bytes"
PNG64 = base64.b64encode(PNG).decode()
JPEG64 = base64.b64encode(JPEG).decode()


# -- chat request bodies ----------------------------------------------------------------------

def test_chat_body_for_a_prompt_alone_is_the_documented_shape():
    body = build_chat_body("a robot", "google/gemini-3.1-flash-image-preview")
    assert body == {
        "model": "google/gemini-3.1-flash-image-preview",
        "messages": [{"role": "user", "content": "a robot"}],
        "modalities": ["image", "text"],
    }


def test_chat_body_puts_image_config_at_the_top_level_only_when_set():
    body = build_chat_body("x", "m", aspect_ratio="16:9", image_size="2K")
    assert body["image_config"] == {"aspect_ratio": "16:9", "image_size": "2K"}
    assert "image_config" not in body["messages"][0]
    assert build_chat_body("x", "m", aspect_ratio="1:1")["image_config"] == {"aspect_ratio": "1:1"}


def test_chat_body_spells_the_smallest_size_as_half_k():
    assert build_chat_body("x", "m", image_size="512")["image_config"] == {"image_size": "0.5K"}


def test_chat_body_with_images_lists_text_then_image_url_parts():
    inputs = [ImageInput("image/png", PNG), ImageInput(None, None, url="https://example.org/a.jpg")]
    content = build_chat_body("edit it", "m", inputs)["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "edit it"}
    assert content[1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG64}"}}
    assert content[2] == {"type": "image_url", "image_url": {"url": "https://example.org/a.jpg"}}


# -- google request bodies --------------------------------------------------------------------

def test_google_body_uses_contents_parts_and_generation_config():
    body = build_google_body("a robot", [ImageInput("image/jpeg", JPEG)], "16:9", "2K")
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a robot"}, {"inlineData": {"mimeType": "image/jpeg", "data": JPEG64}}]}
    ]
    assert body["generationConfig"] == {
        "responseModalities": ["TEXT", "IMAGE"],
        "imageConfig": {"aspectRatio": "16:9", "imageSize": "2K"},
    }


def test_google_body_without_options_has_no_image_config():
    assert "imageConfig" not in build_google_body("x")["generationConfig"]


def test_google_body_refuses_a_url_before_sending():
    with pytest.raises(InputError, match="inline images only"):
        build_google_body("x", [ImageInput(None, None, url="https://example.org/a.png")])


# -- chat replies -----------------------------------------------------------------------------

def chat_reply(message, finish="stop", **extra):
    choice = {"index": 0, "message": message, "finish_reason": finish}
    return {"id": "gate-1", "object": "chat.completion", "choices": [choice], **extra}


def image_item(mime, b64):
    return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{b64}"}}


@pytest.mark.parametrize("content", [None, "", "Here you go."])
def test_chat_reply_reads_images_whatever_the_content(content):
    message = {"role": "assistant", "content": content, "images": [image_item("image/png", PNG64)]}
    reply = parse_chat_reply(chat_reply(message))
    assert [(i.mime, i.data) for i in reply.images] == [("image/png", PNG)]
    assert reply.text == (content or None)
    assert reply.finish_reason == "stop"


def test_chat_reply_keeps_every_image_in_order_with_its_own_type():
    message = {"content": None, "images": [image_item("image/png", PNG64), image_item("image/jpeg", JPEG64)]}
    reply = parse_chat_reply(chat_reply(message, usage={"total_tokens": 9}))
    assert [(i.mime, i.data) for i in reply.images] == [("image/png", PNG), ("image/jpeg", JPEG)]
    assert reply.usage == {"total_tokens": 9}


def test_chat_reply_finds_an_image_in_content_parts_or_markdown():
    parts = [{"type": "text", "text": "done"}, image_item("image/jpeg", JPEG64)]
    assert parse_chat_reply(chat_reply({"content": parts})).images[0].data == JPEG
    markdown = f"Here:\n![image](data:image/png;base64,{PNG64})"
    reply = parse_chat_reply(chat_reply({"content": markdown}))
    assert reply.images[0].data == PNG and reply.text == "Here:"


def test_chat_reply_with_text_only_raises_no_image_with_the_text():
    with pytest.raises(NoImageError) as info:
        parse_chat_reply(chat_reply({"content": "I can only describe it."}))
    assert info.value.text == "I can only describe it."
    assert "text only" in str(info.value) and "I can only describe it." in str(info.value)


def test_chat_reply_content_filter_carries_the_native_reason():
    message = {"content": None}
    choice = {"message": message, "finish_reason": "content_filter", "native_finish_reason": "IMAGE_SAFETY"}
    with pytest.raises(NoImageError) as info:
        parse_chat_reply({"choices": [choice]})
    assert info.value.finish_reason == "IMAGE_SAFETY"
    assert "IMAGE_SAFETY" in str(info.value)


def test_chat_reply_without_choices_is_a_blocked_prompt():
    with pytest.raises(NoImageError) as info:
        parse_chat_reply({"choices": [], "prompt_feedback": {"block_reason": "SAFETY"}})
    assert info.value.block_reason == "SAFETY"
    assert "blocked" in str(info.value)


def test_chat_reply_with_images_none_does_not_crash():
    with pytest.raises(NoImageError):
        parse_chat_reply(chat_reply({"content": None, "images": None}))


def test_chat_reply_with_corrupt_base64_is_a_response_error():
    with pytest.raises(ResponseError, match="base64"):
        parse_chat_reply(chat_reply({"images": [image_item("image/png", "!!not base64!!")]}))


def test_an_error_inside_a_200_reply_is_raised_as_a_gateway_error():
    with pytest.raises(ServerError, match="upstream failed"):
        parse_chat_reply({"error": {"code": 502, "message": "upstream failed"}})


# -- google replies ---------------------------------------------------------------------------

def google_reply(parts, finish="STOP", **extra):
    return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}], **extra}


def test_google_reply_skips_thought_images_and_keeps_signatures():
    parts = [
        {"inlineData": {"mimeType": "image/png", "data": PNG64}, "thought": True},
        {"text": "Here it is.", "thoughtSignature": "c2lnQQ=="},
        {"inlineData": {"mimeType": "image/jpeg", "data": JPEG64}, "thoughtSignature": "c2lnQg=="},
    ]
    reply = parse_google_reply(google_reply(parts, usageMetadata={"totalTokenCount": 5}, responseId="r1"))
    assert [(i.mime, i.data) for i in reply.images] == [("image/jpeg", JPEG)]
    assert reply.text == "Here it is."
    assert reply.usage == {"totalTokenCount": 5}
    assert reply.model_parts == [
        {"text": "Here it is.", "thoughtSignature": "c2lnQQ=="},
        {"inlineData": {"mimeType": "image/jpeg", "imageIndex": 0}, "thoughtSignature": "c2lnQg=="},
    ]


def test_google_reply_with_only_a_thought_image_takes_the_last_one():
    parts = [
        {"inlineData": {"mimeType": "image/png", "data": PNG64}, "thought": True},
        {"inlineData": {"mimeType": "image/jpeg", "data": JPEG64}, "thought": True},
    ]
    assert parse_google_reply(google_reply(parts)).images[0].data == JPEG


def test_google_reply_reads_snake_case_parts():
    parts = [{"inline_data": {"mime_type": "image/jpeg", "data": JPEG64}}]
    assert parse_google_reply(google_reply(parts)).images[0].mime == "image/jpeg"


def test_google_image_safety_finish_without_parts_raises_no_image():
    candidate = {"content": {"role": "model"}, "finishReason": "IMAGE_SAFETY", "finishMessage": "Unsafe output."}
    data = {"candidates": [candidate]}
    with pytest.raises(NoImageError) as info:
        parse_google_reply(data)
    assert info.value.finish_reason == "IMAGE_SAFETY"
    assert info.value.finish_message == "Unsafe output."
    assert "IMAGE_SAFETY" in str(info.value) and "Unsafe output." in str(info.value)


def test_google_prompt_blocked_without_candidates_raises_no_image():
    with pytest.raises(NoImageError) as info:
        parse_google_reply({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}})
    assert info.value.block_reason == "PROHIBITED_CONTENT"


def test_google_text_only_reply_raises_no_image_with_text():
    with pytest.raises(NoImageError) as info:
        parse_google_reply(google_reply([{"text": "I can't draw that.", "thoughtSignature": "eA=="}]))
    assert info.value.finish_reason == "STOP" and info.value.text == "I can't draw that."


def test_google_part_with_null_text_is_ignored():
    parts = [{"text": None}, {"inlineData": {"mimeType": "image/png", "data": PNG64}}]
    reply = parse_google_reply(google_reply(parts))
    assert reply.text is None and reply.images[0].data == PNG


# -- models -----------------------------------------------------------------------------------

def test_model_ids_can_be_filtered_to_image_models():
    data = {"data": [
        {"id": "google/gemini-3-pro-image", "architecture": {"output_modalities": ["image", "text"]}},
        {"id": "google/gemini-2.5-flash", "architecture": {"output_modalities": ["text"]}},
        {"id": "google/gemini-2.5-flash-image"},
        {"id": 3},
    ]}
    assert parse_model_ids(data) == [
        "google/gemini-3-pro-image", "google/gemini-2.5-flash", "google/gemini-2.5-flash-image"]
    assert parse_model_ids(data, image_only=True) == ["google/gemini-3-pro-image", "google/gemini-2.5-flash-image"]


# -- error bodies -----------------------------------------------------------------------------

def test_openai_style_error_body_gives_the_gateways_message_and_code():
    body = json.dumps({"error": {"message": "bad ratio", "type": "invalid_request_error",
                                 "param": "image_config.aspect_ratio", "code": "invalid_value"}})
    error = error_from_body(400, body)
    assert isinstance(error, BadRequestError)
    assert (error.message, error.code, error.error_type, error.status) == (
        "bad ratio", "invalid_value", "invalid_request_error", 400)
    assert str(error) == "HTTP 400: bad ratio"


def test_google_style_error_body_gives_status_and_reason():
    detail = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
    body = json.dumps({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
                                 "details": [detail]}})
    error = error_from_body(400, body)
    assert isinstance(error, AuthenticationError)
    assert error.error_type == "INVALID_ARGUMENT" and error.message == "API key not valid."


def test_nested_upstream_error_is_unwrapped():
    inner = json.dumps({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}})
    body = json.dumps({"error": {"message": f"upstream returned error: 503 {inner}", "type": None, "code": "500"}})
    assert read_error_body(500, body)[0] == "The model is overloaded."


def test_error_as_a_plain_string_is_read():
    assert read_error_body(400, json.dumps({"error": "model not found"}))[0] == "model not found"


def test_html_502_page_is_summarised_in_one_line():
    html = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
    error = error_from_body(502, html)
    assert isinstance(error, ServerError)
    assert "HTML page (502 Bad Gateway)" in str(error) and "\n" not in str(error)


@pytest.mark.parametrize("status,kind", [(401, AuthenticationError), (403, AuthenticationError), (429, RateLimitError),
                                         (404, BadRequestError), (422, BadRequestError),
                                         (500, ServerError), (503, ServerError)])
def test_status_selects_the_error_type(status, kind):
    assert type(error_from_body(status, "{}")) is kind


# -- robustness: any JSON gives the package's own errors --------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.sampled_from(["choices", "message", "images", "image_url", "url", "content", "candidates", "parts",
                         "inlineData", "data", "mimeType", "text", "thought", "error", "finishReason", "promptFeedback",
                         "blockReason", "finish_reason", "usage", "code", "message", "type", "status"]),
        children, max_size=5),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_reply_parsers_raise_only_package_errors(value):
    for parse in (parse_chat_reply, parse_google_reply):
        try:
            parse(value)
        except AigateError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=400, max_value=599), st.text(max_size=200) | json_values.map(json.dumps))
def test_error_bodies_of_any_shape_give_a_typed_error(status, text):
    error = error_from_body(status, text)
    assert isinstance(error, AigateError) and str(error)


def test_a_huge_gateway_message_is_cut_to_one_readable_line():
    body = json.dumps({"error": {"message": "upstream said:\n" + "x" * 100_000, "type": "server_error"}})
    error = error_from_body(500, body)
    assert len(error.message) == 500 and error.message.endswith("...")
    assert "\n" not in str(error)
