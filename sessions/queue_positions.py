"""What waiting kiosks are told of their place in the queue: position and ETA, sent when
they change, a department at a time, at most every round of :meth:`QueueAnnouncer.push`
(a queue that moves ten times a second is told twice, not ten times: each told position
is an event to every waiting kiosk, carried to every node)."""

from __future__ import annotations

import math

from .notifier import Notifier
from .presence import PresenceState
from .session import Session, SessionState
from .store import Store

ACTIVE_AGENT_STATES = frozenset(
    {PresenceState.AVAILABLE, PresenceState.RINGING, PresenceState.BUSY, PresenceState.WRAPUP}
)


class QueueAnnouncer:
    def __init__(self, store: Store, notifier: Notifier, average_handle_s: float = 240.0) -> None:
        self.store = store
        self.notifier = notifier
        # Used for the ETA until statistics say better.
        self.average_handle_s = average_handle_s
        # What this node last told each waiting kiosk, by department (rebuilt every
        # round from the queue, so it holds only callers still waiting).
        self._told: dict[str, dict[str, tuple[int, int]]] = {}
        self._changed: set[str] = set()

    async def position(self, session: Session) -> tuple[int, int]:
        """(position, eta_s) of a waiting session; position 0 once it is being offered."""
        if session.state != SessionState.QUEUED:
            return 0, 0
        queue = await self.store.queue(session.department_id)
        position = queue.index(session.id) + 1 if session.id in queue else 0
        return position, self._eta(position, await self._agents(session.department_id))

    def told(self, session: Session, position: int, eta: int) -> None:
        """The session's kiosk has just been told this (in an answer or an event)."""
        self._told.setdefault(session.department_id, {})[session.id] = (position, eta)

    def changed(self, *department_ids: str) -> None:
        """These departments' queues or staff changed: their kiosks hear at the next
        :meth:`push`."""
        self._changed.update(department_ids)

    def forget_told(self) -> None:
        """Tell every waiting kiosk again at the next push: another node may have told
        it something newer than what this node remembers telling it."""
        self._told.clear()

    async def push(self) -> None:
        """Tell the waiting kiosks of every department changed since the last push their
        position and ETA, where they changed."""
        changed, self._changed = sorted(self._changed), set()
        for done, department_id in enumerate(changed):
            try:
                await self._push_department(department_id)
            except Exception:
                self._changed.update(changed[done:])  # told at the next round
                raise

    async def _push_department(self, department_id: str) -> None:
        queue = await self.store.queue(department_id)
        agents = await self._agents(department_id) if queue else 0
        sessions = await self.store.get_sessions(queue)
        # Built aside and swapped in at the end: a redispatch may forget what was told
        # while this round awaits.
        told, telling = self._told.get(department_id, {}), {}
        for position, (session_id, session) in enumerate(zip(queue, sessions, strict=True),
                                                         start=1):
            if session is None or session.state != SessionState.QUEUED:
                continue
            eta = self._eta(position, agents)
            telling[session_id] = (position, eta)
            if told.get(session_id) == (position, eta):
                continue
            await self.notifier.to_kiosk(
                session.kiosk_id,
                "queue.update",
                {"session_id": session_id, "position": position, "eta_s": eta},
            )
        self._told[department_id] = telling

    async def _agents(self, department_id: str) -> int:
        """Staff of the department who are taking calls (signed in and not away)."""
        return sum(
            1
            for p in await self.store.list_presence()
            if department_id in p.departments and p.state in ACTIVE_AGENT_STATES
        )

    def _eta(self, position: int, agents: int) -> int:
        return int(math.ceil(position / max(1, agents)) * self.average_handle_s)
