"""Queues and routing: the call flow of docs/architecture.md as plain async Python.

The router owns every session and presence transition; what time makes happen
(:mod:`sessions.deadlines`), a supervisor's reassignment (:mod:`sessions.reassignment`)
and the queue positions kiosks are told (:mod:`sessions.queue_positions`) are built on
it, each in its own module. Each transition is a
compare-and-set on the store (so concurrent handlers and nodes cannot both win), then
an audit event (durable before the caller is answered), then notifications.
"""

from __future__ import annotations

import collections
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .audit import AuditLog
from .catalog import Catalog
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .notifier import Notifier
from .presence import Presence, PresenceState
from .queue_positions import QueueAnnouncer
from .session import Session, SessionState, check_transition
from .statistics import ABANDONED, ANSWERED, Buckets
from .store import Store

logger = logging.getLogger(__name__)


@dataclass
class RoutingConfig:
    offer_timeout_s: float = 20.0
    staff_lost_grace_s: float = 30.0
    kiosk_lost_grace_s: float = 30.0
    # A staff member whose node stopped refreshing their heartbeat for this long is lost.
    presence_ttl_s: float = 45.0
    # Used for the ETA until statistics say better: about four minutes per case (seed).
    average_handle_s: float = 240.0


@dataclass(frozen=True)
class Kiosk:
    id: str
    site: str


@dataclass(frozen=True)
class Staff:
    id: str
    display_name: str
    departments: tuple[str, ...]


class CallRouter:
    def __init__(
        self,
        store: Store,
        catalog: Catalog,
        audit: AuditLog,
        notifier: Notifier,
        config: RoutingConfig | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.catalog = catalog
        self.audit = audit
        self.notifier = notifier
        # This node's counts, for metrics: calls by outcome, and queue waits.
        self.outcome_counts: collections.Counter[str] = collections.Counter()
        self.queue_waits = Buckets((5, 15, 30, 60, 120, 300, 600, 1800))
        self.config = config or RoutingConfig()
        self.clock = clock
        self.announcer = QueueAnnouncer(store, notifier, self.config.average_handle_s)

    # -- helpers -------------------------------------------------------------------------
    def _deadline(self, s: Mapping[str, Any]) -> float | None:
        candidates = []
        if s["state"] == SessionState.RINGING and s.get("offer_expires_at") is not None:
            candidates.append(s["offer_expires_at"])
        if s["state"] in (SessionState.QUEUED, SessionState.RINGING, SessionState.CONNECTED):
            if s.get("kiosk_lost_at") is not None:
                candidates.append(s["kiosk_lost_at"] + self.config.kiosk_lost_grace_s)
        if s["state"] == SessionState.CONNECTED and s.get("staff_lost_at") is not None:
            candidates.append(s["staff_lost_at"] + self.config.staff_lost_grace_s)
        return min(candidates) if candidates else None

    async def transition(self, prev: Session, changes: dict[str, Any]) -> Session:
        """Compare-and-set against exactly the state ``prev`` was read in."""
        if "state" in changes:
            check_transition(prev.state, SessionState(changes["state"]))
        merged = {**prev.to_dict(), **changes}
        changes["deadline"] = self._deadline(merged)
        return await self.store.update_session(
            prev.id,
            changes,
            expect={
                "state": [prev.state],
                "offered_to": [prev.offered_to],
                "staff_id": [prev.staff_id],
            },
        )

    async def record(self, session_id: str, type_: str, **data: Any) -> None:
        """An event in the session's audit trail, durable when this returns."""
        await self.audit.append(session_id, type_, data)

    async def session(self, session_id: str) -> Session:
        session = await self.store.get_session(session_id)
        if session is None:
            raise NotFound(f"no session {session_id}")
        return session

    async def session_of_kiosk(self, kiosk_id: str, session_id: str) -> Session:
        session = await self.session(session_id)
        if session.kiosk_id != kiosk_id:
            raise Forbidden("this session belongs to another kiosk")
        return session

    async def session_of_staff(self, staff: Staff, session_id: str) -> Session:
        session = await self.session(session_id)
        if session.department_id not in staff.departments:
            raise Forbidden("this session belongs to another department")
        return session

    async def presence(self, staff_id: str) -> Presence:
        presence = await self.store.get_presence(staff_id)
        if presence is None:
            raise NotFound(f"staff {staff_id} is not signed in")
        return presence

    async def update_presence(
        self, staff_id: str, changes: dict[str, Any], expect: dict[str, list[Any]]
    ) -> Presence:
        changes.setdefault("since", self.clock())
        if changes.get("state") == PresenceState.AVAILABLE:
            changes.setdefault("idle_since", changes["since"])
        presence = await self.store.update_presence(staff_id, changes, expect=expect)
        await self.notifier.to_staff(staff_id, "presence.changed", presence.public())
        return presence

    @staticmethod
    def _offer_id(session: Session) -> str:
        """Names one offer of a session (each has its own expiry time). Offers and their
        revocations may reach a console from different nodes, out of order: the console
        drops an offer whose id it has seen revoked."""
        return f"{session.id}.{round((session.offer_expires_at or 0) * 1000)}"

    def offer_payload(self, session: Session) -> dict[str, Any]:
        now = self.clock()
        return {
            "session_id": session.id,
            "offer_id": self._offer_id(session),
            "department_id": session.department_id,
            "service_id": session.service_id,
            "waited_s": round(now - session.created_at, 1),
            "kiosk": {"id": session.kiosk_id, "site": session.kiosk_site},
            "expires_in_s": round(max(0.0, (session.offer_expires_at or now) - now), 1),
        }

    def _forget(self, session_id: str) -> None:
        self.audit.forget(session_id)

    # -- routing -------------------------------------------------------------------------
    async def dispatch(self, department_id: str) -> None:
        """Offer waiting callers of the department to available staff, as long as both."""
        while True:
            now = self.clock()
            reserved = await self.store.reserve(
                department_id, now, now + self.config.offer_timeout_s
            )
            if reserved is None:
                break
            session, presence = reserved
            await self.record(
                session.id,
                "call.offered",
                staff_id=presence.staff_id,
                expires_at=session.offer_expires_at,
            )
            await self.notifier.to_staff(presence.staff_id, "presence.changed", presence.public())
            await self.notifier.to_staff(
                presence.staff_id, "call.offer", self.offer_payload(session)
            )
        self.announcer.changed(department_id)

    async def redispatch(self) -> None:
        """Route every department: the safety net for a dispatch that failed half way
        (the store unreachable for a moment), run periodically by every node. Every
        waiting kiosk is told its position again too: another node may have told it
        something newer than what this node remembers telling it."""
        self.announcer.forget_told()
        for department in list(self.catalog.departments):
            await self.dispatch(department.id)

    async def dispatch_for(self, departments: list[str]) -> None:
        """Dispatch a staff member's departments, the longest-waiting caller's first."""
        heads: list[tuple[float, str]] = []
        for dept in departments:
            queue = await self.store.queue(dept)
            head = await self.store.get_session(queue[0]) if queue else None
            heads.append((head.queue_score if head else math.inf, dept))
        for _, dept in sorted(heads):
            await self.dispatch(dept)

    # -- kiosk side ----------------------------------------------------------------------
    async def request_call(
        self, kiosk: Kiosk, service_id: str, language: str
    ) -> tuple[Session, int, int]:
        service = self.catalog.service(service_id)
        if service is None:
            raise NotFound(f"no service {service_id!r} in the catalog")
        now = self.clock()
        session = Session(
            id=uuid.uuid4().hex,
            kiosk_id=kiosk.id,
            kiosk_site=kiosk.site,
            department_id=service.department_id,
            service_id=service.id,
            language=language,
            state=SessionState.QUEUED,
            created_at=now,
            queue_score=now,
            queued_at=now,
        )
        await self.store.create_session(session)
        await self.record(
            session.id,
            "session.queued",
            kiosk_id=kiosk.id,
            site=kiosk.site,
            department_id=service.department_id,
            service_id=service.id,
            language=language,
        )
        try:
            await self.dispatch(service.department_id)
            session = await self.session(session.id)
            position, eta = await self.announcer.position(session)
        except Exception:
            # The caller is queued and in the trail: answering with an error now would
            # have the kiosk ask again and queue twice. The next redispatch routes it
            # and sends its position.
            logger.exception("routing session %s failed; it waits for the next round",
                             session.id)
            self.announcer.changed(service.department_id)
            return session, 0, 0
        self.announcer.told(session, position, eta)
        return session, position, eta

    async def cancel(self, kiosk_id: str, session_id: str, reason: str = "cancelled") -> Session:
        prev = await self.session_of_kiosk(kiosk_id, session_id)
        if prev.state not in (SessionState.QUEUED, SessionState.RINGING):
            raise Conflict(f"cannot cancel a session that is {prev.state}")
        return await self.abandon(prev, reason)

    async def abandon(self, prev: Session, reason: str) -> Session:
        now = self.clock()
        session = await self.transition(
            prev,
            {
                "state": SessionState.ABANDONED,
                "ended_at": now,
                "end_reason": "abandoned",
                "offered_to": None,
                "offer_expires_at": None,
            },
        )
        await self.record(session.id, "session.abandoned", reason=reason, from_state=prev.state)
        if prev.answered_at is None:
            await self.store.record_outcome(
                session.department_id, session.id, ABANDONED, now - session.created_at, now
            )
            self.outcome_counts[ABANDONED] += 1
            self.queue_waits.observe(now - session.created_at)
        if prev.state == SessionState.RINGING and prev.offered_to:
            await self._revoke_offer(prev.offered_to, prev, reason)
        await self.notifier.to_kiosk(
            session.kiosk_id, "call.ended", {"session_id": session.id, "reason": "abandoned"}
        )
        self._forget(session.id)
        self.announcer.changed(session.department_id)
        return session

    async def tell_revoked(self, staff_id: str, offered: Session, reason: str) -> None:
        """Tell the staff member their offer of ``offered`` (as it was) has ended."""
        await self.notifier.to_staff(staff_id, "call.offer_revoked", {
            "session_id": offered.id, "offer_id": self._offer_id(offered), "reason": reason,
        })

    async def _revoke_offer(self, staff_id: str, offered: Session, reason: str) -> None:
        session_id = offered.id
        await self.tell_revoked(staff_id, offered, reason)
        try:
            presence = await self.update_presence(
                staff_id,
                {"state": PresenceState.AVAILABLE, "session_id": None, "reason": None},
                expect={"state": [PresenceState.RINGING], "session_id": [session_id]},
            )
        except (Conflict, NotFound):
            return
        await self.dispatch_for(presence.departments)

    async def hangup_by_kiosk(self, kiosk_id: str, session_id: str) -> Session:
        prev = await self.session_of_kiosk(kiosk_id, session_id)
        if prev.state in (SessionState.QUEUED, SessionState.RINGING):
            return await self.abandon(prev, "hangup")
        return await self.close_session(prev, "hangup", by="kiosk")

    async def hangup_by_staff(self, staff: Staff, session_id: str) -> Session:
        prev = await self.session_of_staff(staff, session_id)
        if prev.staff_id != staff.id:
            raise Forbidden("this call is handled by another staff member")
        return await self.close_session(prev, "hangup", by="staff")

    async def close_session(self, prev: Session, reason: str, by: str) -> Session:
        if prev.state != SessionState.CONNECTED:
            raise Conflict(f"cannot hang up a session that is {prev.state}")
        now = self.clock()
        session = await self.transition(
            prev, {"state": SessionState.CLOSED, "ended_at": now, "end_reason": reason}
        )
        self.outcome_counts["completed"] += 1
        await self.record(
            session.id,
            "session.closed",
            reason=reason,
            by=by,
            duration_s=round(now - (prev.connected_at or now), 3),
        )
        await self.notifier.release_media(session.id)
        payload = {"session_id": session.id, "reason": reason}
        await self.notifier.to_kiosk(session.kiosk_id, "call.ended", payload)
        if session.staff_id:
            await self.notifier.to_staff(session.staff_id, "call.ended", payload)
            try:
                await self.update_presence(
                    session.staff_id,
                    {"state": PresenceState.WRAPUP, "reason": None},
                    expect={"session_id": [session.id]},
                )
            except (Conflict, NotFound):
                logger.info("staff %s moved on before the end of %s", session.staff_id, session.id)
        self._forget(session.id)
        return session

    async def kiosk_session(self, kiosk_id: str) -> Session | None:
        """The kiosk's live session (one at most), if it has one."""
        return await self.store.kiosk_session(kiosk_id)

    async def resume_kiosk(self, kiosk_id: str, session_id: str) -> tuple[Session, int]:
        prev = await self.session_of_kiosk(kiosk_id, session_id)
        if not prev.live:
            return prev, 0
        session = prev
        if prev.kiosk_lost_at is not None:
            session = await self.transition(prev, {"kiosk_lost_at": None})
            await self.record(session_id, "kiosk.resumed")
            if session.state == SessionState.QUEUED:  # it may be offered again
                await self.dispatch(session.department_id)
                session = await self.session(session_id)
        position, _ = await self.announcer.position(session)
        return session, position

    async def kiosk_offline(self, kiosk_id: str, session_id: str) -> None:
        """The kiosk's socket dropped: give it a grace period to come back. Meanwhile it
        is offered to no one; an offer ringing now ends, the caller keeping their place
        and the staff member staying available (nobody would have answered them)."""
        prev = await self.store.get_session(session_id)
        if prev is None or prev.kiosk_id != kiosk_id or not prev.live:
            return
        changes: dict[str, Any] = {"kiosk_lost_at": self.clock()}
        if prev.state == SessionState.RINGING:
            changes |= {"state": SessionState.QUEUED, "offered_to": None,
                        "offer_expires_at": None}
        try:
            await self.transition(prev, changes)
        except Conflict:
            return
        await self.record(session_id, "kiosk.lost")
        if prev.state == SessionState.RINGING and prev.offered_to:
            await self.record(session_id, "call.offer_ended", staff_id=prev.offered_to,
                               reason="kiosk_lost")
            await self._revoke_offer(prev.offered_to, prev, "kiosk_lost")

    # -- staff side ----------------------------------------------------------------------
    async def staff_online(self, staff: Staff) -> Presence:
        """A staff socket connected: restore a call in progress, otherwise start away."""
        now = self.clock()
        presence = await self.store.get_presence(staff.id)
        if presence is not None and presence.state in (PresenceState.BUSY, PresenceState.WRAPUP):
            presence = await self.store.update_presence(
                staff.id,
                {
                    "last_seen": now,
                    "reason": None,
                    "departments": list(staff.departments),
                    "display_name": staff.display_name,
                },
            )
            if presence.session_id:
                session = await self.store.get_session(presence.session_id)
                if session and session.staff_lost_at is not None and session.staff_id == staff.id:
                    await self.transition(session, {"staff_lost_at": None})
                    await self.record(session.id, "staff.resumed", staff_id=staff.id)
            return presence
        presence = Presence(
            staff_id=staff.id,
            display_name=staff.display_name,
            departments=list(staff.departments),
            state=PresenceState.AWAY,
            since=now,
            idle_since=now,
            last_seen=now,
        )
        await self.store.put_presence(presence)
        self.announcer.changed(*staff.departments)
        return presence

    async def staff_offline(self, staff_id: str) -> None:
        """The staff member's last socket is gone (or their heartbeat expired)."""
        presence = await self.store.get_presence(staff_id)
        if presence is None or presence.state == PresenceState.OFFLINE:
            return
        now = self.clock()
        if presence.state == PresenceState.BUSY and presence.session_id:
            session = await self.store.get_session(presence.session_id)
            if session and session.state == SessionState.CONNECTED and session.staff_id == staff_id:
                if session.staff_lost_at is None:
                    await self.transition(session, {"staff_lost_at": now})
                    await self.record(session.id, "staff.lost", staff_id=staff_id)
                await self.store.update_presence(staff_id, {"reason": "lost"})
                return
        if presence.state == PresenceState.RINGING and presence.session_id:
            await self.requeue_offer(
                presence.session_id, staff_id, "staff_offline", staff_state=PresenceState.OFFLINE
            )
        await self.store.update_presence(
            staff_id,
            {"state": PresenceState.OFFLINE, "since": now, "session_id": None, "reason": None},
        )
        self.announcer.changed(*presence.departments)

    async def heartbeat(self, staff_ids: list[str]) -> None:
        now = self.clock()
        for staff_id in staff_ids:
            try:
                await self.store.update_presence(staff_id, {"last_seen": now})
            except NotFound:
                continue

    async def set_presence(self, staff: Staff, state: str) -> Presence:
        if state not in (PresenceState.AVAILABLE, PresenceState.AWAY):
            raise BadRequest("state must be 'available' or 'away'")
        current = await self.presence(staff.id)
        if current.state == PresenceState.BUSY:
            raise Conflict("cannot change presence during a call")
        if current.state == PresenceState.RINGING:
            if state == PresenceState.AWAY and current.session_id:
                await self.requeue_offer(
                    current.session_id, staff.id, "away", staff_state=PresenceState.AWAY
                )
            return await self.presence(staff.id)
        if current.state == state:
            return current
        presence = await self.update_presence(
            staff.id,
            {"state": state, "session_id": None, "reason": None},
            expect={"state": [current.state]},
        )
        if state == PresenceState.AVAILABLE:
            await self.dispatch_for(presence.departments)
        else:
            self.announcer.changed(*presence.departments)
        return await self.presence(staff.id)

    async def wrapup_done(self, staff: Staff) -> Presence:
        current = await self.presence(staff.id)
        if current.state != PresenceState.WRAPUP:
            raise Conflict(f"not in wrap-up (state is {current.state})")
        return await self.set_presence(staff, PresenceState.AVAILABLE)

    async def accept(self, staff: Staff, session_id: str) -> Session:
        prev = await self.session_of_staff(staff, session_id)
        if prev.state != SessionState.RINGING or prev.offered_to != staff.id:
            raise Conflict("this call is no longer offered to you")
        now = self.clock()
        session = await self.transition(
            prev,
            {
                "state": SessionState.CONNECTED,
                "staff_id": staff.id,
                "staff_display_name": staff.display_name,
                "answered_at": prev.answered_at or now,
                "connected_at": now,
                "offered_to": None,
                "offer_expires_at": None,
                "staff_lost_at": None,
            },
        )
        await self.update_presence(
            staff.id,
            {"state": PresenceState.BUSY, "session_id": session_id, "reason": None},
            expect={"state": [PresenceState.RINGING]},
        )
        if prev.answered_at is None:
            await self.store.record_outcome(
                session.department_id, session_id, ANSWERED, now - session.created_at, now
            )
            self.outcome_counts[ANSWERED] += 1
            self.queue_waits.observe(now - session.created_at)
        await self.record(
            session_id,
            "call.accepted",
            staff_id=staff.id,
            display_name=staff.display_name,
            waited_s=round(now - session.created_at, 3),
        )
        await self.notifier.to_kiosk(
            session.kiosk_id,
            "call.connected",
            {
                "session_id": session_id,
                "staff": {
                    "display_name": staff.display_name,
                    "department_id": session.department_id,
                },
            },
        )
        return session

    async def decline(self, staff: Staff, session_id: str) -> None:
        prev = await self.session_of_staff(staff, session_id)
        if prev.state != SessionState.RINGING or prev.offered_to != staff.id:
            raise Conflict("this call is no longer offered to you")
        await self.requeue_offer(
            session_id, staff.id, "declined", staff_state=PresenceState.AVAILABLE, expect_prev=prev
        )

    async def requeue_offer(
        self,
        session_id: str,
        staff_id: str,
        reason: str,
        staff_state: PresenceState,
        expect_prev: Session | None = None,
    ) -> None:
        """An offer ends without an answer: the caller keeps their place in the queue and
        the staff member is not offered this caller again.

        A staff member who declines is available again; one who let the offer time out is
        probably not at the console, so they are set away rather than offered the next
        caller.
        """
        prev = expect_prev or await self.store.get_session(session_id)
        if prev is None or prev.state != SessionState.RINGING or prev.offered_to != staff_id:
            return
        await self.transition(
            prev,
            {
                "state": SessionState.QUEUED,
                "offered_to": None,
                "offer_expires_at": None,
                "declined_by": [*prev.declined_by, staff_id],
            },
        )
        await self.record(session_id, "call.offer_ended", staff_id=staff_id, reason=reason)
        if reason != "declined":
            await self.tell_revoked(staff_id, prev, reason)
        departments = [prev.department_id]
        try:
            presence = await self.update_presence(
                staff_id,
                {"state": staff_state, "session_id": None, "reason": reason},
                expect={"state": [PresenceState.RINGING], "session_id": [session_id]},
            )
            departments = sorted({*departments, *presence.departments})
        except (Conflict, NotFound):
            pass
        await self.dispatch_for(departments)
