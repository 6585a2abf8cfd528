"""Django's Redis cache, as a help and never a requirement (sessions are ``cached_db``: the
database is the truth).

- An error of Redis (down, slow past the socket timeouts, full) is a miss, logged once a minute
  at most, never a 500: sessions are then read from and written to the database alone.
- No entry outlives ``MAX_ENTRY_SECONDS`` (default 300): a session deleted (signed out) while
  Redis did not answer is forgotten by the cache within that time, never resurrected for the
  two weeks a session lives.
- By default the cache shares the broker's Redis database (``CACHE_URL`` defaults to
  ``REDIS_URL``): ``clear()`` deletes the cache's own keys (its ``KEY_PREFIX``), never the
  queues a ``FLUSHDB`` would take with it.
- ``state()`` says how it is, for ``/readyz``: "ok", "none" (no cache configured) or the error.
- After an error the cache is left alone for ``RETRY_AFTER`` seconds (default 10) in this
  process: a Redis that accepts connections and never answers costs one socket timeout per
  process and pause, not one per request.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
_last_warning = [0.0]
_paused_until: dict[str, float] = {}  # by location: this process leaves that Redis alone until


def _warn(error: Exception) -> None:
    now = time.monotonic()
    if now - _last_warning[0] > 60:
        _last_warning[0] = now
        log.warning("the cache does not answer (%s): reading the database instead", error)


def state() -> str:
    """The default cache as ``/readyz`` reports it."""
    from django.core.cache import caches

    cache = caches["default"]
    if not isinstance(cache, RedisCache):
        return "none"
    try:
        cache.ping()
    except RedisError as error:
        return f"error: {type(error).__name__}"
    return "ok"


class RedisCache(DjangoRedisCache):
    def __init__(self, server: str, params: dict[str, Any]) -> None:
        self.max_entry_seconds = int(params.get("MAX_ENTRY_SECONDS", 300))
        self.retry_after = float(params.get("RETRY_AFTER", 10))
        self.location = str(server)
        super().__init__(server, params)

    def get_backend_timeout(self, timeout=DEFAULT_TIMEOUT):
        seconds = super().get_backend_timeout(timeout)
        return self.max_entry_seconds if seconds is None else min(seconds, self.max_entry_seconds)

    def _paused(self) -> bool:
        return time.monotonic() < _paused_until.get(self.location, 0.0)

    def _failed(self, error: Exception) -> None:
        _paused_until[self.location] = time.monotonic() + self.retry_after
        _warn(error)

    def _guarded(self, call, default, *args):
        """``call(*args)``, or ``default`` while paused or when Redis fails (then paused)."""
        if self._paused():
            return default
        try:
            return call(*args)
        except RedisError as error:
            self._failed(error)
            return default

    def get(self, key, default=None, version=None):
        return self._guarded(super().get, default, key, default, version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        self._guarded(super().set, None, key, value, timeout, version)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._guarded(super().add, False, key, value, timeout, version)

    def delete(self, key, version=None):
        return self._guarded(super().delete, False, key, version)

    def has_key(self, key, version=None):
        return self._guarded(super().has_key, False, key, version)

    def incr(self, key, delta=1, version=None):
        """As Django's: ValueError when the key is missing, and now also when Redis does not
        answer (a counter that cannot count is a missing one)."""
        if self._paused():
            raise ValueError(f"Key '{key}' not found (the cache does not answer).")
        try:
            return super().incr(key, delta, version)
        except RedisError as error:
            self._failed(error)
            raise ValueError(f"Key '{key}' not found (the cache does not answer).") from None

    def clear(self):
        """Delete this cache's keys only (Django's deletes the whole Redis database)."""
        if not self.key_prefix:
            return super().clear()
        client = self._cache.get_client(write=True)
        pattern = re.sub(r"([*?\[\]\\])", r"\\\1", self.key_prefix) + ":*"
        try:
            batch = []
            for key in client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.delete(*batch)
                    batch = []
            if batch:
                client.delete(*batch)
        except RedisError as error:
            _warn(error)
        return True

    def ping(self) -> None:
        """Raise the error of Redis if it does not answer (``state()``)."""
        self._cache.get_client(write=True).ping()
