"""Per-credential rate limiting: a token bucket per key id, in process memory.

Each service replica limits on its own, so the effective limit behind a load balancer is
``replicas × rate``; that is deliberate (no shared state on the hot path) and documented.
"""

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from services.runtime.problems import RateLimited


@dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


@dataclass(slots=True)
class RateLimiter:
    """``rate`` requests per second with bursts up to ``burst``, per key."""

    rate: float
    burst: int
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, _Bucket] = field(default_factory=dict)

    def acquire(self, key: str, cost: float = 1.0) -> None:
        """Take ``cost`` tokens or raise RateLimited with the seconds to wait."""
        now = self.clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens + 1e-9 < cost:  # float refill must not refuse an honoured Retry-After
            wait = math.ceil((cost - bucket.tokens) / self.rate)
            raise RateLimited(f"rate limit of {self.rate:g} requests/s exceeded", max(1, wait))
        bucket.tokens -= cost
