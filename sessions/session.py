"""The session record and its state machine.

``queued → ringing → connected → closed``; ``ringing → queued`` on timeout or decline;
``queued|ringing → abandoned`` when the kiosk leaves; ``connected → queued`` when the
staff side is lost (the caller goes back to the head of the queue) or on transfer.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from .errors import Conflict
from .records import Record


class SessionState(enum.StrEnum):
    QUEUED = "queued"
    RINGING = "ringing"
    CONNECTED = "connected"
    CLOSED = "closed"
    ABANDONED = "abandoned"


TRANSITIONS: dict[SessionState, frozenset[SessionState]] = {
    SessionState.QUEUED: frozenset({SessionState.RINGING, SessionState.ABANDONED}),
    SessionState.RINGING: frozenset(
        {SessionState.QUEUED, SessionState.CONNECTED, SessionState.ABANDONED}
    ),
    SessionState.CONNECTED: frozenset({SessionState.QUEUED, SessionState.CLOSED}),
    SessionState.CLOSED: frozenset(),
    SessionState.ABANDONED: frozenset(),
}

LIVE_STATES = frozenset({SessionState.QUEUED, SessionState.RINGING, SessionState.CONNECTED})

# Queue scores: ordinary callers are ordered by arrival time; callers sent back to the head
# (staff lost) sort before every ordinary caller, and among themselves by arrival.
HEAD_OFFSET = 1e10


def check_transition(current: str, target: SessionState) -> None:
    if target not in TRANSITIONS[SessionState(current)]:
        raise Conflict(f"session cannot go from {current} to {target}")


@dataclass
class Session(Record):
    id: str
    kiosk_id: str
    kiosk_site: str
    department_id: str
    service_id: str
    language: str
    state: str
    created_at: float
    queue_score: float
    queued_at: float
    offered_to: str | None = None
    offer_expires_at: float | None = None
    declined_by: list[str] = field(default_factory=list)
    staff_id: str | None = None
    staff_display_name: str | None = None
    answered_at: float | None = None
    connected_at: float | None = None
    ended_at: float | None = None
    end_reason: str | None = None
    kiosk_lost_at: float | None = None
    staff_lost_at: float | None = None
    # The earliest time something must happen to this session (offer expiry, end of a
    # grace period); the store keeps an index on it so any node's ticker can find it.
    deadline: float | None = None

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    def public(self) -> dict[str, Any]:
        """The session record as clients see it (docs/protocol.md ``GET /sessions/{sid}``)."""
        return {
            "session_id": self.id,
            "state": self.state,
            "department_id": self.department_id,
            "service_id": self.service_id,
            "language": self.language,
            "kiosk": {"id": self.kiosk_id, "site": self.kiosk_site},
            "staff_id": self.staff_id,
            "created_at": self.created_at,
            "answered_at": self.answered_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
        }
