"""The public figures' cache: bounded (least recently used reports go, the warmed month never), at most
MAX_COMPUTING periods computed at once (a visitor beyond that gets a short 503 with Retry-After; one asking for
a period already being computed waits on that computation), and this month kept warm by a background thread so
the default page never waits."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest

from ntbcare.app import create_app
from ntbcare.core.db import Database
from ntbcare.pipeline.accountability import cache
from ntbcare.pipeline.accountability.periods import Period, current_month, month_of
from ntbcare.pipeline.join import deadline_policy_for
from tests.public_seed import NOW, seed_month


@pytest.fixture
def seeded(db: Database, settings):  # type: ignore[no-untyped-def]
    seed_month(db, settings)
    cache.clear_cache()
    yield db, deadline_policy_for(settings)
    deadline = time.monotonic() + 30
    while cache.computing() and time.monotonic() < deadline:
        time.sleep(0.02)
    cache.clear_cache()


def day_range(n: int) -> Period:
    first = date(2026, 12, 1) + timedelta(days=n)
    return Period("rentang", first, first + timedelta(days=1))


class Gate:
    """Holds every computation of the real figures until opened, counting them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.open = threading.Event()
        self.started = 0
        real = cache.compute

        def gated(*args, **kwargs):  # type: ignore[no-untyped-def]
            self.started += 1
            assert self.open.wait(30)
            return real(*args, **kwargs)

        monkeypatch.setattr(cache, "compute", gated)


def in_thread(target, *args):  # type: ignore[no-untyped-def]
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["result"] = target(*args)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, box


def wait_until(condition, seconds: float = 10) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_the_cache_keeps_at_most_max_entries_least_recently_used_first(seeded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db, policy = seeded
    monkeypatch.setattr(cache, "MAX_ENTRIES", 3)
    for n in range(5):
        cache.cached_report(db, policy, day_range(n), NOW)
    cache.cached_report(db, policy, day_range(2), NOW)  # used again: now the most recent
    assert cache.cached_periods() == [day_range(3).key, day_range(4).key, day_range(2).key]


def test_a_second_visitor_of_a_period_being_computed_waits_for_that_computation(seeded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db, policy = seeded
    gate = Gate(monkeypatch)
    first, first_box = in_thread(cache.cached_report, db, policy, month_of(2026, 12), NOW)
    wait_until(lambda: gate.started == 1)
    second, second_box = in_thread(cache.cached_report, db, policy, month_of(2026, 12), NOW)
    time.sleep(0.2)
    assert second.is_alive() and gate.started == 1  # waiting, not computing again
    gate.open.set()
    first.join(30)
    second.join(30)
    assert first_box["result"] is second_box["result"]
    assert first_box["result"].row("DINKES").received == 6  # type: ignore[attr-defined]
    assert gate.started == 1


def test_beyond_max_computing_periods_a_visitor_gets_a_short_503(seeded, monkeypatch, runtime) -> None:  # type: ignore[no-untyped-def]
    db, policy = seeded
    gate = Gate(monkeypatch)
    threads = [in_thread(cache.cached_report, db, policy, day_range(n), NOW)[0] for n in range(cache.MAX_COMPUTING)]
    wait_until(lambda: gate.started == cache.MAX_COMPUTING)
    with pytest.raises(cache.Busy):
        cache.cached_report(db, policy, day_range(9), NOW)
    client = create_app(runtime=runtime).test_client()
    page = client.get("/transparansi?dari=2026-12-20&sampai=2026-12-21")
    assert page.status_code == 503 and int(page.headers["Retry-After"]) == cache.RETRY_AFTER
    assert "sedang dihitung" in page.get_data(as_text=True) and page.headers["Cache-Control"] == "no-store"
    data = client.get("/transparansi.csv?dari=2026-12-20&sampai=2026-12-21")
    assert data.status_code == 503 and data.headers["Retry-After"] and data.mimetype == "text/plain"
    assert gate.started == cache.MAX_COMPUTING  # the refused ones computed nothing
    gate.open.set()
    for thread in threads:
        thread.join(30)
    assert client.get("/transparansi?dari=2026-12-20&sampai=2026-12-21").status_code == 200  # room again


def test_the_warmer_keeps_this_month_cached_and_it_is_never_evicted(seeded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db, policy = seeded
    monkeypatch.setattr(cache, "MAX_ENTRIES", 2)
    warmed = cache.Warmer(db, policy, clock=lambda: NOW).warm_once()
    assert warmed is not None and warmed.row("DINKES").received == 6
    for n in range(4):  # a crawler walking odd ranges
        cache.cached_report(db, policy, day_range(n), NOW)
    assert current_month(NOW).key in cache.cached_periods() and len(cache.cached_periods()) == 3
    gate = Gate(monkeypatch)  # from here on any computation would block: the default page must not compute
    assert cache.cached_report(db, policy, current_month(NOW), NOW) is warmed
    assert gate.started == 0
    gate.open.set()


def test_the_warmer_recomputes_before_the_cached_copy_expires(seeded, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    db, policy = seeded
    monkeypatch.setattr(cache, "WARM_EVERY", 0.05)  # the loop's floor of one second applies
    warmer = cache.Warmer(db, policy, clock=lambda: NOW).start()
    try:
        wait_until(lambda: current_month(NOW).key in cache.cached_periods())
        first = cache.cached_report(db, policy, current_month(NOW), NOW)
        wait_until(lambda: cache.cached_report(db, policy, current_month(NOW), NOW) is not first, seconds=15)
    finally:
        warmer.stop()


def test_a_served_app_warms_this_month_and_a_test_app_does_not(runtime) -> None:  # type: ignore[no-untyped-def]
    served = create_app(runtime=runtime, warm_figures=True)
    warmer = served.extensions["figures-warmer"]
    try:
        assert isinstance(warmer, cache.Warmer)
        wait_until(lambda: any(key.startswith("bulan:") for key in cache.cached_periods()), seconds=30)
    finally:
        warmer.stop()
        cache.clear_cache()
    assert "figures-warmer" not in create_app(runtime=runtime).extensions
