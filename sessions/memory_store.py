"""The in-process store: throw-away, for trials and demos (``--store memory``): nothing
survives the process. Every method runs without awaiting, so each is atomic on the
event loop."""

from __future__ import annotations

import bisect
import copy
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import Conflict, NotFound
from .presence import Presence, PresenceState
from .records import Case, Document
from .session import LIVE_STATES, Session, SessionState
from .statistics import Outcome
from .store import STATISTICS_RETENTION_S, Expect, check_expect


class MemoryStore:
    durable = False  # throw-away: nothing outlives the process
    shared = False

    def __init__(self, lock: int | None = None) -> None:
        # The data dir's lock (see sqlite_store.take_lock), held until close.
        self._lock = lock
        self._sessions: dict[str, dict[str, Any]] = {}
        self._presence: dict[str, dict[str, Any]] = {}
        # Derived indexes (see sessions.store): department → {session id: queue score},
        # and session id → deadline.
        self._queues: dict[str, dict[str, float]] = {}
        self._deadlines: dict[str, float] = {}
        self._live: set[str] = set()
        self._kiosk_live: dict[str, str] = {}  # kiosk id → its live session
        self._documents: dict[str, dict[str, Any]] = {}
        self._session_documents: dict[str, list[str]] = {}
        self._verifications: dict[str, dict[str, Any]] = {}
        self._records: dict[tuple[str, str], dict[str, Any]] = {}
        self._nodes: dict[str, dict[str, Any]] = {}
        self._cases: dict[str, dict[str, Any]] = {}
        self._outcomes: dict[str, dict[tuple[str, str], Outcome]] = {}
        self._samples: dict[str, dict[int, dict[str, Any]]] = {}
        self._hits: dict[str, tuple[int, float]] = {}

    def _index(self, raw: dict[str, Any]) -> None:
        sid = raw["id"]
        for members in self._queues.values():
            members.pop(sid, None)
        if raw["state"] == SessionState.QUEUED:
            self._queues.setdefault(raw["department_id"], {})[sid] = raw["queue_score"]
        if raw["state"] in LIVE_STATES:
            self._live.add(sid)
            self._kiosk_live[raw["kiosk_id"]] = sid
        else:
            self._live.discard(sid)
            if self._kiosk_live.get(raw["kiosk_id"]) == sid:
                del self._kiosk_live[raw["kiosk_id"]]
        if raw["deadline"] is None:
            self._deadlines.pop(sid, None)
        else:
            self._deadlines[sid] = raw["deadline"]

    async def ping(self) -> None:
        return None

    async def durability_problem(self) -> str | None:
        return ("THE IN-MEMORY STORE IS THROW-AWAY: queues, sessions, cases, receipts and the "
                "documents' index are lost when this process stops")

    async def close(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    async def create_session(self, session: Session) -> None:
        if session.id in self._sessions:
            raise Conflict(f"session {session.id} exists")
        live = self._kiosk_live.get(session.kiosk_id)
        if live is not None and session.live:
            raise Conflict(f"this kiosk is already in session {live} "
                           f"({self._sessions[live]['state']})")
        self._sessions[session.id] = session.to_dict()
        self._index(self._sessions[session.id])

    async def get_session(self, session_id: str) -> Session | None:
        raw = self._sessions.get(session_id)
        return Session.from_dict(copy.deepcopy(raw)) if raw is not None else None

    async def kiosk_session(self, kiosk_id: str) -> Session | None:
        sid = self._kiosk_live.get(kiosk_id)
        return await self.get_session(sid) if sid is not None else None

    async def get_sessions(self, session_ids: Sequence[str]) -> list[Session | None]:
        return [await self.get_session(session_id) for session_id in session_ids]

    async def update_session(
        self, session_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Session:
        raw = self._sessions.get(session_id)
        if raw is None:
            raise NotFound(f"no session {session_id}")
        check_expect(raw, expect, f"session {session_id}")
        raw.update(copy.deepcopy(dict(changes)))
        self._index(raw)
        return Session.from_dict(copy.deepcopy(raw))

    async def queue(self, department_id: str) -> list[str]:
        members = self._queues.get(department_id, {})
        return sorted(members, key=lambda sid: (members[sid], sid))

    async def due_sessions(self, now: float, limit: int = 100) -> list[Session]:
        due = sorted((at, sid) for sid, at in self._deadlines.items() if at <= now)
        return [Session.from_dict(copy.deepcopy(self._sessions[sid])) for _, sid in due[:limit]]

    async def live_sessions(self) -> list[Session]:
        return [Session.from_dict(copy.deepcopy(self._sessions[sid])) for sid in sorted(self._live)]

    async def reserve(
        self, department_id: str, now: float, expires_at: float
    ) -> tuple[Session, Presence] | None:
        staff_ids = await self.available_staff(department_id)
        if not staff_ids:
            return None
        for session_id in await self.queue(department_id):
            raw = self._sessions[session_id]
            if raw.get("kiosk_lost_at") is not None:
                continue  # its kiosk is away: no one would answer the staff member
            staff_id = next((s for s in staff_ids if s not in raw["declined_by"]), None)
            if staff_id is None:
                continue
            raw.update(
                state=SessionState.RINGING.value,
                offered_to=staff_id,
                offer_expires_at=expires_at,
                deadline=expires_at,
            )
            self._index(raw)
            self._presence[staff_id].update(
                state=PresenceState.RINGING.value, since=now, session_id=session_id, reason=None
            )
            return (
                Session.from_dict(copy.deepcopy(raw)),
                Presence.from_dict(copy.deepcopy(self._presence[staff_id])),
            )
        return None

    async def get_presence(self, staff_id: str) -> Presence | None:
        raw = self._presence.get(staff_id)
        return Presence.from_dict(copy.deepcopy(raw)) if raw is not None else None

    async def put_presence(self, presence: Presence) -> None:
        self._presence[presence.staff_id] = presence.to_dict()

    async def update_presence(
        self, staff_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Presence:
        raw = self._presence.get(staff_id)
        if raw is None:
            raise NotFound(f"no presence for staff {staff_id}")
        check_expect(raw, expect, f"staff {staff_id}")
        raw.update(copy.deepcopy(dict(changes)))
        return Presence.from_dict(copy.deepcopy(raw))

    async def list_presence(self) -> list[Presence]:
        return [Presence.from_dict(copy.deepcopy(raw)) for raw in self._presence.values()]

    async def available_staff(self, department_id: str) -> list[str]:
        idle: list[tuple[float, str]] = []
        for staff_id, raw in self._presence.items():
            if raw["state"] == PresenceState.AVAILABLE and department_id in raw["departments"]:
                bisect.insort(idle, (raw["idle_since"], staff_id))
        return [staff_id for _, staff_id in idle]


    async def add_document(self, document: Document) -> None:
        document_id = document.document_id
        if document_id in self._documents:
            raise Conflict(f"document {document_id} exists")
        self._documents[document_id] = document.to_dict()
        self._session_documents.setdefault(document.session_id, []).append(document_id)

    async def get_document(self, document_id: str) -> Document | None:
        raw = self._documents.get(document_id)
        return Document.from_dict(copy.deepcopy(raw)) if raw is not None else None

    async def session_documents(self, session_id: str) -> list[Document]:
        ids = self._session_documents.get(session_id, [])
        return [Document.from_dict(copy.deepcopy(self._documents[i])) for i in ids]

    async def put_verification(self, session_id: str, result: Mapping[str, Any]) -> None:
        self._verifications[session_id] = copy.deepcopy(dict(result))

    async def get_verification(self, session_id: str) -> dict[str, Any] | None:
        raw = self._verifications.get(session_id)
        return copy.deepcopy(raw) if raw is not None else None


    async def put_record(
        self, kind: str, record_id: str, record: Mapping[str, Any], create: bool = False,
        expect: Expect | None = None,
    ) -> None:
        if create and (kind, record_id) in self._records:
            raise Conflict(f"{kind} {record_id} exists")
        if expect is not None:
            current = self._records.get((kind, record_id))
            if current is None:
                raise Conflict(f"{kind} {record_id} does not exist")
            check_expect(current, expect, f"{kind} {record_id}")
        self._records[(kind, record_id)] = copy.deepcopy(dict(record))

    async def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        raw = self._records.get((kind, record_id))
        return copy.deepcopy(raw) if raw is not None else None

    async def delete_record(self, kind: str, record_id: str) -> None:
        self._records.pop((kind, record_id), None)

    async def beat_node(self, node_id: str, info: Mapping[str, Any]) -> bool:
        new = node_id not in self._nodes
        self._nodes[node_id] = copy.deepcopy(dict(info))
        return new

    async def nodes(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._nodes)

    async def drop_node(self, node_id: str, seen_before: float | None = None) -> bool:
        info = self._nodes.get(node_id)
        if info is None or (seen_before is not None and info.get("seen", 0) >= seen_before):
            return False
        del self._nodes[node_id]
        return True

    async def create_case(self, case: Case) -> None:
        if case.receipt_no in self._cases:
            raise Conflict(f"case {case.receipt_no} exists")
        self._cases[case.receipt_no] = case.to_dict()

    async def get_case(self, receipt_no: str) -> Case | None:
        raw = self._cases.get(receipt_no)
        return Case.from_dict(copy.deepcopy(raw)) if raw is not None else None

    async def update_case(
        self, receipt_no: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Case:
        raw = self._cases.get(receipt_no)
        if raw is None:
            raise NotFound(f"no case {receipt_no}")
        check_expect(raw, expect, f"case {receipt_no}")
        raw.update(copy.deepcopy(dict(changes)))
        return Case.from_dict(copy.deepcopy(raw))

    def _cases_where(self, field: str, value: str) -> list[Case]:
        found = sorted((c for c in self._cases.values() if c[field] == value),
                       key=lambda c: (c["submitted_at"], c["receipt_no"]))
        return [Case.from_dict(copy.deepcopy(c)) for c in found]

    async def cases(self, state: str) -> list[Case]:
        return self._cases_where("state", state)

    async def session_cases(self, session_id: str) -> list[Case]:
        return self._cases_where("session_id", session_id)

    async def record_outcome(
        self, department_id: str, session_id: str, kind: str, wait_s: float, at: float
    ) -> None:
        outcomes = self._outcomes.setdefault(department_id, {})
        outcomes.setdefault((session_id, kind), Outcome(kind, wait_s, at))
        cutoff = at - STATISTICS_RETENTION_S
        for key in [k for k, o in outcomes.items() if o.at < cutoff]:
            del outcomes[key]

    async def outcomes(self, department_id: str, since: float) -> list[Outcome]:
        found = [o for o in self._outcomes.get(department_id, {}).values() if o.at > since]
        return sorted(found, key=lambda o: o.at)

    async def record_sample(
        self, department_id: str, minute: int, waiting: int, longest_wait_s: float
    ) -> None:
        samples = self._samples.setdefault(department_id, {})
        samples[minute] = {"minute": minute, "waiting": waiting,
                           "longest_wait_s": longest_wait_s}
        for old in [m for m in samples if m < minute - STATISTICS_RETENTION_S // 60]:
            del samples[old]

    async def samples(self, department_id: str, since_minute: int) -> list[dict[str, Any]]:
        samples = self._samples.get(department_id, {})
        return [dict(samples[m]) for m in sorted(samples) if m >= since_minute]

    async def hit(self, key: str, window_s: float, now: float) -> int:
        count, expires = self._hits.get(key, (0, 0.0))
        if expires <= now:
            count, expires = 0, now + window_s
        self._hits[key] = (count + 1, expires)
        for stale in [k for k, (_, e) in self._hits.items() if e <= now]:
            del self._hits[stale]
        return count + 1

    async def reset_hits(self, key: str) -> None:
        self._hits.pop(key, None)
