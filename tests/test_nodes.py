"""Two nodes on one Redis: a kiosk on node A and a staff member on node B are routed to
each other (socket.io's Redis manager carries events across), and a supervisor on B
sees A's queue."""

from __future__ import annotations

import asyncio
import contextlib

from tests.harness import Client, running_server


def department(snapshot: dict, department_id: str) -> dict:
    return next(d for d in snapshot["departments"] if d["id"] == department_id)


async def two_nodes(stack: contextlib.AsyncExitStack, shared, prefix: str, configure=None):
    """Nodes A and B on one Redis and one shared data directory (accounts made by A)."""
    from tests.conftest import REDIS_URL

    node_a = await stack.enter_async_context(
        running_server(shared, REDIS_URL, prefix, configure=configure))
    node_b = await stack.enter_async_context(running_server(
        shared, REDIS_URL, prefix, configure=configure, seed_accounts=False))
    return node_a, node_b


async def connected(stack: contextlib.AsyncExitStack, namespace: str, node, token) -> Client:
    client = Client(namespace)
    stack.push_async_callback(client.close)
    await client.connect(node.url, token)
    return client


async def kiosk_on_a_calls_staff_on_b(stack: contextlib.AsyncExitStack, node_a, node_b):
    """Kiosk k1 on node A asks for a tax enquiry; alice, on node B, accepts."""
    kiosk = await connected(stack, "/kiosk", node_a, node_a.kiosk_tokens["k1"])
    staff = await connected(stack, "/staff", node_b, await node_a.login("alice"))
    await staff.call("presence.set", {"state": "available"})
    sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
    await staff.wait_for("call.offer", session_id=sid)
    assert (await staff.call("call.accept", {"session_id": sid}))["ok"]
    return kiosk, staff, sid


async def test_a_kiosk_on_one_node_reaches_staff_on_another(tmp_path, redis_prefix):
    async with contextlib.AsyncExitStack() as stack:
        node_a, node_b = await two_nodes(stack, tmp_path / "shared", redis_prefix)
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


async def test_a_call_across_nodes_has_video_both_ways_through_its_media_home(
    tmp_path, redis_prefix
):
    from signaling.keys import SERVICES
    from tests.helpers import Peer, wait_until

    async with contextlib.AsyncExitStack() as stack:
        node_a, node_b = await two_nodes(stack, tmp_path / "shared", redis_prefix)
        kiosk, staff, sid = await kiosk_on_a_calls_staff_on_b(stack, node_a, node_b)

        kiosk_peer, staff_peer = Peer(kiosk, (200, 30, 30)), Peer(staff, (30, 30, 200))
        for peer in (kiosk_peer, staff_peer):
            stack.push_async_callback(peer.close)
        await kiosk_peer.connect(sid)  # node A answers: A is the media home
        await staff_peer.connect(sid)  # node B passes the offer to A
        hub_a, hub_b = node_a.app[SERVICES].hub, node_b.app[SERVICES].hub
        assert hub_a.get(sid) is not None and hub_b.get(sid) is None
        await wait_until(lambda: staff_peer.video_frames and kiosk_peer.video_frames,
                         what="video both ways")
        assert staff_peer.mean_colour()[0] > 150  # the kiosk's red
        assert kiosk_peer.mean_colour()[2] > 150  # the staff member's blue

        # Hung up through node B: node A, the media home, lets the media go.
        assert (await staff.call("call.hangup", {"session_id": sid}))["ok"]
        await wait_until(lambda: hub_a.get(sid) is None, what="the media home to release")
        store = node_b.app[SERVICES].store
        async with asyncio.timeout(5):  # and the home record goes
            while await store.get_record("media_home", sid) is not None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)


async def test_verification_and_monitoring_from_another_node_run_on_the_media_home(
    tmp_path, redis_prefix
):
    """The staff member (node B) verifies the caller and a supervisor (node B) monitors
    the call; both work on the media, which lives on node A."""
    from signaling.keys import NODE, SERVICES
    from tests.helpers import (
        ASSETS,
        ImageTrack,
        Monitor,
        Peer,
        camera_frame,
        fast,
        upload,
        wait_until,
    )

    async with contextlib.AsyncExitStack() as stack:
        node_a, node_b = await two_nodes(stack, tmp_path / "shared", redis_prefix, fast)
        kiosk, staff, sid = await kiosk_on_a_calls_staff_on_b(stack, node_a, node_b)
        sup = await connected(stack, "/supervisor", node_b, await node_a.login("sup"))
        camera = ImageTrack(camera_frame("obama2.jpg"))
        kiosk_peer = Peer(kiosk, (0, 0, 0), video_track=camera)
        staff_peer = Peer(staff, (30, 30, 200))
        for peer in (kiosk_peer, staff_peer):
            stack.push_async_callback(peer.close)
        await kiosk_peer.connect(sid)  # A is the media home
        await staff_peer.connect(sid)
        await wait_until(lambda: staff_peer.video_frames, what="kiosk video at the staff")

        status, document = await upload(node_a, sid, (ASSETS / "obama.jpg").read_bytes())
        assert status == 201, document
        verifier_a, verifier_b = (n.app[NODE].verifier for n in (node_a, node_b))
        ack = await staff.call("verification.start",
                               {"session_id": sid, "id_document_id": document["document_id"]})
        assert ack["ok"], ack
        assert sid in verifier_a.watched_sessions and sid not in verifier_b.watched_sessions
        await staff.wait_for("verification.update", session_id=sid)  # from A, through Redis
        ack = await staff.call("verification.challenge",
                               {"session_id": sid, "challenge": "turn_left"})
        assert ack["ok"], ack
        await kiosk.wait_for("verification.challenge", session_id=sid)

        monitor = Monitor(sup)
        stack.push_async_callback(monitor.close)
        assert (await sup.call("monitor.start", {"session_id": sid, "mode": "silent"}))["ok"]
        await monitor.pc.setLocalDescription(await monitor.pc.createOffer())
        answer = await sup.call("rtc.offer", {
            "session_id": sid, "sdp": monitor.pc.localDescription.sdp, "type": "offer",
            "purpose": "monitor"}, timeout=20)
        assert answer["ok"], answer
        media_a = node_a.app[SERVICES].hub.get(sid)
        monitors = lambda: [k for k in media_a.participants if k.startswith("monitor:")]  # noqa: E731
        assert len(monitors()) == 1 and node_b.app[SERVICES].hub.get(sid) is None
        assert (await sup.call("monitor.stop", {"session_id": sid}))["ok"]
        await wait_until(lambda: not monitors(), what="the monitor to leave node A's media")


async def test_a_media_home_silent_past_its_ttl_is_taken_over_without_waiting_for_it(
    tmp_path, redis_prefix
):
    """A node whose machine vanished may still look subscribed to Redis (its TCP
    connections half open): once its beat is older than the TTL, the next offer moves
    the media without asking it."""
    from signaling.keys import NODE, SERVICES
    from tests.helpers import Peer, wait_until

    async with contextlib.AsyncExitStack() as stack:
        node_a, node_b = await two_nodes(stack, tmp_path / "shared", redis_prefix)
        kiosk, staff, sid = await kiosk_on_a_calls_staff_on_b(stack, node_a, node_b)
        kiosk_peer = Peer(kiosk, (200, 30, 30))
        stack.push_async_callback(kiosk_peer.close)
        await kiosk_peer.connect(sid)  # node A is the home

        services_a, services_b = node_a.app[SERVICES], node_b.app[SERVICES]
        node_parts_a = node_a.app[NODE]
        served_by_a = []
        serve = node_parts_a.gateway.serve

        async def counting_serve(body):
            served_by_a.append(body.get("op"))
            return await serve(body)

        node_parts_a.gateway.link._handle = counting_serve
        node_parts_a.nodes._left = True  # A stops beating, but still listens
        store = services_b.store
        info = (await store.nodes())[services_a.node_id]
        await store.beat_node(services_a.node_id,
                              {**info, "seen": info["seen"] - services_b.node_ttl_s - 1})

        staff_peer = Peer(staff, (30, 30, 200))
        stack.push_async_callback(staff_peer.close)
        await staff_peer.connect(sid)
        assert await store.get_record("media_home", sid) == {"node": services_b.node_id}
        assert services_b.hub.get(sid) is not None and served_by_a == []
        kiosk_peer2 = Peer(kiosk, (200, 30, 30))  # the kiosk offers again: to B now
        stack.push_async_callback(kiosk_peer2.close)
        await kiosk_peer2.connect(sid)
        await wait_until(lambda: staff_peer.video_frames and kiosk_peer2.video_frames,
                         what="video both ways through node B")
        assert served_by_a == []
        # A, back, lets go of the media it still held for the call.
        assert services_a.hub.get(sid) is not None
        await node_parts_a.gateway.reconcile()
        assert services_a.hub.get(sid) is None and services_b.hub.get(sid) is not None


async def test_a_kiosk_that_moved_to_another_node_is_not_lost_when_its_old_socket_drops(
    tmp_path, redis_prefix
):
    """A kiosk whose network changed comes back on node B at once; node A notices its
    old socket gone only later, and must not put the call on its grace period."""
    from signaling.keys import NODE, SERVICES

    async with contextlib.AsyncExitStack() as stack:
        node_a, node_b = await two_nodes(stack, tmp_path / "shared", redis_prefix)
        old, new, staff = Client("/kiosk"), Client("/kiosk"), Client("/staff")
        for client in (old, new, staff):
            stack.push_async_callback(client.close)
        await staff.connect(node_b.url, await node_a.login("alice"))
        await staff.call("presence.set", {"state": "available"})
        await old.connect(node_a.url, node_a.kiosk_tokens["k1"])
        sid = (await old.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
        await staff.wait_for("call.offer", session_id=sid)
        assert (await staff.call("call.accept", {"session_id": sid}))["ok"]

        await new.connect(node_b.url, node_a.kiosk_tokens["k1"])
        assert (await new.call("call.resume", {"session_id": sid}))["state"] == "connected"
        kiosk_a = node_a.app[NODE].kiosk
        await old.close()  # node A sees its socket go
        async with asyncio.timeout(5):
            while kiosk_a.sockets_of("k1"):  # noqa: ASYNC110 (no event for it)
                await asyncio.sleep(0.05)
        session = await node_b.app[SERVICES].store.get_session(sid)
        assert session.state == "connected" and session.kiosk_lost_at is None
