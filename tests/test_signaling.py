"""The socket.io and HTTP contract against a real server (memory store and Redis)."""

from __future__ import annotations

import aiohttp
import pytest
import socketio

from tests.conftest import REDIS_URL
from tests.harness import Client, running_server

EVENTS = {
    "/kiosk": ["call.request", "call.cancel", "call.hangup", "call.resume", "rtc.offer"],
    "/staff": [
        "presence.set",
        "call.accept",
        "call.decline",
        "call.hangup",
        "rtc.offer",
        "wrapup.done",
    ],
}
MALFORMED = [
    "not an object",
    42,
    ["list"],
    {"session_id": 123, "service_id": None, "state": "sleeping", "sdp": 5, "type": "answer"},
    {"session_id": "../../etc/passwd", "service_id": "x" * 500},
]


@pytest.fixture(params=["memory", "redis"])
async def server(request, tmp_path, redis_prefix):
    redis_url = REDIS_URL if request.param == "redis" else None
    async with running_server(
        tmp_path, redis_url=redis_url, prefix=redis_prefix, offer_timeout_s=5
    ) as srv:
        yield srv


@pytest.fixture
async def clients():
    made: list[Client] = []

    def make(namespace: str) -> Client:
        made.append(Client(namespace))
        return made[-1]

    yield make
    for c in made:
        await c.close()


async def staff_client(server, clients, username: str, available=True) -> Client:
    c = clients("/staff")
    await c.connect(server.url, await server.login(username))
    if available:
        ack = await c.call("presence.set", {"state": "available"})
        assert ack["ok"] and ack["state"] in ("available", "ringing"), ack
    return c


async def kiosk_client(server, clients, kiosk_id: str = "k1") -> Client:
    c = clients("/kiosk")
    await c.connect(server.url, server.kiosk_tokens[kiosk_id])
    return c


async def connected_call(server, clients):
    alice = await staff_client(server, clients, "alice")
    kiosk = await kiosk_client(server, clients)
    ack = await kiosk.call("call.request", {"service_id": "tax-enquiry", "language": "en"})
    assert ack["ok"], ack
    offer = await alice.wait_for("call.offer", session_id=ack["session_id"])
    accepted = await alice.call("call.accept", {"session_id": offer["session_id"]})
    assert accepted["ok"] and accepted["session"]["state"] == "connected"
    await kiosk.wait_for("call.connected", session_id=ack["session_id"])
    return kiosk, alice, ack["session_id"]


@pytest.mark.parametrize(
    "namespace,token",
    [
        ("/kiosk", None),
        ("/kiosk", "k1.wrong"),
        ("/kiosk", "garbage"),
        ("/staff", None),
        ("/staff", "not-a-jwt"),
    ],
)
async def test_connect_refused_without_valid_token(server, namespace, token):
    c = Client(namespace)
    with pytest.raises(socketio.exceptions.ConnectionError) as info:
        await c.connect(server.url, token)
    assert "failed to connect" in str(info.value)
    assert c.connect_error["data"] == {"code": "unauthorized"}
    assert c.connect_error["message"]
    await c.close()


async def test_tokens_of_another_role_are_refused(server):
    staff_token = await server.login("alice")
    supervisor_token = await server.login("sup")
    for namespace, token in [
        ("/kiosk", staff_token),
        ("/staff", server.kiosk_tokens["k1"]),
        ("/staff", supervisor_token),
    ]:
        c = Client(namespace)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await c.connect(server.url, token)
        assert c.connect_error["data"] == {"code": "unauthorized"}, namespace
        await c.close()


async def test_every_event_with_malformed_payload_is_bad_request(server, clients):
    kiosk = await kiosk_client(server, clients)
    staff = await staff_client(server, clients, "alice", available=False)
    for client in (kiosk, staff):
        for event in EVENTS[client.namespace]:
            for payload in MALFORMED:
                if event == "wrapup.done" and isinstance(payload, dict):
                    continue  # takes no fields: extra fields are ignored
                ack = await client.call(event, payload)
                assert ack["ok"] is False, (event, payload, ack)
                assert ack["error"]["code"] == "bad_request", (event, payload, ack)
                assert ack["error"]["message"]
        assert (await client.call("no.such.event", {}))["error"]["code"] == "bad_request"
    # Still connected and working.
    assert (await staff.call("presence.set", {"state": "available"}))["ok"]
    ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
    assert ack["ok"], ack


async def test_call_flow_over_sockets(server, clients):
    kiosk, alice, sid = await connected_call(server, clients)
    assert (await alice.call("presence.set", {"state": "away"}))["error"]["code"] == "conflict"
    assert (await kiosk.call("call.hangup", {"session_id": sid}))["ok"]
    assert (await alice.wait_for("call.ended", session_id=sid))["reason"] == "hangup"
    assert (await kiosk.wait_for("call.ended", session_id=sid))["reason"] == "hangup"
    presence = await alice.wait_for("presence.changed", state="wrapup")
    assert presence["state"] == "wrapup"
    assert (await alice.call("wrapup.done", {}))["state"] == "available"
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {await server.login('alice')}"}
        async with http.get(f"{server.url}/api/v1/sessions/{sid}", headers=headers) as resp:
            assert resp.status == 200
            record = await resp.json()
        assert record["state"] == "closed" and record["staff_id"] == "alice"
        headers = {"Authorization": f"Bearer {await server.login('hana')}"}
        async with http.get(f"{server.url}/api/v1/sessions/{sid}", headers=headers) as resp:
            assert resp.status == 403


async def test_only_the_right_department_gets_the_offer(server, clients):
    hana = await staff_client(server, clients, "hana")
    alice = await staff_client(server, clients, "alice")
    kiosk = await kiosk_client(server, clients)
    ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
    await alice.wait_for("call.offer", session_id=ack["session_id"])
    assert not [e for e, _ in hana.events if e == "call.offer"]
    denied = await hana.call("call.accept", {"session_id": ack["session_id"]})
    assert denied["error"]["code"] == "forbidden"


async def test_kiosk_cannot_touch_another_kiosks_session(server, clients):
    k1 = await kiosk_client(server, clients, "k1")
    k2 = await kiosk_client(server, clients, "k2")
    ack = await k1.call("call.request", {"service_id": "tax-enquiry"})
    sid = ack["session_id"]
    for event, payload in [
        ("call.cancel", {"session_id": sid}),
        ("call.hangup", {"session_id": sid}),
        ("call.resume", {"session_id": sid}),
        ("rtc.offer", {"session_id": sid, "sdp": "v=0\r\n" * 3, "type": "offer"}),
    ]:
        ack2 = await k2.call(event, payload)
        assert ack2["error"]["code"] == "forbidden", (event, ack2)
    assert (await k1.call("call.resume", {"session_id": sid}))["state"] == "queued"
    missing = await k2.call("call.cancel", {"session_id": "0" * 32})
    assert missing["error"]["code"] == "not_found"


async def test_second_request_while_in_a_session_conflicts(server, clients):
    kiosk = await kiosk_client(server, clients)
    assert (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["ok"]
    again = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
    assert again["error"]["code"] == "conflict"


async def test_bad_sdp_is_bad_request(server, clients):
    kiosk, alice, sid = await connected_call(server, clients)
    for sdp in ["v=0\r\nthis is not sdp\r\n", "x" * 100, "v=0\r\no=- 0 0 IN IP4 0\r\ns=-\r\n"]:
        ack = await kiosk.call("rtc.offer", {"session_id": sid, "sdp": sdp, "type": "offer"})
        assert ack["error"]["code"] == "bad_request", ack
    ack = await alice.call("rtc.offer", {"session_id": sid, "sdp": "garbage" * 10, "type": "offer"})
    assert ack["error"]["code"] == "bad_request"
    # The call is unaffected.
    assert (await kiosk.call("call.resume", {"session_id": sid}))["state"] == "connected"


async def test_offer_before_connect_is_conflict(server, clients):
    kiosk = await kiosk_client(server, clients)
    ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
    sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    answer = await kiosk.call(
        "rtc.offer", {"session_id": ack["session_id"], "sdp": sdp, "type": "offer"}
    )
    assert answer["error"]["code"] == "conflict"


async def test_login_and_http_errors(server):
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/api/v1/auth/login",
            json={"username": "alice", "password": "wrong-password"},
        ) as r:
            assert r.status == 401
            assert (await r.json())["error"]["code"] == "unauthorized"
        async with http.post(f"{server.url}/api/v1/auth/login", data=b"{nope") as r:
            assert r.status == 400
        async with http.post(f"{server.url}/api/v1/auth/login", json={"username": 1}) as r:
            assert r.status == 400
            assert "username" in (await r.json())["error"]["message"]
        async with http.get(f"{server.url}/api/v1/ice-servers") as r:
            assert r.status == 401
        headers = {"Authorization": f"Bearer {server.kiosk_tokens['k1']}"}
        async with http.get(f"{server.url}/api/v1/ice-servers", headers=headers) as r:
            assert r.status == 200
            assert (await r.json())["ice_servers"] == []
        # A kiosk may read back its own sessions (others': 403, tests/test_casework.py).
        async with http.get(f"{server.url}/api/v1/sessions/x", headers=headers) as r:
            assert r.status == 404
        async with http.get(f"{server.url}/readyz") as r:
            assert r.status == 200
        async with http.get(f"{server.url}/healthz") as r:
            assert (await r.json()) == {"status": "ok"}
        async with http.get(f"{server.url}/metrics") as r:
            assert "smartcounter_socket_events_total" in await r.text()
        async with http.get(f"{server.url}/api/v1/catalog") as r:
            depts = {d["id"]: d for d in (await r.json())["departments"]}
            assert {"business", "tax", "social-security", "public-security", "housing"} <= set(
                depts
            )
            assert all(set(d["name"]) >= {"en", "zh-Hant", "zh-Hans"} for d in depts.values())


async def test_offer_timeout_revokes_and_moves_on(tmp_path, clients):
    async with running_server(tmp_path, offer_timeout_s=0.5) as server:
        alice = await staff_client(server, clients, "alice")
        kiosk = await kiosk_client(server, clients)
        ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
        await alice.wait_for("call.offer", session_id=ack["session_id"])
        revoked = await alice.wait_for("call.offer_revoked", session_id=ack["session_id"])
        assert revoked["reason"] == "timeout"
        bob = await staff_client(server, clients, "bob")
        await bob.wait_for("call.offer", session_id=ack["session_id"])
        late = await alice.call("call.accept", {"session_id": ack["session_id"]})
        assert late["error"]["code"] == "conflict"
        for c in (alice, bob, kiosk):  # before the server stops, so it need not wait for them
            await c.close()


async def test_staff_disconnect_beyond_grace_requeues_caller(tmp_path, clients):
    async with running_server(tmp_path, staff_lost_grace_s=0.5) as server:
        kiosk, alice, sid = await connected_call(server, clients)
        await alice.close()
        update = await kiosk.wait_for("queue.update", session_id=sid, reason="staff_lost")
        assert update["position"] == 1
        bob = await staff_client(server, clients, "bob")
        await bob.wait_for("call.offer", session_id=sid)
        for c in (bob, kiosk):
            await c.close()
