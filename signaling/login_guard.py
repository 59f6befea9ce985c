"""Sign-in throttling: a per-address rate limit (guessing many accounts from one place)
and a per-account lockout after repeated failures (guessing one account from many
places). Every attempt is counted in the store before its password is checked, so the
same limits hold on every node and for attempts sent all at once: of any number of
concurrent tries, at most ``max_failures`` reach the password check.

The lockout can be used to keep a staff member out for its duration by failing on
purpose; that is the usual price, kept short (15 minutes) and logged.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Protocol

from sessions.store import RateLimits, RecordStore

from .rate_limit import RateLimiter

logger = logging.getLogger(__name__)


class LockoutStore(RecordStore, RateLimits, Protocol):
    """Failed sign-ins are counted in the rate limits; a lockout is a record."""


@dataclass(frozen=True)
class LoginPolicy:
    max_failures: int = 5
    lockout_s: float = 15 * 60
    per_address_per_minute: float = 60
    per_address_burst: int = 30


class LoginGuard:
    def __init__(self, store: LockoutStore, policy: LoginPolicy, clock=time.time) -> None:
        self.store = store
        self.policy = policy
        self.clock = clock
        self._addresses = RateLimiter(policy.per_address_per_minute, policy.per_address_burst)

    def address_allowed(self, address: str) -> bool:
        return self._addresses.allow(address)

    async def locked_for(self, username: str) -> float:
        """Seconds the account stays locked (0 when it is not)."""
        lock = await self.store.get_record("login_lock", username.lower())
        return max(0.0, lock["until"] - self.clock()) if lock else 0.0

    async def admit(self, username: str, address: str) -> tuple[int, float]:
        """Count this attempt before its password is checked, atomically in the store
        (so attempts sent at once, to one node or several, are counted one by one):
        ``(attempt, 0)`` to go ahead with the ``attempt``-th try since the last success,
        or ``(attempt, seconds)`` to refuse it for that long without checking anything."""
        now = self.clock()
        from_here = await self.store.hit(f"login-from:{address}", 60, now)
        if from_here > self.policy.per_address_per_minute:
            return from_here, 60.0
        locked = await self.locked_for(username)
        if locked:
            return 0, locked
        attempt = await self.store.hit(f"login:{username.lower()}", self.policy.lockout_s, now)
        if attempt > self.policy.max_failures:  # the others in flight had the last chances
            return attempt, self.policy.lockout_s
        return attempt, 0.0

    async def failed(self, username: str, address: str, attempt: int) -> None:
        """The ``attempt``-th try had the wrong password: the last allowed one locks."""
        if attempt < self.policy.max_failures:
            return
        now = self.clock()
        await self.store.put_record(
            "login_lock", username.lower(), {"until": now + self.policy.lockout_s}
        )
        await self.store.reset_hits(f"login:{username.lower()}")
        logger.warning("sign-in locked for %s after %d failures (last from %s)",
                       username, attempt, address)

    async def succeeded(self, username: str) -> None:
        await self.store.reset_hits(f"login:{username.lower()}")
