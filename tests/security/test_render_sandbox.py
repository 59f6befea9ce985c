"""The PDF sandbox on its own: limits kill the job and not the pool, and one session's
slow document does not hold another's."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import threading
import time

import pytest

from document_share import sandbox as sandbox_module
from document_share.sandbox import RenderSandbox, SandboxLimits, Unprocessable
from tests.security.hostile_files import nested_xobject_pdf, ordinary_pdf


@pytest.fixture
async def sandbox():
    box = RenderSandbox(SandboxLimits(workers=2, memory_bytes=512 * 1024 * 1024, cpu_s=5,
                                      wall_s=3.0))
    yield box
    await asyncio.to_thread(box.close)


@pytest.fixture
def files(tmp_path):
    paths = {}
    for name, data in (("bomb", nested_xobject_pdf(7)), ("plain", ordinary_pdf(2)),
                       ("junk", b"%PDF-1.4\nnot really\n")):
        paths[name] = tmp_path / f"{name}.pdf"
        paths[name].write_bytes(data)
    return paths


async def test_an_ordinary_pdf_is_counted_and_drawn(sandbox, files):
    assert await sandbox.run("s1", "count", files["plain"]) == 2
    png = await sandbox.run("s1", "render", files["plain"], 2, 240, 40_000_000)
    assert png.startswith(b"\x89PNG")


async def test_a_drawing_bomb_breaks_a_limit_and_the_pool_goes_on(sandbox, files):
    started = time.monotonic()
    with pytest.raises(Unprocessable, match=r"memory|longer than"):
        await sandbox.run("s1", "render", files["bomb"], 1, 240, 40_000_000)
    assert time.monotonic() - started < 5
    assert sandbox.replaced == 1
    png = await sandbox.run("s1", "render", files["plain"], 1, 240, 40_000_000)
    assert png.startswith(b"\x89PNG")


async def test_an_unreadable_pdf_is_a_reason_not_a_dead_worker(sandbox, files):
    with pytest.raises(Unprocessable, match=r"cannot be read|PDF"):
        await sandbox.run("s1", "count", files["junk"])
    assert sandbox.replaced == 0


async def test_one_sessions_bombs_do_not_hold_another_sessions_document(sandbox, files):
    bombs = [asyncio.create_task(sandbox.run("attacker", "render", files["bomb"], 1, 240,
                                             40_000_000)) for _ in range(3)]
    await asyncio.sleep(0.2)  # the first bomb is drawing
    started = time.monotonic()
    png = await sandbox.run("citizen", "render", files["plain"], 1, 240, 40_000_000)
    waited = time.monotonic() - started
    assert png.startswith(b"\x89PNG")
    assert waited < 2, waited  # not behind the attacker's queue
    results = await asyncio.gather(*bombs, return_exceptions=True)
    assert all(isinstance(r, Unprocessable) for r in results)


class _Planted:
    """What a worker taken over by a PDFium exploit might send: unpickling it runs code."""

    def __init__(self, marker) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("answer", ["pickle", "wrong shape", "not json"])
def test_a_taken_over_worker_cannot_make_the_server_run_code(tmp_path, answer):
    marker = tmp_path / "ran"
    ours, theirs = socket.socketpair()
    worker = sandbox_module._Worker.__new__(sandbox_module._Worker)
    worker.conn = sandbox_module.Connection(ours.detach())
    worker.proc = subprocess.Popen(["sleep", "30"])
    evil = sandbox_module.Connection(theirs.detach())

    def respond() -> None:
        evil.recv_bytes()  # the job
        if answer == "pickle":
            evil.send(_Planted(marker))
        elif answer == "wrong shape":  # a render job answered with a count
            evil.send_bytes(json.dumps({"status": "ok", "value": 3, "payload": False}).encode())
        else:
            evil.send_bytes(b"\x80\x04not json")

    responder = threading.Thread(target=respond)
    responder.start()
    try:
        with pytest.raises(Unprocessable):
            worker.run("render", (tmp_path / "x.pdf", 1, 240, 40_000_000), 5.0)
    finally:
        responder.join(5)
        worker.kill()
        evil.close()
    assert not marker.exists()
