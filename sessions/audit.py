"""The per-session audit trail: an append-only JSON-lines file per session under the
data dir, each event chained to the previous one by its sha256.

``append`` returns only after the event is fsynced, so an action acknowledged after it
can never be missing from the trail.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


def event_hash(event: dict[str, Any]) -> str:
    body = {k: event[k] for k in ("seq", "at", "type", "data", "prev_hash")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def find_break(events: list[dict[str, Any]]) -> str | None:
    """Where and how the chain is broken (an event edited, removed, inserted or moved),
    or None when it holds."""
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        try:
            if event_hash(event) != event.get("hash"):
                return f"event {expected_seq} ({event.get('type')}) was altered"
        except (KeyError, TypeError):
            return f"event {expected_seq} is malformed"
        if event.get("seq") != expected_seq:
            return (f"event {expected_seq} is numbered {event.get('seq')}: events were "
                    "removed, inserted or reordered before it")
        if event.get("prev_hash") != prev:
            return (f"event {expected_seq} ({event.get('type')}) does not follow the one "
                    "before it: events were removed or reordered")
        prev = event["hash"]
    return None


def verify_chain(events: list[dict[str, Any]]) -> bool:
    return find_break(events) is None


class AuditLog:
    def __init__(self, directory: Path, clock=time.time) -> None:
        self.directory = directory
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, session_id: str) -> Path:
        if not _SAFE_ID.match(session_id):
            raise ValueError(f"unsafe session id {session_id!r}")
        return self.directory / f"{session_id}.jsonl"

    async def append(self, session_id: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            return await asyncio.to_thread(self.append_sync, session_id, type_, data)

    def forget(self, session_id: str) -> None:
        """Drop the per-session lock once the session is over (keeps memory flat)."""
        lock = self._locks.get(session_id)
        if lock is not None and not lock.locked():
            del self._locks[session_id]

    def append_sync(self, session_id: str, type_: str, data: dict[str, Any]) -> dict[str, Any]:
        """The blocking append (for commands that run outside the event loop)."""
        path = self._path(session_id)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        try:
            # The file lock orders appends from several processes (nodes sharing the
            # directory, the purge command); the asyncio lock those of this one.
            fcntl.flock(fd, fcntl.LOCK_EX)
            return self._append_locked(fd, path, type_, data)
        finally:
            os.close(fd)  # releases the lock

    def _append_locked(
        self, fd: int, path: Path, type_: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        last = _last_event(path)
        event = {
            "seq": (last["seq"] + 1) if last else 1,
            "at": self._clock(),
            "type": type_,
            "data": data,
            "prev_hash": last["hash"] if last else GENESIS,
        }
        event["hash"] = event_hash(event)
        line = json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n"
        os.write(fd, line.encode())
        os.fsync(fd)
        return event

    async def read(self, session_id: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.read_sync, session_id)

    def read_sync(self, session_id: str) -> list[dict[str, Any]]:
        path = self._path(session_id)
        if not path.exists():
            return []
        with path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


def _last_event(path: Path) -> dict[str, Any] | None:
    """The last line of the file, read from its end (trails stay short, but need not)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size == 0:
                return None
            chunk = min(size, 64 * 1024)
            f.seek(size - chunk)
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    return json.loads(lines[-1]) if lines else None
