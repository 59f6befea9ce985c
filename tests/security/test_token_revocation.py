"""Finding 7: a copied token worked for 12 h (no sign-out), re-enabling a disabled
account revived its old tokens, and HTTP took departments from the token, so an officer
moved from housing to tax still read housing sessions. Now one rule reads the account
as it stands for HTTP and sockets."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp

from sessions.accounts import AccountDirectory
from tests.harness import Client, running_server


async def get(http, url: str, token: str) -> int:
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        await resp.read()
        return resp.status


async def test_sign_out_disable_and_moves_take_effect_at_once(tmp_path):
    async with running_server(tmp_path) as server:
        accounts = AccountDirectory(tmp_path)
        hana, kiosk, console = Client("/staff"), Client("/kiosk"), Client("/staff")
        try:
            await hana.connect(server.url, await server.login("hana"))
            await hana.call("presence.set", {"state": "available"})
            await kiosk.connect(server.url, server.kiosk_tokens["k1"])
            ack = await kiosk.call("call.request", {"service_id": "property-record-enquiry"})
            session_url = f"{server.url}/api/v1/sessions/{ack['session_id']}"
            async with aiohttp.ClientSession() as http:
                # Sign-out: the token (and any copy) stops working, its socket is cut.
                token = await server.login("alice")
                await console.connect(server.url, token)
                async with http.post(f"{server.url}/api/v1/auth/logout",
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
                    assert resp.status == 200
                assert await get(http, f"{server.url}/api/v1/cases", token) == 401
                async with asyncio.timeout(10):  # the revocation check runs every 2 s
                    while console.sio.connected:  # noqa: ASYNC110
                        await asyncio.sleep(0.1)

                # Disabled, then enabled again: the old token stays dead.
                token = await server.login("alice")
                accounts.set_staff_disabled("alice", True)
                accounts.set_staff_disabled("alice", False)
                assert await get(http, f"{server.url}/api/v1/cases", token) == 401
                assert await server.login("alice")  # a new sign-in works

                # Moved from tax to housing: HTTP follows the account at once.
                token = await server.login("alice")
                assert await get(http, session_url, token) == 403
                accounts.set_departments("alice", ["housing"])
                assert await get(http, session_url, token) == 200
                accounts.set_departments("alice", ["tax"])
                assert await get(http, session_url, token) == 403
        finally:
            for client in (hana, kiosk, console):
                with contextlib.suppress(Exception):
                    await client.close()
