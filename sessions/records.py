"""The case file's records, as the store keeps them: documents, applications ("cases")
with their decision, signature requests and signatures, print jobs; their states, and
the one way their ids are made.

Stores keep each record as its :meth:`Record.to_dict` (JSON) and give it back through
:meth:`Record.from_dict`, which ignores fields it does not know (a record written by a
newer release) and fills the defaults of fields it lacks (one written by an older one).
"""

from __future__ import annotations

import dataclasses
import enum
import secrets
from dataclasses import dataclass, field
from typing import Any, Self


def new_id(prefix: str) -> str:
    """An unguessable id such as ``doc_Xp3…`` (96 random bits): signed URLs and
    authorisation guard access, the randomness only keeps ids from being enumerated."""
    return f"{prefix}_{secrets.token_urlsafe(12)}"


class CaseState(enum.StrEnum):
    SUBMITTED = "submitted"
    APPROVED = "approved"
    REJECTED = "rejected"


class SignatureRequestState(enum.StrEnum):
    OPEN = "open"
    SIGNED = "signed"


class PrintStatus(enum.StrEnum):
    QUEUED = "queued"
    PRINTED = "printed"
    FAILED = "failed"


@dataclass
class Record:
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


@dataclass
class Document(Record):
    """A stored file of a session (a scan, or a result document), by its sha256."""

    document_id: str
    session_id: str
    kiosk_id: str
    kind: str  # id_card, form, supporting (uploads); result (made by the desk)
    sha256: str
    pages: int
    content_type: str
    size: int | None
    created_at: float
    title: str | None = None


@dataclass
class DocumentRef(Record):
    """A document as an application lists it: fixed by its hash when it was lodged."""

    document_id: str
    sha256: str
    kind: str


@dataclass
class ResultJob(Record):
    """One result document of an approved case, printable by the receipt number."""

    job_id: str
    document_id: str
    title: str


@dataclass
class Decision(Record):
    decision: str  # CaseState.APPROVED or CaseState.REJECTED
    reason: str | None
    staff_id: str | None
    decided_at: float


@dataclass
class Case(Record):
    """An application, keyed by its receipt number; it outlives its call."""

    receipt_no: str
    session_id: str
    kiosk_id: str
    department_id: str
    service_id: str
    staff_id: str | None
    state: str  # CaseState
    submitted_at: float
    documents: list[DocumentRef] = field(default_factory=list)
    decision: Decision | None = None
    result_document_ids: list[str] = field(default_factory=list)
    print_jobs: list[ResultJob] = field(default_factory=list)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Case:
        case = super().from_dict(raw)
        case.documents = [DocumentRef.from_dict(d) for d in raw.get("documents") or []]
        case.decision = Decision.from_dict(raw["decision"]) if raw.get("decision") else None
        case.result_document_ids = list(raw.get("result_document_ids") or [])
        case.print_jobs = [ResultJob.from_dict(j) for j in raw.get("print_jobs") or []]
        return case


@dataclass
class SignatureRequest(Record):
    request_id: str
    session_id: str
    kiosk_id: str
    staff_id: str | None
    document_id: str
    document_sha256: str
    title: str
    state: str  # SignatureRequestState
    requested_at: float
    signature_id: str | None = None


@dataclass
class Signature(Record):
    """What the citizen signed (the document's sha256) with what (the PNG's and the
    strokes' sha256)."""

    signature_id: str
    request_id: str
    session_id: str
    kiosk_id: str
    document_id: str
    document_sha256: str
    png_sha256: str | None
    strokes: list[list[list[float]]]
    strokes_sha256: str
    signed_at: float


@dataclass
class PrintJob(Record):
    """A document sent to a kiosk's printer during a call."""

    job_id: str
    session_id: str
    kiosk_id: str
    staff_id: str | None
    document_id: str
    document_sha256: str
    status: str  # PrintStatus
    queued_at: float
    done_at: float | None = None
