"""``/kiosk``: the citizen's side of a call."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from document_share.desk import CaseDesk
from sessions.accounts import AccountDirectory, KioskDevice
from sessions.errors import DomainError, Unavailable
from sessions.router import CallRouter, Kiosk
from sessions.session import SessionState

from .auth import Principal
from .media_gateway import MediaGateway
from .metrics import Metrics
from .namespace import BaseNamespace, event, refuse
from .nodes import NodeRegistry
from .payloads import CallRequest, PrintDone, RtcOffer, SessionRef, SignatureSubmit


class KioskNamespace(BaseNamespace):
    def __init__(
        self,
        router: CallRouter,
        accounts: AccountDirectory,
        media: MediaGateway,
        metrics: Metrics,
        desk: CaseDesk,
        nodes: NodeRegistry,
        events_per_minute: float = 600,
        token_ttl_s: float = 180 * 86400,
    ) -> None:
        super().__init__("/kiosk", metrics, events_per_minute)
        self.router = router
        self.accounts = accounts
        self.media = media
        self.desk = desk
        self.nodes = nodes
        self.token_ttl_s = token_ttl_s
        # Set while the node shuts down: no new calls start here.
        self.draining = False

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        token = auth.get("token") if isinstance(auth, dict) else None
        if not isinstance(token, str) or not token:
            raise refuse("a kiosk token is required")
        found = await asyncio.to_thread(self.accounts.authenticate_kiosk, token)
        if found is None:
            raise refuse("unknown or revoked kiosk token")
        device: KioskDevice = found
        renewed = None
        remaining = device.remaining_s(time.time())
        if remaining is not None and remaining < self.token_ttl_s / 3:
            # Silent renewal: a new token, sent to the page, which keeps it in its URL.
            device, renewed = await asyncio.to_thread(
                self.accounts.rotate_kiosk, device.kiosk_id, self.token_ttl_s)
        principal = Principal("kiosk", device.kiosk_id, device.kiosk_id, site=device.site,
                          token_sha256=device.token_sha256)
        await self.nodes.socket_here("kiosk", device.kiosk_id)
        await self.remember(sid, principal, f"kiosk:{device.kiosk_id}")
        if renewed is not None:
            await self.emit("kiosk.token", {"token": renewed}, to=sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        principal = self.forget(sid)
        if principal is None:
            return
        if self.sockets_of(principal.id):
            return  # another socket of this kiosk is still here
        session = await self.router.kiosk_session(principal.id)
        if session is not None and await self.nodes.socket_is_here("kiosk", principal.id):
            await self.router.kiosk_offline(principal.id, session.id)

    async def calls_in_progress(self) -> list[str]:
        """Sessions of the kiosks connected to this node that are still queued, ringing
        or connected."""
        live = []
        for kiosk_id in {p.id for p in self.principals.values()}:
            session = await self.router.kiosk_session(kiosk_id)
            if session is not None:
                live.append(session.id)
        return live

    async def claim_back(self) -> None:
        """This node was taken for dead: its kiosks' sessions are on their grace period
        although their sockets are here. Resume them."""
        for kiosk_id in {p.id for p in self.principals.values()}:
            await self.nodes.socket_here("kiosk", kiosk_id)
            session = await self.router.kiosk_session(kiosk_id)
            if session is not None:
                with contextlib.suppress(DomainError):  # gone meanwhile: nothing to resume
                    await self.router.resume_kiosk(kiosk_id, session.id)

    async def hand_over(self) -> None:
        """The node is stopping: kiosks not in a call are sent away (they reconnect to
        another node, and ``call.resume`` keeps a waiting caller's place), so that no
        new call starts here."""
        for sid, principal in list(self.principals.items()):
            session = await self.router.kiosk_session(principal.id)
            if session is None or session.state != SessionState.CONNECTED:
                await self.disconnect(sid)

    @event(CallRequest)
    async def on_call_request(self, sid: str, who: Principal, p: CallRequest) -> dict:
        if self.draining:
            raise Unavailable("this server is shutting down; reconnect and try again")
        # One live session per kiosk: the store refuses a second (Conflict naming it),
        # however many requests arrive at once, on however many nodes.
        session, position, eta = await self.router.request_call(
            Kiosk(who.id, who.site), p.service_id, p.language
        )
        return {"session_id": session.id, "position": position, "eta_s": eta}

    @event(SessionRef)
    async def on_call_cancel(self, sid: str, who: Principal, p: SessionRef) -> None:
        await self.router.cancel(who.id, p.session_id)

    @event(SessionRef)
    async def on_call_hangup(self, sid: str, who: Principal, p: SessionRef) -> None:
        await self.router.hangup_by_kiosk(who.id, p.session_id)

    @event(SessionRef)
    async def on_call_resume(self, sid: str, who: Principal, p: SessionRef) -> dict:
        session, position = await self.router.resume_kiosk(who.id, p.session_id)
        answer: dict[str, Any] = {"state": session.state}
        if session.state == "queued":
            answer["position"] = position
        return answer

    @event(RtcOffer)
    async def on_rtc_offer(self, sid: str, who: Principal, p: RtcOffer) -> dict:
        session = await self.router.session_of_kiosk(who.id, p.session_id)
        return await self.media.answer(session, "kiosk", p.sdp,
                                       peer=self.addresses.get(sid))

    @event(SignatureSubmit)
    async def on_signature_submit(self, sid: str, who: Principal, p: SignatureSubmit) -> dict:
        signature_id = await self.desk.submit_signature(
            who.id, p.request_id, p.png_base64, p.strokes
        )
        return {"signature_id": signature_id}

    @event(PrintDone)
    async def on_print_done(self, sid: str, who: Principal, p: PrintDone) -> None:
        await self.desk.print_done(who.id, p.job_id, p.status)
