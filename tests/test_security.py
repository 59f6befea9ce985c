"""Security of the public edges: sign-in throttling and lockout."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest
import socketio

from tests.harness import running_server


async def login(server, username: str, password: str) -> tuple[int, dict, dict]:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/api/v1/auth/login",
                             json={"username": username, "password": password}) as resp:
            return resp.status, await resp.json(), dict(resp.headers)


async def test_an_account_is_locked_after_repeated_failures_and_others_are_not(tmp_path):
    async with running_server(tmp_path) as server:
        for _ in range(4):
            status, body, _ = await login(server, "alice", "wrong")
            assert status == 401 and body["error"]["code"] == "unauthorized"
        # A success before the limit clears the count.
        assert (await login(server, "alice", server.passwords["alice"]))[0] == 200
        for _ in range(5):
            assert (await login(server, "alice", "wrong"))[0] == 401
        status, body, headers = await login(server, "alice", server.passwords["alice"])
        assert status == 429 and body["error"]["code"] == "rate_limited"
        assert "15 minute" in body["error"]["message"]
        assert 850 < int(headers["Retry-After"]) <= 900
        status, _, _ = await login(server, "ALICE", server.passwords["alice"])
        assert status == 429  # the lock is not dodged by the name's case
        assert (await login(server, "bob", server.passwords["bob"]))[0] == 200
        # Unknown accounts fail the same way as wrong passwords (nothing learned).
        status, body, _ = await login(server, "nobody", "x")
        assert status == 401 and body["error"]["message"] == "wrong username or password"


async def test_one_address_cannot_try_passwords_quickly(tmp_path):
    def strict(settings) -> None:
        settings.login = type(settings.login)(per_address_per_minute=6, per_address_burst=3,
                                              max_failures=100)

    async with running_server(tmp_path, configure=strict) as server:
        statuses = [(await login(server, f"user{i}", "x"))[0] for i in range(5)]
        assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]


def test_turn_credentials_follow_the_rest_convention():
    import base64
    import hashlib
    import hmac

    from signaling.turn import turn_credentials

    username, credential = turn_credentials("s3cret", "staff-alice", 600, now=1_700_000_000.4)
    assert username == "1700000600:staff-alice"
    expected = hmac.new(b"s3cret", username.encode(), hashlib.sha1).digest()
    assert base64.b64decode(credential) == expected


async def test_ice_servers_hand_out_short_lived_turn_credentials(tmp_path):
    import time

    from signaling.turn import TurnConfig

    def with_turn(settings) -> None:
        settings.turn = TurnConfig(urls=["turn:127.0.0.1:3478?transport=udp"], secret="s3cret",
                                   ttl_s=600)
        settings.ice_transport_policy = "relay"

    async with running_server(tmp_path, configure=with_turn) as server:
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {server.kiosk_tokens['k1']}"}
            async with http.get(f"{server.url}/api/v1/ice-servers", headers=headers) as resp:
                body = await resp.json()
            async with http.get(f"{server.url}/api/v1/ice-servers") as resp:
                assert resp.status == 401
    (turn,) = body["ice_servers"]
    expiry, user = turn["username"].split(":", 1)
    assert user == "kiosk-k1" and 590 < int(expiry) - time.time() <= 600
    assert body["ttl_s"] == 600 and body["ice_transport_policy"] == "relay"


async def test_disabling_revoking_and_resetting_cut_live_connections_and_tokens(tmp_path):
    import asyncio

    from tests.harness import Client, run_cli

    async with running_server(tmp_path) as server:
        alice_token = await server.login("alice")
        alice, kiosk = Client("/staff"), Client("/kiosk")
        await alice.connect(server.url, alice_token)
        await kiosk.connect(server.url, server.kiosk_tokens["k1"])
        try:
            assert run_cli(tmp_path, "staff", "disable", "alice").returncode == 0
            assert run_cli(tmp_path, "kiosk", "revoke", "k1").returncode == 0
            async with asyncio.timeout(10):
                while alice.sio.connected or kiosk.sio.connected:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            async with aiohttp.ClientSession() as http:
                headers = {"Authorization": f"Bearer {alice_token}"}
                async with http.get(f"{server.url}/api/v1/ice-servers", headers=headers) as r:
                    assert r.status == 401
            assert (await login(server, "alice", server.passwords["alice"]))[0] == 401
            again = Client("/kiosk")
            with pytest.raises(socketio.exceptions.ConnectionError):
                await again.connect(server.url, server.kiosk_tokens["k1"])
            assert again.connect_error["data"] == {"code": "unauthorized"}
        finally:
            await alice.close()
            await kiosk.close()

        bob_token = await server.login("bob")
        reset = run_cli(tmp_path, "staff", "reset-password", "bob", "--password-stdin",
                        stdin="a-new-password\n")
        assert reset.returncode == 0, reset.stderr
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {bob_token}"}
            async with http.get(f"{server.url}/api/v1/ice-servers", headers=headers) as r:
                assert r.status == 401  # signed in before the reset
        status, body, _ = await login(server, "bob", "a-new-password")
        assert status == 200
        async with aiohttp.ClientSession() as http:
            headers = {"Authorization": f"Bearer {body['token']}"}
            async with http.get(f"{server.url}/api/v1/ice-servers", headers=headers) as r:
                assert r.status == 200


async def test_every_page_and_answer_carries_the_security_headers(tmp_path):
    async with running_server(tmp_path) as server:
        async with aiohttp.ClientSession() as http:
            for path in ("/console", "/kiosk", "/supervisor", "/print", "/api/v1/catalog",
                         "/static/shared/app.css", "/no-such-page", "/api/v1/sessions/x"):
                async with http.get(server.url + path, allow_redirects=False) as resp:
                    csp = resp.headers.get("Content-Security-Policy", "")
                    assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
                    assert "frame-ancestors 'self'" in csp, path
                    assert resp.headers["X-Content-Type-Options"] == "nosniff", path
                    assert resp.headers["Referrer-Policy"] == "no-referrer", path
            async with http.get(server.url + "/", allow_redirects=False) as resp:
                assert resp.status == 302 and "Content-Security-Policy" in resp.headers


async def test_a_client_flooding_events_is_slowed_not_disconnected(tmp_path):
    from tests.harness import Client

    def slow(settings) -> None:
        settings.events_per_minute = 60  # a burst of 6, then one a second

    async with running_server(tmp_path, configure=slow) as server:
        staff = Client("/staff")
        await staff.connect(server.url, await server.login("alice"))
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            acks = [await staff.call("presence.get", {}) for _ in range(12)]
            elapsed = loop.time() - started
            codes = [a["ok"] or a["error"]["code"] for a in acks]
            assert codes[:6] == [True] * 6 and codes[6] == "rate_limited", codes
            # Past its burst a client is answered at the limit's pace, refused or not.
            assert elapsed >= 2.5, elapsed
            assert codes.count(True) <= 6 + elapsed + 1, (codes, elapsed)
            assert staff.sio.connected
        finally:
            await staff.close()


async def test_a_kiosk_flooding_uploads_is_refused_with_429(tmp_path):
    import contextlib
    import io

    from PIL import Image

    from tests.helpers import open_call, upload

    out = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(out, "PNG")
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        _kiosk, _staff, sid = await open_call(server, stack)
        statuses = [(await upload(server, sid, out.getvalue(), name="p.png"))[0]
                    for _ in range(22)]
        assert statuses[:20] == [201] * 20 and 429 in statuses[20:]
