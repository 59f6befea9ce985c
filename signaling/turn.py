"""Short-lived TURN credentials from a secret shared with the TURN server (the "TURN
REST API" convention coturn implements with ``use-auth-secret``): the username is the
expiry time and the user's id, the password the base64 HMAC-SHA1 of the username. The
TURN server checks both without calling us; a leaked pair stops working at its expiry."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TurnConfig:
    urls: list[str] = field(default_factory=list)
    secret: str | None = None
    ttl_s: int = 3600

    @property
    def enabled(self) -> bool:
        return bool(self.urls and self.secret)


def turn_credentials(secret: str, user: str, ttl_s: int, now: float) -> tuple[str, str]:
    username = f"{int(now) + ttl_s}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
