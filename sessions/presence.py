"""Staff presence: what each staff member is doing, as routing sees it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .records import Record


class PresenceState(enum.StrEnum):
    AVAILABLE = "available"
    RINGING = "ringing"
    BUSY = "busy"
    WRAPUP = "wrapup"
    AWAY = "away"
    OFFLINE = "offline"


@dataclass
class Presence(Record):
    staff_id: str
    display_name: str
    departments: list[str]
    state: str = PresenceState.OFFLINE
    since: float = 0.0
    # Routing offers a call to the staff member who has been available the longest.
    idle_since: float = 0.0
    session_id: str | None = None
    last_seen: float = 0.0
    reason: str | None = None

    def public(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since,
            "session_id": self.session_id,
            "reason": self.reason,
        }
