"""The case from scan to printed result: annotations and rescan requests on the kiosk's
documents, signatures, the application (receipt number) and its decision, and print
jobs. Every step is checked against the session, appended to its audit trail (durable
before it is acknowledged) and then announced to the kiosk or the staff member."""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import io
import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from PIL import Image, ImageDraw, UnidentifiedImageError

from sessions.cases import new_receipt_no, normalise_receipt_no
from sessions.errors import BadRequest, Conflict, Forbidden, NotFound
from sessions.notifier import Notifier
from sessions.projection import document_event
from sessions.records import (
    Case,
    CaseState,
    Decision,
    Document,
    DocumentRef,
    PrintJob,
    PrintStatus,
    ResultJob,
    Signature,
    SignatureRequest,
    SignatureRequestState,
    new_id,
)
from sessions.session import Session, SessionState
from sessions.store import CaseStore, DocumentIndex, RecordStore, SessionStore

from .storage import Blobs

Recorder = Callable[..., Awaitable[None]]
# A signed URL for a stored file (document page, signature image), made by the web layer.
UrlFor = Callable[[str, str], str]

# What may be handed out by receipt number to anyone at a Citizen's Window: the form
# the citizen filled in and signed, or what the desk made (the decision letter); never
# an identity card or the supporting evidence they showed.
RESULT_KINDS = frozenset({"form", "result"})
MAX_SIGNATURE_PNG = 150_000
MAX_SIGNATURE_SIDE = 2000


def check_signature_png(data: bytes) -> tuple[int, int]:
    """The size of a signature PNG, or :class:`BadRequest`. Blocking (decodes it)."""
    if len(data) > MAX_SIGNATURE_PNG:
        raise BadRequest(f"png_base64: the signature image is over {MAX_SIGNATURE_PNG} bytes")
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise BadRequest("png_base64: not a PNG image")
    try:
        with Image.open(io.BytesIO(data)) as image:
            if max(image.size) > MAX_SIGNATURE_SIDE:
                raise BadRequest("png_base64: the signature image is too large")
            image.load()
            return image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise BadRequest(f"png_base64: the image is damaged: {exc}") from exc


def render_decision_letter(case: Case, decided_at: float) -> bytes:
    """A one-page PDF stating the decision: the result document printed by receipt
    number when the staff attaches none of their own. Blocking."""
    page = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
    draw = ImageDraw.Draw(page)
    lines = [
        "SMART COUNTER — DECISION",
        "",
        f"Receipt number: {case.receipt_no}",
        f"Department: {case.department_id}",
        f"Service: {case.service_id}",
        f"Lodged: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(case.submitted_at))}",
        f"Decided: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(decided_at))}",
        "",
        "Decision: APPROVED",
    ]
    for i, line in enumerate(lines):
        draw.text((120, 160 + i * 56), line, fill="black", font_size=36)
    out = io.BytesIO()
    page.save(out, "PDF", resolution=150.0)
    return out.getvalue()


class CaseFileStore(SessionStore, DocumentIndex, RecordStore, CaseStore, Protocol):
    """What the desk keeps: sessions it checks, documents, cases, signature requests,
    signatures and print jobs (records)."""


class CaseDesk:
    def __init__(
        self,
        store: CaseFileStore,
        record: Recorder,
        notifier: Notifier,
        blobs: Blobs,
        url_for: UrlFor,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.record = record
        self.notifier = notifier
        self.blobs = blobs
        self.url_for = url_for
        self.clock = clock

    async def _document(self, session: Session, document_id: str) -> Document:
        document = await self.store.get_document(document_id)
        if document is None or document.session_id != session.id:
            raise NotFound("no such document in this session")
        return document

    @staticmethod
    def _in_call(session: Session) -> None:
        if session.state != SessionState.CONNECTED:
            raise Conflict(f"the session is {session.state}, not in a call")

    # -- documents -------------------------------------------------------------------

    async def annotate(
        self, session: Session, document_id: str, page: int, shapes: list[dict[str, Any]]
    ) -> None:
        self._in_call(session)
        document = await self._document(session, document_id)
        if page > document.pages:
            raise BadRequest(f"page: the document has {document.pages} page(s)")
        await self.record(
            session.id, "document.annotated", document_id=document_id, page=page,
            shapes=shapes,
        )
        await self.notifier.to_kiosk(
            session.kiosk_id,
            "document.annotation",
            {"session_id": session.id, "document_id": document_id, "page": page,
             "shapes": shapes},
        )

    async def request_rescan(self, session: Session, document_id: str, reason: str) -> None:
        self._in_call(session)
        await self._document(session, document_id)
        await self.record(
            session.id, "document.rescan_requested", document_id=document_id, reason=reason
        )
        await self.notifier.to_kiosk(
            session.kiosk_id,
            "document.rescan_requested",
            {"session_id": session.id, "document_id": document_id, "reason": reason},
        )

    # -- signatures ------------------------------------------------------------------

    async def request_signature(self, session: Session, document_id: str, title: str) -> str:
        self._in_call(session)
        document = await self._document(session, document_id)
        request = SignatureRequest(
            request_id=new_id("sigreq"), session_id=session.id, kiosk_id=session.kiosk_id,
            staff_id=session.staff_id, document_id=document_id,
            document_sha256=document.sha256, title=title, state=SignatureRequestState.OPEN,
            requested_at=self.clock(),
        )
        request_id = request.request_id
        await self.record(
            session.id, "signature.requested", request_id=request_id, document_id=document_id,
            document_sha256=document.sha256, title=title,
        )
        await self.store.put_record("signature_request", request_id, request.to_dict(),
                                    create=True)
        await self.notifier.to_kiosk(
            session.kiosk_id,
            "signature.requested",
            {"session_id": session.id, "request_id": request_id, "document_id": document_id,
             "title": title},
        )
        return request_id

    async def submit_signature(
        self,
        kiosk_id: str,
        request_id: str,
        png_base64: str | None,
        strokes: Sequence[Sequence[Sequence[float]]] | None,
    ) -> str:
        raw = await self.store.get_record("signature_request", request_id)
        if raw is None:
            raise NotFound("no such signature request")
        request = SignatureRequest.from_dict(raw)
        if request.kiosk_id != kiosk_id:
            raise Forbidden("this signature request is for another kiosk")
        if request.state != SignatureRequestState.OPEN:
            raise Conflict("this signature request has been answered already")
        session = await self.store.get_session(request.session_id)
        if session is None or session.state != SessionState.CONNECTED:
            raise Conflict("the call this signature was asked in has ended")
        png = None
        if png_base64:
            try:
                png = base64.b64decode(png_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise BadRequest("png_base64: not base64") from exc
            await asyncio.to_thread(check_signature_png, png)
        signature_id = new_id("sig")
        # Only one submission wins the request (a kiosk retrying, two tabs).
        await self.store.put_record(
            "signature_claim", request_id, {"signature_id": signature_id}, create=True
        )
        png_sha256 = await asyncio.to_thread(self.blobs.put_bytes, png) if png else None
        stroke_list = [[list(point) for point in stroke] for stroke in strokes or []]
        strokes_sha256 = hashlib.sha256(
            json.dumps(stroke_list, separators=(",", ":")).encode()
        ).hexdigest()
        signature = Signature(
            signature_id=signature_id, request_id=request_id, session_id=session.id,
            kiosk_id=kiosk_id, document_id=request.document_id,
            document_sha256=request.document_sha256, png_sha256=png_sha256,
            strokes=stroke_list, strokes_sha256=strokes_sha256, signed_at=self.clock(),
        )
        await self.record(
            session.id, "signature.submitted", signature_id=signature_id,
            request_id=request_id, document_sha256=request.document_sha256,
            png_sha256=png_sha256, strokes_sha256=strokes_sha256, kiosk_id=kiosk_id,
        )
        await self.store.put_record("signature", signature_id, signature.to_dict(),
                                    create=True)
        signed = dataclasses.replace(request, state=SignatureRequestState.SIGNED,
                                     signature_id=signature_id)
        await self.store.put_record("signature_request", request_id, signed.to_dict())
        if session.staff_id:
            await self.notifier.to_staff(
                session.staff_id,
                "signature.completed",
                {
                    "session_id": session.id,
                    "request_id": request_id,
                    "signature_id": signature_id,
                    "document_sha256": request.document_sha256,
                    "image_url": self.url_for("signature", signature_id) if png_sha256 else None,
                },
            )
        return signature_id

    # -- the application -------------------------------------------------------------

    async def submit_case(self, session: Session) -> str:
        self._in_call(session)
        existing = await self.store.session_cases(session.id)
        if existing:
            raise Conflict(
                f"this call's application is lodged already: {existing[0].receipt_no}")
        documents = await self.store.session_documents(session.id)
        case = Case(
            receipt_no=new_receipt_no(), session_id=session.id, kiosk_id=session.kiosk_id,
            department_id=session.department_id, service_id=session.service_id,
            staff_id=session.staff_id, state=CaseState.SUBMITTED, submitted_at=self.clock(),
            documents=[DocumentRef(d.document_id, d.sha256, d.kind) for d in documents],
        )
        await self.record(
            session.id, "case.submitted", receipt_no=case.receipt_no,
            documents=[d.to_dict() for d in case.documents], kiosk_id=case.kiosk_id,
            department_id=case.department_id, service_id=case.service_id,
            staff_id=case.staff_id, submitted_at=case.submitted_at,
        )
        await self.store.create_case(case)
        await self.notifier.to_kiosk(
            session.kiosk_id, "case.receipt",
            {"session_id": session.id, "receipt_no": case.receipt_no},
        )
        return case.receipt_no

    async def case_for(self, receipt_no: str, departments: Sequence[str] | None) -> Case:
        """The case, if the caller (staff of ``departments``, or a supervisor: None) may
        see it."""
        case = await self.store.get_case(normalise_receipt_no(receipt_no))
        if case is None:
            raise NotFound("no such case")
        if departments is not None and case.department_id not in departments:
            raise Forbidden("this case belongs to another department")
        return case

    async def decide(
        self,
        staff_id: str,
        departments: Sequence[str],
        receipt_no: str,
        decision: str,
        reason: str | None,
        result_document_ids: Sequence[str] | None,
    ) -> Case:
        case = await self.case_for(receipt_no, departments)
        if case.state != CaseState.SUBMITTED:
            raise Conflict(f"this case is {case.state} already")
        if decision == CaseState.REJECTED and not (reason or "").strip():
            raise BadRequest("reason: say why the application is rejected")
        decided_at = self.clock()
        results: list[Document] = []
        if decision == CaseState.APPROVED:
            for document_id in result_document_ids or []:
                document = await self.store.get_document(document_id)
                if document is None or document.session_id != case.session_id:
                    raise BadRequest(f"result_document_ids: {document_id} is not this case's")
                if document.kind not in RESULT_KINDS:  # it would print at any window
                    raise BadRequest(
                        f"result_document_ids: {document_id} is the citizen's "
                        f"{document.kind}; a result is the application form or a document "
                        "the desk made")
                results.append(document)
            if not results:
                results.append(await self._decision_letter(case, decided_at))
        jobs = [ResultJob(new_id("job"), d.document_id, d.title or d.kind) for d in results]
        verdict = Decision(decision, reason, staff_id, decided_at)
        # One decision wins, before anything is written: the loser of a race leaves no
        # case.decided in the trail (a rebuild would bring it back).
        await self.store.put_record("decision_claim", case.receipt_no,
                                    {"staff_id": staff_id, "decision": decision}, create=True)
        try:
            await self.record(
                case.session_id, "case.decided", receipt_no=case.receipt_no,
                decision=decision, reason=reason, staff_id=staff_id, decided_at=decided_at,
                result_documents=[{"document_id": d.document_id, "sha256": d.sha256}
                                  for d in results],
                print_jobs=[j.to_dict() for j in jobs],
            )
            updated = await self.store.update_case(case.receipt_no, {
                "state": decision, "decision": verdict.to_dict(),
                "result_document_ids": [d.document_id for d in results],
                "print_jobs": [j.to_dict() for j in jobs],
            }, expect={"state": [CaseState.SUBMITTED]})
        except BaseException:
            # Not decided after all (a disk or store error): the claim must not keep the
            # case from ever being decided.
            await self.store.delete_record("decision_claim", case.receipt_no)
            raise
        session = await self.store.get_session(case.session_id)
        if session is not None and session.state == SessionState.CONNECTED:
            await self.notifier.to_kiosk(
                session.kiosk_id,
                "case.decided",
                {"session_id": session.id, "decision": decision,
                 "receipt_no": case.receipt_no, "message": reason or ""},
            )
        return updated

    async def _decision_letter(self, case: Case, decided_at: float) -> Document:
        pdf = await asyncio.to_thread(render_decision_letter, case, decided_at)
        sha256 = await asyncio.to_thread(self.blobs.put_bytes, pdf)
        document = Document(
            document_id=new_id("doc"), session_id=case.session_id, kiosk_id=case.kiosk_id,
            kind="result", title="Decision", sha256=sha256, pages=1,
            content_type="application/pdf", size=len(pdf), created_at=decided_at,
        )
        await self.record(case.session_id, "document.added", **document_event(document))
        await self.store.add_document(document)
        return document

    # -- printing --------------------------------------------------------------------

    async def send_print(self, session: Session, document_id: str) -> str:
        self._in_call(session)
        document = await self._document(session, document_id)
        job = PrintJob(
            job_id=new_id("job"), session_id=session.id, kiosk_id=session.kiosk_id,
            staff_id=session.staff_id, document_id=document_id,
            document_sha256=document.sha256, status=PrintStatus.QUEUED,
            queued_at=self.clock(),
        )
        await self.record(
            session.id, "print.queued", job_id=job.job_id, document_id=document_id,
            document_sha256=document.sha256, kiosk_id=session.kiosk_id,
            staff_id=session.staff_id,
        )
        await self.store.put_record("print_job", job.job_id, job.to_dict(), create=True)
        await self.notifier.to_kiosk(
            session.kiosk_id,
            "print.job",
            {"session_id": session.id, "job_id": job.job_id, "document_id": document_id,
             "url": self.url_for("document", document_id),
             "content_type": document.content_type, "pages": document.pages},
        )
        return job.job_id

    async def print_done(self, kiosk_id: str, job_id: str, status: str) -> None:
        raw = await self.store.get_record("print_job", job_id)
        if raw is None:
            raise NotFound("no such print job")
        job = PrintJob.from_dict(raw)
        if job.kiosk_id != kiosk_id:
            raise Forbidden("this print job is for another kiosk")
        if job.status != PrintStatus.QUEUED:
            raise Conflict(f"this print job is {job.status} already")
        await self.record(job.session_id, "print.done", job_id=job_id, status=status)
        done = dataclasses.replace(job, status=status, done_at=self.clock())
        await self.store.put_record("print_job", job_id, done.to_dict())
        if job.staff_id:
            await self.notifier.to_staff(
                job.staff_id, "print.status",
                {"session_id": job.session_id, "job_id": job_id, "status": status},
            )

    async def lookup(self, receipt_no: str) -> dict[str, Any]:
        """What the Citizen's Window shows for a receipt number: the state, and once
        approved the result documents to print."""
        case = await self.store.get_case(normalise_receipt_no(receipt_no))
        if case is None:
            raise NotFound("no application has this receipt number")
        answer: dict[str, Any] = {"receipt_no": case.receipt_no, "state": case.state,
                                  "jobs": []}
        if case.state == CaseState.APPROVED:
            for job in case.print_jobs:
                document = await self.store.get_document(job.document_id)
                if document is None:
                    continue
                answer["jobs"].append({
                    **job.to_dict(),
                    "url": self.url_for("document", job.document_id),
                    "content_type": document.content_type,
                    "pages": document.pages,
                    "page_urls": [
                        self.url_for("page", f"{job.document_id}/{n}")
                        for n in range(1, document.pages + 1)
                    ],
                })
        return answer
