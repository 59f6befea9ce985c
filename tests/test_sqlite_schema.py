"""The embedded store's schema: forward migrations from the previous version, a newer
database refused with a clear message, one writer per store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from sessions.sqlite_schema import VERSION, SchemaError, current_version, migrate
from sessions.sqlite_store import SQLiteStore, StoreLocked, connect


def previous_schema_database(path) -> None:
    """A store as the previous release left it: its schema, and records written by it."""
    conn = connect(path)
    migrate(conn, target=VERSION - 1)
    case = {"receipt_no": "SC-00000-00000-0", "session_id": "s1", "state": "submitted",
            "submitted_at": 10.0, "documents": [], "decision": None, "result_document_ids": []}
    conn.execute("INSERT INTO cases VALUES (?, ?, ?, ?, ?)",
                 (case["receipt_no"], "s1", "submitted", 10.0, json.dumps(case)))
    conn.execute("INSERT INTO hits VALUES ('login:ann', 3, 9e12)")
    conn.execute("INSERT INTO records VALUES ('login_lock', 'bob', ?)",
                 (json.dumps({"until": 9e12}),))
    conn.close()


async def test_a_database_of_the_previous_schema_is_migrated_and_keeps_its_records(tmp_path):
    path = tmp_path / "store.sqlite3"
    previous_schema_database(path)
    store = SQLiteStore(path)
    try:
        assert (await store.get_case("SC-00000-00000-0"))["state"] == "submitted"
        assert [c["receipt_no"] for c in await store.cases("submitted")] == ["SC-00000-00000-0"]
        assert await store.get_record("login_lock", "bob") == {"until": 9e12}
        assert await store.hit("login:ann", 60, 1000.0) == 4  # the old count goes on
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert current_version(conn) == VERSION
    indexes = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "hits_expires" in indexes  # what version 2 added
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY 1")]
    assert versions == list(range(1, VERSION + 1))
    conn.close()


def test_a_database_of_a_newer_schema_is_refused(tmp_path):
    path = tmp_path / "store.sqlite3"
    conn = connect(path)
    migrate(conn)
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (VERSION + 1,))
    conn.close()
    with pytest.raises(SchemaError, match="newer"):
        SQLiteStore(path)
    done = subprocess.run(
        [sys.executable, "-m", "smartcounter.cli", "store", "check", "--data-dir",
         str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert f"version {VERSION + 1}, newer than this release knows" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    path = tmp_path / "store.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE something_else (x)")
    conn.close()
    with pytest.raises(SchemaError, match="not a Smart Counter store"):
        SQLiteStore(path)


async def test_one_writer_per_store(tmp_path):
    path = tmp_path / "store.sqlite3"
    first = SQLiteStore(path)
    try:
        with pytest.raises(StoreLocked, match="another smartcounter process"):
            SQLiteStore(path)
        reader = SQLiteStore(path, exclusive=False)  # `store check` beside a server
        await reader.ping()
        await reader.close()
    finally:
        await first.close()
    second = SQLiteStore(path)  # the lock went with the first
    await second.close()
