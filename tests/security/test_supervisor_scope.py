"""Finding 8: a supervisor of tax read housing's sessions, audit trails, calls and cases,
and could monitor its calls. A supervisor's scope is their departments, everywhere."""

from __future__ import annotations

import contextlib

import aiohttp

from sessions.accounts import AccountDirectory
from tests.harness import Client, running_server


async def test_a_supervisor_of_tax_sees_nothing_of_housing(tmp_path):
    AccountDirectory(tmp_path).add_staff("taxsup", "pw-taxsup-123", ["tax"], "supervisor",
                                         "Tax Supervisor")
    async with running_server(tmp_path) as server:
        server.passwords["taxsup"] = "pw-taxsup-123"
        hana, kiosk, sup = Client("/staff"), Client("/kiosk"), Client("/supervisor")
        try:
            await hana.connect(server.url, await server.login("hana"))
            await hana.call("presence.set", {"state": "available"})
            await kiosk.connect(server.url, server.kiosk_tokens["k1"])
            ack = await kiosk.call("call.request", {"service_id": "property-record-enquiry"})
            sid = ack["session_id"]
            await hana.wait_for("call.offer", session_id=sid)
            assert (await hana.call("call.accept", {"session_id": sid}))["ok"]
            receipt_no = (await hana.call("case.submit", {"session_id": sid}))["receipt_no"]

            token = await server.login("taxsup")
            auth = {"Authorization": f"Bearer {token}"}
            async with aiohttp.ClientSession() as http:
                for path in (f"/api/v1/sessions/{sid}", f"/api/v1/sessions/{sid}/audit",
                             f"/api/v1/sessions/{sid}/recordings",
                             f"/api/v1/cases/{receipt_no}"):
                    async with http.get(server.url + path, headers=auth) as resp:
                        assert resp.status == 403, (path, resp.status)
                async with http.get(f"{server.url}/api/v1/calls", headers=auth) as resp:
                    assert (await resp.json())["calls"] == []
                async with http.get(f"{server.url}/api/v1/cases?state=submitted",
                                    headers=auth) as resp:
                    assert (await resp.json())["cases"] == []
                # The supervisor of both departments still sees it.
                both = {"Authorization": f"Bearer {await server.login('sup')}"}
                async with http.get(f"{server.url}/api/v1/sessions/{sid}/audit",
                                    headers=both) as resp:
                    assert resp.status == 200

            await sup.connect(server.url, token)
            refused = await sup.call("monitor.start", {"session_id": sid, "mode": "silent"})
            assert refused["error"]["code"] == "forbidden"
            moved = await sup.call("call.reassign", {"session_id": sid, "department_id": "tax"})
            assert moved["error"]["code"] == "forbidden"
            assert (await sup.call("dashboard.subscribe", {}))["ok"]
            snapshot = await sup.wait_for("dashboard.snapshot")
            assert [d["id"] for d in snapshot["departments"]] == ["tax"]
            assert snapshot["calls"] == []
            assert all("tax" in a["departments"] for a in snapshot["agents"])
        finally:
            for client in (hana, kiosk, sup):
                with contextlib.suppress(Exception):
                    await client.close()
