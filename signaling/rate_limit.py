"""Token buckets per client key (an address, an account), kept in this node's memory:
enough to make guessing slow; a deployment behind a load balancer also limits there."""

from __future__ import annotations

import asyncio
import collections
import time
from collections import OrderedDict


class RateLimiter:
    def __init__(self, per_minute: float, burst: int, max_keys: int = 100_000,
                 clock=time.monotonic) -> None:
        self.rate = per_minute / 60.0
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._holding: collections.Counter[str] = collections.Counter()

    def _tokens(self, key: str) -> tuple[float, float]:
        """``key``'s tokens now (refilled since it was last seen), and now."""
        now = self._clock()
        tokens, last = self._buckets.pop(key, (float(self.burst), now))
        return min(float(self.burst), tokens + (now - last) * self.rate), now

    def _keep(self, key: str, tokens: float, now: float) -> None:
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:  # forget the least recently seen
            self._buckets.popitem(last=False)

    def spent(self, key: str) -> bool:
        """Whether ``key``'s bucket is empty, taking nothing (for limits on outcomes:
        checked before the work, taken from with :meth:`allow` when it went wrong)."""
        tokens, now = self._tokens(key)
        self._keep(key, tokens, now)
        return tokens < 1.0

    def wait_s(self, key: str) -> float:
        """Seconds until ``key``'s bucket holds a token again (0 if it does now)."""
        tokens, now = self._tokens(key)
        self._keep(key, tokens, now)
        return max(0.0, (1.0 - tokens) / self.rate) if self.rate else float("inf")

    def allow(self, key: str) -> bool:
        """Take a token from ``key``'s bucket; False when it is empty."""
        tokens, now = self._tokens(key)
        allowed = tokens >= 1.0
        self._keep(key, tokens - 1.0 if allowed else tokens, now)
        return allowed

    async def hold(self, key: str, most: int) -> bool:
        """Wait until ``key``'s bucket would allow its next try, the n-th waiting at once
        n intervals more: a refusal answered then holds a client that waits for its
        answers to the limit's pace, however fast it asks (each ask, even refused, costs
        the node something). False at once when ``most`` already wait: that client is
        not waiting for its answers."""
        held = self._holding[key]
        if held >= most:
            return False
        self._holding[key] += 1
        try:
            await asyncio.sleep(self.wait_s(key) + held / self.rate)
        finally:
            self._holding[key] -= 1
            if not self._holding[key]:
                del self._holding[key]
        return True
