"""The embedded store is the system of record: a real ``smartcounter serve`` process on
the default store (SQLite under the data dir) is stopped with SIGTERM, or killed with
SIGKILL, and a new process on the same data dir finds everything it acknowledged.

Case A is lodged and approved, case B lodged and left undecided during a call that is
still connected; one kiosk waits in the queue and another waits and never comes back; a
staff account is locked out. After the restart: A prints by its receipt number with the
same jobs; B's document is served and B can be decided and printed; the connected call
is closed with ``server_restart`` in its trail; the waiting kiosk that comes back within
the grace period keeps its place, the other is abandoned and counted; the lockout and the
dashboard's counts are still there.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import aiohttp
import pytest

from sessions.accounts import AccountDirectory
from sessions.audit import AuditLog
from tests.harness import Client, ServeProcess, print_logs, run_cli
from tests.helpers import ASSETS

PASSWORDS = {"clerk": "clerk-password-1", "other": "other-password-1", "sup": "sup-password-1"}


def seed(data_dir: Path) -> dict[str, str]:
    accounts = AccountDirectory(data_dir)
    tokens = {k: accounts.add_kiosk(k, f"Site {k}")[1] for k in ("k1", "k2", "k3")}
    accounts.add_staff("clerk", PASSWORDS["clerk"], ["tax"], "staff", "Clerk")
    accounts.add_staff("other", PASSWORDS["other"], ["tax"], "staff", "Other")
    accounts.add_staff("sup", PASSWORDS["sup"], ["tax"], "supervisor", "Sup")
    return tokens


async def login(http: aiohttp.ClientSession, url: str, username: str,
                password: str | None = None) -> aiohttp.ClientResponse:
    async with http.post(f"{url}/api/v1/auth/login", json={
        "username": username, "password": password or PASSWORDS[username]}) as resp:
        await resp.read()
        return resp


async def token(http: aiohttp.ClientSession, url: str, username: str) -> str:
    async with http.post(f"{url}/api/v1/auth/login", json={
        "username": username, "password": PASSWORDS[username]}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["token"]


async def upload(http, url: str, kiosk_token: str, sid: str, data: bytes) -> dict:
    form = aiohttp.FormData()
    form.add_field("kind", "form")
    form.add_field("file", data, filename="form.jpg", content_type="image/jpeg")
    async with http.post(f"{url}/api/v1/sessions/{sid}/documents", data=form,
                         headers={"Authorization": f"Bearer {kiosk_token}"}) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return body


async def lookup(http, url: str, receipt_no: str) -> dict:
    async with http.post(f"{url}/api/v1/print/lookup", json={"receipt_no": receipt_no}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return body


async def connect_call(staff: Client, kiosk: Client) -> str:
    ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
    assert ack["ok"], ack
    sid = ack["session_id"]
    await staff.wait_for("call.offer", session_id=sid)
    assert (await staff.call("call.accept", {"session_id": sid}))["ok"]
    return sid


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
async def test_everything_acknowledged_is_there_after_a_restart(tmp_path, stop):
    data_dir = tmp_path / "data"
    kiosk_tokens = seed(data_dir)
    scan = (ASSETS / "obama.jpg").read_bytes()
    settings = {"SMARTCOUNTER_DRAIN_TIMEOUT_S": "1", "SMARTCOUNTER_KIOSK_GRACE_S": "8"}
    first = ServeProcess(data_dir, tmp_path / "first.log", **settings)
    second = ServeProcess(data_dir, tmp_path / "second.log", **settings)
    clients: list[Client] = []

    def client(namespace: str) -> Client:
        clients.append(Client(namespace))
        return clients[-1]

    try:
        await first.start()
        async with aiohttp.ClientSession() as http:
            staff, k1, k2, k3 = client("/staff"), client("/kiosk"), client("/kiosk"), client(
                "/kiosk")
            await staff.connect(first.url, await token(http, first.url, "clerk"))
            await staff.call("presence.set", {"state": "available"})
            for kiosk, kiosk_id in ((k1, "k1"), (k2, "k2"), (k3, "k3")):
                await kiosk.connect(first.url, kiosk_tokens[kiosk_id])

            # Case A: lodged and approved, its result printable.
            sid_a = await connect_call(staff, k1)
            await upload(http, first.url, kiosk_tokens["k1"], sid_a, scan)
            receipt_a = (await staff.call("case.submit", {"session_id": sid_a}))["receipt_no"]
            decided = await staff.call("case.decide", {"receipt_no": receipt_a,
                                                       "decision": "approved"})
            assert decided["ok"], decided
            before_a = await lookup(http, first.url, receipt_a)
            assert before_a["state"] == "approved" and before_a["jobs"]
            job = await staff.call("print.send", {"session_id": sid_a,
                                                  "document_id": before_a["jobs"][0][
                                                      "document_id"]})
            assert (await k1.call("print.done", {"job_id": job["job_id"],
                                                 "status": "printed"}))["ok"]
            assert (await staff.call("call.hangup", {"session_id": sid_a}))["ok"]
            assert (await staff.call("wrapup.done", {}))["ok"]
            await staff.call("presence.set", {"state": "available"})

            # Case B: lodged, undecided, its call still connected at the restart.
            sid_b = await connect_call(staff, k1)
            doc_b = await upload(http, first.url, kiosk_tokens["k1"], sid_b, scan)
            receipt_b = (await staff.call("case.submit", {"session_id": sid_b}))["receipt_no"]
            asked = await staff.call("signature.request", {
                "session_id": sid_b, "document_id": doc_b["document_id"], "title": "Form"})
            signed = await k1.call("signature.submit", {
                "request_id": asked["request_id"], "strokes": [[[0, 0], [10, 12]]]})
            assert signed["ok"], signed

            # Two callers waiting (the only clerk is busy); k3 will not come back.
            waiting = (await k2.call("call.request", {"service_id": "tax-enquiry"}))
            abandoning = (await k3.call("call.request", {"service_id": "tax-enquiry"}))
            assert waiting["position"] == 1 and abandoning["position"] == 2

            # An account locked out by failed sign-ins.
            for _ in range(5):
                assert (await login(http, first.url, "other", "wrong-password")).status == 401
            assert (await login(http, first.url, "other")).status != 200

            first.send(stop)
            code = await first.wait()
            assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL), first.log()
            for c in clients:  # their server is gone: no goodbye to wait for
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(c.close(), 0.5)
            clients.clear()

            await second.start()
            # The signature request is answered already: the kiosk cannot sign it again.
            k1 = client("/kiosk")
            await k1.connect(second.url, kiosk_tokens["k1"])
            again = await k1.call("signature.submit", {
                "request_id": asked["request_id"], "strokes": [[[1, 1], [2, 2]]]})
            assert again["error"]["code"] == "conflict", again
            # The caller who comes back within the grace period keeps their place.
            k2 = client("/kiosk")
            await k2.connect(second.url, kiosk_tokens["k2"])
            resumed = await k2.call("call.resume", {"session_id": waiting["session_id"]})
            assert resumed["ok"] and resumed["state"] == "queued", resumed
            assert resumed["position"] == 1, resumed

            # A: approved, the same jobs, its result still served.
            after_a = await lookup(http, second.url, receipt_a)
            assert after_a["state"] == "approved"
            assert [j["job_id"] for j in after_a["jobs"]] == [j["job_id"]
                                                               for j in before_a["jobs"]]
            async with http.get(second.url + after_a["jobs"][0]["url"]) as resp:
                assert resp.status == 200 and (await resp.read())[:4] == b"%PDF"

            # B: its document served, decided now, then printable.
            clerk = await token(http, second.url, "clerk")
            auth = {"Authorization": f"Bearer {clerk}"}
            async with http.get(f"{second.url}/api/v1/documents/{doc_b['document_id']}",
                                headers=auth) as resp:
                assert resp.status == 200 and await resp.read() == scan
            assert (await lookup(http, second.url, receipt_b))["state"] == "submitted"
            staff = client("/staff")
            await staff.connect(second.url, clerk)
            decided = await staff.call("case.decide", {"receipt_no": receipt_b,
                                                       "decision": "approved"})
            assert decided["ok"], decided
            after_b = await lookup(http, second.url, receipt_b)
            assert after_b["state"] == "approved" and after_b["jobs"]

            # The call that was connected is closed, and says why.
            async with http.get(f"{second.url}/api/v1/sessions/{sid_b}", headers=auth) as resp:
                session_b = await resp.json()
            assert (session_b["state"], session_b["end_reason"]) == ("closed", "server_restart")
            assert doc_b["document_id"] in [d["document_id"] for d in session_b["documents"]]

            # The lockout holds.
            assert (await login(http, second.url, "other")).status != 200

            # The caller who never came back is abandoned after the grace period, and
            # the dashboard counts it beside the two calls answered before the restart.
            supervisor = client("/supervisor")
            await supervisor.connect(second.url, await token(http, second.url, "sup"))
            assert (await supervisor.call("dashboard.subscribe", {}))["ok"]

            def tax(snapshot):
                return next(d for d in snapshot["departments"] if d["id"] == "tax")

            await supervisor.wait_for_match(
                "dashboard.snapshot",
                lambda snap: tax(snap)["abandoned"] == 1 and tax(snap)["answered"] == 2,
                timeout=20,
            )
        await second.stop()

        # Everything the trails say (print jobs and their status included) is in the store.
        checked = run_cli(data_dir, "store", "check")
        assert checked.returncode == 0, checked.stdout + checked.stderr
        audit = AuditLog(data_dir / "audit")
        for sid in (sid_a, sid_b, waiting["session_id"], abandoning["session_id"]):
            assert audit.verify_sync(sid).verified, sid
        trail_b = audit.read_sync(sid_b)
        closed = [e for e in trail_b if e["type"] == "session.closed"]
        assert [e["data"]["reason"] for e in closed] == ["server_restart"]
        trail_k3 = [e["type"] for e in audit.read_sync(abandoning["session_id"])]
        assert trail_k3[-2:] == ["kiosk.lost", "session.abandoned"]
    except BaseException:
        print_logs(first, second)
        raise
    finally:
        for c in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(c.close(), 5)
        await first.stop()
        await second.stop()
