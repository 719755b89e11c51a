"""The Client against the emulator over real loopback HTTP: both routes, edits
with every kind of image input, validation, typed errors and retries, with the
attempts counted on the emulator's side."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from PIL import Image

from aigate_nb.client import Client
from aigate_nb.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    GatewayConnectionError,
    InputError,
    NoImageError,
    RateLimitError,
    RequestTimeoutError,
    ResponseError,
    ServerError,
)
from support import TEST_KEY

FLASH = "google/gemini-3.1-flash-image-preview"
PRO = "google/gemini-3-pro-image"


def faulty(emu, fault: str, **kw) -> Client:
    """A client whose every request carries the emulator's fault header."""
    return Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01, timeout=kw.pop("timeout", (5, 30)),
                  headers={"X-Emulator-Fault": fault}, **kw)


def generate_records(emu):
    return [r for r in emu.requests if r.method == "POST"]


def pixels(result):
    return Image.open(io.BytesIO(result.data)).size


# -- generation on both routes ----------------------------------------------------------------

@pytest.mark.parametrize("route", ["chat", "google"])
def test_16_9_2k_on_each_route_has_the_documented_pixels(client, route):
    result = client.generate("a harbour at dawn", model=FLASH, aspect_ratio="16:9", image_size="2K", route=route)
    assert pixels(result) == (2752, 1536)
    assert result.image.size == (2752, 1536)
    assert (result.aspect_ratio, result.image_size, result.route, result.model) == ("16:9", "2K", route, FLASH)
    assert result.usage


def test_the_chat_body_sent_is_the_documented_shape(client, emu):
    client.generate("a red kite", model=PRO, aspect_ratio="3:2", image_size="1K")
    body = generate_records(emu)[-1].body
    assert body["modalities"] == ["image", "text"]
    assert body["image_config"] == {"aspect_ratio": "3:2", "image_size": "1K"}
    assert body["messages"] == [{"role": "user", "content": "a red kite"}]


def test_lowercase_size_is_normalised_before_sending(client, emu):
    result = client.generate("a blue door", model=FLASH, aspect_ratio="1:1", image_size="1k")
    assert result.image_size == "1K" and pixels(result) == (1024, 1024)


def test_the_smallest_tier_works_on_both_routes(client):
    for route in ("chat", "google"):
        assert pixels(client.generate("tiny", model=FLASH, aspect_ratio="1:1", image_size="512", route=route)) == (512, 512)


def test_a_reply_keeps_its_original_format_and_bytes(client):
    jpeg = client.generate("jpeg please", model=PRO, aspect_ratio="1:1", image_size="1K")
    png = client.generate("png please", model="google/gemini-2.5-flash-image", aspect_ratio="1:1")
    assert jpeg.mime == "image/jpeg" and jpeg.data[:3] == b"\xff\xd8\xff"
    assert png.mime == "image/png" and png.data[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_request_gives_the_same_bytes(client):
    first = client.generate("deterministic", model=FLASH, aspect_ratio="4:3", image_size="1K")
    second = client.generate("deterministic", model=FLASH, aspect_ratio="4:3", image_size="1K")
    assert first.sha256 == second.sha256


def test_models_lists_ids_and_can_keep_image_models_only(client):
    every = client.models()
    images = client.models(image_only=True)
    assert FLASH in images and PRO in images
    assert set(images) < set(every)


# -- edits with every kind of image input ---------------------------------------------------

def input_shas(emu):
    return [img.sha256 for img in generate_records(emu)[-1].images]


def test_editing_a_result_sends_its_original_bytes(client, emu, tmp_path):
    first = client.generate("a small boat", model=FLASH, aspect_ratio="16:9", image_size="1K")
    path = tmp_path / "boat.png"
    first.save(path)
    edited = client.generate("add a lighthouse", images=[first], model=FLASH)
    assert input_shas(emu) == [first.sha256]
    assert edited.sha256 != first.sha256
    assert pixels(edited) == (1376, 768)  # no ratio sent: the emulator follows the source's shape


@pytest.mark.parametrize("route", ["chat", "google"])
def test_every_local_kind_of_image_is_accepted(client, emu, tmp_path, route):
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 200)).save(buf, format="PNG")
    png = buf.getvalue()
    path = tmp_path / "in.png"
    path.write_bytes(png)
    data_url = "data:image/png;base64," + __import__("base64").b64encode(png).decode()
    pil = Image.open(io.BytesIO(png))
    for source in (str(path), path, png, data_url):
        client.generate("make it night", images=source, route=route)
        assert input_shas(emu) == [hashlib.sha256(png).hexdigest()]
    client.generate("make it night", images=[pil], route=route)
    assert len(input_shas(emu)) == 1


def test_an_http_url_goes_to_the_gateway_on_the_chat_route(client, emu):
    client.generate("edit the fetched picture", images=["https://example.org/cat.jpg"])
    content = generate_records(emu)[-1].body["messages"][0]["content"]
    assert content[1] == {"type": "image_url", "image_url": {"url": "https://example.org/cat.jpg"}}


def test_an_http_url_on_the_google_route_is_refused_before_sending(client, emu):
    with pytest.raises(InputError, match="inline images only"):
        client.generate("x", images=["https://example.org/cat.jpg"], route="google")
    assert generate_records(emu) == []


# -- checks before sending ------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"prompt": "   "}, "The prompt is empty"),
        ({"aspect_ratio": "16:10", "model": PRO}, r"aspect ratio '16:10' is not one of .*closest is 3:2"),
        ({"image_size": "512", "model": PRO}, "image size '512' is not one of 1K, 2K, 4K"),
        ({"image_size": "2K", "model": "google/gemini-2.5-flash-image"}, "takes no image size"),
        ({"images": ["/no/such/file.png"]}, "No image file at '/no/such/file.png'"),
        ({"images": [b"not an image"]}, "not an image"),
        ({"route": "grpc"}, "route 'grpc' is not one of"),
    ],
)
def test_bad_input_is_refused_before_any_request(client, emu, kwargs, message):
    prompt = kwargs.pop("prompt", "a cat")
    with pytest.raises(InputError, match=message):
        client.generate(prompt, **kwargs)
    assert generate_records(emu) == []


def test_too_many_images_are_refused_before_sending(client, emu):
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    with pytest.raises(InputError, match="at most 3 input images, and 4 were given"):
        client.generate("x", model="google/gemini-2.5-flash-image", images=[buf.getvalue()] * 4)
    assert generate_records(emu) == []


def test_a_base_url_without_scheme_is_refused():
    with pytest.raises(ConfigurationError, match="no http:// or https:// scheme"):
        Client(api_key="k", base_url="api.aigate.shop")


def test_an_unknown_model_reaches_the_gateway_which_says_so(client):
    with pytest.raises(BadRequestError, match="does not exist") as info:
        client.generate("x", model="google/gemini-9-image")
    assert info.value.status == 400 and info.value.attempts == 1


# -- the key ----------------------------------------------------------------------------------

def test_a_wrong_key_is_an_authentication_error_without_the_key(emu):
    key = "sk-wrong-0123456789abcdef"
    with Client(api_key=key, base_url=emu.url) as c, pytest.raises(AuthenticationError) as info:
        c.generate("x")
    assert info.value.status == 401 and info.value.attempts == 1
    assert key not in str(info.value) and "AIGATE_API_KEY" in str(info.value)


def test_the_key_is_sent_only_in_the_authorization_header(client, emu):
    client.generate("where is the key", route="google")
    client.generate("where is the key")
    for record in emu.requests:
        assert TEST_KEY not in json.dumps(record.body) + json.dumps(dict(record.headers)) + str(record.query)
    assert TEST_KEY not in repr(client) and "sk-...4f6a8c0e"[-4:] in repr(client)


def test_plain_http_to_another_host_with_a_key_warns():
    with pytest.warns(UserWarning, match="unencrypted"):
        Client(api_key="sk-abcdefghijkl", base_url="http://gateway.example.org")


# -- replies without an image ---------------------------------------------------------------

@pytest.mark.parametrize("route", ["chat", "google"])
@pytest.mark.parametrize(
    "fault,field,value",
    [("no-image", "text", None), ("image-safety", "finish_reason", "IMAGE_SAFETY"), ("prompt-blocked", "block_reason", "SAFETY")],
)
def test_replies_without_an_image_raise_no_image_and_are_not_retried(emu, route, fault, field, value):
    with faulty(emu, fault) as c, pytest.raises(NoImageError) as info:
        c.generate(f"{fault} on {route}", route=route)
    if value is None:
        assert info.value.text
    else:
        assert getattr(info.value, field) == value
    assert len(generate_records(emu)) == 1


def test_corrupt_base64_is_a_response_error(emu):
    with faulty(emu, "bad-base64") as c, pytest.raises(ResponseError, match="not valid base64"):
        c.generate("bad data")


# -- retries, counted by the emulator ----------------------------------------------------------

@pytest.mark.parametrize("route", ["chat", "google"])
@pytest.mark.parametrize("fault", ["429", "500", "502", "503", "504", "reset", "truncate", "html-502"])
def test_transient_faults_are_retried_until_they_clear(emu, route, fault):
    with faulty(emu, f"{fault};count=2") as c:
        result = c.generate(f"flaky {fault}", route=route)
    assert result.data
    assert len(generate_records(emu)) == 3


@pytest.mark.parametrize(
    "fault,error,message",
    [
        ("429", RateLimitError, "HTTP 429"),
        ("503", ServerError, "overloaded"),
        ("html-502", ServerError, "HTML page"),
        ("reset", GatewayConnectionError, "connection"),
        ("truncate", GatewayConnectionError, "while the reply was arriving"),
    ],
)
def test_persistent_faults_give_one_clear_error_after_the_retries(emu, fault, error, message):
    with faulty(emu, fault, max_retries=2) as c, pytest.raises(error, match=message) as info:
        c.generate(f"always {fault}")
    assert len(generate_records(emu)) == 3
    assert "\n" not in str(info.value)
    if hasattr(info.value, "attempts"):
        assert info.value.attempts == 3


def test_client_errors_are_not_retried(client, emu):
    with pytest.raises(BadRequestError):
        client.generate("x", model="google/gemini-9-image")
    assert len(generate_records(emu)) == 1


@pytest.fixture
def slept(monkeypatch):
    """The waits of the retry policy, recorded instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", waits.append)
    return waits


def test_retry_after_is_honoured(emu, slept):
    with faulty(emu, "429;count=1;retry-after=2") as c:
        c.generate("wait two seconds")
    assert slept == [2.0]


def test_retry_after_ms_is_preferred(emu, slept):
    with faulty(emu, "429;count=1;retry-after=9;retry-after-ms=250") as c:
        c.generate("wait a quarter second")
    assert slept == [0.25]


def test_a_retry_after_beyond_the_cap_is_reported_not_waited(emu, slept):
    with faulty(emu, "429;retry-after=3600", max_retry_after=60) as c, pytest.raises(RateLimitError) as info:
        c.generate("come back in an hour")
    assert slept == [] and len(generate_records(emu)) == 1
    assert info.value.retry_after == 3600 and "wait 3600 s" in str(info.value)
    assert ".;" not in str(info.value) and str(info.value).count("..") == 0


def test_backoff_grows_between_retries_without_retry_after(emu, slept):
    with Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.5, max_retries=3,
                headers={"X-Emulator-Fault": "500;count=3"}) as c:
        c.generate("back off")
    assert len(slept) == 3
    assert 0.375 <= slept[0] <= 0.5 and 0.75 <= slept[1] <= 1.0 and 1.5 <= slept[2] <= 2.0


def test_a_slow_reply_beyond_the_read_timeout_is_a_timeout_error(emu):
    with faulty(emu, "timeout;delay=5", timeout=(2, 0.3)) as c, pytest.raises(RequestTimeoutError, match="raise the read timeout"):
        c.generate("too slow")
    assert len(generate_records(emu)) == 1


def test_nothing_listening_is_a_connection_error():
    with Client(api_key="k", base_url="http://127.0.0.1:9", retry_backoff=0.01) as c:
        with pytest.raises(GatewayConnectionError, match="connection refused"):
            c.generate("anyone there")


def test_results_from_the_emulator_say_so(client):
    assert client.generate("labelled").emulated is True
    assert client.emulated is True


def test_a_prompt_with_a_broken_character_is_refused_before_sending(client, emu):
    with pytest.raises(InputError, match="broken character"):
        client.generate("a cat \udc80 on a mat")
    assert emu.requests == []


@pytest.mark.parametrize("options,message", [
    ({"model": 3}, "model must be a model id"),
    ({"images": 3}, "Cannot use a int as an image"),
])
def test_arguments_of_the_wrong_type_get_one_clear_error_before_sending(client, emu, options, message):
    with pytest.raises(InputError, match=message):
        client.generate("a cat", **options)
    assert emu.requests == []


def test_a_retry_count_that_is_not_a_number_is_refused(emu):
    with pytest.raises(ConfigurationError, match="max_retries must be a whole number"):
        Client(api_key=TEST_KEY, base_url=emu.url, max_retries="2")


def test_save_without_a_path_says_what_it_takes(client):
    with pytest.raises(InputError, match="save\\(\\) takes a file or folder path"):
        client.generate("a cat").save(None)
