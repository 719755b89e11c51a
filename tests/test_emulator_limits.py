"""The emulator's rate limit and daily quota, over real loopback HTTP: 429s in Google's shape
(QuotaFailure and RetryInfo in the body, no header) or OpenAI's (Retry-After), each recorded."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
import requests

from aigate_nb.emulator import Emulator
from support import FLASH, REPO, emulator_command

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"


def chat(url: str, prompt: str, **extra) -> requests.Response:
    body = {"model": FLASH, "messages": [{"role": "user", "content": prompt}], "modalities": ["image", "text"],
            "image_config": {"image_size": "0.5K"}, **extra}
    return requests.post(url + "/v1/chat/completions", json=body, timeout=30)


def google(url: str, prompt: str) -> requests.Response:
    body = {"contents": [{"role": "user", "parts": [{"text": prompt}]}],
            "generationConfig": {"responseModalities": ["TEXT", "IMAGE"], "imageConfig": {"imageSize": "512"}}}
    return requests.post(f"{url}/v1beta/models/{FLASH}:generateContent", json=body, timeout=30)


SEND = {"chat": chat, "google": google}


def details(reply: requests.Response) -> dict[str, dict]:
    """The google.rpc details of a Google-shaped error body, by the end of their @type."""
    return {item["@type"].rsplit(".", 1)[-1]: item for item in reply.json()["error"]["details"]}


@pytest.fixture
def emu():
    with Emulator() as emulator:
        yield emulator


@pytest.mark.parametrize("route", ["chat", "google"])
def test_a_google_style_rate_limit_says_when_to_retry_in_the_body_only(emu, route):
    emu.set_limits(rate_limit="2/min", style="google")
    statuses = [SEND[route](emu.url, f"minute {n}").status_code for n in range(2)]
    refused = SEND[route](emu.url, "minute 2")
    assert statuses == [200, 200] and refused.status_code == 429
    assert "Retry-After" not in refused.headers and "retry-after-ms" not in refused.headers
    error = refused.json()["error"]
    assert (error["code"], error["status"]) == (429, "RESOURCE_EXHAUSTED")
    found = details(refused)
    delay = float(found["RetryInfo"]["retryDelay"].removesuffix("s"))
    assert 55 < delay <= 60  # until the first of the two leaves the minute's window
    [violation] = found["QuotaFailure"]["violations"]
    assert violation["quotaId"] == "GenerateRequestsPerMinutePerProjectPerModel" and violation["quotaValue"] == "2"


@pytest.mark.parametrize("route", ["chat", "google"])
def test_an_openai_style_rate_limit_says_when_to_retry_in_its_headers(emu, route):
    emu.set_limits(rate_limit="1/min", style="openai")
    assert SEND[route](emu.url, "first").status_code == 200
    refused = SEND[route](emu.url, "second")
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "60"
    assert 55_000 < int(refused.headers["retry-after-ms"]) <= 60_000
    error = refused.json()["error"]
    assert (error["code"], error["type"]) == ("rate_limit_exceeded", "requests") and "details" not in error


def test_without_a_style_each_route_answers_in_its_own_shape(emu):
    emu.set_limits(rate_limit="1/min")
    chat(emu.url, "first")
    assert "Retry-After" in chat(emu.url, "chat refused").headers
    assert set(details(google(emu.url, "google refused"))) == {"QuotaFailure", "RetryInfo"}


def test_a_window_frees_as_its_oldest_request_leaves_it(emu):
    emu.set_limits(rate_limit="2/s")
    chat(emu.url, "one")
    chat(emu.url, "two")
    refused = chat(emu.url, "three")
    [record] = [r for r in emu.requests if r.prompt == "three"]
    assert refused.status_code == 429 and 0 < record.retry_after <= 1
    time.sleep(record.retry_after)  # as a client told to wait does: the wait is what is tested
    assert chat(emu.url, "three").status_code == 200


@pytest.mark.parametrize("style", ["google", "openai"])
def test_a_daily_quota_runs_out_and_stays_out(emu, style):
    emu.set_limits(daily_quota=2, style=style)
    assert [chat(emu.url, f"today {n}").status_code for n in range(2)] == [200, 200]
    refused = [chat(emu.url, f"tomorrow {n}") for n in range(2)]
    assert [r.status_code for r in refused] == [429, 429]
    error = refused[0].json()["error"]
    if style == "google":
        [violation] = details(refused[0])["QuotaFailure"]["violations"]
        assert "PerDay" in violation["quotaId"] and violation["quotaValue"] == "2"
        assert error["status"] == "RESOURCE_EXHAUSTED"
    else:
        assert error["code"] == error["type"] == "insufficient_quota"
        assert "Retry-After" not in refused[0].headers
    assert emu.limits["used"] == 2


def test_requests_a_rate_limit_refuses_do_not_use_the_daily_quota(emu):
    emu.set_limits(rate_limit="1/min", daily_quota=2)
    assert [chat(emu.url, f"n{n}").status_code for n in range(3)] == [200, 429, 429]
    assert emu.limits["used"] == 1


def test_every_429_is_in_the_request_log_with_the_limit_that_sent_it(emu):
    emu.set_limits(rate_limit="1/min", daily_quota=2)
    chat(emu.url, "a")
    chat(emu.url, "b")
    emu.set_limits(daily_quota=0)
    chat(emu.url, "c")
    log = [(r.prompt, r.status, r.limit, r.retry_after is not None) for r in emu.requests]
    assert log == [("a", 200, None, False), ("b", 429, "rate-limit", True), ("c", 429, "daily-quota", False)]


def test_the_control_endpoint_sets_shows_and_removes_the_limits(emu):
    shown = requests.post(emu.url + "/emulator/limits", json={"rate_limit": "1/h", "style": "openai"}, timeout=10)
    assert shown.json()["limits"] == {"rate_limit": "1/h", "style": "openai", "daily_quota": None, "used": 0}
    chat(emu.url, "once an hour")
    assert chat(emu.url, "twice an hour").headers["Retry-After"] == "3600"
    assert requests.get(emu.url + "/emulator/limits", timeout=10).json()["limits"]["used"] == 1
    assert requests.delete(emu.url + "/emulator/limits", timeout=10).json()["limits"]["rate_limit"] is None
    assert chat(emu.url, "twice an hour").status_code == 200
    assert [r.prompt for r in emu.requests] == ["once an hour", "twice an hour", "twice an hour"]


@pytest.mark.parametrize(
    "body,message",
    [
        ({"rate_limit": "fast"}, "is not N/s, N/min or N/h"),
        ({"rate_limit": "1.5/s"}, "is not N/s, N/min or N/h"),
        ({"style": "anthropic"}, "style must be 'google' or 'openai'"),
        ({"daily_quota": -1}, "daily_quota must be a whole number"),
        ({"burst": 3}, "send a JSON object of rate_limit, style, daily_quota"),
    ],
)
def test_bad_limits_are_a_400_saying_what_is_wrong(emu, body, message):
    reply = requests.post(emu.url + "/emulator/limits", json=body, timeout=10)
    assert reply.status_code == 400 and message in reply.json()["error"]["message"]


def test_limits_given_to_the_constructor_come_back_with_clear():
    with Emulator(rate_limit="1/min", style="google") as emulator:
        google(emulator.url, "first")
        assert google(emulator.url, "second").status_code == 429
        emulator.clear()
        assert emulator.limits["used"] == 0 and emulator.requests == []
        assert google(emulator.url, "second").status_code == 200


def test_a_bad_limit_for_the_constructor_is_a_value_error():
    with pytest.raises(ValueError, match="120/min"):
        Emulator(rate_limit="120 per minute")


def test_the_command_line_takes_a_rate_limit_and_a_daily_quota():
    with emulator_command("--daily-quota", "1", "--limit-style", "google") as (process, url):
        assert chat(url, "the one").status_code == 200
        refused = chat(url, "one more")
        assert refused.status_code == 429 and "QuotaFailure" in details(refused)
        process.terminate()
        assert process.wait(timeout=10) == 0


def test_the_command_line_refuses_a_rate_it_cannot_read_in_one_line():
    result = subprocess.run(
        [sys.executable, "-m", "aigate_nb.emulator", "--rate-limit", "lots"],
        cwd=REPO, capture_output=True, text=True, timeout=20,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "is not N/s, N/min or N/h" in result.stderr and len(result.stderr.strip().splitlines()) == 1
