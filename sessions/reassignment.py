"""A supervisor's reassignment of a waiting caller: to another department's queue
(keeping their place by arrival) and/or offered to one staff member now. Built on the
router's transitions (:mod:`sessions.router`)."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from .errors import BadRequest, Conflict, NotFound
from .presence import Presence, PresenceState
from .session import Session, SessionState

if TYPE_CHECKING:
    from .router import CallRouter


class Reassignment:
    def __init__(self, router: CallRouter) -> None:
        self.router = router
        self.store, self.notifier, self.announcer = router.store, router.notifier, router.announcer
        self.config, self.clock = router.config, router.clock

    async def reassign(
        self, session_id: str, by: str, staff_id: str | None = None,
        department_id: str | None = None,
    ) -> Session:
        """A supervisor moves a waiting caller to another department's queue (keeping
        their place by arrival) and/or offers them to one staff member now."""
        if staff_id is None and department_id is None:
            raise BadRequest("give staff_id, department_id or both")
        if department_id is not None and self.router.catalog.department(department_id) is None:
            raise NotFound(f"no department {department_id}")
        prev = await self.router.session(session_id)
        if prev.state not in (SessionState.QUEUED, SessionState.RINGING):
            raise Conflict(f"only a waiting caller can be reassigned (this one is {prev.state})")
        original_department = prev.department_id
        target_department = department_id or prev.department_id
        target: Presence | None = None
        if staff_id is not None:
            if prev.kiosk_lost_at is not None:
                raise Conflict("the caller's kiosk is away: it can be offered when it is back")
            target = await self.router.presence(staff_id)
            if target_department not in target.departments:
                raise Conflict(f"{staff_id} does not work for {target_department}")
            if target.state != PresenceState.AVAILABLE:
                raise Conflict(f"{staff_id} is {target.state}, not available")
        changes: dict[str, Any] = {}
        if department_id is not None and department_id != prev.department_id:
            changes.update(department_id=department_id, declined_by=[])
        revoked = prev.offered_to if prev.state == SessionState.RINGING else None
        ringing = prev
        if revoked:
            # Back to the queue, and not straight back to the one it was ringing.
            changes.update(state=SessionState.QUEUED, offered_to=None, offer_expires_at=None,
                           declined_by=[*changes.get("declined_by", prev.declined_by), revoked])
        if changes:
            prev = await self.router.transition(prev, changes)
        if revoked:
            await self.router.record(session_id, "call.offer_ended", staff_id=revoked,
                               reason="reassigned")
            await self.router.tell_revoked(revoked, ringing, "reassigned")
            with contextlib.suppress(Conflict, NotFound):
                await self.router.update_presence(
                    revoked, {"state": PresenceState.AVAILABLE, "session_id": None,
                              "reason": None},
                    expect={"state": [PresenceState.RINGING], "session_id": [session_id]},
                )
        await self.router.record(
            session_id, "call.reassigned", by=by, staff_id=staff_id,
            department_id=target_department,
        )
        if target is not None:
            await self._offer_to(prev, target)
        departments = {target_department, *(
            (await self.router.presence(revoked)).departments if revoked else ()
        )}
        await self.router.dispatch_for(sorted(departments))
        for department in {original_department, target_department}:
            self.announcer.changed(department)
        return await self.router.session(session_id)

    async def _offer_to(self, prev: Session, target: Presence) -> None:
        """Offer a queued caller to one available staff member (both compare-and-set;
        the staff member is put back if the caller has moved on meanwhile)."""
        now = self.clock()
        presence = await self.router.update_presence(
            target.staff_id,
            {"state": PresenceState.RINGING, "session_id": prev.id, "since": now,
             "reason": None},
            expect={"state": [PresenceState.AVAILABLE]},
        )
        expires_at = now + self.config.offer_timeout_s
        try:
            session = await self.router.transition(
                prev,
                {"state": SessionState.RINGING, "offered_to": target.staff_id,
                 "offer_expires_at": expires_at},
            )
        except Conflict:
            await self.router.update_presence(
                target.staff_id, {"state": PresenceState.AVAILABLE, "session_id": None},
                expect={"state": [PresenceState.RINGING], "session_id": [prev.id]},
            )
            raise
        await self.router.record(session.id, "call.offered", staff_id=target.staff_id,
                           expires_at=expires_at)
        await self.notifier.to_staff(target.staff_id, "presence.changed", presence.public())
        await self.notifier.to_staff(target.staff_id, "call.offer",
                                     self.router.offer_payload(session))
