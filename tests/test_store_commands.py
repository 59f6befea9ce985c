"""The store as a projection of the audit trails, with real processes: the store deleted
and rebuilt from the trails (every receipt printable again, with the same print jobs),
and a backup taken while serving, restored, and topped up from the trails."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import aiohttp

from sessions.records import CaseState
from sessions.sqlite_store import SQLiteStore
from tests.harness import Client, ServeProcess, print_logs, run_cli
from tests.test_restart import ASSETS, connect_call, lookup, seed, token, upload


async def snapshot(data_dir: Path) -> dict:
    """What the embedded store holds of the cases, documents and ended sessions, and the
    tax department's outcomes (kind, wait)."""
    store = SQLiteStore(data_dir / "store.sqlite3", exclusive=False)
    try:
        cases = [c for state in CaseState for c in await store.cases(state)]
        sids = sorted({c.session_id for c in cases})
        sessions = {}
        for sid in sids:
            s = await store.get_session(sid)
            sessions[sid] = (s.state, s.end_reason, s.kiosk_id, s.department_id,
                             s.service_id, s.staff_id, s.staff_display_name)
        return {
            "cases": sorted(cases, key=lambda c: c.receipt_no),
            "documents": [d for sid in sids for d in await store.session_documents(sid)],
            "sessions": sessions,
            "outcomes": [(o.kind, o.wait_s) for o in await store.outcomes("tax", 0)],
        }
    finally:
        await store.close()


def delete_store(data_dir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"store.sqlite3{suffix}").unlink(missing_ok=True)


async def lodge(staff: Client, kiosk: Client, http, url: str, kiosk_token: str,
                decide: str | None = None, with_result: bool = False) -> str:
    """One call: a scan, the application lodged, maybe decided (with the scan as the
    result document, or the generated letter), a print sent and printed; hung up."""
    sid = await connect_call(staff, kiosk)
    scan = await upload(http, url, kiosk_token, sid, (ASSETS / "obama.jpg").read_bytes())
    receipt_no = (await staff.call("case.submit", {"session_id": sid}))["receipt_no"]
    if decide:
        body = {"receipt_no": receipt_no, "decision": decide}
        if with_result:
            body["result_document_ids"] = [scan["document_id"]]
        if decide == "rejected":
            body["reason"] = "missing proof of address"
        assert (await staff.call("case.decide", body))["ok"]
    job = await staff.call("print.send", {"session_id": sid, "document_id": scan["document_id"]})
    assert job["ok"], job
    printed = await kiosk.call("print.done", {"job_id": job["job_id"], "status": "printed"})
    assert printed["ok"], printed
    assert (await staff.call("call.hangup", {"session_id": sid}))["ok"]
    assert (await staff.call("wrapup.done", {}))["ok"]
    assert (await staff.call("presence.set", {"state": "available"}))["ok"]
    return receipt_no


@contextlib.asynccontextmanager
async def clerk_and_kiosk(http, url: str, kiosk_token: str):
    staff, kiosk = Client("/staff"), Client("/kiosk")
    try:
        await staff.connect(url, await token(http, url, "clerk"))
        await staff.call("presence.set", {"state": "available"})
        await kiosk.connect(url, kiosk_token)
        yield staff, kiosk
    finally:
        for c in (staff, kiosk):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 2)


async def test_the_store_deleted_and_rebuilt_from_the_trails_prints_every_receipt(tmp_path):
    data_dir = tmp_path / "data"
    kiosk_token = seed(data_dir)["k1"]
    first = ServeProcess(data_dir, tmp_path / "first.log")
    second = ServeProcess(data_dir, tmp_path / "second.log")
    try:
        await first.start()
        async with aiohttp.ClientSession() as http:
            async with clerk_and_kiosk(http, first.url, kiosk_token) as (staff, kiosk):
                letter = await lodge(staff, kiosk, http, first.url, kiosk_token, "approved")
                result = await lodge(staff, kiosk, http, first.url, kiosk_token, "approved",
                                     with_result=True)
                pending = await lodge(staff, kiosk, http, first.url, kiosk_token)
            before = {r: await lookup(http, first.url, r) for r in (letter, result)}
        await first.stop()
        original = await snapshot(data_dir)

        delete_store(data_dir)
        warned = ServeProcess(data_dir, tmp_path / "warned.log")
        try:  # a server on a lost store says so, loudly
            await warned.start()
        finally:
            await warned.stop()
        assert "holds no sessions but" in warned.log()
        assert "smartcounter store rebuild" in warned.log()
        checked = run_cli(data_dir, "store", "check")
        assert checked.returncode == 1, checked.stderr
        for receipt_no in (letter, result, pending):
            assert f"case {receipt_no} of session" in checked.stdout
        rebuilt = run_cli(data_dir, "store", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert ("3 sessions, 0 sessions ended as their trails end them, 4 documents, 3 cases, "
                "2 decisions, 3 print jobs sent during "
                "calls") in rebuilt.stdout
        again = run_cli(data_dir, "store", "check")
        assert again.returncode == 0, again.stdout
        assert "0 difference(s)" in again.stdout
        rebuilt_records = await snapshot(data_dir)
        for what in ("cases", "documents", "sessions"):
            assert rebuilt_records[what] == original[what], what
        assert [k for k, _ in rebuilt_records["outcomes"]] == [
            k for k, _ in original["outcomes"]]
        for (_, rebuilt_wait), (_, wait) in zip(rebuilt_records["outcomes"],
                                                original["outcomes"], strict=True):
            assert abs(rebuilt_wait - wait) < 0.01  # the trail keeps the wait to the ms

        await second.start()
        async with aiohttp.ClientSession() as http:
            for receipt_no, was in before.items():
                now = await lookup(http, second.url, receipt_no)
                assert now["state"] == "approved"
                assert [(j["job_id"], j["document_id"]) for j in now["jobs"]] == [
                    (j["job_id"], j["document_id"]) for j in was["jobs"]]
                async with http.get(second.url + now["jobs"][0]["url"]) as resp:
                    assert resp.status == 200, await resp.text()
            async with clerk_and_kiosk(http, second.url, kiosk_token) as (staff, _):
                decided = await staff.call("case.decide", {"receipt_no": pending,
                                                           "decision": "approved"})
                assert decided["ok"], decided
            printable = await lookup(http, second.url, pending)
            assert printable["state"] == "approved" and printable["jobs"]
    except BaseException:
        print_logs(first, second)
        raise
    finally:
        await first.stop()
        await second.stop()


async def test_a_backup_taken_while_serving_restores_and_the_trails_top_it_up(tmp_path):
    data_dir = tmp_path / "data"
    kiosk_token = seed(data_dir)["k1"]
    server = ServeProcess(data_dir, tmp_path / "server.log")
    restored = ServeProcess(data_dir, tmp_path / "restored.log")
    backup = tmp_path / "backups" / "store.sqlite3"
    backup.parent.mkdir()
    try:
        await server.start()
        async with aiohttp.ClientSession() as http:
            async with clerk_and_kiosk(http, server.url, kiosk_token) as (staff, kiosk):
                kept = await lodge(staff, kiosk, http, server.url, kiosk_token, "approved")
                mid_call = await connect_call(staff, kiosk)  # in progress at the backup
                taken = run_cli(data_dir, "backup", str(backup))
                assert taken.returncode == 0, taken.stderr
                assert "1 cases" in taken.stdout
                during = (await staff.call("case.submit", {"session_id": mid_call}))[
                    "receipt_no"]
                assert (await staff.call("call.hangup", {"session_id": mid_call}))["ok"]
                assert (await staff.call("wrapup.done", {}))["ok"]
                assert (await staff.call("presence.set", {"state": "available"}))["ok"]
                later = await lodge(staff, kiosk, http, server.url, kiosk_token)  # its next
        await server.stop()

        # The README's restore steps: the copy in place of the store, then the trails.
        delete_store(data_dir)
        (data_dir / "store.sqlite3").write_bytes(backup.read_bytes())
        checked = run_cli(data_dir, "store", "check")
        assert checked.returncode == 1
        assert f"case {later} of session" in checked.stdout
        assert f"session {mid_call} is closed in its trail but connected" in checked.stdout
        assert f"case {kept} " not in checked.stdout
        rebuilt = run_cli(data_dir, "store", "rebuild")
        assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
        assert "1 sessions ended as their trails end them" in rebuilt.stdout
        again = run_cli(data_dir, "store", "check")
        assert again.returncode == 0, again.stdout

        await restored.start()
        async with aiohttp.ClientSession() as http:
            assert (await lookup(http, restored.url, kept))["state"] == "approved"
            assert (await lookup(http, restored.url, during))["state"] == "submitted"
            assert (await lookup(http, restored.url, later))["state"] == "submitted"
        assert "0 call(s) in progress closed" in restored.log()  # none was left live
    except BaseException:
        print_logs(server, restored)
        raise
    finally:
        await server.stop()
        await restored.stop()


async def test_rebuild_refuses_to_run_beside_a_server(tmp_path):
    data_dir = tmp_path / "data"
    seed(data_dir)
    server = ServeProcess(data_dir, tmp_path / "server.log")
    try:
        await server.start()
        refused = run_cli(data_dir, "store", "rebuild")
        assert refused.returncode == 2
        assert "another smartcounter process" in refused.stderr
    finally:
        await server.stop()


def test_check_and_rebuild_refuse_a_data_dir_with_nothing_in_it(tmp_path):
    for command in ("check", "rebuild"):
        done = run_cli(tmp_path / "nowhere", "store", command)
        assert done.returncode == 2
        assert "nothing to compare" in done.stderr and "--data-dir" in done.stderr
    assert not (tmp_path / "nowhere").exists()


async def test_a_backup_into_a_directory_not_there_yet_makes_it(tmp_path):
    data_dir = tmp_path / "data"
    store = SQLiteStore(data_dir / "store.sqlite3")
    await store.close()
    done = run_cli(data_dir, "backup", f"{tmp_path}/backups/daily/")
    assert done.returncode == 0, done.stderr
    made = list((tmp_path / "backups" / "daily").iterdir())
    assert len(made) == 1 and made[0].name.startswith("store-"), made
    again = run_cli(data_dir, "backup", str(made[0]))
    assert "replacing the file there" in again.stdout


async def test_a_memory_store_server_is_refused_beside_another_server(tmp_path):
    data_dir = tmp_path / "data"
    seed(data_dir)
    server = ServeProcess(data_dir, tmp_path / "server.log")
    try:
        await server.start()
        second = ServeProcess(data_dir, tmp_path / "second.log", SMARTCOUNTER_STORE="memory")
        try:
            await second.start()
        except AssertionError:
            pass  # it exited, as it should
        else:
            raise AssertionError("a second server started on the same data dir")
        finally:
            await second.stop()
        assert f"(pid {server.proc.pid})" in second.log()
    finally:
        await server.stop()
