"""The fault matrix through every front end on both routes.

``tests/test_client.py`` covers the Python API on the chat route; here the magic (a real
InteractiveShell) and the panel (its widgets and clicks) get the whole matrix, and the
Python API the gaps: the Google route, fractional Retry-After, replies the emulator has no
fault for. Transient faults are retried until they clear, the attempts counted on the
emulator's side; a fault that does not clear is one line naming its cause; a failure leaves
the history byte for byte as it was; the shell stays alive and the next request works. The
key guard searches everything each test saw for the key.
"""

from __future__ import annotations

import base64
import email.utils
import io
import time

import pytest
from PIL import Image

from aigate_nb.core.errors import ResponseError, ServerError
from aigate_nb.gateway.client import Client
from harness import Reply, ScriptedGateway, chat_reply_with, history_state, post_attempts
from support import TEST_KEY

pytestmark = pytest.mark.usefixtures("key_guard")

MAX_RETRIES = 2  # the Client's default: three attempts in all

# name: (emulator fault kind, its options, words of the final message that name the cause)
RETRIED = {
    "429 with Retry-After": ("429", {"retry_after": 0.05}, "HTTP 429"),
    "500": ("500", {}, "HTTP 500"),
    "503": ("503", {}, "overloaded"),
    "connection reset": ("reset", {}, "connection reset"),
    "truncated body": ("truncate", {}, "cut off"),
    "HTML 502 page": ("html-502", {}, "HTML page"),
}
NOT_RETRIED = {
    "timeout": ("timeout", {"delay": 1.5}, "No complete answer within 0.5 s"),
    "invalid base64": ("bad-base64", {}, "not valid base64"),
    "text-only reply": ("no-image", {}, "text only"),
    "image-safety finish": ("image-safety", {}, "IMAGE_SAFETY"),
    "blocked prompt": ("prompt-blocked", {}, "prompt was blocked"),
}
FAULTS = {**RETRIED, **NOT_RETRIED}

FRONT_END_ROUTES = [("magic", "chat"), ("magic", "google"), ("panel", "chat"), ("panel", "google")]
#: What tests/test_client.py leaves out for the Python API.
API_GAPS = {
    "transient": {"429 with Retry-After": ("chat", "google")},
    "persistent": {name: ("google",) for name in FAULTS} | {"500": ("chat", "google")},
}


def cases(faults, gaps) -> list:
    """(fault, front end, route) for the magic and the panel on both routes, and the API's gaps."""
    return [
        pytest.param(fault, front_end, route, id=f"{fault}-{front_end}-{route}")
        for fault in faults
        for front_end, route in FRONT_END_ROUTES + [("api", route) for route in gaps.get(fault, ())]
    ]


def png_data_url(colour=(20, 90, 160)) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (32, 24), colour).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


# -- the matrix -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault,front_end,route", cases(RETRIED, API_GAPS["transient"]))
def test_a_transient_fault_is_retried_until_it_clears(frontends, emu, fault, front_end, route):
    kind, options, _ = RETRIED[fault]
    session = frontends.session()
    prompt = f"{fault} clears, {front_end} on {route}"
    emu.inject_fault(kind, count=MAX_RETRIES, **options)

    outcome = frontends.run(front_end, session, prompt, route)

    assert outcome.message is None, outcome.message
    assert outcome.result.prompt == prompt and outcome.result.route == route
    assert outcome.result.image.size
    assert post_attempts(emu, prompt) == MAX_RETRIES + 1
    if front_end != "api":
        assert [entry.prompt for entry in session.history] == [prompt]


@pytest.mark.parametrize("fault,front_end,route", cases(FAULTS, API_GAPS["persistent"]))
def test_a_fault_that_does_not_clear_is_one_line_naming_its_cause(frontends, emu, fault, front_end, route):
    kind, options, cause = FAULTS[fault]
    tries = MAX_RETRIES + 1 if fault in RETRIED else 1
    session = frontends.session(timeout=(5, 0.5) if kind == "timeout" else (5, 30))
    assert frontends.run(front_end, session, f"kept before {fault}", route).result is not None
    before = history_state(session)
    prompt = f"{fault} persists, {front_end} on {route}"
    emu.inject_fault(kind, count=tries, **options)  # one more attempt than this would succeed

    outcome = frontends.run(front_end, session, prompt, route)

    assert outcome.result is None
    assert cause in outcome.message, outcome.message
    assert not outcome.extra, outcome.extra  # nothing shown besides the one line
    assert post_attempts(emu, prompt) == tries
    assert history_state(session) == before, "a failure leaves the history as it was"
    if front_end == "magic":
        assert frontends.cell("6 * 7")[0] == 42, "the shell is alive"
    after = frontends.run(front_end, session, f"after {fault}, {front_end} on {route}", route)
    assert after.result is not None, after.message
    assert post_attempts(emu, f"after {fault}, {front_end} on {route}") == 1


# -- Retry-After in every spelling ---------------------------------------------------------------


@pytest.mark.parametrize("route", ["chat", "google"])
def test_a_fractional_retry_after_is_waited_exactly(frontends, emu, route, monkeypatch):
    slept = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", slept.append)
    emu.inject_fault("429", count=2, retry_after=0.25)
    outcome = frontends.run("api", frontends.session(), f"a quarter second on {route}", route)
    assert outcome.result is not None
    # time.sleep is the time module's own, so the emulator's brief waits (a font lookup's
    # subprocess polling, well under 0.1 s) land here too: only the retries' waits are counted.
    assert [seconds for seconds in slept if seconds >= 0.1] == [0.25, 0.25]


@pytest.mark.parametrize(
    "value,waits",
    [
        ("0.05", [0.05]),
        ("1", [1.0]),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),  # a date already past: the backoff applies
        ("-3", None),
        ("soon", None),  # unreadable: as if there were none
        ("nan", None),
        ("", None),
    ],
)
def test_any_retry_after_header_is_read_or_ignored_never_fatal(monkeypatch, value, waits):
    slept = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", slept.append)
    busy = Reply(429, b'{"error": {"message": "slow down"}}', {"Retry-After": value})
    with ScriptedGateway(busy, Reply(200, chat_reply_with(png_data_url()))) as gateway:
        with Client(api_key=TEST_KEY, base_url=gateway.url, retry_backoff=0.01) as client:
            assert client.generate("wait as told").image.size == (32, 24)
    assert gateway.attempts == 2
    if waits is None:
        assert len(slept) == 1 and 0 <= slept[0] <= 0.01  # the backoff, not the header
    else:
        assert slept == waits


def test_a_retry_after_date_in_the_future_is_waited_until(monkeypatch):
    slept = []
    monkeypatch.setattr("urllib3.util.retry.time.sleep", slept.append)
    when = email.utils.formatdate(time.time() + 3, usegmt=True)  # whole seconds: 2 to 3 s from now
    busy = Reply(429, b'{"error": {"message": "slow down"}}', {"Retry-After": when})
    with ScriptedGateway(busy, Reply(200, chat_reply_with(png_data_url()))) as gateway:
        with Client(api_key=TEST_KEY, base_url=gateway.url, retry_backoff=0.01) as client:
            assert client.generate("wait until then").image.size == (32, 24)
    assert gateway.attempts == 2 and len(slept) == 1 and 1 < slept[0] <= 3


def test_a_rate_limit_with_an_unreadable_retry_after_is_still_one_clear_error(frontends):
    busy = Reply(429, b'{"error": {"message": "slow down"}}', {"Retry-After": "later, maybe"})
    with ScriptedGateway(busy) as gateway:
        outcome = frontends.run("magic", frontends.session(base_url=gateway.url, max_retries=0), "now?")
    assert outcome.message.startswith("HTTP 429: slow down")
    assert gateway.attempts == 1


# -- replies the emulator has no fault for ------------------------------------------------------


@pytest.mark.parametrize("front_end", ["api", "magic", "panel"])
def test_image_data_that_is_not_an_image_is_one_clear_error(frontends, front_end):
    garbage = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"not really" * 20).decode()
    with ScriptedGateway(Reply(200, chat_reply_with(garbage))) as gateway:
        session = frontends.session(base_url=gateway.url)
        outcome = frontends.run(front_end, session, "an unreadable picture")
    assert outcome.result is None
    assert "cannot be read" in outcome.message and "run the request again" in outcome.message
    assert len(session.history) == 0


@pytest.mark.parametrize("status", [200, 500])
def test_json_nested_deeper_than_a_parser_follows_is_one_clear_error(status):
    deep = b"[" * 100_000 + b"]" * 100_000
    with ScriptedGateway(Reply(status, deep)) as gateway:
        with Client(api_key=TEST_KEY, base_url=gateway.url, retry_backoff=0.01, max_retries=0) as client:
            with pytest.raises((ResponseError, ServerError)) as info:
                client.generate("a deep reply")
    assert "\n" not in str(info.value) and len(str(info.value)) < 500


# -- the connection itself --------------------------------------------------------------------


def test_a_gateway_that_is_not_there_is_one_line_through_the_magic(frontends):
    outcome = frontends.run("magic", frontends.session(base_url="http://127.0.0.1:9"), "anyone there?")
    assert outcome.message.startswith(
        "The connection to http://127.0.0.1:9 failed after 3 attempts (connection refused)"
    )
    assert "check AIGATE_BASE_URL" in outcome.message


def test_retries_of_one_variant_do_not_disturb_the_others(frontends, emu):
    session = frontends.session()
    emu.inject_fault("503", count=2)  # the first two attempts, whichever variant sends them
    outcome = frontends.run("magic", session, "three through a flaky gateway", line="-n 3")
    assert outcome.message is None and len(outcome.result) == 3
    assert post_attempts(emu, "three through a flaky gateway") == 5
    assert sorted(entry.index for entry in session.history) == [0, 1, 2]
