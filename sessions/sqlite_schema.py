"""The embedded store's schema and its forward migrations.

The database records its version in ``schema_version`` (one row per migration applied,
with when). On open, every migration after the recorded version is applied in order, each
in its own transaction with its version row, so a crash mid-way leaves the database at
the previous version and the next start applies it again. A database whose version is
newer than this program knows refuses to open: an older release must not write into a
layout it does not understand (restore a backup, or run the newer release).

Records are JSON documents (``data``) beside the columns the queries need, so a new
field of a record needs no migration; a new query over records does.
"""

from __future__ import annotations

import sqlite3
import time

# Version 1: the layout of the first embedded store.
_V1 = """
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    department_id TEXT NOT NULL,
    state TEXT NOT NULL,
    queue_score REAL NOT NULL,
    deadline REAL,
    data TEXT NOT NULL
);
CREATE INDEX sessions_queue ON sessions (department_id, queue_score, id)
    WHERE state = 'queued';
CREATE INDEX sessions_live ON sessions (id) WHERE state IN ('queued', 'ringing', 'connected');
CREATE INDEX sessions_deadline ON sessions (deadline, id) WHERE deadline IS NOT NULL;

CREATE TABLE presence (
    staff_id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    idle_since REAL NOT NULL,
    departments TEXT NOT NULL,
    data TEXT NOT NULL
);

CREATE TABLE documents (
    seq INTEGER PRIMARY KEY,
    document_id TEXT NOT NULL UNIQUE,
    session_id TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX documents_session ON documents (session_id, seq);

CREATE TABLE verifications (session_id TEXT PRIMARY KEY, data TEXT NOT NULL);

CREATE TABLE records (
    kind TEXT NOT NULL,
    record_id TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, record_id)
);

CREATE TABLE nodes (node_id TEXT PRIMARY KEY, data TEXT NOT NULL);

CREATE TABLE cases (
    receipt_no TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    state TEXT NOT NULL,
    submitted_at REAL NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX cases_state ON cases (state, submitted_at, receipt_no);
CREATE INDEX cases_session ON cases (session_id);

CREATE TABLE outcomes (
    department_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    wait_s REAL NOT NULL,
    at REAL NOT NULL,
    PRIMARY KEY (department_id, session_id, kind)
);
CREATE INDEX outcomes_at ON outcomes (department_id, at);

CREATE TABLE samples (
    department_id TEXT NOT NULL,
    minute INTEGER NOT NULL,
    waiting INTEGER NOT NULL,
    longest_wait_s REAL NOT NULL,
    PRIMARY KEY (department_id, minute)
);

CREATE TABLE hits (key TEXT PRIMARY KEY, count INTEGER NOT NULL, expires REAL NOT NULL);
"""

# Version 2: rate-limit counters are swept by expiry on every hit; index it.
_V2 = """
CREATE INDEX hits_expires ON hits (expires);
"""

# Version 3: a kiosk has one live session at most, checked on its own index.
_V3 = """
ALTER TABLE sessions ADD COLUMN kiosk_id TEXT;
UPDATE sessions SET kiosk_id = json_extract(data, '$.kiosk_id') WHERE json_valid(data);
CREATE INDEX sessions_kiosk_live ON sessions (kiosk_id)
    WHERE state IN ('queued', 'ringing', 'connected');
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3)
VERSION = len(MIGRATIONS)


class SchemaError(RuntimeError):
    """The database cannot be used by this program (a newer schema, or not ours)."""


def current_version(conn: sqlite3.Connection) -> int:
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if not exists:
        if conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
            raise SchemaError("the file is an SQLite database but not a Smart Counter store")
        return 0
    return conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]


def migrate(conn: sqlite3.Connection, target: int = VERSION, upgrade: bool = True) -> list[int]:
    """Bring the database (a connection in autocommit mode) to ``target``; returns the
    versions applied. Each step re-reads the version inside its write transaction, so
    two processes opening one store at once apply each migration once. Without
    ``upgrade`` (a connection beside a server that may be an older release) only a new,
    empty database is set up; an older one is refused."""
    version = current_version(conn)
    if version and version < target and not upgrade:
        raise SchemaError(
            f"the store's schema is version {version}; this release uses {VERSION}: start "
            "the server of this release once (it upgrades the store), then run this again")
    if version > VERSION:
        raise SchemaError(
            f"the store's schema is version {version}, newer than this release knows "
            f"({VERSION}): it was written by a newer Smart Counter. Run that release, or "
            "restore a backup made by this one."
        )
    applied = []
    for number in range(version + 1, target + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if current_version(conn) >= number:  # another process applied it meanwhile
                conn.execute("COMMIT")
                continue
            if number == 1:
                conn.execute(
                    "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, "
                    "applied_at REAL NOT NULL)"
                )
            for statement in _statements(MIGRATIONS[number - 1]):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (number, time.time()))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        applied.append(number)
    return applied


def _statements(script: str) -> list[str]:
    """A migration's statements (executescript would commit the open transaction)."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    return statements
