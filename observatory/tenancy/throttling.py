"""Per-key request rate limits for what applications call with their key: ingest and the
budget guard, each counted apart so that asking the guard never eats into the ingest limit.

A fixed one-second window counted in Django's cache: one atomic increment per request. With
a shared cache (Redis via CACHE_URL) the limit holds across all web workers; with the default
per-process cache each worker enforces it on its own. A key's own limit wins over the
deployment default; 0 means unlimited.
"""

from __future__ import annotations

import math
import time

from django.conf import settings
from django.core.cache import caches
from rest_framework.throttling import BaseThrottle

from observatory.tenancy.models import ApiKey


def rate_limit_wait(key: ApiKey, *, scope: str = "ingest") -> int | None:
    """Seconds to wait before this key may send again, or None when the request may pass."""
    limit = key.rate_limit_per_second
    if limit is None:
        limit = settings.INGEST_RATE_LIMIT_PER_SECOND
    if not limit:
        return None
    now = time.time()
    window = int(now)
    cache = caches["default"]
    counter = f"{scope}-rate:{key.pk}:{window}"
    # add() is a no-op when the counter exists; incr() is atomic in every cache backend.
    cache.add(counter, 0, timeout=5)
    try:
        count = cache.incr(counter)
    except ValueError:  # expired between add and incr
        cache.add(counter, 1, timeout=5)
        count = 1
    if count <= limit:
        return None
    return max(1, math.ceil(window + 1 - now))


class ApiKeyRateThrottle(BaseThrottle):
    """rate_limit_wait as a DRF throttle, for the endpoints built on DRF views."""

    scope = "ingest"

    def allow_request(self, request, view) -> bool:
        if not isinstance(request.auth, ApiKey):
            return True
        self._wait = rate_limit_wait(request.auth, scope=self.scope)
        return self._wait is None

    def wait(self) -> float:
        return self._wait
