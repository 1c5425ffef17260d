"""Usage governor (pacing from Meta's usage headers) and retry backoff."""

from __future__ import annotations

import json
import random
import threading
from types import SimpleNamespace

import pytest
import responses

from bot.backoff import backoff_bound, backoff_delay
from bot.errors import RateLimitedError
from bot.graph import GraphClient
from bot.ratelimit import UsageGovernor, parse_usage_headers

BASE = "https://graph.test"
VERSION = "v25.0"
PAGE_ID = "104000000000001"


class FakeTime:
    """A clock that only moves when the code under test sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def governor(fake_time) -> UsageGovernor:
    return UsageGovernor(clock=fake_time.clock, sleep=fake_time.sleep)


def buc_header(call_count, cputime=0, regain=0, kind="pages"):
    entry = {"type": kind, "call_count": call_count, "total_cputime": cputime, "total_time": 1,
             "estimated_time_to_regain_access": regain}
    return {"X-Business-Use-Case-Usage": json.dumps({PAGE_ID: [entry]})}


def response_with(headers):
    return SimpleNamespace(headers=headers)


@pytest.mark.parametrize(
    ("headers", "expected_delay"),
    [
        (buc_header(50), 0.0),
        (buc_header(74, cputime=12), 0.0),
        (buc_header(80), 6.0),
        (buc_header(10, cputime=90), 18.0),
        (buc_header(100), 300.0),
        (buc_header(100, regain=5), 300.0),
        (buc_header(100, regain=12), 720.0),
        (buc_header(40, regain=3), 180.0),
        ({"X-App-Usage": json.dumps({"call_count": 95, "total_cputime": 3, "total_time": 4})}, 24.0),
        ({"x-page-usage": json.dumps({"call_count": 100})}, 300.0),
    ],
)
def test_delay_after_a_call_follows_usage(governor, headers, expected_delay):
    governor.wait()
    governor.observe(response_with(headers))
    assert governor.delay_before_next_call() == pytest.approx(expected_delay)


def test_block_shrinks_as_time_passes(governor, fake_time):
    governor.observe(response_with(buc_header(100, regain=12)))
    fake_time.now += 100
    assert governor.delay_before_next_call() == pytest.approx(620.0)
    fake_time.now += 620
    assert governor.delay_before_next_call() == 0.0


def test_usage_drop_lifts_pacing(governor):
    governor.wait()
    governor.observe(response_with(buc_header(90)))
    governor.observe(response_with(buc_header(20)))
    assert governor.delay_before_next_call() == 0.0


def test_a_reading_no_response_renews_stops_pacing_after_its_time(governor, fake_time):
    """The headers come with responses: a throttled page (or an endpoint without them) renews nothing, so a
    100 % reading must not space every call 30 s apart for ever."""
    governor.wait()
    governor.observe(response_with(buc_header(100, regain=1)))
    fake_time.now += 30
    assert governor.highest_percent == 100 and governor.delay_before_next_call() == pytest.approx(30.0)
    fake_time.now += 31  # the announced minute has passed: access is back, calls flow freely again
    governor.wait()
    assert governor.highest_percent == 0.0 and governor.delay_before_next_call() == 0.0
    governor.observe(response_with(buc_header(90)))  # no regain time announced: it counts for two minutes
    governor.wait()
    assert governor.delay_before_next_call() == pytest.approx(18.0)
    fake_time.now += 121  # and no response has said anything since
    governor.wait()
    assert governor.highest_percent == 0.0 and governor.delay_before_next_call() == 0.0


def test_highest_kind_wins(governor):
    both = {**buc_header(30, kind="pages"), "X-App-Usage": json.dumps({"call_count": 85})}
    governor.wait()
    governor.observe(response_with(both))
    assert governor.highest_percent == 85
    assert governor.delay_before_next_call() == pytest.approx(12.0)


def test_wait_sleeps_the_pause_between_calls(governor, fake_time):
    governor.wait()
    governor.observe(response_with(buc_header(80)))
    fake_time.now += 2
    assert governor.wait() == pytest.approx(4.0)
    assert fake_time.sleeps == [pytest.approx(4.0)]


def test_throttle_note_blocks_for_given_or_default_time(governor, fake_time):
    governor.note_throttled(90)
    assert governor.delay_before_next_call() == 90
    governor.note_throttled(None)
    assert governor.delay_before_next_call() == 300


def test_concurrent_callers_get_distinct_slots():
    sleeps: list[float] = []
    lock = threading.Lock()

    def record(seconds: float) -> None:
        with lock:
            sleeps.append(seconds)

    governor = UsageGovernor(clock=lambda: 50.0, sleep=record)
    governor.observe(response_with(buc_header(80)))
    threads = [threading.Thread(target=governor.wait) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(sleeps) == pytest.approx([6.0 * i for i in range(1, 8)])


def test_parse_keeps_highest_per_kind_across_business_ids():
    header = {"X-Business-Use-Case-Usage": json.dumps({
        "1": [{"type": "pages", "call_count": 20}, {"type": "messenger", "total_time": 70}],
        "2": [{"type": "pages", "total_cputime": 60, "estimated_time_to_regain_access": 2}],
    })}
    snapshot = parse_usage_headers(header)
    assert snapshot.levels == {"business:pages": 60, "business:messenger": 70}
    assert snapshot.regain_seconds == 120


@pytest.mark.parametrize(
    "headers",
    [
        None,
        {},
        {"X-Business-Use-Case-Usage": "<html>502</html>"},
        {"X-Business-Use-Case-Usage": ""},
        {"X-Business-Use-Case-Usage": "[1, 2]"},
        {"X-Business-Use-Case-Usage": json.dumps({"1": "pages"})},
        {"X-Business-Use-Case-Usage": json.dumps({"1": [None, 3, {"call_count": "lots"}]})},
        {"X-App-Usage": json.dumps({"call_count": True, "total_time": None})},
        {"X-App-Usage": '{"call_count": NaN}'},
        {"X-App-Usage": b"\xff\xfe"},
        "not a mapping",
    ],
)
def test_junk_headers_never_raise_nor_slow_down(governor, headers):
    governor.wait()
    governor.observe(response_with(headers))
    assert governor.delay_before_next_call() == 0.0
    assert governor.observe(object()).levels == {}


def graph_client(governor, **kwargs) -> GraphClient:
    return GraphClient(BASE, VERSION, PAGE_ID, "TOKEN123", "secret", governor=governor, **kwargs)


@responses.activate
def test_rate_limited_response_makes_next_call_wait(governor, fake_time):
    throttled = {"error": {"message": "(#613) rate limit", "type": "OAuthException", "code": 613}}
    responses.get(f"{BASE}/{VERSION}/me", status=400, json=throttled, headers=buc_header(100, regain=2))
    responses.get(f"{BASE}/{VERSION}/me", json={"id": "1"})
    client = graph_client(governor, max_wait_seconds=1000)

    with pytest.raises(RateLimitedError) as caught:
        client.get("me")
    assert caught.value.retry_after_seconds == 120
    assert client.get("me") == {"id": "1"}
    assert fake_time.sleeps == [pytest.approx(120.0)]
    assert len(responses.calls) == 2


@responses.activate
def test_throttle_without_regain_time_uses_default_block(governor, fake_time):
    responses.post(f"{BASE}/{VERSION}/{PAGE_ID}/messages", status=400,
                   json={"error": {"message": "limit", "code": 80006}})
    client = graph_client(governor, max_wait_seconds=1000)

    with pytest.raises(RateLimitedError):
        client.send_message("p1", "Halo")
    assert governor.delay_before_next_call() == 300


@responses.activate
def test_long_block_raises_instead_of_holding_the_worker(governor, fake_time):
    responses.get(f"{BASE}/{VERSION}/me", json={"id": "1"}, headers=buc_header(100, regain=10))
    client = graph_client(governor)

    client.get("me")
    with pytest.raises(RateLimitedError) as caught:
        client.get("me")

    assert caught.value.retry_after_seconds == pytest.approx(600.0)
    assert caught.value.http_status is None
    assert len(responses.calls) == 1
    assert fake_time.sleeps == []


@responses.activate
def test_high_usage_spaces_client_calls(governor, fake_time):
    responses.get(f"{BASE}/{VERSION}/me", json={"id": "1"}, headers=buc_header(90))
    client = graph_client(governor)

    client.get("me")
    client.get("me")
    assert fake_time.sleeps == [pytest.approx(18.0)]


@pytest.mark.parametrize(("attempt", "bound"), [(0, 2.0), (1, 4.0), (3, 16.0), (8, 512.0), (9, 600.0)])
def test_backoff_samples_stay_in_bound_with_mean_near_half(attempt, bound):
    rng = random.Random(attempt).random
    samples = [backoff_delay(attempt, rng=rng) for _ in range(1000)]

    assert backoff_bound(attempt) == bound
    assert all(0.0 <= sample <= bound for sample in samples)
    assert sum(samples) / len(samples) == pytest.approx(bound / 2, rel=0.06)
    assert max(samples) > 0.9 * bound and min(samples) < 0.1 * bound


def test_backoff_cap_and_parameters():
    assert backoff_delay(10_000, rng=lambda: 1.0) == 600.0
    assert backoff_delay(2, base=1.0, cap=3.0, rng=lambda: 1.0) == 3.0
    assert backoff_delay(2, base=1.0, cap=30.0, rng=lambda: 0.5) == 2.0
    with pytest.raises(ValueError):
        backoff_delay(-1)
