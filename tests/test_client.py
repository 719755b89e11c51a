"""The Client against the emulator over real loopback HTTP: both routes, edits
with every kind of image input, validation, typed errors and retries, with the
attempts counted on the emulator's side."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import random

import pytest
from IPython.core.ultratb import VerboseTB
from PIL import Image

from aigate_nb.core.errors import (
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
from aigate_nb.gateway.client import Client
from aigate_nb.gateway.prepared import request_hash
from aigate_nb.gateway.transport import HTTPTransport
from aigate_nb.gateway.wire import model_turn, user_turn
from support import FLASH, PRO, TEST_KEY


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
        result = client.generate("tiny", model=FLASH, aspect_ratio="1:1", image_size="512", route=route)
        assert pixels(result) == (512, 512)


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


@pytest.mark.parametrize("setting,message", [
    ({"base_url": "gateway.example.org"}, "no http:// or https:// scheme"),
    ({"timeout": -1}, "timeout must be seconds"),
    ({"max_retries": "2"}, "max_retries must be a whole number"),
])
def test_a_refused_setting_shows_no_key_from_the_environment_in_a_verbose_traceback(monkeypatch, setting, message):
    # A verbose traceback (%xmode Verbose) shows the arguments of every frame; the transport takes the key as one.
    monkeypatch.setenv("AIGATE_API_KEY", TEST_KEY)
    with pytest.raises(ConfigurationError, match=message) as info:
        Client(**{"base_url": "http://127.0.0.1:9", **setting})
    traceback = VerboseTB(theme_name="nocolor").text(info.type, info.value, info.tb)
    assert message in traceback and TEST_KEY not in traceback


def test_plain_http_to_another_host_with_a_key_warns():
    with pytest.warns(UserWarning, match="unencrypted"):
        Client(api_key="sk-abcdefghijkl", base_url="http://gateway.example.org")


# -- replies without an image ---------------------------------------------------------------

@pytest.mark.parametrize("route", ["chat", "google"])
@pytest.mark.parametrize(
    "fault,field,value",
    [
        ("no-image", "text", None),
        ("image-safety", "finish_reason", "IMAGE_SAFETY"),
        ("prompt-blocked", "block_reason", "SAFETY"),
    ],
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
    with (
        faulty(emu, "timeout;delay=5", timeout=(2, 0.3)) as c,
        pytest.raises(RequestTimeoutError, match="raise the read timeout"),
    ):
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


# -- preparing apart from sending ---------------------------------------------------------------

def png_bytes(colour=(10, 120, 200), size=(300, 200)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="PNG")
    return buf.getvalue()


A_CONVERSATION = [user_turn("a fox"), model_turn([{"text": "Here is a fox.", "thoughtSignature": "c2ln"}], [])]


class RecordingTransport(HTTPTransport):
    """Sends as usual and keeps what it was asked to send."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple[str, str, dict | None]] = []

    def send(self, method: str, path: str, body: dict | None = None) -> bytes:
        self.sent.append((method, path, body))
        return super().send(method, path, body)


def test_prepare_builds_the_request_and_sends_nothing(client, emu):
    client.models()
    before = len(emu.requests)
    chat = client.prepare("a red kite", model=PRO, aspect_ratio="3:2", image_size="1k")
    google = client.prepare("make it night", images=[png_bytes()], route="google", turns=A_CONVERSATION)
    assert len(emu.requests) == before
    assert (chat.method, chat.path, chat.route, chat.image_size) == ("POST", "/v1/chat/completions", "chat", "1K")
    assert chat.body["image_config"] == {"aspect_ratio": "3:2", "image_size": "1K"}
    assert google.path == f"/v1beta/models/{FLASH}:generateContent"
    assert google.body["contents"][:2] == A_CONVERSATION and google.endpoint == "emulator"


def test_send_of_a_prepared_request_gives_what_generate_gives(client, emu):
    first = client.generate("add a lighthouse", model=FLASH, aspect_ratio="16:9", image_size="512")
    options = dict(model=FLASH, images=[first], aspect_ratio="4:3", image_size="512", route="google")
    sent = client.send(client.prepare("make it stormy", **options))
    generated = client.generate("make it stormy", **options)
    assert sent.sha256 == generated.sha256 != first.sha256
    assert (sent.prompt, sent.model, sent.aspect_ratio, sent.image_size, sent.route, sent.text, sent.parent_id) == (
        generated.prompt, generated.model, generated.aspect_ratio, generated.image_size, generated.route,
        generated.text, generated.parent_id,
    )
    assert sent.emulated and generated.emulated
    assert generate_records(emu)[-2].body == generate_records(emu)[-1].body


def test_a_client_sends_through_the_transport_it_is_given(emu):
    transport = RecordingTransport(emu.url, TEST_KEY, timeout=(5, 30))
    with Client(transport=transport, model=FLASH) as c:
        result = c.generate("a recorded kite", image_size="512")
        ids = c.models()
        assert c.base_url == emu.url and c.emulated and TEST_KEY not in repr(c) + repr(transport)
    assert [(method, path) for method, path, _ in transport.sent] == [("POST", "/v1/chat/completions"),
                                                                       ("GET", "/v1/models")]
    assert transport.sent[0][2]["messages"] == [{"role": "user", "content": "a recorded kite"}]
    assert result.data and FLASH in ids
    assert [r.prompt for r in generate_records(emu)] == ["a recorded kite"]


def test_a_transport_and_a_key_or_base_url_for_the_client_as_well_are_refused(emu):
    transport = HTTPTransport(emu.url, TEST_KEY)
    for extra in ({"api_key": "sk-another-0123456789"}, {"base_url": emu.url}, {"headers": {"X-Trace": "1"}}):
        with pytest.raises(ConfigurationError, match="give them to the transport") as info:
            Client(transport=transport, **extra)
        assert "sk-another" not in str(info.value)
    transport.close()


def test_a_prepared_request_cannot_be_changed_and_its_repr_leaves_out_the_body(client):
    prepared = client.prepare("a small boat", images=[png_bytes()])
    with pytest.raises(dataclasses.FrozenInstanceError):
        prepared.prompt = "a large boat"
    assert "a small boat" in repr(prepared) and "base64" not in repr(prepared)
    assert hash(prepared) == hash(client.prepare("a small boat", images=[png_bytes()]))


# -- the request hash ------------------------------------------------------------------------

BASE_REQUEST = dict(model=FLASH, aspect_ratio="1:1", image_size="1K", route="google")


def test_the_request_hash_leaves_out_the_key_the_headers_and_the_base_url(client):
    elsewhere = Client(api_key="sk-other-0123456789abcdef", base_url="http://localhost:9/v1",
                       headers={"X-Emulator-Fault": "500", "X-Trace": "on"})
    with elsewhere:
        here = client.prepare("a red kite", images=[png_bytes()], **BASE_REQUEST)
        there = elsewhere.prepare("a red kite", images=[png_bytes()], **BASE_REQUEST)
    assert here.request_hash == there.request_hash and here.endpoint == there.endpoint == "emulator"
    assert TEST_KEY not in repr(here) + json.dumps(here.body)


def test_the_request_hash_tells_the_gateway_from_an_emulator(client):
    with Client(api_key=TEST_KEY, base_url="https://gateway.example.org") as gateway:  # prepared, never sent
        remote = gateway.prepare("a red kite", **BASE_REQUEST)
    local = client.prepare("a red kite", **BASE_REQUEST)
    assert (remote.endpoint, local.endpoint) == ("gateway", "emulator")
    assert remote.request_hash != local.request_hash


@pytest.mark.parametrize("change", [
    {"prompt": "a blue kite"},
    {"model": PRO},
    {"aspect_ratio": "16:9"},
    {"image_size": "2K"},
    {"route": "chat"},
    {"images": [png_bytes(colour=(200, 120, 10))]},
    {"turns": A_CONVERSATION},
], ids=lambda change: next(iter(change)))
def test_the_request_hash_changes_with_everything_that_changes_the_picture(client, change):
    request = {"prompt": "a red kite", "images": [png_bytes()], **BASE_REQUEST}
    base = client.prepare(**request)
    changed = client.prepare(**{**request, **change})
    assert changed.request_hash != base.request_hash


def test_the_request_hash_follows_the_conversation_but_not_the_order_of_its_keys(client):
    other = [user_turn("a wolf"), A_CONVERSATION[1]]
    reordered = [{"parts": turn["parts"], "role": turn["role"]} for turn in A_CONVERSATION]
    hashes = [client.prepare("make it night", route="google", turns=turns).request_hash
              for turns in (A_CONVERSATION, other, reordered)]
    assert hashes[0] != hashes[1] and hashes[0] == hashes[2]


def test_the_request_hash_is_the_same_with_or_without_the_google_prefix(client):
    prefixed = client.prepare("a red kite", model="google/gemini-3-pro-image")
    bare = client.prepare("a red kite", model="gemini-3-pro-image")
    assert prefixed.body["model"] != bare.body["model"]
    assert prefixed.request_hash == bare.request_hash


def test_an_image_hashes_as_its_bytes_whether_given_as_bytes_a_path_or_a_data_url(client, tmp_path):
    png = png_bytes()
    path = tmp_path / "in.png"
    path.write_bytes(png)
    data_url = "data:image/png;base64," + base64.b64encode(png).decode()
    prepared = [client.prepare("make it night", images=[source]) for source in (png, path, str(path), data_url)]
    assert {p.image_hashes for p in prepared} == {(hashlib.sha256(png).hexdigest(),)}
    assert len({p.request_hash for p in prepared}) == 1


def test_a_pil_image_hashes_as_pillows_png_of_it_so_only_a_pillow_png_matches_its_file(client):
    # A PIL image has no bytes of its own: it is sent, and hashed, as the PNG Pillow writes of it.
    # That is the file's bytes only when the file is such a PNG; a JPEG's picture hashes differently.
    png = png_bytes()
    buf = io.BytesIO()
    Image.new("RGB", (300, 200), (10, 120, 200)).save(buf, format="JPEG")
    jpeg = buf.getvalue()
    [from_png] = client.prepare("make it night", images=[Image.open(io.BytesIO(png))]).image_hashes
    [from_jpeg] = client.prepare("make it night", images=[Image.open(io.BytesIO(jpeg))]).image_hashes
    assert from_png == hashlib.sha256(png).hexdigest()
    assert from_jpeg != hashlib.sha256(jpeg).hexdigest()


def test_an_image_url_hashes_as_its_text_and_a_kept_result_as_its_original_bytes(client):
    url = "https://example.org/cat.jpg"
    kept = dataclasses.replace(client.generate("a cat", image_size="512"), id="0123456789ab")  # as in a history
    prepared = client.prepare("make it night", images=[url, kept])
    assert prepared.image_hashes == (hashlib.sha256(url.encode()).hexdigest(), kept.sha256)
    assert prepared.parent_id == "0123456789ab"


def test_image_hashes_are_of_the_images_as_given_not_as_re_encoded_to_fit(client):
    noise = Image.frombytes("RGB", (256, 256), random.Random(7).randbytes(256 * 256 * 3))
    buf = io.BytesIO()
    noise.save(buf, format="PNG")
    client.inline_budget = 60_000
    prepared = client.prepare("make it night", images=[buf.getvalue()])
    sent = prepared.body["messages"][0]["content"][1]["image_url"]["url"]
    assert sent.startswith("data:image/jpeg;base64,")  # re-encoded to fit the budget
    assert prepared.image_hashes == (hashlib.sha256(buf.getvalue()).hexdigest(),)


def test_the_request_hash_can_be_computed_from_plain_values(client):
    prepared = client.prepare("make it night", model=PRO, images=[png_bytes()], aspect_ratio="16:9",
                              image_size="2k", route="google", turns=A_CONVERSATION)
    assert prepared.request_hash == request_hash(
        route="google", endpoint="emulator", model="gemini-3-pro-image", prompt="make it night",
        aspect_ratio="16x9", image_size="2K", image_hashes=prepared.image_hashes, turns=A_CONVERSATION,
    )


def test_the_request_hash_of_a_known_request_never_changes():
    # A replay cache on disk files its replies under these hashes: a change here orphans them.
    assert request_hash(
        route="chat", endpoint="gateway", model="google/gemini-3-pro-image", prompt="a red kite",
        aspect_ratio="3:2", image_size="1K", image_hashes=[hashlib.sha256(b"an image").hexdigest()],
    ) == "c386b7733ff883ae624ab244ba64df3918a219671d22f9fb8c93f5c17b631400"


def test_a_transport_lacking_what_one_has_is_refused_naming_what_it_lacks():
    class Half:
        base_url = "http://127.0.0.1:9"

        def send(self, method, path, body=None):
            return b"{}"

    with pytest.raises(ConfigurationError, match="Half lacks close, emulated, has_key, masked_key, pacer, scrub"):
        Client(transport=Half())
