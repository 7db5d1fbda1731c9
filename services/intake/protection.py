"""What keeps the edge safe: its secret, CSRF tokens for the form, a per-client rate limit."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable
from pathlib import Path

from services.common.files import write_private
from services.common.settings import IntakeSettings

_SECRET_BYTES = 32
_MAX_CLIENTS = 10_000  # bound the limiter's memory under a flood of distinct addresses


def edge_secret(settings: IntakeSettings) -> bytes:
    """`CPI_CSRF_SECRET` if set; else a random secret kept under the data dir, so restarts keep it."""
    if settings.csrf_secret is not None:
        return settings.csrf_secret.get_secret_value().encode()
    path: Path = settings.data_dir / "keys" / "intake-edge.secret"
    if path.exists():
        return bytes.fromhex(path.read_text().strip())
    value = secrets.token_bytes(_SECRET_BYTES)
    write_private(path, value.hex().encode())
    return value


def new_csrf_cookie() -> str:
    """A random value for the CSRF cookie."""
    return secrets.token_urlsafe(32)


def csrf_token(secret: bytes, cookie: str) -> str:
    """The form's hidden token: an HMAC of the cookie (signed double-submit), so neither works alone."""
    return hmac.new(secret, b"csrf\0" + cookie.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, cookie: str | None, token: str | None) -> bool:
    """True when the posted token matches the cookie the browser sent."""
    if not cookie or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, cookie), token)


class RateLimiter:
    """A token bucket per client: `per_minute` requests a minute, bursts up to the same number.

    In memory, per process: a deployment behind several replicas divides a client's budget.
    """

    def __init__(self, per_minute: int, clock: Callable[[], float] | None = None) -> None:
        self._capacity = float(per_minute)
        self._rate = per_minute / 60.0
        self._clock = clock or time.monotonic
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(self, client: str) -> bool:
        """Take a token for this client if one is left."""
        now = self._clock()
        tokens, last = self._buckets.get(client, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - last) * self._rate)
        if len(self._buckets) >= _MAX_CLIENTS and client not in self._buckets:
            self._forget_idle(now)
        if tokens < 1.0:
            self._buckets[client] = (tokens, now)
            return False
        self._buckets[client] = (tokens - 1.0, now)
        return True

    def retry_after(self, client: str) -> int:
        """Whole seconds until this client has a token again."""
        tokens, _last = self._buckets.get(client, (self._capacity, 0.0))
        return max(1, int((1.0 - tokens) / self._rate) + 1)

    def _forget_idle(self, now: float) -> None:
        # A bucket that would be full again carries no information; drop those first, then the oldest.
        full = [c for c, (t, last) in self._buckets.items() if t + (now - last) * self._rate >= self._capacity]
        for client in full:
            del self._buckets[client]
        if len(self._buckets) >= _MAX_CLIENTS:
            for client, _ in sorted(self._buckets.items(), key=lambda kv: kv[1][1])[: _MAX_CLIENTS // 10]:
                del self._buckets[client]
