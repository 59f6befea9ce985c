"""Node failure: two nodes as real processes on one Redis, the one holding a live call
is killed (SIGKILL), and its clients carry on through the other one. The clients here
do what the kiosk and console pages do after losing their socket: connect again (a
load balancer would send them to a surviving node), ``call.resume``, and offer their
media again on a new peer connection."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path

import numpy as np

from sessions.accounts import AccountDirectory
from sessions.audit import find_break
from sessions.redis_store import RedisStore
from tests.harness import Client, node_process
from tests.helpers import Peer, get_json, login, upload, wait_until

PHOTO = Path(__file__).parent / "assets" / "obama.jpg"
RED, BLUE = (200, 30, 30), (30, 30, 200)


def accounts(data_dir: Path) -> tuple[dict[str, str], str]:
    directory = AccountDirectory(data_dir)
    tokens = {k: directory.add_kiosk(k, "Kwun Tong")[1] for k in ("k1", "k2", "k3")}
    directory.add_staff("alice", "alice-password", ["tax"], "staff", "Alice")
    directory.add_staff("sup", "sup-password-1", ["tax"], "supervisor", "Sup")
    return tokens, "alice-password"


def sees(peer: Peer, rgb: tuple[int, int, int]) -> bool:
    return bool(peer.video_frames) and np.allclose(peer.mean_colour(), rgb, atol=40)


class Uploader:
    """What :func:`tests.test_verification_flow.upload` needs of a server."""

    def __init__(self, url: str, kiosk_tokens: dict[str, str]) -> None:
        self.url, self.kiosk_tokens = url, kiosk_tokens


async def test_killing_the_node_of_a_live_call_moves_it_to_the_other_node(
    tmp_path, redis_prefix
):
    from tests.conftest import REDIS_URL

    shared = tmp_path / "shared"
    shared.mkdir()
    tokens, password = accounts(shared)
    fast = {"SMARTCOUNTER_NODE_TTL_S": "2", "SMARTCOUNTER_KIOSK_GRACE_S": "4"}
    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        node_a = await stack.enter_async_context(
            node_process(shared, REDIS_URL, redis_prefix, "node-a", **fast))
        node_b = await stack.enter_async_context(
            node_process(shared, REDIS_URL, redis_prefix, "node-b", **fast))
        clients: list[Client] = []

        async def client(namespace: str, url: str, token: str) -> Client:
            c = Client(namespace)
            await c.connect(url, token)
            clients.append(c)
            return c

        async def close_clients() -> None:
            for c in clients:
                with contextlib.suppress(Exception):
                    await c.close()

        stack.push_async_callback(close_clients)
        staff_token = await login(node_a.url, "alice", password)

        # A call with both sides on node A, its media home; a document on the session.
        staff = await client("/staff", node_a.url, staff_token)
        kiosk = await client("/kiosk", node_a.url, tokens["k1"])
        await staff.call("presence.set", {"state": "available"})
        sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
        await staff.wait_for("call.offer", session_id=sid)
        assert (await staff.call("call.accept", {"session_id": sid}))["ok"]
        kiosk_peer, staff_peer = Peer(kiosk, RED), Peer(staff, BLUE)
        stack.push_async_callback(kiosk_peer.close)
        stack.push_async_callback(staff_peer.close)
        await kiosk_peer.connect(sid)
        await staff_peer.connect(sid)
        await wait_until(lambda: sees(kiosk_peer, BLUE) and sees(staff_peer, RED),
                         what="video both ways on node A")
        status, document = await upload(Uploader(node_a.url, tokens), sid, PHOTO.read_bytes())
        assert status == 201, document
        assert await store.get_record("media_home", sid) == {"node": "node-a"}

        # Two callers waiting behind it on node A: k2 will come back, k3 will not.
        waiting = {}
        for kiosk_id in ("k2", "k3"):
            c = await client("/kiosk", node_a.url, tokens[kiosk_id])
            ack = await c.call("call.request", {"service_id": "tax-enquiry"})
            waiting[kiosk_id] = (c, ack["session_id"], ack["position"])
        assert [position for _, _, position in waiting.values()] == [1, 2]

        node_a.proc.kill()
        await node_a.proc.wait()
        killed_at = time.monotonic()

        # Both sides come back through node B and offer their media again.
        kiosk = await client("/kiosk", node_b.url, tokens["k1"])
        staff = await client("/staff", node_b.url, staff_token)
        assert (await kiosk.call("call.resume", {"session_id": sid}))["state"] == "connected"
        assert (await staff.call("presence.get", {}))["state"] == "busy"
        kiosk_peer2, staff_peer2 = Peer(kiosk, RED), Peer(staff, BLUE)
        stack.push_async_callback(kiosk_peer2.close)
        stack.push_async_callback(staff_peer2.close)
        await asyncio.gather(kiosk_peer2.connect(sid), staff_peer2.connect(sid))
        await wait_until(lambda: sees(kiosk_peer2, BLUE) and sees(staff_peer2, RED),
                         what="video both ways on node B")
        back_in_call_s = time.monotonic() - killed_at
        print(f"both clients back in the call through node B {back_in_call_s:.2f} s "
              "after node A was killed")
        assert back_in_call_s < 10, f"back in the call after {back_in_call_s:.1f} s"
        assert await store.get_record("media_home", sid) == {"node": "node-b"}

        # The waiting caller who comes back keeps their place.
        k2 = await client("/kiosk", node_b.url, tokens["k2"])
        resumed = await k2.call("call.resume", {"session_id": waiting["k2"][1]})
        assert (resumed["state"], resumed["position"]) == ("queued", 1)

        # Node B finds node A dead and gives its kiosks their grace period: k3, which
        # never came back, is abandoned once it is over.
        k3_sid = waiting["k3"][1]

        async def abandoned() -> bool:
            session = await store.get_session(k3_sid)
            return session is not None and session.state == "abandoned"

        async with asyncio.timeout(15):
            while not await abandoned():  # noqa: ASYNC110 (the state is in Redis)
                await asyncio.sleep(0.2)
        assert "node-a" not in await store.nodes()

        # Nothing acknowledged was lost: the document, and an unbroken trail that
        # records the move.
        listed = await get_json(f"{node_b.url}/api/v1/sessions/{sid}", staff_token)
        assert [d["document_id"] for d in listed["documents"]] == [document["document_id"]]
        assert (await kiosk.call("call.hangup", {"session_id": sid}))["ok"]
        sup_token = await login(node_b.url, "sup", "sup-password-1")
        trail = await get_json(f"{node_b.url}/api/v1/sessions/{sid}/audit", sup_token)
        assert trail["verified"] is True and find_break(trail["events"]) is None
        types = [e["type"] for e in trail["events"]]
        assert types.index("media.moved") > types.index("document.added")
        assert types[-1] == "session.closed"
        moved = next(e for e in trail["events"] if e["type"] == "media.moved")
        assert moved["data"] == {"from_node": "node-a", "to_node": "node-b"}
        k3_types = [e["type"] for e in
                    (await get_json(f"{node_b.url}/api/v1/sessions/{k3_sid}/audit",
                                    sup_token))["events"]]
        assert k3_types[-2:] == ["kiosk.lost", "session.abandoned"]


async def test_a_stopping_node_sends_its_waiting_callers_and_idle_staff_to_the_other(
    tmp_path, redis_prefix
):
    """SIGTERM on node A: its call in progress goes on to its end, while a caller waiting
    on A and a colleague not in a call are disconnected, come back through node B and
    carry on there; A then leaves the deployment in order (not reaped as dead)."""
    from tests.conftest import REDIS_URL

    shared = tmp_path / "shared"
    shared.mkdir()
    tokens, password = accounts(shared)
    AccountDirectory(shared).add_staff("bob", password, ["tax"], "staff", "Bob")
    store = RedisStore(REDIS_URL, prefix=redis_prefix)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        node_a = await stack.enter_async_context(node_process(
            shared, REDIS_URL, redis_prefix, "node-a", SMARTCOUNTER_DRAIN_TIMEOUT_S="30"))
        node_b = await stack.enter_async_context(
            node_process(shared, REDIS_URL, redis_prefix, "node-b"))
        alice, k1, k2, bob = (Client("/staff"), Client("/kiosk"), Client("/kiosk"),
                              Client("/staff"))
        for c in (alice, k1, k2, bob):
            stack.push_async_callback(c.close)
        await alice.connect(node_a.url, await login(node_a.url, "alice", password))
        await alice.call("presence.set", {"state": "available"})
        await k1.connect(node_a.url, tokens["k1"])
        sid = (await k1.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
        await alice.wait_for("call.offer", session_id=sid)
        assert (await alice.call("call.accept", {"session_id": sid}))["ok"]
        await k2.connect(node_a.url, tokens["k2"])
        waiting = await k2.call("call.request", {"service_id": "tax-enquiry"})
        assert waiting["position"] == 1
        bob_token = await login(node_a.url, "bob", password)
        await bob.connect(node_a.url, bob_token)  # away: not taking calls yet

        node_a.proc.send_signal(signal.SIGTERM)
        for client in (k2, bob):  # sent away by node A
            await wait_until(lambda c=client: not c.sio.connected, timeout=10,
                             what="node A to hand its idle clients over")
        assert alice.sio.connected and k1.sio.connected and node_a.proc.returncode is None

        k2 = await stack.enter_async_context(reconnected("/kiosk", node_b.url, tokens["k2"]))
        resumed = await k2.call("call.resume", {"session_id": waiting["session_id"]})
        assert (resumed["state"], resumed["position"]) == ("queued", 1)
        bob = await stack.enter_async_context(reconnected("/staff", node_b.url, bob_token))
        await bob.call("presence.set", {"state": "available"})
        offer = await bob.wait_for("call.offer", session_id=waiting["session_id"], timeout=10)
        assert offer["kiosk"]["id"] == "k2"  # answered on node B, the one still running

        assert (await k1.call("call.hangup", {"session_id": sid}))["ok"]
        assert await asyncio.wait_for(node_a.proc.wait(), 20) == 0
        assert list(await store.nodes()) == ["node-b"]
        session = await store.get_session(sid)
        assert session.state == "closed" and session.end_reason == "hangup"


@contextlib.asynccontextmanager
async def reconnected(namespace: str, url: str, token: str):
    client = Client(namespace)
    await client.connect(url, token)
    try:
        yield client
    finally:
        await client.close()
