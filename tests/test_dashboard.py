"""The supervisors' live dashboard and reassignment through a real server."""

from __future__ import annotations

import contextlib
import time

from tests.harness import Client, running_server


async def supervisor(server, stack) -> Client:
    client = Client("/supervisor")
    stack.push_async_callback(client.close)
    await client.connect(server.url, await server.login("sup"))
    return client


def department(snapshot: dict, department_id: str) -> dict:
    return next(d for d in snapshot["departments"] if d["id"] == department_id)


async def test_dashboard_follows_the_queue_and_the_call_live(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        sup = await supervisor(server, stack)
        assert await sup.call("dashboard.subscribe", {}) == {"ok": True}
        first = await sup.wait_for("dashboard.snapshot")
        assert department(first, "tax")["waiting"] == 0
        assert first["target_s"] == 60.0
        assert "departments" in await sup.wait_for("dashboard.history")

        staff = Client("/staff")
        stack.push_async_callback(staff.close)
        await staff.connect(server.url, await server.login("alice"))
        kiosk = Client("/kiosk")
        stack.push_async_callback(kiosk.close)
        await kiosk.connect(server.url, server.kiosk_tokens["k1"])
        asked = time.monotonic()
        sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]

        def waiting(snapshot) -> bool:
            return department(snapshot, "tax")["waiting"] == 1

        seen = await sup.wait_for_match("dashboard.snapshot", waiting, timeout=3)
        assert time.monotonic() - asked < 1.5  # pushed within a second or so
        assert [c["session_id"] for c in seen["calls"]] == [sid]
        assert seen["calls"][0]["state"] == "queued"

        await staff.call("presence.set", {"state": "available"})
        await staff.wait_for("call.offer", session_id=sid)
        assert (await staff.call("call.accept", {"session_id": sid}))["ok"]

        def answered(snapshot) -> bool:
            tax = department(snapshot, "tax")
            return tax["answered"] == 1 and snapshot["calls"][0]["state"] == "connected"

        seen = await sup.wait_for_match("dashboard.snapshot", answered, timeout=3)
        tax = department(seen, "tax")
        assert tax["waiting"] == 0 and tax["service_level"] == 1.0 and tax["agents"]["busy"] == 1
        assert seen["agents"][0]["staff_id"] == "alice" and seen["agents"][0]["state"] == "busy"


async def test_reassign_over_the_socket_and_who_may(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        sup = await supervisor(server, stack)
        kiosk = Client("/kiosk")
        stack.push_async_callback(kiosk.close)
        await kiosk.connect(server.url, server.kiosk_tokens["k1"])
        sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
        hana = Client("/staff")
        stack.push_async_callback(hana.close)
        await hana.connect(server.url, await server.login("hana"))
        await hana.call("presence.set", {"state": "available"})
        ack = await sup.call("call.reassign", {"session_id": sid, "department_id": "housing",
                                               "staff_id": "hana"})
        assert ack == {"ok": True, "state": "ringing", "department_id": "housing",
                       "offered_to": "hana"}
        offer = await hana.wait_for("call.offer", session_id=sid)
        assert offer["department_id"] == "housing"
        ack = await sup.call("call.reassign", {"session_id": sid})
        assert ack["error"]["code"] == "bad_request"
        ack = await sup.call("call.reassign", {"session_id": "nope", "department_id": "tax"})
        assert ack["error"]["code"] == "not_found"
        # Staff and kiosks have no such event.
        assert (await hana.call("call.reassign", {"session_id": sid, "department_id": "tax"}))[
            "error"]["code"] == "bad_request"
        assert (await hana.call("dashboard.subscribe", {}))["error"]["code"] == "bad_request"
