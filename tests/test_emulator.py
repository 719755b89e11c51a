"""The gateway emulator, tested over real loopback HTTP as a client would see it."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import random
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection

import pytest
import requests
from PIL import Image

from aigate_nb.emulator import Emulator
from aigate_nb.emulator.models import find_model
from support import REPO, emulator_command, max_in_flight, wait_for

FLASH_31 = "google/gemini-3.1-flash-image-preview"
PRO_3 = "google/gemini-3-pro-image"
FLASH_25 = "google/gemini-2.5-flash-image"
SECRET = "sk-emulator-test-secret-4242"


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture(scope="session")
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def fresh(emu):
    """The shared emulator with no records and no faults left by other tests."""
    emu.clear()
    yield emu
    emu.clear()


@pytest.fixture(scope="session")
def keyed():
    with Emulator(api_key=SECRET) as emulator:
        yield emulator


@pytest.fixture(scope="session")
def http():
    with requests.Session() as session:
        yield session


def chat_body(prompt, model=FLASH_31, *, ratio=None, size=None, images=(), **extra):
    content = prompt
    if images:
        content = [{"type": "text", "text": prompt}] + [
            {"type": "image_url", "image_url": {"url": url}} for url in images
        ]
    body = {"model": model, "messages": [{"role": "user", "content": content}], "modalities": ["image", "text"]}
    config = {k: v for k, v in (("aspect_ratio", ratio), ("image_size", size)) if v is not None}
    if config:
        body["image_config"] = config
    body.update(extra)
    return body


def google_body(prompt, *, ratio=None, size=None, parts=(), **config):
    image_config = {k: v for k, v in (("aspectRatio", ratio), ("imageSize", size)) if v is not None}
    generation = {"responseModalities": ["TEXT", "IMAGE"], **config}
    if image_config:
        generation["imageConfig"] = image_config
    return {"contents": [{"role": "user", "parts": [*parts, {"text": prompt}]}], "generationConfig": generation}


def google_url(emulator, model):
    return f"{emulator.url}/v1beta/models/{model}:generateContent"


def decode(data_url):
    """(mime, bytes, PIL image) of a data URL."""
    head, _, payload = data_url.partition(",")
    raw = base64.b64decode(payload, validate=True)
    return head[len("data:"):].split(";")[0], raw, Image.open(io.BytesIO(raw))


def chat_image(reply):
    return decode(reply["choices"][0]["message"]["images"][0]["image_url"]["url"])


def png_data_url(size=(64, 48), colour=(200, 30, 30)):
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    raw = buffer.getvalue()
    return "data:image/png;base64," + base64.b64encode(raw).decode(), raw


def image_parts(reply):
    return [p for p in reply["candidates"][0]["content"]["parts"] if "inlineData" in p]


# -- /v1/models ----------------------------------------------------------------------------


def test_models_lists_image_and_text_models_in_openai_shape(emu, http):
    reply = http.get(emu.url + "/v1/models")
    assert reply.status_code == 200
    body = reply.json()
    assert body["object"] == "list"
    ids = [m["id"] for m in body["data"]]
    assert {FLASH_31, PRO_3, FLASH_25, "google/gemini-3.1-flash-image", "google/gemini-3-pro-image-preview"} <= set(ids)
    assert "google/gemini-2.5-flash" in ids and "openai/gpt-4o-mini" in ids
    entry = next(m for m in body["data"] if m["id"] == PRO_3)
    assert entry["object"] == "model" and entry["owned_by"] == "google" and isinstance(entry["created"], int)
    assert "image" in entry["architecture"]["output_modalities"]


def test_models_filter_keeps_only_image_models(emu, http):
    body = http.get(emu.url + "/v1/models", params={"output_modalities": "image"}).json()
    ids = {m["id"] for m in body["data"]}
    assert FLASH_31 in ids
    assert "google/gemini-2.5-flash" not in ids and "openai/gpt-4o-mini" not in ids
    assert all("image" in m["architecture"]["output_modalities"] for m in body["data"])


# -- pixels and formats --------------------------------------------------------------------

# The 3.1-flash table of the facts file §1.4, with 21:9 at 512 read as 792x336 (the doc's 792x168
# is a typo).
DOC_FLASH_31 = {
    "1:1": ("512x512", "1024x1024", "2048x2048", "4096x4096"),
    "1:4": ("256x1024", "512x2048", "1024x4096", "2048x8192"),
    "1:8": ("192x1536", "384x3072", "768x6144", "1536x12288"),
    "2:3": ("424x632", "848x1264", "1696x2528", "3392x5056"),
    "3:2": ("632x424", "1264x848", "2528x1696", "5056x3392"),
    "3:4": ("448x600", "896x1200", "1792x2400", "3584x4800"),
    "4:1": ("1024x256", "2048x512", "4096x1024", "8192x2048"),
    "4:3": ("600x448", "1200x896", "2400x1792", "4800x3584"),
    "4:5": ("464x576", "928x1152", "1856x2304", "3712x4608"),
    "5:4": ("576x464", "1152x928", "2304x1856", "4608x3712"),
    "8:1": ("1536x192", "3072x384", "6144x768", "12288x1536"),
    "9:16": ("384x688", "768x1376", "1536x2752", "3072x5504"),
    "16:9": ("688x384", "1376x768", "2752x1536", "5504x3072"),
    "21:9": ("792x336", "1584x672", "3168x1344", "6336x2688"),
}


def test_capability_table_matches_the_documented_pixel_table():
    caps = find_model(FLASH_31).image
    for ratio, row in DOC_FLASH_31.items():
        for size, expected in zip(("512", "1K", "2K", "4K"), row):
            assert "x".join(map(str, caps.pixels(ratio, size))) == expected, (ratio, size)
    pro = find_model(PRO_3).image
    assert set(pro.ratios) == set(DOC_FLASH_31) - {"1:4", "4:1", "1:8", "8:1"}
    assert pro.pixels("2:3", "4K") == (3392, 5056)


@pytest.mark.parametrize(
    "model, ratio, size, pixels, fmt",
    [
        (FLASH_31, "16:9", "2K", (2752, 1536), "JPEG"),
        (FLASH_31, "21:9", "2K", (3168, 1344), "JPEG"),
        (FLASH_31, "21:9", "512", (792, 336), "PNG"),
        (FLASH_31, "8:1", "0.5K", (1536, 192), "PNG"),
        (FLASH_31, "1:4", "1K", (512, 2048), "PNG"),
        (FLASH_25, "1:1", None, (1024, 1024), "PNG"),
        (FLASH_25, "21:9", None, (1536, 672), "PNG"),
        (PRO_3, "9:16", "1K", (768, 1376), "JPEG"),
        (PRO_3, "16:9", "4K", (5504, 3072), "JPEG"),
    ],
)
def test_chat_image_has_documented_size_and_format(emu, http, model, ratio, size, pixels, fmt):
    body = chat_body(f"pixels {ratio}", model, ratio=ratio, size=size)
    reply = http.post(emu.url + "/v1/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    mime, _, image = chat_image(reply.json())
    assert image.size == pixels
    assert image.format == fmt
    assert mime == f"image/{fmt.lower()}"


def test_chat_defaults_to_square_1k(emu, http):
    reply = http.post(emu.url + "/v1/chat/completions", json=chat_body("no settings at all"))
    _, _, image = chat_image(reply.json())
    assert image.size == (1024, 1024)


def test_same_request_gives_identical_bytes_and_another_prompt_does_not(emu, http):
    body = chat_body("determinism check", ratio="3:2", size="1K")
    first = chat_image(http.post(emu.url + "/v1/chat/completions", json=body).json())[1]
    second = chat_image(http.post(emu.url + "/v1/chat/completions", json=body).json())[1]
    other = chat_image(http.post(emu.url + "/v1/chat/completions", json={**body, "messages": [
        {"role": "user", "content": "determinism check, but different"}]}).json())[1]
    assert first == second
    assert first != other


@pytest.mark.parametrize("route", ["chat", "google"])
def test_a_seed_draws_a_picture_of_its_own_the_same_every_time(emu, http, route):
    def picture(seed):
        if route == "chat":
            body = chat_body("seeded lighthouse", size="512", **({} if seed is None else {"seed": seed}))
            return chat_image(http.post(emu.url + "/v1/chat/completions", json=body).json())[1]
        config = {} if seed is None else {"seed": seed}
        reply = http.post(google_url(emu, FLASH_31), json=google_body("seeded lighthouse", size="512", **config))
        return base64.b64decode(image_parts(reply.json())[-1]["inlineData"]["data"])

    unseeded, zero, one, two = picture(None), picture(0), picture(1), picture(2)
    assert zero == unseeded  # seed 0 is the request alone, as a client's first copy sends it
    assert len({unseeded, one, two}) == 3 and picture(2) == two


def test_a_seed_is_named_on_the_picture_and_changes_its_colours(emu, http):
    plain = chat_image(http.post(emu.url + "/v1/chat/completions", json=chat_body("coloured", size="512")).json())[2]
    seeded = chat_image(http.post(emu.url + "/v1/chat/completions",
                                  json=chat_body("coloured", size="512", seed=3)).json())[2]
    # The background's colours, away from the words and the label: a variant is told apart at a glance.
    corner = (0, 0, 40, 40)
    assert plain.convert("RGB").crop(corner).getcolors(4096) != seeded.convert("RGB").crop(corner).getcolors(4096)


@pytest.mark.parametrize(
    "route,seed,message",
    [
        ("chat", "7", "Invalid type for 'seed': expected an integer"),
        ("chat", 1.5, "Invalid type for 'seed'"),
        ("google", True, "Invalid value at 'generation_config.seed' (TYPE_INT32)"),
        ("google", 2**40, "Invalid value at 'generation_config.seed' (TYPE_INT32)"),
    ],
)
def test_a_seed_that_is_not_a_whole_number_is_refused_in_each_routes_words(emu, http, route, seed, message):
    if route == "chat":
        reply = http.post(emu.url + "/v1/chat/completions", json=chat_body("bad seed", seed=seed))
    else:
        reply = http.post(google_url(emu, FLASH_31), json=google_body("bad seed", seed=seed))
    assert reply.status_code == 400 and message in reply.json()["error"]["message"]


# -- chat route shapes ---------------------------------------------------------------------


def test_chat_reply_has_gateway_shape(emu, http):
    reply = http.post(emu.url + "/v1/chat/completions", json=chat_body("shape check", size="512")).json()
    assert reply["id"].startswith("gate-") and reply["object"] == "chat.completion"
    assert isinstance(reply["created"], int) and reply["model"] == FLASH_31
    choice = reply["choices"][0]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["images"][0]["type"] == "image_url"
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens"] >= 747  # the 512 tier's image tokens


def test_chat_without_modalities_replies_with_text_only(emu, http):
    body = chat_body("just talk")
    del body["modalities"]
    choice = http.post(emu.url + "/v1/chat/completions", json=body).json()["choices"][0]
    assert choice["finish_reason"] == "stop"
    assert "images" not in choice["message"]
    assert "modalities" in choice["message"]["content"]


def test_chat_content_is_null_empty_or_text_depending_on_prompt(emu, http):
    seen = set()
    for number in range(12):
        body = chat_body(f"content variety {number}", size="512")
        content = http.post(emu.url + "/v1/chat/completions", json=body).json()["choices"][0]["message"]["content"]
        seen.add("null" if content is None else "empty" if content == "" else "text")
    assert seen == {"null", "empty", "text"}


# -- Google route --------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["google/gemini-3-pro-image", "gemini-3-pro-image", "google%2Fgemini-3-pro-image"])
def test_google_route_accepts_prefixed_and_bare_ids(emu, http, model):
    reply = http.post(google_url(emu, model), json=google_body("a tiny robot", ratio="16:9"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    candidate = body["candidates"][0]
    assert candidate["finishReason"] == "STOP" and candidate["content"]["role"] == "model"
    image = image_parts(body)[-1]["inlineData"]
    assert image["mimeType"] == "image/jpeg"
    assert Image.open(io.BytesIO(base64.b64decode(image["data"]))).size == (1376, 768)
    assert body["modelVersion"] == "gemini-3-pro-image" and body["responseId"]


def test_google_route_accepts_snake_case(emu, http):
    body = {
        "contents": [{"role": "user", "parts": [{"text": "snake case"}]}],
        "generation_config": {
            "response_modalities": ["text", "image"],
            "image_config": {"aspect_ratio": "4:1", "image_size": "512"},
        },
    }
    reply = http.post(google_url(emu, FLASH_31), json=body)
    assert reply.status_code == 200, reply.text
    data = image_parts(reply.json())[-1]["inlineData"]["data"]
    assert Image.open(io.BytesIO(base64.b64decode(data))).size == (1024, 256)


def test_gemini3_signs_the_image_and_a_leading_text_part(emu, http):
    for number in range(12):
        reply = http.post(google_url(emu, FLASH_31), json=google_body(f"signed parts {number}", size="512")).json()
        parts = reply["candidates"][0]["content"]["parts"]
        if "text" in parts[0]:
            break
    else:
        pytest.fail("no reply had a text part before its image")
    assert parts[0]["thoughtSignature"] and base64.b64decode(parts[0]["thoughtSignature"])
    assert "inlineData" in parts[1] and parts[1]["thoughtSignature"]
    usage = reply["usageMetadata"]
    assert usage["thoughtsTokenCount"] > 0
    parts = ("promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount")
    assert usage["totalTokenCount"] == sum(usage[name] for name in parts)


def test_gemini_25_never_signs(emu, http):
    for number in range(4):
        reply = http.post(google_url(emu, FLASH_25), json=google_body(f"unsigned {number}")).json()
        assert all("thoughtSignature" not in part for part in reply["candidates"][0]["content"]["parts"])
        assert "thoughtsTokenCount" not in reply["usageMetadata"]


def test_include_thoughts_puts_a_smaller_unsigned_draft_first(emu, http):
    body = google_body("show your thinking", ratio="1:1", thinkingConfig={"includeThoughts": True})
    parts = http.post(google_url(emu, PRO_3), json=body).json()["candidates"][0]["content"]["parts"]
    images = [p for p in parts if "inlineData" in p]
    assert len(images) == 2
    draft, final = images
    assert draft["thought"] is True and "thoughtSignature" not in draft
    assert "thought" not in final and final["thoughtSignature"]
    draft_size = Image.open(io.BytesIO(base64.b64decode(draft["inlineData"]["data"]))).size
    final_size = Image.open(io.BytesIO(base64.b64decode(final["inlineData"]["data"]))).size
    assert final_size == (1024, 1024) and draft_size[0] < final_size[0]


def test_image_only_modality_gives_no_text_part(emu, http):
    for number in range(6):
        body = google_body(f"image only {number}", size="512", responseModalities=["IMAGE"])
        parts = http.post(google_url(emu, FLASH_31), json=body).json()["candidates"][0]["content"]["parts"]
        assert [list(p) for p in parts] == [["inlineData", "thoughtSignature"]]


MISSING_SIGNATURE = (
    "Image part is missing a thought_signature in content position 2, part position 1. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior for more details."
)


def test_multiturn_without_signature_is_refused_with_googles_wording(emu, http):
    first = http.post(google_url(emu, FLASH_31), json=google_body("first turn", size="512")).json()
    model_parts = [p for p in first["candidates"][0]["content"]["parts"] if "inlineData" in p]
    stripped = [{"inlineData": p["inlineData"]} for p in model_parts]
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "first turn"}]},
            {"role": "model", "parts": stripped},
            {"role": "user", "parts": [{"text": "now make it blue"}]},
        ],
        "generationConfig": {"imageConfig": {"imageSize": "512"}},
    }
    reply = http.post(google_url(emu, FLASH_31), json=body)
    assert reply.status_code == 400
    assert reply.json() == {"error": {"code": 400, "message": MISSING_SIGNATURE, "status": "INVALID_ARGUMENT"}}


def test_multiturn_with_signatures_edits_the_previous_image(fresh, http):
    first = http.post(google_url(fresh, FLASH_31), json=google_body("first turn", size="512")).json()
    model_parts = first["candidates"][0]["content"]["parts"]
    previous = base64.b64decode(model_parts[-1]["inlineData"]["data"])
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "first turn"}]},
            {"role": "model", "parts": model_parts},
            {"role": "user", "parts": [{"text": "now make it blue"}]},
        ],
        "generationConfig": {"imageConfig": {"imageSize": "512"}},
    }
    reply = http.post(google_url(fresh, FLASH_31), json=body)
    assert reply.status_code == 200, reply.text
    assert fresh.attempts("now make it blue")[-1].images[0].sha256 == hashlib.sha256(previous).hexdigest()


# -- validation ----------------------------------------------------------------------------

BAD_IMAGE = "data:image/png;base64," + base64.b64encode(b"this is not an image").decode()


@pytest.mark.parametrize(
    "body, param, message",
    [
        (chat_body("x", "google/no-such-model"), "model",
         "The model 'google/no-such-model' does not exist; check the exact model id in /v1/models."),
        (chat_body("x", ratio="7:3"), "image_config.aspect_ratio", "Aspect ratio '7:3' is not supported"),
        (chat_body("x", PRO_3, ratio="1:8"), "image_config.aspect_ratio", "Aspect ratio '1:8' is not supported"),
        (chat_body("x", size="2k"), "image_config.image_size", "uppercase 'K'"),
        (chat_body("x", FLASH_25, size="1K"), "image_config.image_size",
         "Image size 1K is not supported for this model."),
        (chat_body("x", PRO_3, size="0.5K"), "image_config.image_size",
         "Image size 0.5K is not supported for this model. Supported values are: 1K, 2K, 4K."),
        (chat_body("x", aspect_ratio="16:9"), "aspect_ratio", "image_config"),
        (chat_body("x", image_size="2K"), "image_size", "image_config"),
        (chat_body("x", extra_body={"image_config": {"aspect_ratio": "16:9"}}), "extra_body", "top level"),
        ({**chat_body("x"), "messages": [{"role": "user", "content": "x", "image_config": {"aspect_ratio": "1:1"}}]},
         "messages[0].image_config", "top level"),
        (chat_body("x", FLASH_25, images=[png_data_url()[0]] * 4), "messages", "at most 3"),
        (chat_body("x", images=[BAD_IMAGE]), "messages[0].content[1].image_url.url", "Unable to process input image"),
        (chat_body("x", "google/gemini-2.5-flash"), "modalities", "cannot output images"),
    ],
)
def test_chat_validation_errors(emu, http, body, param, message):
    reply = http.post(emu.url + "/v1/chat/completions", json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param
    assert message in error["message"]


def test_unknown_model_error_is_the_gateway_body(emu, http):
    reply = http.post(emu.url + "/v1/chat/completions", json=chat_body("x", "gemini-3-pro-image"))
    assert reply.json() == {"error": {
        "message": "The model 'gemini-3-pro-image' does not exist; check the exact model id in /v1/models.",
        "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}


def test_body_that_is_not_json_is_a_400_on_both_routes(emu, http):
    chat = http.post(emu.url + "/v1/chat/completions", data=b"{not json", headers={"Content-Type": "application/json"})
    assert chat.status_code == 400 and "JSON" in chat.json()["error"]["message"]
    google = http.post(google_url(emu, PRO_3), data=b"{not json")
    assert google.status_code == 400
    assert google.json()["error"]["message"].startswith("Invalid JSON payload received.")


RATIO_31 = (
    "* GenerateContentRequest.generation_config.image_config.aspect_ratio: aspect_ratio must be one of "
    "'1:1', '1:4', '1:8', '2:3', '3:2', '3:4', '4:1', '4:3', '4:5', '5:4', '8:1', '9:16', '16:9', or '21:9'.\n"
)


@pytest.mark.parametrize(
    "model, body, message",
    [
        (FLASH_31, google_body("x", ratio="7:3"), RATIO_31),
        (FLASH_31, google_body("x", size="0.5K"),
         "Image size 0.5K is not supported for this model. Supported values are: 1K, 2K, 4K, 512, 512P, 512PX."),
        (FLASH_31, google_body("x", size="1k"), "uppercase 'K'"),
        (FLASH_25, google_body("x", size="1K"), "Image size 1K is not supported for this model."),
        (PRO_3, google_body("x", aspectRatio="16:9"),
         "Invalid JSON payload received. Unknown name \"aspectRatio\" at 'request.generation_config': "
         "Cannot find field."),
        (PRO_3, google_body("x", parts=[{"fileData": {"mimeType": "image/png", "fileUri": "https://example.com/a.png"}}]),
         "inline images only"),
        (PRO_3, google_body("x", parts=[{"inlineData": {"mimeType": "image/png", "data": "https://example.com/a.png"}}]),
         "inline images only"),
        (FLASH_25,
         google_body("x", parts=[{"inlineData": {"mimeType": "image/png", "data": png_data_url()[0].split(",")[1]}}]
                     * 4),
         "at most 3"),
        (PRO_3, google_body("x", parts=[{"inlineData": {"mimeType": "image/png", "data": BAD_IMAGE.split(",")[1]}}]),
         "Unable to process input image"),
    ],
)
def test_google_validation_errors(emu, http, model, body, message):
    reply = http.post(google_url(emu, model), json=body)
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["code"] == 400 and error["status"] == "INVALID_ARGUMENT"
    assert message in error["message"]


def test_google_ratio_error_is_exactly_googles_text(emu, http):
    reply = http.post(google_url(emu, FLASH_31), json=google_body("x", ratio="7:3"))
    assert reply.json()["error"]["message"] == RATIO_31


def test_google_unknown_model_is_not_found(emu, http):
    reply = http.post(google_url(emu, "gemini-9-ultra-image"), json=google_body("x"))
    assert reply.status_code == 404
    assert reply.json()["error"]["status"] == "NOT_FOUND"
    assert "models/gemini-9-ultra-image is not found" in reply.json()["error"]["message"]


def test_images_endpoints_point_to_chat_completions(emu, http):
    for path in ("/v1/images/generations", "/v1/images/edits"):
        reply = http.post(emu.url + path, json={"model": FLASH_31, "prompt": "x"})
        assert reply.status_code == 400
        assert "Gemini image models work as chat models" in reply.json()["error"]["message"]
        assert "/v1/chat/completions" in reply.json()["error"]["message"]


def test_unknown_path_and_method_are_json_404(emu, http):
    for method, path in (("GET", "/v2/nothing"), ("GET", "/v1/chat/completions"), ("DELETE", "/v1/models")):
        reply = http.request(method, emu.url + path)
        assert reply.status_code == 404
        assert reply.json()["error"]["type"] == "not_found"
        assert reply.json()["error"]["message"].startswith("Unknown path")


# -- keys ----------------------------------------------------------------------------------


def test_key_is_required_on_the_chat_route(keyed, http):
    url = keyed.url + "/v1/chat/completions"
    body = chat_body("keyed", size="512")
    assert http.post(url, json=body, headers={"Authorization": f"Bearer {SECRET}"}).status_code == 200
    missing = http.post(url, json=body)
    wrong = http.post(url, json=body, headers={"Authorization": "Bearer sk-wrong"})
    goog = http.post(url, json=body, headers={"x-goog-api-key": SECRET})  # Bearer only on /v1
    for reply in (missing, wrong, goog):
        assert reply.status_code == 401
        assert reply.json()["error"]["type"] == "authentication_error"
    assert http.get(keyed.url + "/v1/models").status_code == 401


@pytest.mark.parametrize(
    "headers, params",
    [({"Authorization": f"Bearer {SECRET}"}, {}), ({"x-goog-api-key": SECRET}, {}), ({}, {"key": SECRET})],
)
def test_google_route_takes_the_key_three_ways(keyed, http, headers, params):
    body = google_body("keyed", size="512")
    reply = http.post(google_url(keyed, FLASH_31), json=body, headers=headers, params=params)
    assert reply.status_code == 200, reply.text


def test_google_route_refuses_missing_or_wrong_key(keyed, http):
    for headers in ({}, {"x-goog-api-key": "sk-wrong"}):
        reply = http.post(google_url(keyed, FLASH_31), json=google_body("keyed"), headers=headers)
        assert reply.status_code == 401
        assert reply.json()["error"]["status"] == "UNAUTHENTICATED"


def test_key_never_appears_in_replies_or_records(keyed, http):
    keyed.clear()
    texts = [
        http.post(google_url(keyed, FLASH_31), json=google_body("secret?", size="512"), params={"key": SECRET}).text,
        http.post(google_url(keyed, FLASH_31), json=google_body("secret?"), params={"key": SECRET + "x"}).text,
        http.post(keyed.url + "/v1/chat/completions", json=chat_body("secret?"),
                  headers={"Authorization": f"Bearer {SECRET}x"}).text,
        http.get(keyed.url + "/v1/models", headers={"Authorization": f"Bearer {SECRET}"}).text,
    ]
    assert all(SECRET not in text for text in texts)
    records = keyed.requests
    assert len(records) == 4
    assert SECRET not in repr(records) and SECRET not in repr(keyed)
    assert all("authorization" not in r.headers and "key" not in r.query for r in records)


# -- records and edits ---------------------------------------------------------------------


def test_edit_derives_from_its_source_and_records_its_bytes(fresh, http):
    source_url, source_bytes = png_data_url(size=(640, 360), colour=(220, 20, 20))
    prompt = "add a small orange cat"
    edit = http.post(fresh.url + "/v1/chat/completions", json=chat_body(prompt, images=[source_url]))
    plain = http.post(fresh.url + "/v1/chat/completions", json=chat_body(prompt))
    _, edit_bytes, edit_image = chat_image(edit.json())
    assert edit_bytes != chat_image(plain.json())[1]
    # No ratio sent: it follows the 16:9 source, and the source's red shows through the tint.
    assert edit_image.size == (1376, 768)
    red, green, blue = edit_image.convert("RGB").getpixel((100, 400))
    assert red > 140 and green < 110 and blue < 110
    record = fresh.attempts(prompt)[0]
    summary = record.images[0]
    assert summary.sha256 == hashlib.sha256(source_bytes).hexdigest()
    assert (summary.mime, summary.bytes, summary.width, summary.height) == ("image/png", len(source_bytes), 640, 360)
    assert "base64 characters>" in json.dumps(record.body)


def test_https_input_is_drawn_not_fetched(fresh, http):
    url = "https://picsum.photos/seed/aigate-edit-test/800/600"
    reply = http.post(fresh.url + "/v1/chat/completions", json=chat_body("edit from a URL", images=[url], size="512"))
    assert reply.status_code == 200
    assert fresh.attempts("edit from a URL")[0].images[0].url == url


def test_a_30_mb_request_body_is_accepted_whole(fresh, http):
    # How fast is the benchmarks' business; the read timeout below only bounds a hang.
    noise = random.Random(7).randbytes(2900 * 2900 * 3)
    buffer = io.BytesIO()
    Image.frombytes("RGB", (2900, 2900), noise).save(buffer, "PNG", compress_level=0)
    png = buffer.getvalue()
    body = json.dumps(chat_body("thirty megabytes", size="512",
                                images=["data:image/png;base64," + base64.b64encode(png).decode()])).encode()
    assert len(body) >= 30_000_000
    reply = http.post(fresh.url + "/v1/chat/completions", data=body,
                      headers={"Content-Type": "application/json"}, timeout=60)
    assert reply.status_code == 200, reply.text[:300]
    summary = fresh.attempts("thirty megabytes")[0].images[0]
    assert summary.bytes == len(png) and summary.sha256 == hashlib.sha256(png).hexdigest()


def test_keep_alive_serves_several_requests_on_one_connection(emu):
    host, port = emu.url.removeprefix("http://").split(":")
    connection = HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", "/v1/models")
        first = connection.getresponse()
        first.read()
        socket_used = connection.sock
        assert not first.will_close
        connection.request("POST", "/v1/chat/completions", body=json.dumps(chat_body("keep alive", size="512")),
                           headers={"Content-Type": "application/json"})
        second = connection.getresponse()
        assert second.status == 200 and json.loads(second.read())["choices"]
        assert connection.sock is socket_used
    finally:
        connection.close()


def test_concurrent_requests_are_served_in_parallel():
    results = {}

    def call(number):
        body = chat_body(f"variant {number}", size="512")
        results[number] = requests.post(slow.url + "/v1/chat/completions", json=body, timeout=30)

    # Each held half a second: served one at a time, no two would overlap.
    with Emulator(latency=0.5) as slow:
        callers = [threading.Thread(target=call, args=(n,)) for n in range(4)]
        for caller in callers:
            caller.start()
        for caller in callers:
            caller.join(timeout=30)
        records = slow.requests
    assert sorted(results) == [0, 1, 2, 3] and all(r.status_code == 200 for r in results.values())
    assert len({chat_image(r.json())[1] for r in results.values()}) == 4
    assert max_in_flight(records) == 4, [(r.started, r.finished) for r in records]


# -- faults --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kind, google_status",
    [("429", "RESOURCE_EXHAUSTED"), ("500", "INTERNAL"), ("502", "UNAVAILABLE"),
     ("503", "UNAVAILABLE"), ("504", "DEADLINE_EXCEEDED")],
)
def test_status_faults_use_each_routes_error_shape(fresh, http, kind, google_status):
    header = {"X-Emulator-Fault": f"{kind};retry-after=2;retry-after-ms=1500"}
    chat = http.post(fresh.url + "/v1/chat/completions", json=chat_body("status fault"), headers=header)
    google = http.post(google_url(fresh, PRO_3), json=google_body("status fault"), headers=header)
    assert chat.status_code == google.status_code == int(kind)
    assert set(chat.json()["error"]) == {"message", "type", "param", "code"}
    assert google.json()["error"]["status"] == google_status and google.json()["error"]["code"] == int(kind)
    assert chat.headers["Retry-After"] == "2" and google.headers["retry-after-ms"] == "1500"
    if kind == "503":
        assert google.json()["error"]["message"] == "The model is overloaded. Please try again later."


def test_fault_with_count_fails_only_the_first_attempts(fresh, http):
    body = chat_body("count me", size="512")
    header = {"X-Emulator-Fault": "503;count=2"}
    statuses = [http.post(fresh.url + "/v1/chat/completions", json=body, headers=header).status_code for _ in range(3)]
    assert statuses == [503, 503, 200]
    attempts = fresh.attempts("count me")
    assert [(a.fault, a.status) for a in attempts] == [("503", 503), ("503", 503), (None, 200)]
    other = http.post(fresh.url + "/v1/chat/completions", json=chat_body("another body"), headers=header)
    assert other.status_code == 503  # counted per body: a different request starts afresh


def test_fault_without_count_fails_every_attempt(fresh, http):
    for _ in range(3):
        fault = {"X-Emulator-Fault": "500"}
        reply = http.post(fresh.url + "/v1/chat/completions", json=chat_body("always"), headers=fault)
        assert reply.status_code == 500
    assert len(fresh.attempts("always")) == 3


def test_bad_fault_header_is_a_400(fresh, http):
    reply = http.post(fresh.url + "/v1/chat/completions", json=chat_body("x"), headers={"X-Emulator-Fault": "418"})
    assert reply.status_code == 400 and "unknown fault kind" in reply.json()["error"]["message"]


def test_timeout_fault_delays_the_reply(fresh, http):
    header = {"X-Emulator-Fault": "timeout;delay=0.4"}
    started = time.monotonic()
    reply = http.post(fresh.url + "/v1/chat/completions", json=chat_body("slow", size="512"), headers=header)
    assert reply.status_code == 200 and time.monotonic() - started >= 0.4
    with pytest.raises(requests.ReadTimeout):
        http.post(fresh.url + "/v1/chat/completions", json=chat_body("slower"),
                  headers={"X-Emulator-Fault": "timeout;delay=2"}, timeout=0.3)
    held = fresh.attempts("slower")
    assert [(a.fault, a.status) for a in held] == [("timeout", None)]  # counted while still held back


def test_reset_fault_drops_the_connection(fresh, http):
    with pytest.raises(requests.ConnectionError):
        http.post(fresh.url + "/v1/chat/completions", json=chat_body("reset"), headers={"X-Emulator-Fault": "reset"})
    assert fresh.attempts("reset")[0].status is None


def test_truncate_fault_sends_half_the_body(fresh, http):
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        http.post(fresh.url + "/v1/chat/completions", json=chat_body("truncate", size="512"),
                  headers={"X-Emulator-Fault": "truncate"})


def test_bad_base64_fault_corrupts_only_the_image(fresh, http):
    headers = {"X-Emulator-Fault": "bad-base64"}
    chat = http.post(fresh.url + "/v1/chat/completions", json=chat_body("corrupt", size="512"), headers=headers)
    url = chat.json()["choices"][0]["message"]["images"][0]["image_url"]["url"]
    with pytest.raises(ValueError):
        base64.b64decode(url.partition(",")[2], validate=True)
    google = http.post(google_url(fresh, FLASH_31), json=google_body("corrupt", size="512"), headers=headers)
    with pytest.raises(ValueError):
        base64.b64decode(image_parts(google.json())[-1]["inlineData"]["data"])


def test_no_image_fault_answers_text_only(fresh, http):
    headers = {"X-Emulator-Fault": "no-image"}
    reply = http.post(fresh.url + "/v1/chat/completions", json=chat_body("nothing"), headers=headers)
    choice = reply.json()["choices"][0]
    assert choice["finish_reason"] == "stop" and "images" not in choice["message"] and choice["message"]["content"]
    reply = http.post(google_url(fresh, PRO_3), json=google_body("nothing"), headers=headers)
    candidate = reply.json()["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    assert [list(p) for p in candidate["content"]["parts"]] == [["text", "thoughtSignature"]]


def test_image_safety_fault_shapes(fresh, http):
    headers = {"X-Emulator-Fault": "image-safety"}
    reply = http.post(fresh.url + "/v1/chat/completions", json=chat_body("unsafe"), headers=headers)
    choice = reply.json()["choices"][0]
    assert choice["finish_reason"] == "content_filter" and choice["native_finish_reason"] == "IMAGE_SAFETY"
    assert choice["message"]["content"] is None and "images" not in choice["message"]
    candidate = http.post(google_url(fresh, PRO_3), json=google_body("unsafe"), headers=headers).json()["candidates"][0]
    assert candidate["content"] == {"role": "model"}
    assert candidate["finishReason"] == "IMAGE_SAFETY" and candidate["finishMessage"]


def test_prompt_blocked_fault_shapes(fresh, http):
    headers = {"X-Emulator-Fault": "prompt-blocked"}
    chat = http.post(fresh.url + "/v1/chat/completions", json=chat_body("blocked"), headers=headers).json()
    assert chat["choices"] == [] and chat["prompt_feedback"] == {"block_reason": "SAFETY"}
    google = http.post(google_url(fresh, PRO_3), json=google_body("blocked"), headers=headers).json()
    assert "candidates" not in google and google["promptFeedback"] == {"blockReason": "SAFETY"}


def test_html_502_fault_is_a_proxy_page(fresh, http):
    fault = {"X-Emulator-Fault": "html-502"}
    reply = http.post(fresh.url + "/v1/chat/completions", json=chat_body("proxy"), headers=fault)
    assert reply.status_code == 502
    assert reply.headers["Content-Type"].startswith("text/html") and "<h1>502 Bad Gateway</h1>" in reply.text


def test_injected_fault_hits_the_next_requests_whatever_their_headers(fresh, http):
    fresh.inject_fault("429", count=2, retry_after=1)
    statuses = [http.post(fresh.url + "/v1/chat/completions", json=chat_body("injected", size="512")).status_code
                for _ in range(3)]
    assert statuses == [429, 429, 200]
    assert [a.fault for a in fresh.attempts("injected")] == ["429", "429", None]


def test_control_endpoint_queues_and_clears_faults(fresh, http):
    queued = http.post(fresh.url + "/emulator/faults", json={"kind": "503", "count": 1, "retry_after": 3})
    assert queued.status_code == 200 and queued.json()["queued"][0]["kind"] == "503"
    reply = http.post(google_url(fresh, PRO_3), json=google_body("controlled"))
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "3"
    http.post(fresh.url + "/emulator/faults", json={"kind": "500", "count": 5})
    assert http.delete(fresh.url + "/emulator/faults").json() == {"queued": []}
    assert http.post(google_url(fresh, PRO_3), json=google_body("controlled")).status_code == 200
    recorded = http.get(fresh.url + "/emulator/requests").json()["requests"]
    assert [r["status"] for r in recorded] == [503, 200]  # control requests are not recorded


# -- fixed pictures (benchmarks) -----------------------------------------------------------


def test_a_fixed_picture_is_sent_as_given_on_both_routes_as_the_same_bytes_each_time(http):
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 200, 90)).save(buffer, "JPEG", quality=80)
    picture = buffer.getvalue()
    with Emulator() as emulator:
        emulator.serve_fixed("fixed picture", picture)
        first = http.post(emulator.url + "/v1/chat/completions", json=chat_body("fixed picture", size="4K"))
        again = http.post(emulator.url + "/v1/chat/completions", json=chat_body("fixed picture", size="4K"))
        google = http.post(google_url(emulator, "gemini-3.1-flash-image-preview"), json=google_body("fixed picture"))
        drawn = http.post(emulator.url + "/v1/chat/completions", json=chat_body("another prompt", size="512"))
    assert first.content == again.content
    assert chat_image(first.json())[:2] == ("image/jpeg", picture)
    data = image_parts(google.json())[-1]["inlineData"]
    assert data["mimeType"] == "image/jpeg" and base64.b64decode(data["data"]) == picture
    assert chat_image(drawn.json())[2].size == (512, 512)  # other prompts are still drawn


def test_a_fixed_picture_must_be_an_image():
    with pytest.raises(ValueError, match="PNG, JPEG or WebP"):
        Emulator().serve_fixed("not an image", b"plain text")


# -- lifecycle -----------------------------------------------------------------------------


def test_latency_delays_generation_replies(http):
    with Emulator(latency=0.4) as slow:
        started = time.monotonic()
        reply = http.post(slow.url + "/v1/chat/completions", json=chat_body("latency", size="512"))
        took = time.monotonic() - started
        [record] = slow.attempts("latency")
    assert reply.status_code == 200 and took >= 0.4
    assert record.finished - record.started >= 0.4


def test_the_model_list_is_answered_while_a_generation_is_held(http):
    latency = 30
    emulator = Emulator(latency=latency).start()

    def hold():
        try:
            requests.post(emulator.url + "/v1/chat/completions", json=chat_body("held"), timeout=60)
        except requests.ConnectionError:
            pass  # dropped when the emulator stops, as it should be

    caller = threading.Thread(target=hold, daemon=True)
    try:
        caller.start()
        [held] = wait_for(lambda: emulator.attempts("held"))
        listed = http.get(emulator.url + "/v1/models", timeout=60)
        [models] = [record for record in emulator.requests if record.path == "/v1/models"]
        # Answered before the generation's latency ran out: a list that waited out a latency of its
        # own, starting after the generation, could only be answered after it.
        assert listed.status_code == 200 and models.finished < held.started + latency
    finally:
        emulator.stop()
        caller.join(timeout=10)


def test_stop_returns_promptly_while_a_handler_sleeps():
    emulator = Emulator(latency=30).start()
    outcome = []

    def call():
        try:
            requests.post(emulator.url + "/v1/chat/completions", json=chat_body("held"), timeout=20)
            outcome.append("answered")
        except requests.RequestException:
            outcome.append("dropped")

    caller = threading.Thread(target=call)
    caller.start()
    [held] = wait_for(lambda: emulator.attempts("held"))
    emulator.stop()
    # Had stop() waited for the handler, the handler would have slept its 30 s and answered.
    assert held.status is None
    caller.join(timeout=10)
    assert outcome == ["dropped"]
    # The stop woke the handler, which dropped the request rather than answer it later.
    wait_for(lambda: held.finished is not None)
    assert held.status is None


def test_command_line_prints_its_url_first_then_serves_until_terminated():
    with emulator_command("--port", "0") as (process, url):
        assert requests.get(url + "/v1/models", timeout=10).json()["object"] == "list"
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_command_line_refuses_a_non_loopback_host():
    result = subprocess.run(
        [sys.executable, "-m", "aigate_nb.emulator", "--host", "0.0.0.0"],
        cwd=REPO, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode != 0 and result.stdout == ""
    assert "--allow-remote" in result.stderr and len(result.stderr.strip().splitlines()) == 1
