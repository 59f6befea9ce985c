"""The embedded store beyond the contract: what it wrote is there after reopening, its
schema migrates forward from the previous version, a newer database is refused with a
clear message, and one process writes a store."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from sessions.errors import Conflict
from sessions.sqlite_schema import VERSION, SchemaError, current_version, migrate
from sessions.sqlite_store import SQLiteStore, StoreLocked, StoreUnavailable, connect
from tests.helpers import make_session


def previous_schema_database(path) -> None:
    """A store as the previous release left it: its schema, and records written by it."""
    conn = connect(path)
    migrate(conn, target=VERSION - 1)
    case = {"receipt_no": "SC-00000-00000-0", "session_id": "s1", "kiosk_id": "k1",
            "department_id": "tax", "service_id": "tax-enquiry", "staff_id": "alice",
            "state": "submitted", "submitted_at": 10.0, "documents": [], "decision": None,
            "result_document_ids": []}
    conn.execute("INSERT INTO cases VALUES (?, ?, ?, ?, ?)",
                 (case["receipt_no"], "s1", "submitted", 10.0, json.dumps(case)))
    session = make_session("old", kiosk_id="k7", score=3.0)
    conn.execute("INSERT INTO sessions (id, department_id, state, queue_score, deadline, data)"
                 " VALUES (?, ?, ?, ?, ?, ?)", (session.id, session.department_id,
                                                session.state, 3.0, None,
                                                json.dumps(session.to_dict())))
    conn.execute("INSERT INTO hits VALUES ('login:ann', 3, 9e12)")
    conn.execute("INSERT INTO records VALUES ('login_lock', 'bob', ?)",
                 (json.dumps({"until": 9e12}),))
    conn.close()


async def test_a_database_of_the_previous_schema_is_migrated_and_keeps_its_records(tmp_path):
    path = tmp_path / "store.sqlite3"
    previous_schema_database(path)
    store = SQLiteStore(path)
    try:
        case = await store.get_case("SC-00000-00000-0")
        assert (case.state, case.session_id, case.decision) == ("submitted", "s1", None)
        assert [c.receipt_no for c in await store.cases("submitted")] == ["SC-00000-00000-0"]
        assert await store.get_record("login_lock", "bob") == {"until": 9e12}
        assert await store.hit("login:ann", 60, 1000.0) == 4  # the old count goes on
        # Version 3 knows each session's kiosk: the old session is the kiosk's live one.
        assert (await store.kiosk_session("k7")).id == "old"
        assert await store.queue("tax") == ["old"]
        with pytest.raises(Conflict, match="already in session old"):
            await store.create_session(make_session("new", kiosk_id="k7"))
    finally:
        await store.close()
    conn = sqlite3.connect(path)
    assert current_version(conn) == VERSION
    indexes = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert {"hits_expires", "sessions_kiosk_live"} <= indexes  # what versions 2, 3 added
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


async def test_everything_written_is_there_after_reopening(tmp_path):
    """Each concern's records outlive the store object (the server process)."""
    from sessions.presence import Presence
    from sessions.records import Case, Document
    from tests.helpers import make_case, make_document

    path = tmp_path / "store.sqlite3"
    store = SQLiteStore(path)
    await store.create_session(make_session("a", score=5.0))
    await store.put_presence(Presence("ann", "Ann", ["tax"], "available", 1.0, 1.0))
    await store.add_document(make_document("d1", session_id="a"))
    await store.put_verification("a", {"status": "passed", "match": {"score": 0.7}})
    await store.put_record("print_job", "job_1", {"job_id": "job_1", "status": "printed"})
    await store.beat_node("n1", {"seen": 3.0})
    await store.create_case(make_case("R-1", 7.0, session_id="a"))
    await store.record_outcome("tax", "a", "answered", 4.0, 8.0)
    await store.record_sample("tax", 60, 3, 12.5)
    await store.hit("login:ann", 900, 9.0)
    await store.close()

    again = SQLiteStore(path)
    try:
        assert await again.get_session("a") == make_session("a", score=5.0)
        assert await again.queue("tax") == ["a"]
        assert (await again.get_presence("ann")).state == "available"
        assert await again.available_staff("tax") == ["ann"]
        assert isinstance(await again.get_document("d1"), Document)
        assert [d.document_id for d in await again.session_documents("a")] == ["d1"]
        assert (await again.get_verification("a"))["match"]["score"] == 0.7
        assert (await again.get_record("print_job", "job_1"))["status"] == "printed"
        assert (await again.nodes())["n1"]["seen"] == 3.0
        assert await again.get_case("R-1") == make_case("R-1", 7.0, session_id="a")
        assert isinstance((await again.cases("submitted"))[0], Case)
        assert [(o.kind, o.wait_s) for o in await again.outcomes("tax", 0)] == [("answered", 4.0)]
        assert await again.samples("tax", 0) == [{"minute": 60, "waiting": 3,
                                                  "longest_wait_s": 12.5}]
        assert await again.hit("login:ann", 900, 10.0) == 2
    finally:
        await again.close()


def test_two_processes_migrating_one_store_at_once_apply_each_step_once(tmp_path):
    import threading

    for trial in range(5):
        path = tmp_path / f"store-{trial}.sqlite3"
        conn = connect(path)
        migrate(conn, target=VERSION - 1)
        conn.close()
        barrier, errors = threading.Barrier(2), []

        def open_it(path=path, barrier=barrier, errors=errors):
            conn = connect(path)
            barrier.wait()
            try:
                migrate(conn)
            except Exception as exc:
                errors.append(exc)
            finally:
                conn.close()

        threads = [threading.Thread(target=open_it) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        conn = connect(path)
        assert current_version(conn) == VERSION
        conn.close()


async def test_a_reader_beside_a_server_does_not_upgrade_an_older_store(tmp_path):
    path = tmp_path / "store.sqlite3"
    conn = connect(path)
    migrate(conn, target=VERSION - 1)
    conn.close()
    with pytest.raises(SchemaError, match="start the server of this release once"):
        SQLiteStore(path, exclusive=False)


async def test_an_operation_that_is_interrupted_fails_alone(tmp_path):
    store = SQLiteStore(tmp_path / "store.sqlite3")
    try:
        def interrupted(conn):
            raise KeyboardInterrupt

        with pytest.raises(StoreUnavailable, match="interrupted"):
            await store._run(interrupted)
        await store.ping()  # the writer thread lives on
        await store.create_session(make_session("after"))
        assert (await store.get_session("after")) is not None
    finally:
        await store.close()
