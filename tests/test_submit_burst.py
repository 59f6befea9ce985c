"""Every acknowledged ``case.submit`` survives a crash in the middle of a burst.

50 calls are connected on a real ``smartcounter serve`` process and their 50 applications
lodged at once. Then:

- embedded store (SQLite): the server gets SIGKILL as soon as half the receipts are
  acknowledged, while the rest are in flight;
- Redis, with the persistence the README asks for (``appendonly yes``,
  ``appendfsync always``): Redis gets SIGKILL the moment the last receipt is
  acknowledged.

Afterwards every acknowledged receipt number is known (the Citizen's Window finds it),
and its case is whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import signal

import aiohttp
import pytest

from sessions.redis_store import RedisStore
from sessions.sqlite_store import SQLiteStore
from tests.harness import (
    Client,
    RedisServer,
    ServeProcess,
    connect_calls,
    mint_calls_accounts,
    print_logs,
)

CALLS = 50
LOOKUPS = 5  # the Citizen's Window allows 10 lookups a minute per address


async def lodge_all(calls, on_ack=None) -> dict[str, str]:
    """``case.submit`` for every call at once: session id → receipt of each one
    acknowledged. ``on_ack(count)`` runs after each acknowledgement."""
    acked: dict[str, str] = {}

    async def submit(staff: Client, sid: str) -> None:
        with contextlib.suppress(Exception):  # the crash cuts the unanswered ones off
            ack = await staff.call("case.submit", {"session_id": sid}, timeout=10)
            if ack.get("ok"):
                acked[sid] = ack["receipt_no"]
                if on_ack is not None:
                    on_ack(len(acked))

    await asyncio.gather(*(submit(staff, sid) for staff, sid in calls))
    return acked


async def receipt_known(http: aiohttp.ClientSession, url: str, receipt_no: str) -> dict:
    async with http.post(f"{url}/api/v1/print/lookup", json={"receipt_no": receipt_no}) as resp:
        body = await resp.json()
        assert resp.status == 200, (receipt_no, body)
        return body


async def check_cases(store, acked: dict[str, str]) -> None:
    """Each acknowledged case is in the store, whole, in its indexes."""
    for sid, receipt_no in acked.items():
        case = await store.get_case(receipt_no)
        assert case is not None, receipt_no
        assert (case.session_id, case.state) == (sid, "submitted")
        assert [c.receipt_no for c in await store.session_cases(sid)] == [receipt_no]
    assert set(acked.values()) <= {c.receipt_no for c in await store.cases("submitted")}


async def close_all(clients, timeout_s: float) -> None:
    for client in clients:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.close(), timeout_s)


async def test_kill_9_during_a_burst_of_submissions_on_the_embedded_store(tmp_path):
    data_dir = tmp_path / "data"
    kiosk_tokens, staff_tokens = mint_calls_accounts(data_dir, CALLS)
    first = ServeProcess(data_dir, tmp_path / "first.log")
    second = ServeProcess(data_dir, tmp_path / "second.log")
    clients: list[Client] = []
    try:
        await first.start()
        calls = await connect_calls(first.url, kiosk_tokens, staff_tokens, clients)

        def kill_at_half(count: int) -> None:
            if count == CALLS // 2:
                first.send(signal.SIGKILL)

        acked = await lodge_all(calls, kill_at_half)
        assert await first.wait() == -signal.SIGKILL
        assert CALLS // 2 <= len(acked) < CALLS, len(acked)  # killed mid-burst
        await close_all(clients, 0.5)

        await second.start()
        async with aiohttp.ClientSession() as http:  # a few: lookups are rate limited
            for receipt_no in list(acked.values())[:LOOKUPS]:
                assert (await receipt_known(http, second.url, receipt_no))["state"] == "submitted"
        await second.stop()
        store = SQLiteStore(data_dir / "store.sqlite3")
        try:
            await check_cases(store, acked)
        finally:
            await store.close()
        print(f"\n{len(acked)} of {CALLS} acknowledged before SIGKILL; all found after restart")
    except BaseException:
        print_logs(first, second)
        raise
    finally:
        await close_all(clients, 0.5)
        await first.stop()
        await second.stop()


@pytest.mark.redis
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server")
async def test_redis_kill_9_right_after_a_burst_of_submissions(tmp_path):
    data_dir = tmp_path / "data"
    kiosk_tokens, staff_tokens = mint_calls_accounts(data_dir, CALLS)
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    await redis.ready()
    server = ServeProcess(data_dir, tmp_path / "server.log", SMARTCOUNTER_REDIS_URL=redis.url)
    clients: list[Client] = []
    try:
        await server.start()
        calls = await connect_calls(server.url, kiosk_tokens, staff_tokens, clients)
        acked = await lodge_all(calls)
        redis.kill9()  # the moment the last receipt is acknowledged
        assert len(acked) == CALLS

        redis.start()
        await redis.ready()
        store = RedisStore(redis.url)
        try:
            await check_cases(store, acked)
        finally:
            await store.close()
        # The server, which kept running, serves them again once Redis is back.
        async with aiohttp.ClientSession() as http:
            for receipt_no in list(acked.values())[:LOOKUPS]:
                assert (await receipt_known(http, server.url, receipt_no))["state"] == "submitted"
    except BaseException:
        print(f"--- server\n{server.log()}")
        raise
    finally:
        await close_all(clients, 1)
        await server.stop()
        redis.stop()
