"""A Redis restart during a live call (a Redis started here, with AOF, on its own port):
the node does not crash, reports unready meanwhile and answers events `unavailable`, the
media goes on, and afterwards the call carries on and ends with a verified audit trail."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from pathlib import Path

import aiohttp
import pytest

from sessions.audit import verify_chain
from tests.harness import free_port, running_server
from tests.helpers import Peer, audit_events, open_call, wait_until

pytestmark = pytest.mark.redis


class RedisProcess:
    def __init__(self, directory: Path) -> None:
        self.directory, self.port = directory, free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.proc = subprocess.Popen(
            [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--dir",
             str(self.directory), "--appendonly", "yes", "--appendfsync", "always",
             "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


async def readyz(url: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{url}/readyz") as resp:
            return resp.status


async def wait_status(url: str, status: int, timeout: float = 20) -> None:
    async with asyncio.timeout(timeout):
        while await readyz(url) != status:  # noqa: ASYNC110
            await asyncio.sleep(0.2)


async def test_a_redis_restart_during_a_call(tmp_path):
    redis = RedisProcess(tmp_path)
    redis.start()
    try:
        async with contextlib.AsyncExitStack() as stack:
            server = await stack.enter_async_context(
                running_server(tmp_path / "data", redis.url, "outage"))
            await wait_status(server.url, 200)
            kiosk, staff, sid = await open_call(server, stack)
            kiosk_peer, staff_peer = Peer(kiosk, (200, 30, 30)), Peer(staff, (30, 30, 200))
            for peer in (kiosk_peer, staff_peer):
                stack.push_async_callback(peer.close)
            await kiosk_peer.connect(sid)
            await staff_peer.connect(sid)
            await wait_until(lambda: staff_peer.video_frames, what="video before the outage")

            redis.stop()
            await wait_status(server.url, 503)
            ack = await staff.call("presence.get", {})
            assert ack["ok"] is False and ack["error"]["code"] == "unavailable", ack
            seen = len(staff_peer.video_frames) and id(staff_peer.video_frames[-1])
            await wait_until(lambda: id(staff_peer.video_frames[-1]) != seen,
                             what="video during the outage")

            redis.start()  # the same directory: the AOF brings the state back
            await wait_status(server.url, 200)
            async with asyncio.timeout(20):
                while not (ack := await staff.call("presence.get", {}))["ok"]:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
            assert ack["state"] == "busy" and ack["session_id"] == sid
            assert (await staff.call("call.hangup", {"session_id": sid}))["ok"]
            events = audit_events(server, sid)
            assert verify_chain(events) and events[-1]["type"] == "session.closed"
    finally:
        redis.stop()
