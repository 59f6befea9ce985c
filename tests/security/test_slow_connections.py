"""Finding 5: 1,500 connections that send half a request stayed open past 60 s, and past
the open-files limit ``/healthz`` timed out while asyncio logged each failed accept.
Now a connection has a deadline for its headers and an address a cap on connections."""

from __future__ import annotations

import asyncio
import logging
import resource
import time

import aiohttp

from smartcounter.logs import Throttle
from tests.harness import ServeProcess

SLOW = 1500
HALF_A_REQUEST = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "


async def open_slow(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HALF_A_REQUEST)
    await writer.drain()
    return reader, writer


async def test_slow_connections_are_closed_and_health_answers_meanwhile(tmp_path):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4 * SLOW:  # this test's sockets, and the server's (it inherits the limit)
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8 * SLOW), hard))
    server = ServeProcess(tmp_path / "data", tmp_path / "server.log",
                          SMARTCOUNTER_HEADER_TIMEOUT_S="3",
                          SMARTCOUNTER_MAX_CONNECTIONS_PER_ADDRESS=str(SLOW + 100))
    slow = []
    try:
        await server.start()
        for _ in range(SLOW // 100):
            slow += await asyncio.gather(*(open_slow(server.port) for _ in range(100)))
        opened = time.monotonic()
        worst = 0.0
        async with aiohttp.ClientSession() as http:
            for _ in range(10):
                started = time.perf_counter()
                async with http.get(f"{server.url}/healthz") as resp:
                    assert resp.status == 200
                worst = max(worst, time.perf_counter() - started)
                await asyncio.sleep(0.1)
        assert worst < 0.1, worst

        async def closed(reader) -> bool:
            return await asyncio.wait_for(reader.read(), 10) == b""

        assert all(await asyncio.gather(*(closed(r) for r, _ in slow)))
        assert time.monotonic() - opened < 3 + 5
    finally:
        for _, writer in slow:
            writer.close()
        await server.stop()


async def test_an_address_over_its_cap_is_turned_away(tmp_path):
    server = ServeProcess(tmp_path / "data", tmp_path / "server.log",
                          SMARTCOUNTER_MAX_CONNECTIONS_PER_ADDRESS="20")
    held = []
    try:
        await server.start()
        held = [await open_slow(server.port) for _ in range(20)]
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed at once
        writer.close()
    finally:
        for _, writer in held:
            writer.close()
        await server.stop()


def test_the_failed_accept_message_is_logged_once_in_a_while():
    throttle = Throttle(interval_s=10)
    records = [logging.LogRecord("asyncio", logging.ERROR, "", 0, "socket.accept() out of "
                                 "system resource", None, None) for _ in range(1000)]
    for i, record in enumerate(records):
        record.created = 1000.0 + i * 0.01
    passed = [r for r in records if throttle.filter(r)]
    assert len(passed) == 1
    late = logging.LogRecord("asyncio", logging.ERROR, "", 0, "socket.accept() out of "
                             "system resource", None, None)
    late.created = 1020.0
    assert throttle.filter(late) and "999 more like it" in late.getMessage()


async def test_an_upload_that_stalls_is_answered_408(tmp_path, monkeypatch):
    from signaling import documents_api
    from tests.harness import Client, running_server

    monkeypatch.setattr(documents_api, "STALL_S", 1.0)
    async with running_server(tmp_path) as server:
        kiosk = Client("/kiosk")
        await kiosk.connect(server.url, server.kiosk_tokens["k1"])
        sid = (await kiosk.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
        await kiosk.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.settings.port)
        head = (f"POST /api/v1/sessions/{sid}/documents HTTP/1.1\r\nHost: x\r\n"
                f"Authorization: Bearer {server.kiosk_tokens['k1']}\r\n"
                "Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000\r\n"
                "\r\n--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\""
                "\r\nContent-Type: image/jpeg\r\n\r\n\xff\xd8")
        writer.write(head.encode("latin-1"))  # and then nothing more
        await writer.drain()
        started = time.monotonic()
        answer = await asyncio.wait_for(reader.read(4096), 10)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:80]
        assert time.monotonic() - started < 5
        writer.close()


async def test_a_kept_alive_connection_has_a_header_deadline_for_its_next_request(tmp_path):
    """After a response, the next request's headers must come within the header timeout
    too (aiohttp's keep-alive timeout, set to it): half a second request is closed."""
    server = ServeProcess(tmp_path / "data", tmp_path / "server.log",
                          SMARTCOUNTER_HEADER_TIMEOUT_S="1")
    try:
        await server.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        await asyncio.wait_for(reader.readexactly(length), 5)
        answered = time.monotonic()
        writer.write(HALF_A_REQUEST)
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # closed, nothing answered
        assert time.monotonic() - answered < 1 + 1.5
        writer.close()
    finally:
        await server.stop()
