"""Rate limits on asking for a sign-in link, per address and per client, with the ``limits`` library.

Counts live in Redis when ``REDIS_URL`` is set (shared by every web process), else in this process's memory.
If Redis cannot be reached the limits fall back to memory rather than refusing people or failing the page.
The client is the connecting address; only a proxy on this machine (loopback) is trusted to name the real
client in ``X-Forwarded-For``, so a remote caller cannot forge its way around the limit.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

from flask import Request
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)

PER_ADDRESS = parse("5/15 minutes")
PER_CLIENT = parse("20/15 minutes")
KEY_PREFIX = "ntbcare-sign-in"
LOOPBACK = ("127.", "::1", "::ffff:127.")


def client_address(request: Request) -> str:
    """The requesting client: the connecting address, or the last hop a local reverse proxy added."""
    remote = request.remote_addr or "unknown"
    forwarded = request.headers.get("X-Forwarded-For", "")
    if forwarded and remote.startswith(LOOPBACK):
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return remote


def _storage(redis_url: str) -> Storage:
    if not redis_url:
        return MemoryStorage()
    uri = "redis+unix://" + redis_url.removeprefix("unix://") if redis_url.startswith("unix://") else redis_url
    return RedisStorage(uri, key_prefix=KEY_PREFIX)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int  # seconds until another request would be allowed (0 when allowed)


class SignInLimits:
    """Counts requests for sign-in links; one per app."""

    def __init__(self, redis_url: str = "", *, per_address: RateLimitItem = PER_ADDRESS,
                 per_client: RateLimitItem = PER_CLIENT) -> None:
        self.per_address, self.per_client = per_address, per_client
        self._limiter = MovingWindowRateLimiter(_storage(redis_url))
        self._fallback = MovingWindowRateLimiter(MemoryStorage())

    def hit(self, *, client: str, email: str | None) -> Verdict:
        """Count one request from ``client`` for ``email`` (None: not an address, only the client counts)."""
        try:
            return self._hit(self._limiter, client, email)
        except Exception as exc:  # Redis down or unreachable: keep limiting, in this process only
            log.warning("sign-in rate limits: storage unavailable, counting in memory: %s", exc)
            return self._hit(self._fallback, client, email)

    def _hit(self, limiter: MovingWindowRateLimiter, client: str, email: str | None) -> Verdict:
        checks = [(self.per_client, ("client", client))]
        if email is not None:
            checks.append((self.per_address, ("address", email)))
        refused = [(item, keys) for item, keys in checks if not limiter.hit(item, *keys)]
        if not refused:
            return Verdict(True, 0)
        now = time.time()
        wait = max(limiter.get_window_stats(item, *keys).reset_time - now for item, keys in refused)
        return Verdict(False, max(1, math.ceil(wait)))
