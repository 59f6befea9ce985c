"""The audit trails are the ledger; the store's sessions, cases, decisions, print jobs and
documents' index are a projection of them.

Every step that creates or changes a document, case, decision or print job is appended
to its session's trail (fsynced) before the store is written, so the trail is never
behind the store for them: a crash between the two leaves an event the store lacks,
never the reverse. A session's transitions are compare-and-set in the store first (a
step that loses a race must not be recorded) and appended before anyone is answered; a
crash between the two leaves a live session whose trail does not end it, which the
next start re-derives like any session live at a restart.
:func:`project` reads one trail back into the records it stands for; :func:`check`
compares them with a store (both ways) and :func:`rebuild` writes what a store lacks
(into an empty one: the whole projection). A rebuilt session that was still live keeps
its state; the next start of the server on that store re-derives it like any restart.

Plain Python, no I/O of its own: the trails come from :class:`sessions.audit.AuditLog`,
the page counts of documents whose event predates ``pages`` from ``pages_of``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .records import Case, CaseState, Decision, Document, DocumentRef, PrintJob, ResultJob
from .session import Session, SessionState
from .statistics import ABANDONED, ANSWERED
from .store import Store

# How many pages the stored file with this sha256 and type has (blocking).
PagesOf = Callable[[str, str], int]

DOCUMENT_FIELDS = ("document_id", "kind", "sha256", "size", "content_type", "pages", "title",
                   "created_at")


def document_event(document: Document) -> dict[str, Any]:
    """What the ``document.added`` event records of a document: all its index entry
    holds but the session's ids (the trail's own)."""
    return {k: getattr(document, k) for k in DOCUMENT_FIELDS}


@dataclass
class TrailRecords:
    """What one session's trail says the store holds."""

    session: dict[str, Any] | None = None  # as Session.to_dict has it
    # (department, kind, wait_s, at) of each time the call left its queue, for statistics
    outcomes: list[tuple[str, str, float, float]] = field(default_factory=list)
    documents: dict[str, Document] = field(default_factory=dict)
    cases: dict[str, Case] = field(default_factory=dict)
    print_jobs: dict[str, PrintJob] = field(default_factory=dict)
    # Cases decided before decisions recorded their jobs' ids: the ids are made up here,
    # so only their documents can be compared.
    derived_jobs: set[str] = field(default_factory=set)


def _job_id(receipt_no: str, document_id: str) -> str:
    """A stable id for a decision's print job recorded before jobs carried their ids."""
    return "job_" + hashlib.sha256(f"{receipt_no}/{document_id}".encode()).hexdigest()[:16]


def project(session_id: str, events: Iterable[Mapping[str, Any]],
            pages_of: PagesOf) -> TrailRecords:
    out = TrailRecords()
    s: dict[str, Any] | None = None
    for event in events:
        kind, data, at = event["type"], event["data"], event["at"]
        if kind == "session.queued":
            s = Session(
                id=session_id, kiosk_id=data["kiosk_id"], kiosk_site=data.get("site", ""),
                department_id=data["department_id"], service_id=data["service_id"],
                language=data.get("language", "en"), state=SessionState.QUEUED,
                created_at=at, queue_score=at, queued_at=at,
            ).to_dict()
            out.session = s
            continue
        if s is None:
            continue  # a trail that does not start with its request is not a session's
        if kind in SESSION_EVENTS:
            _apply_to_session(out, s, kind, data, at)
        else:
            _apply_to_records(out, s, session_id, kind, data, at, pages_of)
    return out


# Events that change the session itself; the others add or change its records.
SESSION_EVENTS = frozenset({
    "call.offered", "call.offer_ended", "call.accepted", "call.reassigned",
    "session.requeued", "session.closed", "session.abandoned",
})


def _apply_to_session(out: TrailRecords, s: dict[str, Any], kind: str,
                      data: Mapping[str, Any], at: float) -> None:
    if kind == "call.offered":
        s.update(state=SessionState.RINGING, offered_to=data.get("staff_id"))
    elif kind == "call.offer_ended":
        s.update(state=SessionState.QUEUED, offered_to=None, offer_expires_at=None)
        if data.get("reason") == "declined" and data.get("staff_id"):
            s["declined_by"] = [*s["declined_by"], data["staff_id"]]
    elif kind == "call.accepted":
        if s["answered_at"] is None:
            out.outcomes.append((s["department_id"], ANSWERED,
                                 data.get("waited_s", at - s["created_at"]), at))
        s.update(state=SessionState.CONNECTED, staff_id=data.get("staff_id"),
                 staff_display_name=data.get("display_name"),
                 offered_to=None, offer_expires_at=None, connected_at=at)
        s["answered_at"] = s["answered_at"] or at
    elif kind == "call.reassigned" and data.get("department_id"):
        s["department_id"] = data["department_id"]
    elif kind == "session.requeued":
        s.update(state=SessionState.QUEUED, staff_id=None, connected_at=None, queued_at=at)
    elif kind == "session.closed":
        s.update(state=SessionState.CLOSED, ended_at=at, end_reason=data.get("reason"))
    elif kind == "session.abandoned":
        if s["answered_at"] is None:
            out.outcomes.append((s["department_id"], ABANDONED, at - s["created_at"], at))
        s.update(state=SessionState.ABANDONED, ended_at=at, end_reason="abandoned",
                 offered_to=None, offer_expires_at=None)


def _apply_to_records(out: TrailRecords, s: dict[str, Any], session_id: str, kind: str,
                      data: Mapping[str, Any], at: float, pages_of: PagesOf) -> None:
    if kind == "document.added":
        pages = data.get("pages") or pages_of(data["sha256"], data["content_type"])
        out.documents[data["document_id"]] = Document(
            document_id=data["document_id"], session_id=session_id,
            kiosk_id=s["kiosk_id"], kind=data["kind"], sha256=data["sha256"],
            pages=pages, content_type=data["content_type"], size=data.get("size"),
            created_at=data.get("created_at", at), title=data.get("title"),
        )
    elif kind == "case.submitted":
        out.cases[data["receipt_no"]] = Case(
            receipt_no=data["receipt_no"], session_id=session_id,
            kiosk_id=data.get("kiosk_id", s["kiosk_id"]),
            department_id=data.get("department_id", s["department_id"]),
            service_id=data.get("service_id", s["service_id"]),
            staff_id=data.get("staff_id", s["staff_id"]),
            state=CaseState.SUBMITTED, submitted_at=data.get("submitted_at", at),
            documents=[DocumentRef.from_dict(d) for d in data.get("documents", [])],
        )
    elif kind == "case.decided" and data["receipt_no"] in out.cases:
        _decide(out, data, at)
    elif kind == "print.queued":
        out.print_jobs[data["job_id"]] = PrintJob(
            job_id=data["job_id"], session_id=session_id,
            kiosk_id=data.get("kiosk_id", s["kiosk_id"]),
            staff_id=data.get("staff_id", s["staff_id"]),
            document_id=data["document_id"], document_sha256=data["document_sha256"],
            status="queued", queued_at=at,
        )
    elif kind == "print.done" and data["job_id"] in out.print_jobs:
        job = out.print_jobs[data["job_id"]]
        job.status, job.done_at = data["status"], at


def _decide(out: TrailRecords, data: Mapping[str, Any], at: float) -> None:
    case = out.cases[data["receipt_no"]]
    results = data.get("result_documents", [])
    for result in results:  # a decision letter made before it had its own event
        out.documents.setdefault(result["document_id"], Document(
            document_id=result["document_id"], session_id=case.session_id,
            kiosk_id=case.kiosk_id, kind="result", title="Decision", sha256=result["sha256"],
            pages=1, content_type="application/pdf", size=None, created_at=at,
        ))
    if "print_jobs" in data:
        jobs = [ResultJob.from_dict(j) for j in data["print_jobs"]]
    else:
        out.derived_jobs.add(case.receipt_no)
        jobs = [ResultJob(_job_id(case.receipt_no, r["document_id"]), r["document_id"],
                          out.documents[r["document_id"]].title
                          or out.documents[r["document_id"]].kind) for r in results]
    case.state = data["decision"]
    case.decision = Decision(data["decision"], data.get("reason"), data.get("staff_id"),
                             data.get("decided_at", at))
    case.result_document_ids = [r["document_id"] for r in results]
    case.print_jobs = jobs


@dataclass
class Report:
    sessions: int = 0
    differences: list[str] = field(default_factory=list)
    added: dict[str, int] = field(default_factory=lambda: {
        "sessions": 0, "sessions_ended": 0, "documents": 0, "cases": 0, "decisions": 0,
        "print_jobs": 0})


# A session's trail as it is now (read again before a difference is reported: on a
# running system the trail is written first, the store a moment later).
ReadTrail = Callable[[str], list[dict[str, Any]]]


async def check(store: Store, session_ids: Iterable[str], read: ReadTrail,
                pages_of: PagesOf) -> Report:
    """Every session, document, case, decision and print job of the trails is in the
    store as the trail has it, and every case and document the store has for a session
    is in its trail; cases in the store that no trail has are reported too. Safe on a
    running system: the store's cases are listed before the trails are read, and a
    session that differs is compared again with its trail read anew."""
    report = Report()
    in_trails: set[str] = set()
    stored_cases = [case for state in CaseState for case in await store.cases(state)]
    for session_id in session_ids:
        expected = project(session_id, read(session_id), pages_of)
        if expected.session is None:
            continue
        report.sessions += 1
        found = await _compare(store, session_id, expected)
        if found:  # perhaps caught between a trail's event and the store's write
            expected = project(session_id, read(session_id), pages_of)
            found = await _compare(store, session_id, expected)
        in_trails |= set(expected.cases)
        report.differences += found
    for case in stored_cases:
        if case.receipt_no not in in_trails:
            report.differences.append(
                f"case {case.receipt_no} (session {case.session_id}) is in the store but "
                "in no audit trail")
    return report


async def _compare(store: Store, sid: str, expected: TrailRecords) -> list[str]:
    found: list[str] = []
    # verify() compares only sessions whose trail has the session itself.
    assert expected.session is not None, f"session {sid}'s trail has no session"
    trail_state = expected.session["state"]
    session = await store.get_session(sid)
    ended = trail_state in (SessionState.CLOSED, SessionState.ABANDONED)
    if session is None:
        found.append(f"session {sid} is in its trail but not in the store")
    elif ended and session.state != trail_state:
        found.append(f"session {sid} is {trail_state} in its trail but "
                     f"{session.state} in the store")
    for document_id, document in expected.documents.items():
        stored_document = await store.get_document(document_id)
        if stored_document is None:
            found.append(f"document {document_id} of session {sid} is in its trail but not "
                         "in the store")
        elif stored_document.sha256 != document.sha256 or stored_document.session_id != sid:
            found.append(f"document {document_id} differs: trail sha256 {document.sha256}, "
                         f"store sha256 {stored_document.sha256} of session "
                         f"{stored_document.session_id}")
    for document in await store.session_documents(sid):
        if document.document_id not in expected.documents:
            found.append(f"document {document.document_id} of session {sid} is in the "
                         "store but not in its trail")
    for receipt_no, case in expected.cases.items():
        stored = await store.get_case(receipt_no)
        if stored is None:
            found.append(f"case {receipt_no} of session {sid} is in its trail but not in "
                         "the store")
            continue
        if stored.state != case.state:
            found.append(f"case {receipt_no} is {case.state} in its trail but "
                         f"{stored.state} in the store")
        same = "document_id" if receipt_no in expected.derived_jobs else "job_id"
        jobs, stored_jobs = ([getattr(j, same) for j in c.print_jobs] for c in (case, stored))
        if jobs != stored_jobs:
            found.append(f"case {receipt_no}: print jobs {jobs} in its trail, {stored_jobs} "
                         "in the store")
    for case in await store.session_cases(sid):
        if case.receipt_no not in expected.cases:
            found.append(f"case {case.receipt_no} of session {sid} is in the store but "
                         "not in its trail")
    for job_id, job in expected.print_jobs.items():
        raw = await store.get_record("print_job", job_id)
        if raw is None:
            found.append(f"print job {job_id} of session {sid} is in its trail but not in "
                         "the store")
        elif raw["status"] != job.status:
            found.append(f"print job {job_id} is {job.status} in its trail but "
                         f"{raw['status']} in the store")
    return found


ENDED = (SessionState.CLOSED, SessionState.ABANDONED)


async def rebuild(store: Store, session_ids: Iterable[str], read: ReadTrail,
                  pages_of: PagesOf) -> Report:
    """Write into ``store`` whatever of the trails it lacks (everything, into an empty
    one): what it has is left as it is, but a case the trail has decided is decided and
    a session the trail has ended is ended (a store restored from a backup taken during
    a call). Sessions are ended first, so that a kiosk's newer session can be made."""
    report = Report()
    # (session id, its trail's records, the session as its trail has it)
    projected: list[tuple[str, TrailRecords, dict[str, Any]]] = []
    for session_id in session_ids:
        expected = project(session_id, read(session_id), pages_of)
        if expected.session is not None:
            projected.append((session_id, expected, expected.session))
    report.sessions = len(projected)
    for session_id, _, ended in projected:
        stored = await store.get_session(session_id)
        if stored is not None and stored.live and ended["state"] in ENDED:
            await store.update_session(session_id, {
                k: ended[k] for k in ("state", "ended_at", "end_reason", "staff_id",
                                      "offered_to", "offer_expires_at")
            } | {"deadline": None}, expect={"state": [stored.state]})
            report.added["sessions_ended"] += 1
    for session_id, expected, trail_session in projected:
        if await store.get_session(session_id) is None:
            await store.create_session(Session.from_dict(trail_session))
            report.added["sessions"] += 1
        for document_id, document in expected.documents.items():
            if await store.get_document(document_id) is None:
                await store.add_document(document)
                report.added["documents"] += 1
        for receipt_no, case in expected.cases.items():
            stored_case = await store.get_case(receipt_no)
            if stored_case is None:
                await store.create_case(case)
                report.added["cases"] += 1
                report.added["decisions"] += case.state != CaseState.SUBMITTED
            elif (stored_case.state == CaseState.SUBMITTED
                  and case.state != CaseState.SUBMITTED):
                decided = case.to_dict()
                await store.update_case(receipt_no, {
                    k: decided[k] for k in ("state", "decision", "result_document_ids",
                                            "print_jobs")},
                    expect={"state": [CaseState.SUBMITTED]})
                report.added["decisions"] += 1
        for job_id, job in expected.print_jobs.items():
            raw = await store.get_record("print_job", job_id)
            if raw is None or (raw["status"] == "queued" and job.status != "queued"):
                await store.put_record("print_job", job_id, job.to_dict())
                report.added["print_jobs"] += 1
        for department_id, kind, wait_s, at in expected.outcomes:  # counted once each
            await store.record_outcome(department_id, session_id, kind, wait_s, at)
    return report
