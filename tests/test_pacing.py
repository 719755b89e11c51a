"""Pacing: a retry waits as long as the server asked (header or body), a used-up daily quota
stops at once, and a shared ``Pacer`` caps how many requests go at once and how often. Waits
are read from the emulator's own stamps (``started``/``finished``, the process's monotonic
clock), never timed on the client."""

from __future__ import annotations

import json
import threading
import time

import pytest

from aigate_nb.core.errors import ConfigurationError, QuotaExhausted, RateLimitError
from aigate_nb.emulator import Emulator
from aigate_nb.gateway.client import Client
from aigate_nb.gateway.pacing import Pacer, parse_rate
from aigate_nb.gateway.wire import daily_quota, retry_delay
from support import TEST_KEY, max_in_flight

ROUTES = ["chat", "google"]


def client_of(emulator, **kw) -> Client:
    """A client whose own backoff is tiny: any wait longer than it is the server's."""
    return Client(api_key=TEST_KEY, base_url=emulator.url, retry_backoff=0.01, timeout=(5, 30), **kw)


def attempts_of(emulator, prompt):
    return [record for record in emulator.requests if record.prompt == prompt]


def gap(earlier, later) -> float:
    """From the emulator's answer to one attempt to its receiving the next."""
    return later.started - earlier.finished


@pytest.fixture
def limited():
    """An emulator of this test's own whose limits ``set_limits`` chooses: limits count every request."""
    with Emulator(api_key=TEST_KEY) as emulator:
        yield emulator


def send_together(client: Client, prompts: list[str]) -> list[object]:
    """Generate each prompt from a thread of its own, all at once; the results or errors in order."""
    outcomes: list[object] = [None] * len(prompts)

    def one(index: int) -> None:
        try:
            outcomes[index] = client.generate(prompts[index], image_size="512")
        except Exception as exc:  # noqa: BLE001 - handed back to the test
            outcomes[index] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


# -- a single request waits as asked ----------------------------------------------------------------


def test_a_retry_after_in_seconds_is_waited_before_the_retry(emu):
    with client_of(emu, headers={"X-Emulator-Fault": "429;count=1;retry-after=1"}) as client:
        client.generate("wait one second")
    refused, accepted = attempts_of(emu, "wait one second")
    assert (refused.status, refused.retry_after, accepted.status) == (429, 1.0, 200)
    assert gap(refused, accepted) >= 1.0


def test_a_retry_after_ms_is_waited_before_the_retry(emu):
    with client_of(emu, headers={"X-Emulator-Fault": "429;count=1;retry-after-ms=400"}) as client:
        client.generate("wait 400 ms")
    refused, accepted = attempts_of(emu, "wait 400 ms")
    assert (refused.retry_after, accepted.status) == (0.4, 200)
    assert gap(refused, accepted) >= 0.4


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("style", ["google", "openai"])
def test_a_rate_limited_request_waits_the_asked_time_then_goes_through(limited, route, style):
    """Google's 429 asks in its body (RetryInfo; its QuotaFailure is per minute, so retried), an
    OpenAI-style one in its headers; both routes may carry either shape behind a gateway."""
    limited.set_limits(rate_limit="2/s", style=style)
    with client_of(limited) as client:
        for n in range(3):
            client.generate(f"paced {n}", route=route, image_size="512")
    refused, accepted = attempts_of(limited, "paced 2")
    assert (refused.status, refused.limit, accepted.status) == (429, "rate-limit", 200)
    assert refused.retry_after > 0.2  # the window of one second was far from over
    assert gap(refused, accepted) >= refused.retry_after


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("style", ["google", "openai"])
def test_a_used_up_daily_quota_is_not_retried_and_says_so_in_one_line(limited, route, style):
    limited.set_limits(daily_quota=1, style=style)
    with client_of(limited) as client:
        client.generate("the last one today", route=route, image_size="512")
        with pytest.raises(QuotaExhausted) as info:
            client.generate("one too many", route=route, image_size="512")
    assert len(attempts_of(limited, "one too many")) == 1  # Google's body asks for a retry in 2 s: ignored
    message = str(info.value)
    assert "daily quota is used up" in message and "\n" not in message
    assert isinstance(info.value, RateLimitError) and info.value.status == 429
    if style == "google":
        assert info.value.quota == "GenerateRequestsPerDayPerProjectPerModel" and info.value.quota in message


def test_a_wait_beyond_the_cap_is_reported_and_holds_nobody(emu):
    pacer = Pacer(2)
    with client_of(emu, pacer=pacer, headers={"X-Emulator-Fault": "429;count=1;retry-after=3600"}) as client:
        with pytest.raises(RateLimitError, match="wait 3600 s"):
            client.generate("come back in an hour")
        # The fault is spent: the same request is answered now, had the pacer not held it for an hour.
        again = threading.Thread(target=client.generate, args=("come back in an hour",), daemon=True)
        again.start()
        again.join(timeout=30)
    assert [r.status for r in attempts_of(emu, "come back in an hour")] == [429, 200]


# -- the shared pacer -------------------------------------------------------------------------------


def test_the_client_tells_its_pacer_of_429s_and_successes(limited):
    limited.set_limits(rate_limit="2/s", style="google")
    pacer = Pacer(4, grow_after=1)
    with client_of(limited, pacer=pacer) as client:
        client.generate("tell the pacer 0", image_size="512")
        client.generate("tell the pacer 1", image_size="512")
        assert pacer.limit == 4  # successes grow it only up to where it started
        client.generate("tell the pacer 2", image_size="512")  # a 429, then a success after the wait
    assert [r.status for r in limited.requests] == [200, 200, 429, 200]
    assert pacer.limit == 3  # halved to 2 by the 429, one more after the success that followed


def test_a_pacer_caps_how_many_requests_are_in_flight():
    slow = Emulator(api_key=TEST_KEY, latency=0.3).start()
    try:
        with client_of(slow, pacer=Pacer(2)) as client:
            outcomes = send_together(client, [f"two at a time {n}" for n in range(6)])
        assert not [o for o in outcomes if isinstance(o, Exception)]
        assert len(slow.requests) == 6 and max_in_flight(slow.requests) <= 2
    finally:
        slow.stop()


def test_a_rate_cap_spaces_the_starts_as_the_emulator_sees_them(emu):
    with client_of(emu, pacer=Pacer(4, rate="4/s")) as client:
        outcomes = send_together(client, [f"four a second {n}" for n in range(4)])
    assert not [o for o in outcomes if isinstance(o, Exception)]
    starts = sorted(record.started for record in emu.requests)
    # One start every 0.25 s: four starts span 0.75 s. The slack is for the first request reaching
    # the emulator late; a single gap is not checked, since on a loaded machine one request may
    # reach the server late and the next on time, though the client spaced them.
    assert starts[-1] - starts[0] >= 0.75 - 0.1


def test_a_rate_cap_keeps_a_batch_under_the_emulators_limit(limited):
    limited.set_limits(rate_limit="5/s")
    with client_of(limited, pacer=Pacer(8, rate="4/s")) as client:
        outcomes = send_together(client, [f"under the limit {n}" for n in range(6)])
    assert not [o for o in outcomes if isinstance(o, Exception)]
    assert [r.status for r in limited.requests] == [200] * 6  # not one 429


def test_the_wait_a_429_asked_for_holds_every_request_not_yet_started(emu):
    pacer = Pacer(4)
    told = time.monotonic()
    pacer.on_rate_limited(0.5)
    with client_of(emu, pacer=pacer) as client:
        client.generate("after the pause", image_size="512")
    [record] = attempts_of(emu, "after the pause")
    assert record.started >= told + 0.5


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_pacer_halves_on_each_429_and_never_goes_below_one():
    clock = FakeClock()
    pacer = Pacer(8, clock=clock)
    limits = []
    for _ in range(5):
        pacer.on_rate_limited()
        limits.append(pacer.limit)
        clock.now += pacer.cooldown
    assert limits == [4, 2, 1, 1, 1]


def test_429s_within_the_cooldown_halve_the_limit_once():
    clock = FakeClock()
    pacer = Pacer(8, cooldown=1.0, clock=clock)
    for _ in range(8):  # the 429s of eight requests sent together
        pacer.on_rate_limited(0.5)
    assert pacer.limit == 4


def test_a_pacer_grows_by_one_after_each_run_of_successes_up_to_its_ceiling():
    clock = FakeClock()
    pacer = Pacer(4, max_concurrency=6, grow_after=3, clock=clock)
    pacer.on_rate_limited()
    assert pacer.limit == 2
    seen = []
    for _ in range(15):
        pacer.on_success()
        seen.append(pacer.limit)
    assert seen == [2, 2, 3, 3, 3, 4, 4, 4, 5, 5, 5, 6, 6, 6, 6]


def test_a_429_breaks_a_run_of_successes():
    clock = FakeClock()
    pacer = Pacer(2, max_concurrency=4, grow_after=2, clock=clock)
    pacer.on_success()
    clock.now += 5
    pacer.on_rate_limited()
    pacer.on_success()
    assert pacer.limit == 1  # the success before the 429 does not count toward the next step


def test_a_place_taken_is_given_back_even_when_its_wait_is_interrupted(monkeypatch):
    pacer = Pacer(1)
    pacer.on_rate_limited(30)

    def interrupted(seconds):
        raise KeyboardInterrupt

    monkeypatch.setattr("aigate_nb.gateway.pacing.time.sleep", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pacer.acquire()
    assert pacer.in_flight == 0


@pytest.mark.parametrize(
    "text,per_second",
    [("60/min", 1.0), ("2/s", 2.0), ("3600/h", 1.0), (" 1.5 / sec ", 1.5), ("90/MIN", 1.5), ("30/minute", 0.5)],
)
def test_rates_are_read_per_second_minute_or_hour(text, per_second):
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("text", ["60", "60/day", "0/s", "-1/s", "fast", "", "1e3/s", 60, None])
def test_a_rate_that_cannot_be_read_is_one_line_saying_how_to_write_it(text):
    with pytest.raises(ConfigurationError) as info:
        Pacer(2, rate=text) if text is not None else parse_rate(text)
    assert 'rate="60/min"' in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("text", ["0.04/h", "0.00001/s", "0." + "0" * 320 + "1/s"], ids=["25 h", "28 h", "denormal"])
def test_a_rate_slower_than_one_a_day_is_refused_rather_than_waited_for(text):
    with pytest.raises(ConfigurationError) as info:
        Pacer(2, rate=text)
    assert str(info.value) == f"rate {text!r} leaves more than a day between requests; give at least 0.05/h."
    assert Pacer(2, rate="0.05/h").rate == pytest.approx(0.05 / 3600)


@pytest.mark.parametrize(
    "options,message",
    [
        ({"concurrency": 0}, "concurrency must be a whole number"),
        ({"concurrency": 2.5}, "concurrency must be a whole number"),
        ({"concurrency": 4, "max_concurrency": 2}, "max_concurrency (2) is less than concurrency (4)"),
        ({"grow_after": 0}, "grow_after must be"),
        ({"cooldown": -1}, "cooldown must be seconds"),
    ],
)
def test_unusable_pacer_settings_are_refused_in_one_line(options, message):
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Pacer(**options)


def test_a_client_with_a_transport_refuses_a_pacer_of_its_own(emu):
    from aigate_nb.gateway.transport import HTTPTransport

    with pytest.raises(ConfigurationError, match="give them to the transport"):
        Client(transport=HTTPTransport(emu.url, TEST_KEY), pacer=Pacer(2))


# -- what a 429's body says --------------------------------------------------------------------------


def google_429(*details) -> str:
    error = {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "x", "details": list(details)}
    return json.dumps({"error": error})


RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"
QUOTA_FAILURE = "type.googleapis.com/google.rpc.QuotaFailure"


@pytest.mark.parametrize(
    "delay,seconds",
    [("58s", 58.0), ("1.5s", 1.5), ("0.125s", 0.125), ({"seconds": 2, "nanos": 500000000}, 2.5),
     ("soon", None), ("-1s", None), ("9" * 400 + "s", None), (None, None)],
)
def test_the_retry_delay_of_a_google_body_is_read_in_seconds(delay, seconds):
    assert retry_delay(google_429({"@type": RETRY_INFO, "retryDelay": delay})) == seconds


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"error": "busy"}', google_429({"@type": "other"})])
def test_a_body_without_retry_info_asks_for_no_wait(text):
    assert retry_delay(text) is None


@pytest.mark.parametrize(
    "violation,quota",
    [
        ({"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"},
         "GenerateRequestsPerDayPerProjectPerModel-FreeTier"),
        ({"quotaMetric": "generativelanguage.googleapis.com/generate_requests_per_day"},
         "generativelanguage.googleapis.com/generate_requests_per_day"),
        ({"quotaId": "GenerateRequestsPerMinutePerProjectPerModel"}, None),
        ({}, None),
    ],
)
def test_only_a_per_day_quota_failure_is_a_used_up_daily_quota(violation, quota):
    body = google_429({"@type": QUOTA_FAILURE, "violations": [violation]}, {"@type": RETRY_INFO, "retryDelay": "9s"})
    assert daily_quota(body) == quota


def test_an_openai_style_insufficient_quota_is_a_used_up_quota():
    body = json.dumps({"error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}})
    assert daily_quota(body) == "insufficient_quota"
    assert daily_quota(json.dumps({"error": {"message": "slow down", "code": "rate_limit_exceeded"}})) is None
