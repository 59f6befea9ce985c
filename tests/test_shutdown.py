"""Graceful shutdown: on SIGTERM a node takes no new calls, lets the calls in progress
end (up to its drain timeout), then exits cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from tests.harness import SHARED_MODELS_DIR, Client, free_port, run_cli

SMARTCOUNTER = [sys.executable, "-m", "smartcounter.cli"]


@contextlib.asynccontextmanager
async def serving(data_dir: Path, drain_s: float):
    kiosks = {}
    for kiosk_id in ("k1", "k2"):
        added = run_cli(data_dir, "kiosk", "add", kiosk_id, "--site", "Kwun Tong")
        kiosks[kiosk_id] = added.stdout.strip().splitlines()[-1]
    run_cli(data_dir, "staff", "add", "alice", "--department", "tax", "--password-stdin",
            stdin="alice-password\n")
    port = free_port()
    env = {**os.environ, "SMARTCOUNTER_DRAIN_TIMEOUT_S": str(drain_s),
           "SMARTCOUNTER_MODELS_DIR": str(SHARED_MODELS_DIR), "SMARTCOUNTER_RECORDING": "off"}
    proc = await asyncio.create_subprocess_exec(
        *SMARTCOUNTER, "serve", "--port", str(port), "--data-dir", str(data_dir), env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{url}/healthz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
            async with http.post(f"{url}/api/v1/auth/login", json={
                    "username": "alice", "password": "alice-password"}) as resp:
                token = (await resp.json())["token"]
        yield proc, url, kiosks, token
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def call_in_progress(url: str, kiosks: dict, token: str, stack) -> tuple[Client, str]:
    staff, kiosk = Client("/staff"), Client("/kiosk")
    for client in (staff, kiosk):
        stack.push_async_callback(client.close)
    await staff.connect(url, token)
    await staff.call("presence.set", {"state": "available"})
    await kiosk.connect(url, kiosks["k1"])
    sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
    await staff.wait_for("call.offer", session_id=sid)
    assert (await staff.call("call.accept", {"session_id": sid}))["ok"]
    return kiosk, sid


async def test_sigterm_refuses_new_calls_and_waits_for_the_call_to_end(tmp_path):
    async with serving(tmp_path, drain_s=30) as (proc, url, kiosks, token), \
            contextlib.AsyncExitStack() as stack:
        kiosk, sid = await call_in_progress(url, kiosks, token, stack)
        other = Client("/kiosk")
        stack.push_async_callback(other.close)
        await other.connect(url, kiosks["k2"])
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            while True:  # the signal takes effect: new calls are turned away
                ack = await other.call("call.request", {"service_id": "tax-enquiry"})
                if not ack["ok"]:
                    break
                await other.call("call.cancel", {"session_id": ack["session_id"]})
        assert ack["error"]["code"] == "unavailable" and "shutting down" in ack["error"]["message"]
        async with aiohttp.ClientSession() as http:  # load balancers send no one new here
            async with http.get(f"{url}/readyz") as resp:
                assert resp.status == 503
                assert "shutting down" in (await resp.json())["checks"]["node"]
        assert proc.returncode is None  # the call goes on
        assert (await kiosk.call("call.hangup", {"session_id": sid}))["ok"]
        assert await asyncio.wait_for(proc.wait(), 15) == 0


async def test_sigterm_gives_up_waiting_after_the_drain_timeout(tmp_path):
    async with serving(tmp_path, drain_s=1) as (proc, url, kiosks, token), \
            contextlib.AsyncExitStack() as stack:
        await call_in_progress(url, kiosks, token, stack)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
