"""Transitions that time makes: offers that expire, kiosks and staff whose grace period
ends, staff whose heartbeat stopped (their node died), and the live state re-derived
after a restart on the embedded store. Built on the router's transitions
(:mod:`sessions.router`); any node may run them."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .errors import Conflict, NotFound
from .presence import PresenceState
from .session import HEAD_OFFSET, Session, SessionState

if TYPE_CHECKING:
    from .router import CallRouter

logger = logging.getLogger(__name__)


class Deadlines:
    def __init__(self, router: CallRouter) -> None:
        self.router = router
        self.store, self.notifier, self.announcer = router.store, router.notifier, router.announcer
        self.config, self.clock = router.config, router.clock

    async def tick(self) -> None:
        """Run every transition whose time has come (any node may run it)."""
        now = self.clock()
        for session in await self.store.due_sessions(now):
            try:
                await self._on_deadline(session, now)
            except Conflict:
                continue  # another handler or node changed it first
            except Exception:
                logger.exception("deadline handling failed for session %s", session.id)

    async def _on_deadline(self, s: Session, now: float) -> None:
        cfg = self.config
        if s.kiosk_lost_at is not None and now >= s.kiosk_lost_at + cfg.kiosk_lost_grace_s:
            if s.state == SessionState.CONNECTED:
                await self.router.close_session(s, "error", by="kiosk_lost")
            else:
                await self.router.abandon(s, "kiosk_lost")
        elif s.state == SessionState.RINGING and s.offered_to and now >= (s.offer_expires_at or 0):
            await self.router.requeue_offer(
                s.id, s.offered_to, "timeout", staff_state=PresenceState.AWAY, expect_prev=s
            )
        elif (
            s.state == SessionState.CONNECTED
            and s.staff_lost_at is not None
            and now >= s.staff_lost_at + cfg.staff_lost_grace_s
        ):
            await self._staff_lost(s)
        else:
            # Nothing due after all (a stale index entry): recompute the deadline.
            await self.router.transition(s, {})

    async def _staff_lost(self, prev: Session) -> None:
        """The staff side stayed away past the grace period: back to the head of the queue."""
        staff_id = prev.staff_id
        session = await self.router.transition(
            prev,
            {
                "state": SessionState.QUEUED,
                "staff_id": None,
                "staff_display_name": None,
                "staff_lost_at": None,
                "connected_at": None,
                "queue_score": min(prev.queue_score, prev.created_at - HEAD_OFFSET),
                "queued_at": self.clock(),
            },
        )
        await self.router.record(session.id, "session.requeued", reason="staff_lost",
                                 staff_id=staff_id)
        self.router.outcome_counts["requeued"] += 1
        await self.notifier.release_media(session.id)
        if staff_id:
            await self.notifier.to_staff(
                staff_id, "call.ended", {"session_id": session.id, "reason": "error"}
            )
            try:
                await self.store.update_presence(
                    staff_id,
                    {
                        "state": PresenceState.OFFLINE,
                        "since": self.clock(),
                        "session_id": None,
                        "reason": "lost",
                    },
                    expect={"session_id": [session.id]},
                )
            except (Conflict, NotFound):
                pass
        position, eta = await self.announcer.position(session)
        self.announcer.told(session, position, eta)
        await self.notifier.to_kiosk(
            session.kiosk_id,
            "queue.update",
            {"session_id": session.id, "position": position, "eta_s": eta, "reason": "staff_lost"},
        )
        await self.router.dispatch(session.department_id)

    async def recover_after_restart(self) -> None:
        """The node starts again on a store only it uses (the embedded one): no socket
        and no media outlived the old process, so its live state is re-derived.

        - a call that was connected is closed (``session.closed``, reason
          ``server_restart``): its media and verification are gone with the process;
        - an offer that was ringing ends, the caller keeping their place;
        - every waiting caller gets the kiosk grace period from now (``kiosk.lost``): a kiosk that
          comes back in time (``call.resume``) keeps its place, one that does not is
          abandoned and counted, by the usual deadline;
        - every staff member is offline until their console connects again.
        """
        now = self.clock()
        closed = waiting = offline = 0
        for session in await self.store.live_sessions():
            try:
                kind = await self._recover_session(session, now)
            except Exception:  # one damaged trail must not keep the node from starting
                logger.exception("restart: session %s could not be re-derived", session.id)
                continue
            closed += kind == "closed"
            waiting += kind == "waiting"
        for presence in await self.store.list_presence():
            if presence.state != PresenceState.OFFLINE:
                offline += 1
                await self.store.update_presence(presence.staff_id, {
                    "state": PresenceState.OFFLINE, "since": now, "session_id": None,
                    "reason": "server_restart",
                })
        if closed or waiting or offline:
            logger.warning(
                "restarted: %d call(s) in progress closed (server_restart), %d waiting "
                "caller(s) given %.0f s to come back, %d staff member(s) offline until "
                "their console reconnects", closed, waiting, self.config.kiosk_lost_grace_s,
                offline)

    async def _recover_session(self, session: Session, now: float) -> str:
        """One live session after a restart: ``closed`` or ``waiting``."""
        if session.state == SessionState.CONNECTED:
            await self.router.transition(session, {
                "state": SessionState.CLOSED, "ended_at": now, "end_reason": "server_restart",
            })
            await self.router.record(session.id, "session.closed", reason="server_restart",
                               by="server",
                               duration_s=round(now - (session.connected_at or now), 3))
            return "closed"
        if session.state == SessionState.RINGING:
            offered_to = session.offered_to
            session = await self.router.transition(session, {
                "state": SessionState.QUEUED, "offered_to": None, "offer_expires_at": None,
            })
            await self.router.record(session.id, "call.offer_ended", staff_id=offered_to,
                               reason="server_restart")
        # From now, not from when its socket dropped: no kiosk could come back while no
        # server ran.
        await self.router.transition(session, {"kiosk_lost_at": now})
        await self.router.record(session.id, "kiosk.lost", reason="server_restart")
        return "waiting"

    async def sweep_presence(self) -> None:
        """Staff whose heartbeat expired (their node died) are treated as disconnected."""
        cutoff = self.clock() - self.config.presence_ttl_s
        for presence in await self.store.list_presence():
            if presence.state != PresenceState.OFFLINE and presence.last_seen < cutoff:
                await self.router.staff_offline(presence.staff_id)
