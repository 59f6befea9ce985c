"""The store as a projection of the trails, on a running server: what races leave in the
trails is what the store has."""

from __future__ import annotations

import asyncio
import contextlib

from sessions.projection import check
from signaling.keys import NODE, SERVICES
from tests.harness import Client, running_server
from tests.helpers import open_call


async def test_two_decisions_at_once_leave_one_in_the_trail(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        _kiosk, alice, sid = await open_call(server, stack)
        bob = Client("/staff")
        stack.push_async_callback(bob.close)
        await bob.connect(server.url, await server.login("bob"))
        receipt_no = (await alice.call("case.submit", {"session_id": sid}))["receipt_no"]
        acks = await asyncio.gather(
            alice.call("case.decide", {"receipt_no": receipt_no, "decision": "approved"}),
            bob.call("case.decide", {"receipt_no": receipt_no, "decision": "rejected",
                                     "reason": "no proof of address"}))
        assert sorted(bool(a.get("ok")) for a in acks) == [False, True], acks
        services = server.app[SERVICES]
        trail = await services.audit.read(sid)
        decided = [e["data"]["decision"] for e in trail if e["type"] == "case.decided"]
        assert decided == [(await services.store.get_case(receipt_no)).state]
        report = await check(services.store, [sid], services.audit.read_sync,
                             lambda sha256, content_type: 1)
        assert report.differences == []


async def test_a_decision_that_fails_to_be_written_can_be_made_again(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        _kiosk, alice, sid = await open_call(server, stack)
        receipt_no = (await alice.call("case.submit", {"session_id": sid}))["receipt_no"]
        desk = server.app[NODE].desk
        record = desk.record

        async def disk_full(session_id, type_, **data):
            if type_ == "case.decided":
                raise OSError(28, "No space left on device")
            await record(session_id, type_, **data)

        desk.record = disk_full
        failed = await alice.call("case.decide", {"receipt_no": receipt_no,
                                                  "decision": "approved"})
        assert failed["error"]["code"] == "internal", failed
        desk.record = record
        again = await alice.call("case.decide", {"receipt_no": receipt_no,
                                                 "decision": "approved"})
        assert again["ok"] and again["state"] == "approved", again
