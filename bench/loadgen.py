"""A small asyncio HTTP/1.1 load generator for loopback benchmarks (keep-alive, no dependencies).

Closed loop: N connections send back to back for a duration (throughput).
Open loop: requests leave on a fixed schedule and latency counts from the scheduled time, so a slow
server cannot hide its tail by slowing the client down (no coordinated omission).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class LoadResult:
    sent: int = 0
    ok: int = 0
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def summary(self) -> dict[str, float]:
        return {
            "ok": self.ok, "errors": self.errors, "rate_per_s": round(self.rate, 1),
            "p50_ms": round(self.percentile(50) * 1000, 2), "p99_ms": round(self.percentile(99) * 1000, 2),
            "p999_ms": round(self.percentile(99.9) * 1000, 2),
            "max_ms": round(max(self.latencies, default=float("nan")) * 1000, 2),
            "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2) if self.latencies else float("nan"),
        }


RequestFactory = Callable[[int], tuple[str, str, dict[str, str], bytes]]


def build_request(host: str, method: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


class _Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, raw: bytes) -> int:
        if self.writer is None or self.writer.is_closing():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        self.writer.write(raw)
        await self.writer.drain()
        return await _read_response(self.reader)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _record(result: LoadResult, status: int | None, latency: float) -> None:
    if status is None:
        result.errors += 1
        return
    result.statuses[status] = result.statuses.get(status, 0) + 1
    if 200 <= status < 300:
        result.ok += 1
        result.latencies.append(latency)
    else:
        result.errors += 1


async def _closed(host: str, port: int, make: RequestFactory, connections: int, duration: float) -> LoadResult:
    result = LoadResult()
    counter = iter(range(10**9))
    stop_at = time.perf_counter() + duration

    async def loop() -> None:
        conn = _Connection(host, port)
        while time.perf_counter() < stop_at:
            method, path, headers, body = make(next(counter))
            raw = build_request(host, method, path, headers, body)
            started = time.perf_counter()
            try:
                status: int | None = await conn.send(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = None
                conn.close()
                conn = _Connection(host, port)
            result.sent += 1
            _record(result, status, time.perf_counter() - started)
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(loop() for _ in range(connections)))
    result.elapsed = time.perf_counter() - started
    return result


async def _open(host: str, port: int, make: RequestFactory, rate: float, duration: float,
                pool_size: int) -> LoadResult:
    result = LoadResult()
    pool: asyncio.Queue[_Connection] = asyncio.Queue()
    for _ in range(pool_size):
        pool.put_nowait(_Connection(host, port))
    total = int(rate * duration)
    begin = time.perf_counter() + 0.05

    async def one(n: int) -> None:
        scheduled = begin + n / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        conn = await pool.get()
        method, path, headers, body = make(n)
        try:
            status: int | None = await conn.send(build_request(host, method, path, headers, body))
        except (OSError, asyncio.IncompleteReadError, ValueError):
            status = None
            conn.close()
            conn = _Connection(host, port)
        result.sent += 1
        _record(result, status, time.perf_counter() - scheduled)
        pool.put_nowait(conn)

    await asyncio.gather(*(one(n) for n in range(total)))
    result.elapsed = time.perf_counter() - begin
    return result


def closed_loop(host: str, port: int, make: RequestFactory, *, connections: int, duration: float) -> LoadResult:
    return asyncio.run(_closed(host, port, make, connections, duration))


def open_loop(host: str, port: int, make: RequestFactory, *, rate: float, duration: float,
              pool_size: int = 64) -> LoadResult:
    return asyncio.run(_open(host, port, make, rate, duration, pool_size))

