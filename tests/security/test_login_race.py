"""Finding 4: 25 wrong passwords and the right one posted at once were all checked, and
the right one signed in: the lockout was written after the checks. Now each attempt is
counted in the store before its password is checked."""

from __future__ import annotations

import asyncio

import aiohttp

from signaling.keys import SERVICES
from tests.harness import running_server


async def test_concurrent_sign_ins_reach_the_password_check_five_times_at_most(tmp_path):
    async with running_server(tmp_path) as server:
        accounts = server.app[SERVICES].accounts
        checked = []
        real = accounts.authenticate_staff

        def counting(username: str, password: str):
            checked.append(password)
            return real(username, password)

        accounts.authenticate_staff = counting
        passwords = [f"wrong-{i}" for i in range(25)] + [server.passwords["alice"]]
        async with aiohttp.ClientSession() as http:

            async def sign_in(password: str) -> int:
                async with http.post(f"{server.url}/api/v1/auth/login",
                                     json={"username": "alice", "password": password}) as resp:
                    await resp.read()
                    return resp.status

            statuses = await asyncio.gather(*(sign_in(p) for p in passwords))
            assert len(checked) <= 5, len(checked)
            assert statuses.count(429) >= 21
            assert set(statuses) <= {200, 401, 429}
            if server.passwords["alice"] not in checked:
                # Five wrong ones were checked: locked now, the right password included.
                assert await sign_in(server.passwords["alice"]) == 429
                assert len(checked) == 5
