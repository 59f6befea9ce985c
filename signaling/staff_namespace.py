"""``/staff``: the department staff member's console."""

from __future__ import annotations

import asyncio
from typing import Any

from document_share.desk import CaseDesk
from document_share.storage import Blobs
from media.vision.verifier import Verifier
from sessions.accounts import AccountDirectory
from sessions.errors import BadRequest, Conflict, Forbidden, NotFound
from sessions.presence import PresenceState
from sessions.records import Document
from sessions.router import CallRouter, Staff
from sessions.session import Session, SessionState
from sessions.store import Store

from .auth import Principal, TokenIssuer
from .media_gateway import MediaGateway
from .metrics import Metrics
from .namespace import BaseNamespace, event
from .nodes import NodeRegistry
from .payloads import (
    CaseDecide,
    DocumentAnnotate,
    Empty,
    PresenceSet,
    PrintSend,
    RescanRequest,
    RtcOffer,
    SessionRef,
    SignatureRequest,
    VerificationChallenge,
    VerificationStart,
)


def as_staff(who: Principal) -> Staff:
    return Staff(who.id, who.display_name, who.departments)


class StaffNamespace(BaseNamespace):
    def __init__(
        self,
        router: CallRouter,
        store: Store,
        accounts: AccountDirectory,
        tokens: TokenIssuer,
        media: MediaGateway,
        metrics: Metrics,
        verifier: Verifier,
        blobs: Blobs,
        desk: CaseDesk,
        nodes: NodeRegistry,
        events_per_minute: float = 600,
    ) -> None:
        super().__init__("/staff", metrics, events_per_minute)
        self.router = router
        self.store = store
        self.accounts = accounts
        self.tokens = tokens
        self.media = media
        self.verifier = verifier
        self.blobs = blobs
        self.desk = desk
        self.nodes = nodes
        # Verification works on the call's media: it runs on the session's media home.
        media.add_op("verification.start", self._start_verification)
        media.add_op("verification.challenge", self._challenge)

    async def on_connect(self, sid: str, environ: dict, auth: Any = None) -> None:
        principal = await self.account_principal(auth, "staff", self.tokens, self.accounts)
        first_socket = not self.sockets_of(principal.id)
        await self.nodes.socket_here("staff", principal.id)
        await self.remember(sid, principal, f"staff:{principal.id}")
        if first_socket:
            await self.router.staff_online(as_staff(principal))

    async def claim_back(self) -> None:
        """This node was taken for dead: its staff were set offline (or lost, in a
        call) although their sockets are here. Bring them back."""
        for principal in {p.id: p for p in self.principals.values()}.values():
            await self.nodes.socket_here("staff", principal.id)
            await self.router.staff_online(as_staff(principal))

    async def hand_over(self) -> None:
        """The node is stopping: staff not in a call (or its wrap-up) are sent away, to
        reconnect to another node, so that no new call is answered here."""
        for sid, principal in list(self.principals.items()):
            presence = await self.store.get_presence(principal.id)
            if presence is None or presence.state not in (PresenceState.BUSY,
                                                          PresenceState.WRAPUP):
                await self.disconnect(sid)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        principal = self.forget(sid)
        if (principal is not None and not self.sockets_of(principal.id)
                and await self.nodes.socket_is_here("staff", principal.id)):
            await self.router.staff_offline(principal.id)

    def local_staff(self) -> list[str]:
        return sorted({p.id for p in self.principals.values()})

    @event(Empty)
    async def on_presence_get(self, sid: str, who: Principal, p: Empty) -> dict:
        presence = await self.store.get_presence(who.id)
        return presence.public() if presence else {"state": "offline"}

    @event(PresenceSet)
    async def on_presence_set(self, sid: str, who: Principal, p: PresenceSet) -> dict:
        presence = await self.router.set_presence(as_staff(who), p.state)
        return {"state": presence.state}

    @event(SessionRef)
    async def on_call_accept(self, sid: str, who: Principal, p: SessionRef) -> dict:
        session = await self.router.accept(as_staff(who), p.session_id)
        return {"session": session.public()}

    @event(SessionRef)
    async def on_call_decline(self, sid: str, who: Principal, p: SessionRef) -> None:
        await self.router.decline(as_staff(who), p.session_id)

    @event(SessionRef)
    async def on_call_hangup(self, sid: str, who: Principal, p: SessionRef) -> None:
        await self.router.hangup_by_staff(as_staff(who), p.session_id)

    @event(Empty)
    async def on_wrapup_done(self, sid: str, who: Principal, p: Empty) -> dict:
        presence = await self.router.wrapup_done(as_staff(who))
        return {"state": presence.state}

    @event(RtcOffer)
    async def on_rtc_offer(self, sid: str, who: Principal, p: RtcOffer) -> dict:
        session = await self.router.session_of_staff(as_staff(who), p.session_id)
        if session.staff_id != who.id:
            raise Forbidden("this call is handled by another staff member")
        return await self.media.answer(session, "staff", p.sdp,
                                       peer=self.addresses.get(sid))

    async def _own_call(self, who: Principal, session_id: str) -> Session:
        session = await self.router.session_of_staff(as_staff(who), session_id)
        if session.staff_id != who.id:
            raise Forbidden("this call is handled by another staff member")
        if session.state != SessionState.CONNECTED:
            raise Conflict(f"the session is {session.state}, not in a call")
        return session

    @event(VerificationStart)
    async def on_verification_start(self, sid: str, who: Principal, p: VerificationStart) -> None:
        session = await self._own_call(who, p.session_id)
        document = await self.store.get_document(p.id_document_id)
        if document is None or document.session_id != session.id:
            raise NotFound("no such document in this session")
        if document.kind != "id_card":
            raise BadRequest(f"document {p.id_document_id} is a {document.kind}, not an id_card")
        await self.media.at_home(session, "verification.start",
                                 {"document": document.to_dict()})

    async def _start_verification(self, session: Session, body: dict[str, Any]) -> dict:
        self.verifier.ensure_available()
        document = Document.from_dict(body["document"])  # it may have come from another node
        image = await asyncio.to_thread(self.blobs.read, document.sha256)
        await self.verifier.start(session, document, image)
        return {"ok": True}

    @event(VerificationChallenge)
    async def on_verification_challenge(
        self, sid: str, who: Principal, p: VerificationChallenge
    ) -> None:
        session = await self._own_call(who, p.session_id)
        if p.challenge == "blink":
            raise BadRequest("challenge: blink is not supported; use turn_left or turn_right")
        await self.media.at_home(session, "verification.challenge", {"challenge": p.challenge})

    async def _challenge(self, session: Session, body: dict[str, Any]) -> dict:
        await self.verifier.challenge(session, body["challenge"])
        return {"ok": True}

    @event(DocumentAnnotate)
    async def on_document_annotate(self, sid: str, who: Principal, p: DocumentAnnotate) -> None:
        session = await self._own_call(who, p.session_id)
        shapes = [shape.model_dump(exclude_none=True) for shape in p.shapes]
        await self.desk.annotate(session, p.document_id, p.page, shapes)

    @event(RescanRequest)
    async def on_document_request_rescan(self, sid: str, who: Principal, p: RescanRequest) -> None:
        session = await self._own_call(who, p.session_id)
        await self.desk.request_rescan(session, p.document_id, p.reason)

    @event(SignatureRequest)
    async def on_signature_request(self, sid: str, who: Principal, p: SignatureRequest) -> dict:
        session = await self._own_call(who, p.session_id)
        return {"request_id": await self.desk.request_signature(session, p.document_id, p.title)}

    @event(SessionRef)
    async def on_case_submit(self, sid: str, who: Principal, p: SessionRef) -> dict:
        session = await self._own_call(who, p.session_id)
        return {"receipt_no": await self.desk.submit_case(session)}

    @event(CaseDecide)
    async def on_case_decide(self, sid: str, who: Principal, p: CaseDecide) -> dict:
        case = await self.desk.decide(
            who.id, who.departments, p.receipt_no, p.decision, p.reason, p.result_document_ids
        )
        return {"state": case.state, "result_document_ids": case.result_document_ids}

    @event(PrintSend)
    async def on_print_send(self, sid: str, who: Principal, p: PrintSend) -> dict:
        session = await self._own_call(who, p.session_id)
        return {"job_id": await self.desk.send_print(session, p.document_id)}
