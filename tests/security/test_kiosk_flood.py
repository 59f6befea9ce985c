"""Finding 2: one kiosk made 94 sessions with 3 sockets × 40 concurrent ``call.request``,
and they outlived it (staff offered calls nobody would answer, and set away for it).
Now a kiosk has one live session, decided by the store; a session whose kiosk is away
is offered to no one, and ends with its grace period."""

from __future__ import annotations

import asyncio
import contextlib

from signaling.keys import SERVICES
from tests.harness import Client, running_server


async def test_a_flood_of_requests_from_one_kiosk_makes_one_session(tmp_path):
    async with running_server(tmp_path, kiosk_lost_grace_s=2.0) as server:
        sockets = [Client("/kiosk") for _ in range(3)]
        staff = Client("/staff")
        try:
            for kiosk in sockets:
                await kiosk.connect(server.url, server.kiosk_tokens["k1"])
            acks = await asyncio.gather(*(
                kiosk.call("call.request", {"service_id": "tax-enquiry"})
                for kiosk in sockets for _ in range(40)))
            made = {a["session_id"] for a in acks if a.get("ok")}
            assert len(made) == 1, made
            refused = [a for a in acks if not a.get("ok")]
            assert len(refused) == 119
            codes = [a["error"]["code"] for a in refused]
            # The kiosk's event budget is its own, not each socket's: 120 events at
            # once exceed its burst whichever socket they come on.
            assert set(codes) == {"conflict", "rate_limited"}, set(codes)
            (session_id,) = made
            assert all(session_id in a["error"]["message"] for a in refused
                       if a["error"]["code"] == "conflict")

            # The kiosk goes; a clerk becomes available during its grace period: no
            # offer for a caller who is not there, and the clerk stays available.
            for kiosk in sockets:
                await kiosk.close()
            await staff.connect(server.url, await server.login("alice"))
            assert (await staff.call("presence.set", {"state": "available"}))["ok"]
            router = server.app[SERVICES].router
            async with asyncio.timeout(10):  # the store has no event to wait on
                while (await router.store.get_session(session_id)).state != "abandoned":  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert not [e for e, _ in staff.events if e == "call.offer"]
            assert (await router.store.get_presence("alice")).state == "available"
            assert await router.store.kiosk_session("k1") is None
        finally:
            for client in (*sockets, staff):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(client.close(), 2)
