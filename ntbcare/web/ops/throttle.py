"""Failed console logins, counted per username and per address with the ``limits`` library: after 5 failures
for one username or 20 from one address in 15 minutes, logins are refused until the window moves on.

Counts live in Redis when ``REDIS_URL`` is set (shared by every web process), else in this process's memory;
if Redis cannot be reached they fall back to memory rather than failing the login page.
"""

from __future__ import annotations

import logging
import math
import time

from flask import current_app
from limits import parse
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from ntbcare.web.context import current_runtime

log = logging.getLogger(__name__)

PER_USERNAME = parse("5/15 minutes")
PER_ADDRESS = parse("20/15 minutes")
KEY_PREFIX = "ntbcare-ops-login"
EXTENSION_KEY = "ntbcare.ops_login_throttle"


def _storage(redis_url: str) -> Storage:
    if not redis_url:
        return MemoryStorage()
    uri = "redis+unix://" + redis_url.removeprefix("unix://") if redis_url.startswith("unix://") else redis_url
    return RedisStorage(uri, key_prefix=KEY_PREFIX)


class LoginThrottle:
    """Failed logins of one app."""

    def __init__(self, redis_url: str = "") -> None:
        self._limiter = MovingWindowRateLimiter(_storage(redis_url))
        self._fallback = MovingWindowRateLimiter(MemoryStorage())

    def retry_after(self, username: str, address: str) -> int:
        """Seconds until a login may be tried again (0: it may be tried now)."""
        try:
            return self._retry_after(self._limiter, username, address)
        except Exception as exc:
            log.warning("login throttle: storage unavailable, counting in memory: %s", exc)
            return self._retry_after(self._fallback, username, address)

    def failed(self, username: str, address: str) -> None:
        """Count one failed login."""
        try:
            self._limiter.hit(PER_USERNAME, "username", username)
            self._limiter.hit(PER_ADDRESS, "address", address)
        except Exception as exc:
            log.warning("login throttle: storage unavailable, counting in memory: %s", exc)
            self._fallback.hit(PER_USERNAME, "username", username)
            self._fallback.hit(PER_ADDRESS, "address", address)

    @staticmethod
    def _retry_after(limiter: MovingWindowRateLimiter, username: str, address: str) -> int:
        now = time.time()
        waits = [limiter.get_window_stats(item, *keys).reset_time - now
                 for item, keys in ((PER_USERNAME, ("username", username)), (PER_ADDRESS, ("address", address)))
                 if not limiter.test(item, *keys)]
        return max(1, math.ceil(max(waits))) if waits else 0


def login_throttle() -> LoginThrottle:
    """The app's throttle (created on first use)."""
    throttle = current_app.extensions.get(EXTENSION_KEY)
    if not isinstance(throttle, LoginThrottle):
        throttle = current_app.extensions[EXTENSION_KEY] = LoginThrottle(current_runtime().settings.redis_url)
    return throttle
