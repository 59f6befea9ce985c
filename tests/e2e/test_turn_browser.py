"""A call forced through TURN: a coturn started here on loopback with
``use-auth-secret``, the server handing out short-lived credentials from the shared
secret, and both browsers told to use relay candidates only. Video flows both ways,
and each browser's selected candidate pair is a relayed one."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from signaling.turn import TurnConfig
from tests.harness import Server, free_port, running_server

from .browser import BrowserLog, tax_call
from .test_call_browser import media_sample

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# The local candidate of each browser's selected (nominated, succeeded) pair.
SELECTED_CANDIDATE_JS = """
async () => {
  const pc = window.smartcounter && window.smartcounter.pc;
  if (!pc) return null;
  const stats = await pc.getStats();
  let pair = null;
  stats.forEach((s) => {
    if (s.type === "candidate-pair" && s.state === "succeeded" && s.nominated) pair = s;
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  return local ? { type: local.candidateType, protocol: local.protocol } : null;
}
"""


@contextlib.asynccontextmanager
async def coturn(tmp_path: Path, secret: str) -> AsyncIterator[int]:
    binary = shutil.which("turnserver")
    if binary is None:
        pytest.fail("coturn (turnserver) is not installed; .ci/run installs it")
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        binary, "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
        f"--listening-port={port}", "--use-auth-secret", f"--static-auth-secret={secret}",
        "--realm=smartcounter.test", "--allow-loopback-peers", "--no-tls", "--no-dtls",
        "--no-cli", "--fingerprint", "--min-port=49160", "--max-port=49400",
        "--log-file=stdout", "--simple-log", "--pidfile", str(tmp_path / "turn.pid"),
        stdout=asyncio.subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    output = asyncio.create_task(proc.stdout.read())  # drained, shown if it fails
    try:
        if not await asyncio.to_thread(stun_answers, port, 20.0):
            proc.terminate()
            raise AssertionError("coturn did not answer STUN:\n" + (await output).decode())
        yield port
    finally:
        if proc.returncode is None:
            proc.terminate()
        await proc.wait()
        output.cancel()


def stun_answers(port: int, timeout: float) -> bool:
    """Whether a STUN binding request to 127.0.0.1:port is answered within ``timeout``."""
    request = struct.pack(">HHI", 0x0001, 0, 0x2112A442) + os.urandom(12)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.2)
        while time.monotonic() < deadline:
            sock.sendto(request, ("127.0.0.1", port))
            try:
                answer, _ = sock.recvfrom(2048)
            except TimeoutError:
                continue
            if answer[8:20] == request[8:20]:
                return True
    return False


@pytest_asyncio.fixture(loop_scope="session")
async def turn_server(tmp_path: Path) -> AsyncIterator[Server]:
    secret = secrets.token_hex(16)
    async with coturn(tmp_path, secret) as port:

        def relay_only(settings) -> None:
            settings.turn = TurnConfig(urls=[f"turn:127.0.0.1:{port}?transport=udp"],
                                       secret=secret, ttl_s=600)
            settings.ice_transport_policy = "relay"

        async with running_server(tmp_path / "server", configure=relay_only) as server:
            yield server


async def test_a_relay_only_call_through_coturn_carries_video_both_ways(
    turn_server: Server, open_page, browser_log: BrowserLog
) -> None:
    server = turn_server
    alice = await open_page("alice")
    kiosk = await open_page("kiosk")
    await tax_call(server.url, server.passwords, server.kiosk_tokens, alice, kiosk)
    for page in (kiosk, alice):
        first = await media_sample(page, timeout=30)
        second = await media_sample(page, after=first)
        assert second["state"] == "connected", second
        selected = await page.evaluate(SELECTED_CANDIDATE_JS)
        assert selected == {"type": "relay", "protocol": "udp"}, selected
    assert browser_log.unexpected() == []
