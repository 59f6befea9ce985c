"""Two nodes on one Redis: a kiosk on node A and a staff member on node B are routed to
each other (socket.io's Redis manager carries events across), and a supervisor on B
sees A's queue."""

from __future__ import annotations

import contextlib

from tests.harness import Client, running_server


def department(snapshot: dict, department_id: str) -> dict:
    return next(d for d in snapshot["departments"] if d["id"] == department_id)


async def test_a_kiosk_on_one_node_reaches_staff_on_another(tmp_path, redis_prefix):
    from tests.conftest import REDIS_URL

    shared = tmp_path / "shared"  # the data directory all nodes share
    async with contextlib.AsyncExitStack() as stack:
        node_a = await stack.enter_async_context(
            running_server(shared, REDIS_URL, redis_prefix))
        node_b = await stack.enter_async_context(
            running_server(shared, REDIS_URL, redis_prefix, seed_accounts=False))
        kiosk, staff, sup = Client("/kiosk"), Client("/staff"), Client("/supervisor")
        for client in (kiosk, staff, sup):
            stack.push_async_callback(client.close)
        await kiosk.connect(node_a.url, node_a.kiosk_tokens["k1"])
        await staff.connect(node_b.url, await node_a.login("alice"))
        await sup.connect(node_b.url, await node_a.login("sup"))
        await sup.call("dashboard.subscribe", {})

        sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
        seen = await sup.wait_for_match(
            "dashboard.snapshot", lambda s: department(s, "tax")["waiting"] == 1, timeout=5)
        assert [c["session_id"] for c in seen["calls"]] == [sid]

        await staff.call("presence.set", {"state": "available"})
        offer = await staff.wait_for("call.offer", session_id=sid)  # from node A's router
        assert offer["kiosk"]["id"] == "k1"
        assert (await staff.call("call.accept", {"session_id": sid}))["ok"]
        connected = await kiosk.wait_for("call.connected", session_id=sid)  # from node B
        assert connected["staff"]["display_name"] == "Alice"
        assert (await kiosk.call("call.hangup", {"session_id": sid}))["ok"]
        assert (await staff.wait_for("call.ended", session_id=sid))["reason"] == "hangup"
        # Each node sends its own subscribers their snapshot: no duplicates arrive.
        await sup.wait_for_match(
            "dashboard.snapshot", lambda s: department(s, "tax")["answered"] == 1, timeout=5)
