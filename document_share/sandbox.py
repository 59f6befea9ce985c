"""PDF work on untrusted files, out of process and inside limits.

A PDF's page count and pixel size say nothing of what drawing it costs: a 3 KB file of
Form XObjects nested seven deep, each drawing the next ten times, asks PDFium for ten
million draws and gigabytes of memory. So PDFium never runs in the server's process:
a few worker processes (fresh interpreters of their own) each run one job at a time
under an address-space limit (``RLIMIT_AS``), a CPU-time limit per job (``RLIMIT_CPU``)
and a wall-clock timeout, at a low CPU priority. A worker that breaks a limit dies, or
is killed, and is replaced; the job fails with :class:`Unprocessable` saying which limit
it broke.

Fair per session: a session has at most one job in the pool at a time, so one kiosk's
uploads queue behind each other and never occupy more than one worker.

The channel to a worker carries JSON headers and raw bytes, never pickles: a worker is
where a hostile PDF runs, so nothing it sends back can make the server run code, and
every answer is checked for the shape its job promises.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import multiprocessing.connection
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


class Unprocessable(ValueError):
    """The document cannot be processed within the limits (or at all); the message says
    why, for the 422 answer."""


@dataclass(frozen=True)
class SandboxLimits:
    workers: int = 2
    memory_bytes: int = 768 * 1024 * 1024
    # A page the drawing-cost check lets through takes under half a second of a core;
    # a hostile one that check cannot see stops here, at the cost this allows.
    cpu_s: int = 2
    wall_s: float = 4.0


# What a worker answers: that it is ready; then per job the result, a reason the job
# failed, or a reason and its exit.
READY, OK, FAILED, LAST = "ready", "ok", "failed", "last"
STARTUP_S = 30.0
MAX_HEADER = 64 * 1024
MAX_RESULT = 512 * 1024 * 1024  # a page's PNG; the pixel limit keeps real ones far below
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Connection = multiprocessing.connection.Connection


def send_message(conn: Connection, header: dict[str, Any], payload: bytes | None = None) -> None:
    conn.send_bytes(json.dumps({**header, "payload": payload is not None}).encode())
    if payload is not None:
        conn.send_bytes(payload)


def receive_message(conn: Connection) -> tuple[dict[str, Any], bytes | None]:
    """A header (a JSON object) and the payload it announces; ValueError if malformed."""
    header = json.loads(conn.recv_bytes(MAX_HEADER))
    if not isinstance(header, dict):
        raise ValueError("a header is not an object")
    return header, conn.recv_bytes(MAX_RESULT) if header.get("payload") is True else None


def _result(job: str, header: dict[str, Any], payload: bytes | None) -> int | bytes:
    """A worker's result for ``job``, only if it has the shape the job promises."""
    if job == "count":
        value = header.get("value")
        if type(value) is int and value >= 0:
            return value
    elif payload is not None and payload.startswith(PNG_SIGNATURE):
        return payload
    raise ValueError(f"a malformed {job} result")


class _Worker:
    """One worker process (``python -m document_share.sandbox_worker``: a fresh interpreter
    that loads only the PDF code, and none of the server's threads or memory), talking
    over a socket pair."""

    def __init__(self, limits: SandboxLimits) -> None:
        ours, theirs = socket.socketpair()
        with theirs:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "document_share.sandbox_worker", str(theirs.fileno()),
                 str(limits.memory_bytes), str(limits.cpu_s)],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        self.conn = Connection(ours.detach())
        # The job's clock starts once the worker is ready, not while it starts.
        try:
            ready = self._answer(STARTUP_S)
        except Unprocessable:  # not ready in time
            ready = None
        if ready is None or ready[0].get("status") != READY:
            self.kill()
            raise Unprocessable("the document reader could not start; try again")

    def _answer(self, wall_s: float) -> tuple[dict[str, Any], bytes | None] | None:
        """The worker's next answer within ``wall_s``; None if it died or sent garbage."""
        if not self.conn.poll(wall_s):
            raise Unprocessable(f"the document takes longer than {wall_s:g} s to draw")
        try:
            return receive_message(self.conn)
        except (EOFError, OSError, ValueError):
            return None

    def run(self, name: str, args: tuple, wall_s: float) -> tuple[str, Any]:
        """Blocking. (OK, FAILED or LAST; the result or the reason); raises
        :class:`Unprocessable` when the worker broke a limit or answered out of shape
        (it is then dead or must be killed)."""
        try:
            send_message(self.conn, {"job": name, "args": [str(a) if isinstance(a, Path) else a
                                                    for a in args]})
        except OSError:
            raise Unprocessable("the document reader stopped; try again") from None
        answer = self._answer(wall_s)
        if answer is None:
            raise Unprocessable("the document needs more memory or time to draw than is allowed")
        header, payload = answer
        status = header.get("status")
        try:
            if status == OK:
                return OK, _result(name, header, payload)
            if status in (FAILED, LAST) and isinstance(header.get("reason"), str):
                return status, header["reason"][:300]
        except ValueError:
            pass
        raise Unprocessable("the document reader gave a malformed answer")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(5)
        self.conn.close()


@dataclass
class _SessionTurn:
    """One session's place in the pool: one job of it at a time."""

    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    users: int = 0


class RenderSandbox:
    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self.limits = limits or SandboxLimits()
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._slots = asyncio.Semaphore(self.limits.workers)
        self._sessions: dict[str, _SessionTurn] = {}
        self._lock = threading.Lock()
        self.replaced = 0  # workers killed for breaking a limit (a metric)
        self._closed = False

    async def run(self, session_id: str, name: str, *args: Any) -> Any:
        """Job ``name`` (``count``: a PDF's pages, ``render``: a page as PNG bytes) for
        ``session_id``'s document; :class:`Unprocessable` if it fails or breaks a limit."""
        if self._closed:
            raise Unprocessable("the server is shutting down")
        turn = self._sessions.setdefault(session_id, _SessionTurn())
        turn.users += 1
        try:
            async with turn.lock, self._slots:
                job = asyncio.ensure_future(asyncio.to_thread(self._run, name, args))
                try:
                    return await asyncio.shield(job)
                except asyncio.CancelledError:
                    # The worker draws on: its slot and the session's turn are held until
                    # it ends (within the wall timeout), so no more run than the limit.
                    with contextlib.suppress(BaseException):
                        await job
                    raise
        finally:
            turn.users -= 1
            if not turn.users:
                del self._sessions[session_id]

    def _run(self, name: str, args: tuple) -> Any:
        with self._lock:
            if self._closed:
                raise Unprocessable("the server is shutting down")
            worker = self._idle.pop() if self._idle else None
        if worker is not None and not worker.alive():  # died idle (killed from outside)
            worker.kill()
            worker = None
        worker = worker or _Worker(self.limits)
        with self._lock:
            self._busy.add(worker)
        try:
            status, value = worker.run(name, args, self.limits.wall_s)
        except Unprocessable:
            worker.kill()
            self.replaced += 1
            logger.warning("a PDF worker broke its limits (%s) and was replaced", name)
            raise
        finally:
            with self._lock:
                self._busy.discard(worker)
        with self._lock:
            keep = status != LAST and not self._closed
            if keep:
                self._idle.append(worker)
        if not keep:
            worker.kill()
            self.replaced += status == LAST
        if status != OK:
            raise Unprocessable(value)
        return value

    def close(self) -> None:
        """Blocking: ends the workers."""
        with self._lock:
            self._closed = True
            workers, self._idle = [*self._idle, *self._busy], []
        for worker in workers:  # a busy one's job fails: the server is stopping
            worker.kill()
