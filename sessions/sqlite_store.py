"""The embedded store: one SQLite file under the data dir, the single-node default and
its system of record (sessions, cases, decisions, print jobs, the documents' index,
statistics and lockouts survive a restart, and a ``kill -9``).

Every call runs on one thread that owns the connection (nothing touches SQLite on the
event loop). Each operation is one savepoint, so it is atomic on its own (``reserve``
reads the queue and writes the session and the staff member in one step); operations
that arrive together share one transaction, committed (WAL, ``synchronous=FULL``: the
log is fsynced) before any of them is answered. So an acknowledged write is on disk,
and a burst of writes costs one fsync, not one each (group commit).

See :mod:`sessions.store` for the indexes each operation keeps, and
:mod:`sessions.sqlite_schema` for the tables and their migrations.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .errors import Conflict, NotFound, Unavailable
from .presence import Presence, PresenceState
from .records import Case, Document
from .session import Session, SessionState
from .sqlite_schema import migrate
from .statistics import Outcome
from .store import STATISTICS_RETENTION_S, Expect, check_expect

logger = logging.getLogger(__name__)

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]

# Operations committed together at most (a bound on how long one batch holds the rest).
MAX_BATCH = 256
# The live states, as the partial indexes on sessions name them.
_LIVE = "state IN ('queued', 'ringing', 'connected')"


class StoreUnavailable(Unavailable):
    """SQLite could not do it (disk full, I/O error): nothing of the operation was kept."""


class StoreLocked(RuntimeError):
    """Another process serves this store (two writers would each re-derive the other's
    live state as stale)."""


def take_lock(path: Path) -> int:
    """Hold ``PATH.lock`` (the fd; closing it lets go), or :class:`StoreLocked` naming
    the process that holds it. Taken by a server on the embedded or the memory store
    (one server per data dir) and by ``store rebuild``."""
    lock = path.with_name(path.name + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o640)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise StoreLocked(
            f"another smartcounter process (pid {holder}) is using {path.parent}: stop it "
            "first (one server per data dir without Redis; several nodes share Redis)"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def connect(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (transactions are explicit), durable commits."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(dict(record), separators=(",", ":"), ensure_ascii=False)


def _session_row(raw: Mapping[str, Any]) -> tuple:
    return (raw["kiosk_id"], raw["department_id"], raw["state"], raw["queue_score"],
            raw["deadline"], _dumps(raw), raw["id"])


def _presence_row(raw: Mapping[str, Any]) -> tuple:
    return (raw["state"], raw["idle_since"], json.dumps(list(raw["departments"])), _dumps(raw),
            raw["staff_id"])


class _Writer:
    """The thread that owns the connection and runs operations in batches."""

    def __init__(self, path: Path, exclusive: bool) -> None:
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = take_lock(path) if exclusive else None
        conn: sqlite3.Connection | None = None
        try:
            conn = connect(path)
            migrate(conn, upgrade=exclusive)
        except BaseException:
            if conn is not None:
                conn.close()
            self._release_lock()
            raise
        # Set only once open and migrated: the writer thread owns it from here on.
        self._conn: sqlite3.Connection = conn
        self._thread = threading.Thread(target=self._run, name=f"sqlite:{path.name}",
                                        daemon=True)
        self._thread.start()
        self.closed = False

    def submit(self, operation: Operation[T]) -> asyncio.Future[T]:
        if self.closed:
            raise StoreUnavailable("the store is closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((operation, future, loop))
        return future

    def stop(self) -> None:
        """Blocking: ends the thread after the operations already submitted."""
        if not self.closed:
            self.closed = True
            self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        try:
            self._serve()
        finally:  # whatever ended the thread, nobody waits for it forever
            self.closed = True
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    _, future, loop = job
                    with contextlib.suppress(RuntimeError):
                        loop.call_soon_threadsafe(
                            _settle, future, False, StoreUnavailable("the store has stopped"))

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            job = self._jobs.get()
            if job is None:
                break
            batch = [job]
            while len(batch) < MAX_BATCH:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stopping = True
                    break
                batch.append(job)
            self._commit(batch)
        self._conn.close()
        self._release_lock()

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def _commit(self, batch: list) -> None:
        conn = self._conn
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for operation, _, _ in batch:
                conn.execute("SAVEPOINT op")
                try:
                    results.append((True, operation(conn)))
                except BaseException as exc:  # the thread must outlive any operation
                    conn.execute("ROLLBACK TO op")
                    if not isinstance(exc, Exception):
                        exc = StoreUnavailable(f"the operation was interrupted: {exc!r}")
                    results.append((False, exc))
                conn.execute("RELEASE op")
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            logger.error("the embedded store could not commit: %s", exc)
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            failure = StoreUnavailable(f"the store could not save this: {exc}")
            results = [(False, failure)] * len(batch)
        for (_, future, loop), (ok, value) in zip(batch, results, strict=True):
            if isinstance(value, sqlite3.Error):
                value = StoreUnavailable(f"the store could not do this: {value}")
            with contextlib.suppress(RuntimeError):  # the loop has closed meanwhile
                loop.call_soon_threadsafe(_settle, future, ok, value)


def _settle(future: asyncio.Future, ok: bool, value: Any) -> None:
    if future.cancelled():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class SQLiteStore:
    durable = True
    shared = False  # one node: its live state is its own

    def __init__(self, path: Path, exclusive: bool = True) -> None:
        """Opens (and migrates) the database at once. ``exclusive``: the store of a
        server, or of a command that must not run beside one (:class:`StoreLocked`
        otherwise); without it, a second connection beside a running server."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = _Writer(self.path, exclusive)

    async def _run(self, operation: Operation[T]) -> T:
        return await self._writer.submit(operation)

    async def ping(self) -> None:
        await self._run(lambda conn: conn.execute("SELECT 1").fetchone())

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.stop)

    async def durability_problem(self) -> str | None:
        return None  # synchronous=FULL: every commit is fsynced before it is answered

    # -- sessions ----------------------------------------------------------------------

    async def create_session(self, session: Session) -> None:
        raw = session.to_dict()

        def op(conn: sqlite3.Connection) -> None:
            if session.live:
                live = conn.execute(f"SELECT id, state FROM sessions WHERE kiosk_id = ? AND "
                                    f"{_LIVE}", (session.kiosk_id,)).fetchone()
                if live is not None:
                    raise Conflict(f"this kiosk is already in session {live[0]} ({live[1]})")
            try:
                conn.execute(
                    "INSERT INTO sessions (kiosk_id, department_id, state, queue_score,"
                    " deadline, data, id) VALUES (?, ?, ?, ?, ?, ?, ?)", _session_row(raw))
            except sqlite3.IntegrityError:
                raise Conflict(f"session {session.id} exists") from None

        await self._run(op)

    async def kiosk_session(self, kiosk_id: str) -> Session | None:
        row = await self._run(lambda conn: conn.execute(
            f"SELECT data FROM sessions WHERE kiosk_id = ? AND {_LIVE}",
            (kiosk_id,)).fetchone())
        return Session.from_dict(json.loads(row[0])) if row else None

    async def get_session(self, session_id: str) -> Session | None:
        found = await self.get_sessions([session_id])
        return found[0]

    async def get_sessions(self, session_ids: Sequence[str]) -> list[Session | None]:
        ids = list(session_ids)
        if not ids:
            return []

        def op(conn: sqlite3.Connection) -> dict[str, str]:
            marks = ",".join("?" * len(ids))
            return dict(conn.execute(f"SELECT id, data FROM sessions WHERE id IN ({marks})", ids))

        found = await self._run(op)
        return [Session.from_dict(json.loads(found[i])) if i in found else None for i in ids]

    async def update_session(
        self, session_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Session:
        changes = dict(changes)

        def op(conn: sqlite3.Connection) -> dict[str, Any]:
            raw = _changed(conn, "sessions", "id", session_id, changes, expect, "session")
            _write_session(conn, raw)
            return raw

        return Session.from_dict(await self._run(op))

    async def queue(self, department_id: str) -> list[str]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT id FROM sessions WHERE state = 'queued' AND department_id = ?"
            " ORDER BY queue_score, id", (department_id,)).fetchall())
        return [sid for (sid,) in rows]

    async def due_sessions(self, now: float, limit: int = 100) -> list[Session]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT data FROM sessions WHERE deadline IS NOT NULL AND deadline <= ?"
            " ORDER BY deadline, id LIMIT ?", (now, limit)).fetchall())
        return [Session.from_dict(json.loads(data)) for (data,) in rows]

    async def live_sessions(self) -> list[Session]:
        rows = await self._run(lambda conn: conn.execute(
            f"SELECT data FROM sessions WHERE {_LIVE} ORDER BY id").fetchall())
        return [Session.from_dict(json.loads(data)) for (data,) in rows]

    async def reserve(
        self, department_id: str, now: float, expires_at: float
    ) -> tuple[Session, Presence] | None:
        def op(conn: sqlite3.Connection):
            staff_ids = _available(conn, department_id)
            if not staff_ids:
                return None
            rows = conn.execute(
                "SELECT data FROM sessions WHERE state = 'queued' AND department_id = ?"
                " ORDER BY queue_score, id LIMIT 200", (department_id,)).fetchall()
            for (data,) in rows:
                raw = json.loads(data)
                if raw.get("kiosk_lost_at") is not None:
                    continue  # its kiosk is away: no one would answer the staff member
                staff_id = next((s for s in staff_ids if s not in raw["declined_by"]), None)
                if staff_id is None:
                    continue
                raw.update(state=SessionState.RINGING.value, offered_to=staff_id,
                           offer_expires_at=expires_at, deadline=expires_at)
                _write_session(conn, raw)
                (pdata,) = conn.execute(
                    "SELECT data FROM presence WHERE staff_id = ?", (staff_id,)).fetchone()
                presence = json.loads(pdata)
                presence.update(state=PresenceState.RINGING.value, since=now,
                                session_id=raw["id"], reason=None)
                _write_presence(conn, presence)
                return raw, presence
            return None

        found = await self._run(op)
        if found is None:
            return None
        return Session.from_dict(found[0]), Presence.from_dict(found[1])

    # -- presence ----------------------------------------------------------------------

    async def get_presence(self, staff_id: str) -> Presence | None:
        row = await self._run(lambda conn: conn.execute(
            "SELECT data FROM presence WHERE staff_id = ?", (staff_id,)).fetchone())
        return Presence.from_dict(json.loads(row[0])) if row else None

    async def put_presence(self, presence: Presence) -> None:
        raw = presence.to_dict()
        await self._run(lambda conn: _write_presence(conn, raw))

    async def update_presence(
        self, staff_id: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Presence:
        changes = dict(changes)

        def op(conn: sqlite3.Connection) -> dict[str, Any]:
            raw = _changed(conn, "presence", "staff_id", staff_id, changes, expect, "staff")
            _write_presence(conn, raw)
            return raw

        return Presence.from_dict(await self._run(op))

    async def list_presence(self) -> list[Presence]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT data FROM presence ORDER BY staff_id").fetchall())
        return [Presence.from_dict(json.loads(data)) for (data,) in rows]

    async def available_staff(self, department_id: str) -> list[str]:
        return await self._run(lambda conn: _available(conn, department_id))

    # -- documents and verification ----------------------------------------------------

    async def add_document(self, document: Document) -> None:
        data = _dumps(document.to_dict())

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO documents (document_id, session_id, data) VALUES (?, ?, ?)",
                    (document.document_id, document.session_id, data))
            except sqlite3.IntegrityError:
                raise Conflict(f"document {document.document_id} exists") from None

        await self._run(op)

    async def get_document(self, document_id: str) -> Document | None:
        row = await self._run(lambda conn: conn.execute(
            "SELECT data FROM documents WHERE document_id = ?", (document_id,)).fetchone())
        return Document.from_dict(json.loads(row[0])) if row else None

    async def session_documents(self, session_id: str) -> list[Document]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT data FROM documents WHERE session_id = ? ORDER BY seq",
            (session_id,)).fetchall())
        return [Document.from_dict(json.loads(data)) for (data,) in rows]

    async def put_verification(self, session_id: str, result: Mapping[str, Any]) -> None:
        data = _dumps(result)
        await self._run(lambda conn: conn.execute(
            "INSERT OR REPLACE INTO verifications (session_id, data) VALUES (?, ?)",
            (session_id, data)))

    async def get_verification(self, session_id: str) -> dict[str, Any] | None:
        row = await self._run(lambda conn: conn.execute(
            "SELECT data FROM verifications WHERE session_id = ?", (session_id,)).fetchone())
        return json.loads(row[0]) if row else None

    # -- records -----------------------------------------------------------------------

    async def put_record(
        self, kind: str, record_id: str, record: Mapping[str, Any], create: bool = False,
        expect: Expect | None = None,
    ) -> None:
        data = _dumps(record)

        def op(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT data FROM records WHERE kind = ? AND record_id = ?",
                               (kind, record_id)).fetchone()
            if create and row is not None:
                raise Conflict(f"{kind} {record_id} exists")
            if expect is not None:
                if row is None:
                    raise Conflict(f"{kind} {record_id} does not exist")
                check_expect(json.loads(row[0]), expect, f"{kind} {record_id}")
            conn.execute("INSERT OR REPLACE INTO records (kind, record_id, data) VALUES (?, ?, ?)",
                         (kind, record_id, data))

        await self._run(op)

    async def get_record(self, kind: str, record_id: str) -> dict[str, Any] | None:
        row = await self._run(lambda conn: conn.execute(
            "SELECT data FROM records WHERE kind = ? AND record_id = ?",
            (kind, record_id)).fetchone())
        return json.loads(row[0]) if row else None

    async def delete_record(self, kind: str, record_id: str) -> None:
        await self._run(lambda conn: conn.execute(
            "DELETE FROM records WHERE kind = ? AND record_id = ?", (kind, record_id)))

    # -- nodes -------------------------------------------------------------------------

    async def beat_node(self, node_id: str, info: Mapping[str, Any]) -> bool:
        data = _dumps(info)

        def op(conn: sqlite3.Connection) -> bool:
            new = conn.execute("SELECT 1 FROM nodes WHERE node_id = ?",
                               (node_id,)).fetchone() is None
            conn.execute("INSERT OR REPLACE INTO nodes (node_id, data) VALUES (?, ?)",
                         (node_id, data))
            return new

        return await self._run(op)

    async def nodes(self) -> dict[str, dict[str, Any]]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT node_id, data FROM nodes").fetchall())
        return {node_id: json.loads(data) for node_id, data in rows}

    async def drop_node(self, node_id: str, seen_before: float | None = None) -> bool:
        def op(conn: sqlite3.Connection) -> bool:
            row = conn.execute("SELECT data FROM nodes WHERE node_id = ?", (node_id,)).fetchone()
            if row is None:
                return False
            if seen_before is not None and json.loads(row[0]).get("seen", 0) >= seen_before:
                return False
            conn.execute("DELETE FROM nodes WHERE node_id = ?", (node_id,))
            return True

        return await self._run(op)

    # -- cases -------------------------------------------------------------------------

    async def create_case(self, case: Case) -> None:
        data = _dumps(case.to_dict())

        def op(conn: sqlite3.Connection) -> None:
            try:
                conn.execute(
                    "INSERT INTO cases (receipt_no, session_id, state, submitted_at, data)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (case.receipt_no, case.session_id, case.state, case.submitted_at, data))
            except sqlite3.IntegrityError:
                raise Conflict(f"case {case.receipt_no} exists") from None

        await self._run(op)

    async def get_case(self, receipt_no: str) -> Case | None:
        row = await self._run(lambda conn: conn.execute(
            "SELECT data FROM cases WHERE receipt_no = ?", (receipt_no,)).fetchone())
        return Case.from_dict(json.loads(row[0])) if row else None

    async def update_case(
        self, receipt_no: str, changes: Mapping[str, Any], expect: Expect | None = None
    ) -> Case:
        changes = dict(changes)

        def op(conn: sqlite3.Connection) -> dict[str, Any]:
            case = _changed(conn, "cases", "receipt_no", receipt_no, changes, expect, "case")
            conn.execute(
                "UPDATE cases SET state = ?, submitted_at = ?, data = ? WHERE receipt_no = ?",
                (case["state"], case["submitted_at"], _dumps(case), receipt_no))
            return case

        return Case.from_dict(await self._run(op))

    async def cases(self, state: str) -> list[Case]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT data FROM cases WHERE state = ? ORDER BY submitted_at, receipt_no",
            (state,)).fetchall())
        return [Case.from_dict(json.loads(data)) for (data,) in rows]

    async def session_cases(self, session_id: str) -> list[Case]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT data FROM cases WHERE session_id = ? ORDER BY submitted_at, receipt_no",
            (session_id,)).fetchall())
        return [Case.from_dict(json.loads(data)) for (data,) in rows]

    # -- statistics and rate limits ----------------------------------------------------

    async def record_outcome(
        self, department_id: str, session_id: str, kind: str, wait_s: float, at: float
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO outcomes VALUES (?, ?, ?, ?, ?)",
                         (department_id, session_id, kind, wait_s, at))
            conn.execute("DELETE FROM outcomes WHERE department_id = ? AND at < ?",
                         (department_id, at - STATISTICS_RETENTION_S))

        await self._run(op)

    async def outcomes(self, department_id: str, since: float) -> list[Outcome]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT kind, wait_s, at FROM outcomes WHERE department_id = ? AND at > ?"
            " ORDER BY at", (department_id, since)).fetchall())
        return [Outcome(kind, wait_s, at) for kind, wait_s, at in rows]

    async def record_sample(
        self, department_id: str, minute: int, waiting: int, longest_wait_s: float
    ) -> None:
        def op(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO samples VALUES (?, ?, ?, ?)",
                         (department_id, minute, waiting, longest_wait_s))
            conn.execute("DELETE FROM samples WHERE department_id = ? AND minute < ?",
                         (department_id, minute - STATISTICS_RETENTION_S // 60))

        await self._run(op)

    async def samples(self, department_id: str, since_minute: int) -> list[dict[str, Any]]:
        rows = await self._run(lambda conn: conn.execute(
            "SELECT minute, waiting, longest_wait_s FROM samples"
            " WHERE department_id = ? AND minute >= ? ORDER BY minute",
            (department_id, since_minute)).fetchall())
        return [{"minute": m, "waiting": w, "longest_wait_s": lw} for m, w, lw in rows]

    async def hit(self, key: str, window_s: float, now: float) -> int:
        def op(conn: sqlite3.Connection) -> int:
            conn.execute("DELETE FROM hits WHERE expires <= ?", (now,))
            row = conn.execute("SELECT count FROM hits WHERE key = ?", (key,)).fetchone()
            if row is None:
                conn.execute("INSERT INTO hits VALUES (?, 1, ?)", (key, now + window_s))
                return 1
            conn.execute("UPDATE hits SET count = count + 1 WHERE key = ?", (key,))
            return row[0] + 1

        return await self._run(op)

    async def reset_hits(self, key: str) -> None:
        await self._run(lambda conn: conn.execute("DELETE FROM hits WHERE key = ?", (key,)))


def _changed(conn: sqlite3.Connection, table: str, key: str, value: str,
             changes: Mapping[str, Any], expect: Expect | None, what: str) -> dict[str, Any]:
    """The record with ``changes`` applied, if it exists (:class:`NotFound`) and meets
    ``expect`` (:class:`Conflict`); the caller writes it back in the same operation."""
    row = conn.execute(f"SELECT data FROM {table} WHERE {key} = ?", (value,)).fetchone()
    if row is None:
        raise NotFound(f"no {what} {value}")
    raw = json.loads(row[0])
    check_expect(raw, expect, f"{what} {value}")
    raw.update(changes)
    return raw


def _write_session(conn: sqlite3.Connection, raw: Mapping[str, Any]) -> None:
    conn.execute(
        "UPDATE sessions SET kiosk_id = ?, department_id = ?, state = ?, queue_score = ?,"
        " deadline = ?, data = ? WHERE id = ?", _session_row(raw))


def _write_presence(conn: sqlite3.Connection, raw: Mapping[str, Any]) -> None:
    conn.execute(
        "INSERT OR REPLACE INTO presence (state, idle_since, departments, data, staff_id)"
        " VALUES (?, ?, ?, ?, ?)", _presence_row(raw))


def _available(conn: sqlite3.Connection, department_id: str) -> list[str]:
    rows = conn.execute(
        "SELECT staff_id FROM presence WHERE state = 'available' AND EXISTS"
        " (SELECT 1 FROM json_each(presence.departments) WHERE value = ?)"
        " ORDER BY idle_since, staff_id", (department_id,)).fetchall()
    return [staff_id for (staff_id,) in rows]
