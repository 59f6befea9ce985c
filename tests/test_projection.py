"""The store as a projection of the trails, on a running server: what races leave in the
trails is what the store has."""

from __future__ import annotations

import asyncio
import contextlib

from sessions.projection import check
from signaling.keys import SERVICES
from tests.harness import Client, running_server


async def test_two_decisions_at_once_leave_one_in_the_trail(tmp_path):
    async with running_server(tmp_path) as server:
        alice, bob, kiosk = Client("/staff"), Client("/staff"), Client("/kiosk")
        try:
            await alice.connect(server.url, await server.login("alice"))
            await bob.connect(server.url, await server.login("bob"))
            await alice.call("presence.set", {"state": "available"})
            await kiosk.connect(server.url, server.kiosk_tokens["k1"])
            sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
            await alice.wait_for("call.offer", session_id=sid)
            assert (await alice.call("call.accept", {"session_id": sid}))["ok"]
            receipt_no = (await alice.call("case.submit", {"session_id": sid}))["receipt_no"]
            acks = await asyncio.gather(
                alice.call("case.decide", {"receipt_no": receipt_no, "decision": "approved"}),
                bob.call("case.decide", {"receipt_no": receipt_no, "decision": "rejected",
                                         "reason": "no proof of address"}))
            assert sorted(bool(a.get("ok")) for a in acks) == [False, True], acks
            services = server.app[SERVICES]
            trail = await services.router.audit.read(sid)
            decided = [e["data"]["decision"] for e in trail if e["type"] == "case.decided"]
            assert decided == [(await services.store.get_case(receipt_no)).state]
            report = await check(services.store, [sid], services.router.audit.read_sync,
                                 lambda sha256, content_type: 1)
            assert report.differences == []
        finally:
            for client in (alice, bob, kiosk):
                with contextlib.suppress(Exception):
                    await client.close()
