"""Finding 1 of the hostile-kiosk review: a 3 KB PDF of nested Form XObjects made the node
grow by 1.8 GB and held every other PDF for 40 s. Now PDFium works out of process within
limits, after a check of what its pages cost: a bomb is refused within 5 s with a
reason, the node's memory does not move, and another session's ordinary PDF is
thumbnailed meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import aiohttp
import pytest

from sessions.accounts import AccountDirectory
from tests.harness import Client, ServeProcess
from tests.security.hostile_files import (
    calculator_shading_pdf,
    nested_xobject_pdf,
    ordinary_pdf,
)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


async def upload(http, url: str, token: str, sid: str, data: bytes) -> tuple[int, dict, float]:
    form = aiohttp.FormData()
    form.add_field("kind", "supporting")
    form.add_field("file", data, filename="scan.pdf", content_type="application/pdf")
    started = time.monotonic()
    async with http.post(f"{url}/api/v1/sessions/{sid}/documents", data=form,
                         headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, await resp.json(), time.monotonic() - started


@contextlib.asynccontextmanager
async def two_queued_kiosks(tmp_path):
    """A server process, and an attacker's and a citizen's kiosk each with a queued
    session (queued sessions may add documents): the server, tokens and sessions."""
    data_dir = tmp_path / "data"
    accounts = AccountDirectory(data_dir)
    tokens = {k: accounts.add_kiosk(k, "Hostile")[1] for k in ("attacker", "citizen")}
    server = ServeProcess(data_dir, tmp_path / "server.log")
    kiosks = {k: Client("/kiosk") for k in tokens}
    try:
        await server.start()
        sessions = {}
        for name, kiosk in kiosks.items():
            await kiosk.connect(server.url, tokens[name])
            ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
            sessions[name] = ack["session_id"]
        yield server, tokens, sessions
    except BaseException:
        print(server.log())
        raise
    finally:
        for kiosk in kiosks.values():
            await asyncio.wait_for(kiosk.close(), 5)
        await server.stop()


@pytest.mark.parametrize("bomb, reasons", [
    # Seen by the check of what a page's forms cost: refused before PDFium parses it.
    (nested_xobject_pdf(7), ("forms",)),
    # A function run per pixel, which no count of content sees: the sandbox's limits.
    (calculator_shading_pdf(), ("memory or time", "longer than")),
], ids=["nested forms", "calculator shading"])
async def test_a_drawing_bomb_is_refused_fast_and_holds_no_one_else(tmp_path, bomb, reasons):
    async with two_queued_kiosks(tmp_path) as (server, tokens, sessions), \
            aiohttp.ClientSession() as http:
        await upload(http, server.url, tokens["citizen"], sessions["citizen"],
                     ordinary_pdf())  # warm: the workers are spawned
        before = rss_mb(server.proc.pid)
        bomb = asyncio.create_task(upload(http, server.url, tokens["attacker"],
                                          sessions["attacker"], bomb))
        await asyncio.sleep(0.3)
        status, body, took = await upload(http, server.url, tokens["citizen"],
                                          sessions["citizen"], ordinary_pdf(2))
        assert status == 201, body
        assert took < 2, took
        status, body, took = await bomb
        assert status == 422, body
        assert any(reason in body["error"]["message"] for reason in reasons), body
        assert took < 5, took
        after = rss_mb(server.proc.pid)
        assert after - before < 200, (before, after)
        # Refused means not kept: the attacker's session has no document.
        async with http.get(f"{server.url}/api/v1/sessions/{sessions['attacker']}",
                            headers={"Authorization": f"Bearer {tokens['attacker']}"}
                            ) as resp:
            assert (await resp.json())["documents"] == []


async def test_a_kiosk_whose_documents_keep_breaking_the_reader_is_held_off(tmp_path):
    """Each PDF the sandbox gives up on cost a worker's time: after three, that kiosk's
    uploads are refused before any work, while another kiosk's are not."""
    unreadable = b"%PDF-1.7\n" + b"1 0 obj\n" * 10
    async with two_queued_kiosks(tmp_path) as (server, tokens, sessions), \
            aiohttp.ClientSession() as http:
        for _ in range(3):
            status, body, _ = await upload(http, server.url, tokens["attacker"],
                                           sessions["attacker"], unreadable)
            assert status == 422, body
        for data in (unreadable, ordinary_pdf()):
            status, body, _ = await upload(http, server.url, tokens["attacker"],
                                              sessions["attacker"], data)
            assert status == 429, body
            assert "could not be read" in body["error"]["message"]
        status, body, _ = await upload(http, server.url, tokens["citizen"],
                                       sessions["citizen"], ordinary_pdf())
        assert status == 201, body
