"""``/supervisor``: supervisors watching calls: silent monitor, whisper to the staff
member, barge into the call."""

from __future__ import annotations

from typing import Any

from sessions.accounts import AccountDirectory
from sessions.errors import Conflict, NotFound, Unavailable
from sessions.router import CallRouter

from .auth import Principal, TokenIssuer
from .media_gateway import MediaGateway
from .metrics import Metrics
from .namespace import BaseNamespace, event
from .payloads import MonitorOffer, MonitorStart, SessionRef


class SupervisorNamespace(BaseNamespace):
    def __init__(
        self,
        router: CallRouter,
        accounts: AccountDirectory,
        tokens: TokenIssuer,
        media: MediaGateway,
        metrics: Metrics,
    ) -> None:
        super().__init__("/supervisor", metrics)
        self.router = router
        self.accounts = accounts
        self.tokens = tokens
        self.media = media
        # (socket, session) → monitoring mode asked for with monitor.start.
        self.monitoring: dict[tuple[str, str], str] = {}

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        principal = await self.account_principal(auth, "supervisor", self.tokens, self.accounts)
        await self.remember(sid, principal, f"supervisor:{principal.id}")

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self.forget(sid) is None:
            return
        for key in [k for k in self.monitoring if k[0] == sid]:
            del self.monitoring[key]
            await self.media.leave(key[1], f"monitor:{sid}")

    @event(MonitorStart)
    async def on_monitor_start(self, sid: str, who: Principal, p: MonitorStart) -> None:
        session = await self.router.store.get_session(p.session_id)
        if session is None:
            raise NotFound(f"no session {p.session_id}")
        if session.state != "connected":
            raise Conflict(f"only a connected call can be monitored (it is {session.state})")
        if p.mode != "silent" and self.media.hub.relay != "forward":
            raise Unavailable(f"{p.mode!r} needs the forwarding relay; use 'silent'")
        # Forget what this supervisor monitored of calls that have ended since.
        for key in [k for k in self.monitoring if k[0] == sid and k[1] != p.session_id]:
            ended = await self.router.store.get_session(key[1])
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
        session = await self.router.store.get_session(p.session_id)
        if session is None:
            raise NotFound(f"no session {p.session_id}")
        mode = self.monitoring[(sid, p.session_id)]
        return await self.media.answer(session, "monitor", p.sdp, f"monitor:{sid}", mode)
