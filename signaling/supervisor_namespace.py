"""``/supervisor``: supervisors watching queues and calls: the live dashboard, silent
monitor, whisper to the staff member, barge into the call, reassigning a waiting
caller."""

from __future__ import annotations

import time
from typing import Any

from sessions.accounts import AccountDirectory
from sessions.catalog import Catalog
from sessions.dashboard import DashboardConfig, history, record_samples, snapshot
from sessions.errors import Conflict, Forbidden, NotFound, Unavailable
from sessions.reassignment import Reassignment
from sessions.router import CallRouter
from sessions.store import Store

from .auth import Principal, TokenIssuer
from .media_gateway import MediaGateway
from .metrics import Metrics
from .namespace import BaseNamespace, event
from .payloads import CallReassign, Empty, MonitorOffer, MonitorStart, SessionRef


class SupervisorNamespace(BaseNamespace):
    def __init__(
        self,
        router: CallRouter,
        reassignment: Reassignment,
        store: Store,
        catalog: Catalog,
        accounts: AccountDirectory,
        tokens: TokenIssuer,
        media: MediaGateway,
        metrics: Metrics,
        dashboard: DashboardConfig,
        clock=time.time,
        events_per_minute: float = 600,
    ) -> None:
        super().__init__("/supervisor", metrics, events_per_minute)
        self.router = router
        self.reassignment = reassignment
        self.store = store
        self.catalog = catalog
        self.accounts = accounts
        self.tokens = tokens
        self.media = media
        self.dashboard = dashboard
        self.clock = clock
        # Sockets on this node subscribed to the dashboard, and what they were last sent.
        self.subscribers: set[str] = set()
        self._last_sent: dict[str, Any] | None = None
        self._last_sent_at = 0.0
        # (socket, session) → monitoring mode asked for with monitor.start.
        self.monitoring: dict[tuple[str, str], str] = {}

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        principal = await self.account_principal(auth, "supervisor", self.tokens, self.accounts)
        await self.remember(sid, principal, f"supervisor:{principal.id}")

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self.subscribers.discard(sid)
        if self.forget(sid) is None:
            return
        for key in [k for k in self.monitoring if k[0] == sid]:
            del self.monitoring[key]
            await self.media.leave(key[1], f"monitor:{sid}")

    @event(MonitorStart)
    async def on_monitor_start(self, sid: str, who: Principal, p: MonitorStart) -> None:
        session = await self.store.get_session(p.session_id)
        if session is None:
            raise NotFound(f"no session {p.session_id}")
        if session.department_id not in who.departments:
            raise Forbidden("this call belongs to another department")
        if session.state != "connected":
            raise Conflict(f"only a connected call can be monitored (it is {session.state})")
        if p.mode != "silent" and self.media.hub.relay != "forward":
            raise Unavailable(f"{p.mode!r} needs the forwarding relay; use 'silent'")
        # Forget what this supervisor monitored of calls that have ended since.
        for key in [k for k in self.monitoring if k[0] == sid and k[1] != p.session_id]:
            ended = await self.store.get_session(key[1])
            if ended is None or ended.state != "connected":
                del self.monitoring[key]
        self.monitoring[(sid, p.session_id)] = p.mode
        await self.router.record(p.session_id, "monitor.started", supervisor=who.id, mode=p.mode)

    @event(SessionRef)
    async def on_monitor_stop(self, sid: str, who: Principal, p: SessionRef) -> None:
        if self.monitoring.pop((sid, p.session_id), None) is None:
            raise Conflict("not monitoring this session")
        await self.media.leave(p.session_id, f"monitor:{sid}")
        await self.router.record(p.session_id, "monitor.stopped", supervisor=who.id)

    @event(MonitorOffer)
    async def on_rtc_offer(self, sid: str, who: Principal, p: MonitorOffer) -> dict:
        if (sid, p.session_id) not in self.monitoring:
            raise Conflict("send monitor.start for this session first")
        session = await self.store.get_session(p.session_id)
        if session is None:
            raise NotFound(f"no session {p.session_id}")
        mode = self.monitoring[(sid, p.session_id)]
        return await self.media.answer(session, "monitor", p.sdp, f"monitor:{sid}", mode,
                                       peer=self.addresses.get(sid))

    # -- the dashboard ---------------------------------------------------------------

    async def _snapshot(self) -> dict[str, Any]:
        return await snapshot(self.store, self.catalog, self.clock(),
                              self.dashboard)

    def _scoped(self, sid: str, view: dict[str, Any]) -> dict[str, Any]:
        """The part of a snapshot or chart within the subscriber's departments."""
        principal = self.principals.get(sid)
        mine = set(principal.departments) if principal else set()
        scoped = {**view, "departments": [d for d in view["departments"] if d["id"] in mine]}
        if "calls" in view:
            scoped["calls"] = [c for c in view["calls"] if c["department_id"] in mine]
        if "agents" in view:
            scoped["agents"] = [a for a in view["agents"] if mine & set(a["departments"])]
        return scoped

    @event(Empty)
    async def on_dashboard_subscribe(self, sid: str, who: Principal, p: Empty) -> None:
        self.subscribers.add(sid)
        await self.emit("dashboard.snapshot", self._scoped(sid, await self._snapshot()), to=sid)
        chart = await history(self.store, self.catalog, self.clock())
        await self.emit("dashboard.history", self._scoped(sid, chart), to=sid)

    async def push_dashboard(self) -> None:
        """Every second (a background job): the snapshot to this node's subscribers when
        anything in it changed, and at least every 10 s."""
        if not self.subscribers:
            return
        current = await self._snapshot()
        comparable = {k: v for k, v in current.items() if k != "at"}
        now = self.clock()
        if comparable != self._last_sent or now - self._last_sent_at >= 10:
            self._last_sent, self._last_sent_at = comparable, now
            # Each node serves its own subscribers (a room would reach every node's).
            for sid in list(self.subscribers):
                await self.emit("dashboard.snapshot", self._scoped(sid, current), to=sid)

    async def push_history(self) -> None:
        """Every 15 s: this minute's queue sample, and the hour's chart to subscribers."""
        now = self.clock()
        await record_samples(self.store, self.catalog, now)
        if self.subscribers:
            chart = await history(self.store, self.catalog, now)
            for sid in list(self.subscribers):
                await self.emit("dashboard.history", self._scoped(sid, chart), to=sid)

    @event(CallReassign)
    async def on_call_reassign(self, sid: str, who: Principal, p: CallReassign) -> dict:
        current = await self.store.get_session(p.session_id)
        if current is None:
            raise NotFound(f"no session {p.session_id}")
        if current.department_id not in who.departments or (
                p.department_id is not None and p.department_id not in who.departments):
            raise Forbidden("a supervisor moves calls within their own departments only")
        session = await self.reassignment.reassign(
            p.session_id, by=who.id, staff_id=p.staff_id, department_id=p.department_id
        )
        return {"state": session.state, "department_id": session.department_id,
                "offered_to": session.offered_to}
