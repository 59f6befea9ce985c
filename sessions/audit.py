"""The per-session audit trail: an append-only JSON-lines file per session under the
data dir, each event chained to the previous one by its sha256; and the anchor ledger,
which records the head of every trail somewhere other than the trail itself.

``append`` returns only after the event is fsynced, so an action acknowledged after it
can never be missing from the trail.

Why an anchor, where the ledger lives, what each append costs, the order of the two
writes under crashes, and what it does not stop: docs/audit.md.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .files import fsync_dir

GENESIS = "0" * 64
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_HASH = re.compile(r"^[0-9a-f]{64}$")
_DAY_FILE = re.compile(r"^\d{4}-\d{2}-\d{2}\.jsonl$")

logger = logging.getLogger(__name__)


def event_hash(event: dict[str, Any]) -> str:
    body = {k: event[k] for k in ("seq", "at", "type", "data", "prev_hash")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def anchor_hash(entry: dict[str, Any]) -> str:
    """Over the entry's fields joined by ``|`` (none can hold one: the session id is
    [A-Za-z0-9_-], the hashes hex)."""
    body = f"{entry['n']}|{entry['sid']}|{entry['seq']}|{entry['event']}|{entry['prev']}"
    return hashlib.sha256(body.encode()).hexdigest()


# A ledger line, exactly as written (anything else is not an entry): parsed without
# JSON, since verifying reads every entry from an anchor to the head.
_ENTRY = re.compile(
    rb'\{"n":([1-9][0-9]{0,17}),"sid":"([A-Za-z0-9_-]{1,128})","seq":([1-9][0-9]{0,17}),'
    rb'"event":"([0-9a-f]{64})","prev":"([0-9a-f]{64})","hash":"([0-9a-f]{64})"\}'
)


def _entry_line(entry: dict[str, Any]) -> bytes:
    return (f'{{"n":{entry["n"]},"sid":"{entry["sid"]}","seq":{entry["seq"]},'
            f'"event":"{entry["event"]}","prev":"{entry["prev"]}","hash":"{entry["hash"]}"}}'
            "\n").encode()


def _parse_entry(raw: bytes) -> dict[str, Any] | None:
    m = _ENTRY.fullmatch(raw)
    if m is None:
        return None
    n, sid, seq, event, prev, hash_ = m.groups()
    return {"n": int(n), "sid": sid.decode(), "seq": int(seq), "event": event.decode(),
            "prev": prev.decode(), "hash": hash_.decode()}


def _describe(anchor: dict[str, Any]) -> str:
    return (f"the anchor records event {anchor['seq']} (hash {anchor['event']}, "
            f"ledger entry {anchor['n']})")


def find_break(
    events: list[dict[str, Any]], anchor: dict[str, Any] | None = None
) -> str | None:
    """Where and how the trail is broken (an event edited, removed, inserted or moved;
    with its latest ``anchor`` from the ledger, also events removed from its end or the
    trail rewritten), or None when it holds. Events after the anchor are fine when their
    chain holds: they were written just before the anchor (or a crash between the two)."""
    prev = GENESIS
    for expected_seq, event in enumerate(events, start=1):
        try:
            if event_hash(event) != event.get("hash"):
                return f"event {expected_seq} ({event.get('type')}) was altered"
        except (KeyError, TypeError, AttributeError):
            return f"event {expected_seq} is malformed"
        if event.get("seq") != expected_seq:
            return (f"event {expected_seq} is numbered {event.get('seq')}: events were "
                    "removed, inserted or reordered before it")
        if event.get("prev_hash") != prev:
            return (f"event {expected_seq} ({event.get('type')}) does not follow the one "
                    "before it: events were removed or reordered")
        prev = event["hash"]
    if anchor is None:
        return None
    seq = anchor["seq"]
    if not events:
        return f"the trail has no events but {_describe(anchor)}: the trail was emptied"
    if seq > len(events):
        return (f"the trail ends at event {len(events)} but {_describe(anchor)}: events "
                "were removed from its end")
    event = events[seq - 1]
    if event["hash"] != anchor["event"]:
        return (f"event {seq} ({event.get('type')}) has hash {event['hash']} but "
                f"{_describe(anchor)}: the trail was rewritten")
    return None


def verify_chain(events: list[dict[str, Any]]) -> bool:
    """The chain alone (no anchor): see ``AuditLog.verify_sync`` for the full check."""
    return find_break(events) is None


@dataclass
class Verdict:
    """A trail checked against its chain and its anchor."""

    session_id: str
    events: list[dict[str, Any]]
    broken: str | None
    anchor: dict[str, Any] | None = None
    ledger_head: dict[str, Any] | None = None
    exists: bool = True

    @property
    def verified(self) -> bool:
        return self.broken is None and bool(self.events)

    @property
    def unanchored(self) -> int:
        """How many of the last events the ledger does not record (yet)."""
        return len(self.events) - (self.anchor["seq"] if self.anchor else 0)

    @property
    def found(self) -> bool:
        """Whether there is anything to report on: a trail, or an anchor for one."""
        return self.exists or self.anchor is not None or self.broken is not None


@dataclass
class LedgerScan:
    """The ledger read backwards from its head: the latest anchor of each session
    reached, and the first problem met (the scan stops there)."""

    head: dict[str, Any] | None = None
    anchors: dict[str, dict[str, Any]] = field(default_factory=dict)
    entries: int = 0
    problem: str | None = None


class AnchorLedger:
    """The hash-chained ledger of trail heads (see the module docstring)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def files(self) -> list[Path]:
        return sorted(p for p in self.directory.iterdir() if _DAY_FILE.fullmatch(p.name))

    def append(self, session_id: str, seq: int, event_hash_: str, at: float) -> dict[str, Any]:
        """Record that ``session_id``'s trail reached event ``seq`` with that hash.
        Blocking; durable (fsynced) when it returns."""
        if not _SAFE_ID.fullmatch(session_id) or not _HASH.fullmatch(event_hash_) or seq < 1:
            raise ValueError(f"not an anchor: {session_id!r} {seq!r} {event_hash_!r}")
        lock_fd = os.open(self.directory / "LOCK", os.O_RDWR | os.O_CREAT, 0o640)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            files = self.files()
            today = self.directory / time.strftime("%Y-%m-%d.jsonl", time.gmtime(at))
            # Never behind the newest file (another node's clock may be ahead of ours):
            # the ledger's order is the files' order, then the lines'.
            target = today if not files or today.name > files[-1].name else files[-1]
            n, prev = self._tail(files)
            entry = {"n": n + 1, "sid": session_id, "seq": seq, "event": event_hash_,
                     "prev": prev}
            entry["hash"] = anchor_hash(entry)
            line = _entry_line(entry)
            created = not target.exists()
            fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                fsync_dir(self.directory)
            return entry
        finally:
            os.close(lock_fd)  # releases the lock

    def _tail(self, files: list[Path]) -> tuple[int, str]:
        """The number and hash of the last entry (0 and GENESIS for none). Under the
        lock: completes or cuts off a last line a crash left without its newline."""
        for path in reversed(files):
            with path.open("rb+") as f:
                size = f.seek(0, os.SEEK_END)
                if size == 0:
                    continue
                chunk_at = max(0, size - 64 * 1024)
                f.seek(chunk_at)
                chunk = f.read()
                if not chunk.endswith(b"\n"):
                    start = chunk.rfind(b"\n") + 1
                    if _parse_entry(chunk[start:]) is not None:  # whole but its newline
                        f.write(b"\n")
                        chunk += b"\n"
                    else:  # torn: never acknowledged, so never relied on
                        logger.warning("anchor ledger %s: cutting off a torn last line",
                                       path.name)
                        f.truncate(chunk_at + start)
                        chunk = chunk[:start]
                    f.flush()
                    os.fsync(f.fileno())
                    if not chunk:
                        continue
                last = chunk.rstrip(b"\n").rsplit(b"\n", 1)[-1]
                entry = _parse_entry(last)
                if entry is not None:
                    return entry["n"], entry["hash"]
                # Edited by hand, or damaged: go on chaining (from the line's own hash)
                # rather than stop every node's audit; verification reports the line.
                logger.error("anchor ledger %s: the last line is not a valid entry",
                             path.name)
                return 0, hashlib.sha256(last).hexdigest()
        return 0, GENESIS

    def _lines_backwards(self) -> Iterator[tuple[str, int, bytes]]:
        files = self.files()
        for index in range(len(files) - 1, -1, -1):
            name = files[index].name
            lines = files[index].read_bytes().split(b"\n")
            if lines[-1] == b"":
                lines.pop()
            elif index == len(files) - 1 and _parse_entry(lines[-1]) is None:
                # Being written right now, or torn by a crash: not an entry (yet).
                # (Whole but for its newline, it is one.)
                lines.pop()
            for lineno in range(len(lines), 0, -1):
                yield name, lineno, lines[lineno - 1]

    def scan(self, stop: Callable[[dict[str, Any]], bool] | None = None) -> LedgerScan:
        """Walk back from the head, checking each entry's hash and its link to the
        next, until ``stop(entry)`` (or the start, which must be entry 1)."""
        result = LedgerScan()
        anchors = result.anchors
        later: dict[str, Any] | None = None
        later_where: tuple[str, int] = ("", 0)
        for name, lineno, raw in self._lines_backwards():
            entry = _parse_entry(raw)
            if entry is None:
                result.problem = (f"the anchor ledger is broken at {name} line {lineno}: "
                                  "not a ledger entry")
                return result
            if anchor_hash(entry) != entry["hash"]:
                result.problem = (f"the anchor ledger is broken: entry {entry['n']} "
                                  f"({name} line {lineno}) was altered")
                return result
            if later is not None and (later["prev"] != entry["hash"]
                                      or later["n"] != entry["n"] + 1):
                result.problem = (f"the anchor ledger is broken: entry {later['n']} "
                                  f"({later_where[0]} line {later_where[1]}) does not "
                                  f"follow entry {entry['n']} ({name} line {lineno}): "
                                  "entries were removed, inserted or reordered")
                return result
            result.entries += 1
            if later is None:
                result.head = entry
            if entry["sid"] not in anchors:
                anchors[entry["sid"]] = entry
            if stop is not None and stop(entry):
                return result
            later = entry
            later_where = (name, lineno)
        if later is not None and (later["n"] != 1 or later["prev"] != GENESIS):
            result.problem = (f"the anchor ledger's beginning is missing: it starts at "
                              f"entry {later['n']} ({later_where[0]} line {later_where[1]})")
        return result

    def head(self) -> dict[str, Any] | None:
        return self.scan(stop=lambda entry: True).head

    def last_anchor(self, session_id: str) -> LedgerScan:
        """The session's latest anchor (``scan.anchors.get(session_id)``), and any
        break in the ledger between it and the head."""
        return self.scan(stop=lambda entry: entry["sid"] == session_id)


class AuditLog:
    def __init__(
        self, directory: Path, clock=time.time, anchors: AnchorLedger | None = None
    ) -> None:
        self.directory = directory
        self._clock = clock
        self._locks: dict[str, asyncio.Lock] = {}
        directory.mkdir(parents=True, exist_ok=True)
        self.anchors = anchors or AnchorLedger(directory / "anchors")

    def _path(self, session_id: str) -> Path:
        if not _SAFE_ID.fullmatch(session_id):
            raise ValueError(f"unsafe session id {session_id!r}")
        return self.directory / f"{session_id}.jsonl"

    def session_ids(self) -> list[str]:
        """Every session with a trail file."""
        return sorted(p.stem for p in self.directory.glob("*.jsonl")
                      if _SAFE_ID.fullmatch(p.stem))

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
            # directory, the purge command); the asyncio lock those of this one. It is
            # held over the anchor too, so a session's anchors are in seq order.
            fcntl.flock(fd, fcntl.LOCK_EX)
            return self._append_locked(fd, path, session_id, type_, data)
        finally:
            os.close(fd)  # releases the lock

    def _append_locked(
        self, fd: int, path: Path, session_id: str, type_: str, data: dict[str, Any]
    ) -> dict[str, Any]:
        _cut_torn_tail(fd, path)
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
        if last is None:
            # A new trail: its name must be durable before its anchor is, or a power
            # cut could leave an anchor for a file that never reached the disk.
            fsync_dir(path.parent)
        # Only now the anchor: a crash in between leaves the trail ahead of it, which
        # verification accepts, never behind it, which it reports as truncation.
        self.anchors.append(session_id, event["seq"], event["hash"], event["at"])
        return event

    async def read(self, session_id: str) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self.read_sync, session_id)

    def read_sync(self, session_id: str) -> list[dict[str, Any]]:
        path = self._path(session_id)
        try:
            f = path.open(encoding="utf-8")
        except FileNotFoundError:
            return []
        with f:
            fcntl.flock(f.fileno(), fcntl.LOCK_SH)  # no half-written line
            return [json.loads(line) for line in f if line.strip()]

    def verify_sync(self, session_id: str) -> Verdict:
        """The trail checked against its chain and its latest anchor. Blocking."""
        path = self._path(session_id)
        # The ledger first: an append landing between the two reads then makes the
        # trail longer than the anchor read (accepted), never shorter.
        scan = self.anchors.last_anchor(session_id)
        return self._verdict(session_id, path, scan.anchors.get(session_id), scan,
                             ledger_problem=scan.problem)

    def verify_all_sync(self) -> tuple[LedgerScan, list[Verdict]]:
        """The whole ledger, back to its first entry (its problem, if any, is the scan's
        and not repeated in each verdict); and every trail, and every session the ledger
        anchors (whose trail may be gone), checked against it. Blocking."""
        scan = self.anchors.scan()
        sids = sorted(set(scan.anchors) | set(self.session_ids()))
        return scan, [self._verdict(sid, self._path(sid), scan.anchors.get(sid), scan)
                      for sid in sids if _SAFE_ID.fullmatch(sid)]

    def _verdict(
        self, session_id: str, path: Path, anchor: dict[str, Any] | None, scan: LedgerScan,
        ledger_problem: str | None = None,
    ) -> Verdict:
        exists = path.exists()
        verdict = Verdict(session_id, [], None, anchor, scan.head, exists)
        if not exists:
            if anchor is not None:
                verdict.broken = (f"the trail file is missing but {_describe(anchor)}: "
                                  "the trail was deleted")
        else:
            try:
                verdict.events = self.read_sync(session_id)
            except ValueError as exc:
                verdict.broken = f"the trail is not JSON lines any more: {exc}"
            else:
                verdict.broken = find_break(verdict.events, anchor)
        if ledger_problem:
            # The entries after an anchor are what vouch for it: with them broken, a
            # trail cut short could look whole.
            verdict.broken = "; ".join(filter(None, [verdict.broken, ledger_problem]))
        return verdict


def _cut_torn_tail(fd: int, path: Path) -> None:
    """A last line without its newline was being written when the process died: never
    acknowledged, so it is cut off (as the ledger's readers ignore a torn entry), and
    the next event chains onto the last whole one."""
    size = os.fstat(fd).st_size
    if size == 0:
        return
    with path.open("rb") as f:
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return
        start = max(0, size - 64 * 1024)
        f.seek(start)
        tail = f.read()
    keep = start + tail.rfind(b"\n") + 1 if b"\n" in tail else 0
    logger.warning("audit trail %s ends in a torn line (%d bytes): cut off", path.name,
                   size - keep)
    os.ftruncate(fd, keep)
    os.fsync(fd)


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
