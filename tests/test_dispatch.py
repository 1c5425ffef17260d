"""Handing stored deliveries on: ids committed a few at a time during a burst go out as one batch."""

from __future__ import annotations

import queue
import threading
import time

from ntbcare.pipeline.dispatch import DISPATCH_LINGER, EmbeddedDispatcher, next_batch


def test_ids_arriving_within_the_linger_are_one_batch_and_a_stop_is_kept() -> None:
    pending: queue.Queue[list[int] | None] = queue.Queue()

    def commits() -> None:
        for n in range(5):
            pending.put([2 * n, 2 * n + 1])
            time.sleep(DISPATCH_LINGER / 10)
        pending.put(None)

    threading.Thread(target=commits).start()
    assert next_batch(pending, 200, linger=DISPATCH_LINGER) == list(range(10))
    assert next_batch(pending, 200, linger=DISPATCH_LINGER) is None


def test_a_full_batch_goes_at_once_without_waiting_for_the_linger() -> None:
    pending: queue.Queue[list[int] | None] = queue.Queue()
    pending.put(list(range(200)))
    started = time.monotonic()
    assert next_batch(pending, 200, linger=10.0) == list(range(200))
    assert time.monotonic() - started < 5.0


def test_the_embedded_queue_processes_a_burst_in_few_batches() -> None:
    batches: list[list[int]] = []
    done = threading.Event()

    def processor(ids: list[int]) -> None:
        batches.append(ids)
        if sum(len(b) for b in batches) == 60:
            done.set()

    dispatcher = EmbeddedDispatcher(processor, batch_size=200)
    for n in range(30):  # thirty group commits of two deliveries, 1 ms apart
        dispatcher.dispatch([2 * n, 2 * n + 1])
        time.sleep(0.001)
    assert done.wait(10)
    dispatcher.close()
    assert sorted(i for b in batches for i in b) == list(range(60)) and len(batches) <= 3
