"""A document acknowledged with 201 survives a ``kill -9`` of the server immediately
afterwards: its bytes, its index entry and its audit event.

A real ``smartcounter serve`` process with the Redis store (fresh key prefix through
``SMARTCOUNTER_REDIS_PREFIX``) takes several uploads in a row during a call; the moment
the last 201 arrives the process gets SIGKILL. A second process on the same data
directory and prefix must then serve every acknowledged document: the same bytes (and
sha256) from ``GET /api/v1/documents/{id}``, the document listed by
``GET /api/v1/sessions/{sid}``, and a ``document.added`` event in the session's audit file
with an intact hash chain.

What this proves and what it does not: SIGKILL ends the process but not the kernel, so
data written but not yet fsynced still reaches the disk. The test shows that nothing is
acknowledged before it has been written (no write left to a background task or a buffer
in the process); that the writes are also fsynced before the answer (a power cut) is
what ``document_share/storage.py`` and ``sessions/audit.py`` do, and is not tested here.
Redis is not restarted: its own persistence (AOF/RDB) is its configuration's business.

The embedded store (SQLite) is held to the same promise by ``tests/test_restart.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from sessions.audit import verify_chain
from tests.conftest import REDIS_URL
from tests.harness import Client, ServeProcess, drop_redis_prefix, print_logs
from tests.helpers import ASSETS

pytestmark = pytest.mark.redis

SMARTCOUNTER = [sys.executable, "-m", "smartcounter.cli"]
KIOSK_ID = "kiosk-dur"
STAFF, PASSWORD = "dura", "durable-password-1"
UPLOADS = 5
START_TIMEOUT_S = 60


def cli(data_dir: Path, *args: str, stdin: str = "") -> str:
    env = {**os.environ, "SMARTCOUNTER_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [*SMARTCOUNTER, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def with_comment(jpeg: bytes, text: str) -> bytes:
    """The same picture with a JPEG comment segment after SOI: other bytes, other sha256."""
    assert jpeg[:2] == b"\xff\xd8"
    body = text.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + jpeg[2:]


def server_process(data_dir: Path, prefix: str, log: Path) -> ServeProcess:
    return ServeProcess(data_dir, log, SMARTCOUNTER_REDIS_URL=REDIS_URL,
                        SMARTCOUNTER_REDIS_PREFIX=prefix, SMARTCOUNTER_REDIS_DURABILITY="warn")


async def login(http: aiohttp.ClientSession, server: ServeProcess) -> str:
    async with http.post(
        f"{server.url}/api/v1/auth/login", json={"username": STAFF, "password": PASSWORD}
    ) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["token"]


async def post_document(http, server, token, sid, data: bytes, kind: str) -> dict:
    form = aiohttp.FormData()
    form.add_field("kind", kind)
    form.add_field("file", data, filename="scan.jpg", content_type="image/jpeg")
    async with http.post(
        f"{server.url}/api/v1/sessions/{sid}/documents", data=form,
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return body


@pytest.fixture
async def prefix():
    value = f"sctest-dur-{uuid.uuid4().hex[:12]}"
    yield value
    await drop_redis_prefix(REDIS_URL, value)


async def test_acknowledged_documents_survive_kill_9(tmp_path, prefix):
    data_dir = tmp_path / "data"
    kiosk_token = cli(data_dir, "kiosk", "add", KIOSK_ID, "--site", "Durability").strip()
    kiosk_token = kiosk_token.splitlines()[-1]
    cli(data_dir, "staff", "add", STAFF, "--department", "tax", "--password-stdin",
        stdin=PASSWORD + "\n")

    photo = (ASSETS / "obama.jpg").read_bytes()
    scans = [photo] + [with_comment(photo, f"scan {i} {uuid.uuid4()}") for i in range(1, UPLOADS)]
    assert len({hashlib.sha256(s).hexdigest() for s in scans}) == UPLOADS
    kinds = ["id_card", "supporting", "form", "supporting", "supporting"][:UPLOADS]
    acked: list[dict] = []

    first = server_process(data_dir, prefix, tmp_path / "server-1.log")
    second = server_process(data_dir, prefix, tmp_path / "server-2.log")
    staff, kiosk = Client("/staff"), Client("/kiosk")
    try:
        await first.start()
        async with aiohttp.ClientSession() as http:
            staff_token = await login(http, first)
            await staff.connect(first.url, staff_token)
            await staff.call("presence.set", {"state": "available"})
            await kiosk.connect(first.url, kiosk_token)
            ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
            assert ack.get("ok"), ack
            sid = ack["session_id"]
            await staff.wait_for("call.offer", session_id=sid)
            assert (await staff.call("call.accept", {"session_id": sid}))["ok"]

            for data, kind in zip(scans, kinds, strict=True):
                acked.append(await post_document(http, first, kiosk_token, sid, data, kind))
            first.send(signal.SIGKILL)  # the very next thing after the last 201
        assert await asyncio.wait_for(first.proc.wait(), 10) == -signal.SIGKILL
        for client in (staff, kiosk):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)

        # Every acknowledged upload is on disk, committed (nothing half-received left).
        for body, data in zip(acked, scans, strict=True):
            assert body["sha256"] == hashlib.sha256(data).hexdigest()
        incoming = data_dir / "documents" / "incoming"
        assert [p.name for p in incoming.iterdir()] == []

        await second.start()
        async with aiohttp.ClientSession() as http:
            token = await login(http, second)
            auth = {"Authorization": f"Bearer {token}"}
            for body, data in zip(acked, scans, strict=True):
                url = f"{second.url}/api/v1/documents/{body['document_id']}"
                async with http.get(url, headers=auth) as resp:
                    assert resp.status == 200, await resp.text()
                    got = await resp.read()
                assert got == data
                assert hashlib.sha256(got).hexdigest() == body["sha256"]
            async with http.get(f"{second.url}/api/v1/sessions/{sid}", headers=auth) as resp:
                assert resp.status == 200, await resp.text()
                session = await resp.json()
        listed = {d["document_id"]: d for d in session["documents"]}
        assert set(listed) == {b["document_id"] for b in acked}
        for body, data, kind in zip(acked, scans, kinds, strict=True):
            doc = listed[body["document_id"]]
            assert (doc["sha256"], doc["size"], doc["kind"]) == (body["sha256"], len(data), kind)

        audit_path = data_dir / "audit" / f"{sid}.jsonl"
        events = [json.loads(line) for line in audit_path.read_text().splitlines()]
        assert verify_chain(events), events
        added = {e["data"]["document_id"]: e["data"] for e in events
                 if e["type"] == "document.added"}
        for body in acked:
            assert added[body["document_id"]]["sha256"] == body["sha256"]
    except BaseException:
        print_logs(first, second)
        raise
    finally:
        for client in (staff, kiosk):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5)
        await first.stop()
        await second.stop()
