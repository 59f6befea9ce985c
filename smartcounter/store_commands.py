"""``smartcounter backup`` and ``smartcounter store check|rebuild``: the store as a
projection of the audit trails, and a consistent copy of the embedded store."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from document_share.pages import count_pdf_pages
from document_share.storage import BlobStore
from sessions.audit import AuditLog
from sessions.factory import create_store
from sessions.files import fsync_dir
from sessions.projection import PagesOf, Report, check, rebuild
from sessions.sqlite_schema import current_version
from sessions.sqlite_store import StoreLocked

from .config import Settings


def _pages_of(settings: Settings) -> PagesOf:
    blobs = BlobStore(settings.documents_dir)

    def pages_of(sha256: str, content_type: str) -> int:
        if content_type != "application/pdf":
            return 1
        try:
            return count_pdf_pages(blobs.path_of(sha256))
        except Exception:  # purged, or unreadable: the index still names it
            return 1

    return pages_of


async def _with_store(settings: Settings, exclusive: bool, work):
    """``work(store)`` on the configured store; ``exclusive``: not beside a server."""
    store = create_store(settings.store_kind, path=settings.store_path,
                         redis_url=settings.redis_url, prefix=settings.redis_prefix,
                         exclusive=exclusive)
    try:
        await store.ping()
        return await work(store)
    finally:
        await store.close()


def empty_store_problem(settings: Settings) -> str | None:
    """A data dir whose audit trails hold sessions but whose embedded store has none: a
    store lost, or restored without the trails' later work. Blocking; read-only."""
    if settings.store_kind != "sqlite" or not settings.audit_dir.is_dir():
        return None
    trails = sum(1 for _ in settings.audit_dir.glob("*.jsonl"))
    if not trails:
        return None
    try:
        conn = sqlite3.connect(f"file:{settings.store_path}?mode=ro", uri=True)
        try:
            sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
        finally:
            conn.close()
    except sqlite3.Error:
        sessions = 0  # no store yet, or not one of ours (opening it will say so)
    if sessions:
        return None
    return (f"the embedded store {settings.store_path} holds no sessions but "
            f"{settings.audit_dir} holds {trails} session trail(s): if the store was lost "
            "or restored from a backup, stop the server and run `smartcounter store check`, "
            "then `smartcounter store rebuild`")


def _refusal(settings: Settings) -> str | None:
    """Why ``store check`` or ``rebuild`` cannot run on these settings, or None."""
    if settings.store_kind == "memory":
        return "the in-memory store lives in its server's process"
    has_trails = settings.audit_dir.is_dir() and any(settings.audit_dir.glob("*.jsonl"))
    has_store = settings.store_kind != "sqlite" or settings.store_path.exists()
    if not has_trails and not has_store:
        return (f"nothing to compare in {settings.data_dir.resolve()}: no audit trails and "
                "no store there (another --data-dir?)")
    return None


def cmd_store_check(settings: Settings) -> int:
    if problem := _refusal(settings):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    audit = AuditLog(settings.audit_dir)
    report: Report = asyncio.run(_with_store(
        settings, False,
        lambda store: check(store, audit.session_ids(), audit.read_sync, _pages_of(settings))))
    for difference in report.differences:
        print(difference)
    print(f"{report.sessions} session trail(s) compared with {_where(settings)}: "
          f"{len(report.differences)} difference(s)")
    return 1 if report.differences else 0


def cmd_store_rebuild(settings: Settings) -> int:
    if problem := _refusal(settings):
        print(f"error: {problem}", file=sys.stderr)
        return 2
    audit = AuditLog(settings.audit_dir)

    async def work(store) -> Report:
        if store.shared:  # the embedded store's lock keeps its server out; here, beats
            seen = time.time() - settings.node_ttl_s
            serving = sorted(n for n, info in (await store.nodes()).items()
                             if info.get("seen", 0) >= seen)
            if serving:
                raise StoreLocked(f"node(s) {', '.join(serving)} serve on this store: stop "
                                  "them first")
        return await rebuild(store, audit.session_ids(), audit.read_sync, _pages_of(settings))

    report: Report = asyncio.run(_with_store(settings, True, work))
    added = ", ".join(f"{n} {ADDED.get(what, what)}" for what, n in report.added.items())
    print(f"{report.sessions} session trail(s) read; added to {_where(settings)}: {added}")
    return 0


# How `store rebuild` names what it added.
ADDED = {"print_jobs": "print jobs sent during calls (a decision's jobs are in its case)",
         "sessions_ended": "sessions ended as their trails end them"}


def _where(settings: Settings) -> str:
    if settings.store_kind == "sqlite":
        return f"the embedded store {settings.store_path}"
    return f"Redis {settings.redis_url} (prefix {settings.redis_prefix})"


def backup(source: Path, dest: Path) -> dict[str, Any]:
    """A consistent copy of the embedded store at ``dest`` (SQLite's online backup: one
    read transaction, so writers go on meanwhile), fsynced and checked. Blocking."""
    if not source.exists():
        raise FileNotFoundError(f"no embedded store at {source}")
    if dest.is_dir():
        dest = dest / time.strftime("store-%Y%m%dT%H%M%SZ.sqlite3", time.gmtime())
    replaced = dest.exists()
    partial = dest.with_name(f".{dest.name}.partial")
    partial.unlink(missing_ok=True)
    src = sqlite3.connect(source, timeout=30)
    try:
        out = sqlite3.connect(partial)
        try:
            src.backup(out)  # every page in one step: one snapshot
            out.execute("PRAGMA journal_mode = DELETE")
            problems = out.execute("PRAGMA integrity_check").fetchall()
            if problems != [("ok",)]:
                raise RuntimeError(f"the copy does not check out: {problems}")
            version = current_version(out)
            counts = {table: out.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                      for table in ("sessions", "cases", "documents")}
        finally:
            out.close()
    finally:
        src.close()
    with partial.open("rb+") as f:
        os.fsync(f.fileno())
    os.replace(partial, dest)
    fsync_dir(dest.parent)
    return {"path": dest, "version": version, "replaced": replaced, **counts}


def cmd_backup(settings: Settings, dest: str) -> int:
    if settings.store_kind != "sqlite":
        print("error: `backup` copies the embedded store; back Redis up with its own "
              "tools (its append-only file, or BGSAVE and the RDB file)", file=sys.stderr)
        return 2
    target = Path(dest)
    if dest.endswith(("/", os.sep)):  # meant as a directory: dated copies in it
        target.mkdir(parents=True, exist_ok=True)
    done = backup(settings.store_path, target)
    print(f"backed up {settings.store_path} to {done['path']}"
          f"{' (replacing the file there)' if done['replaced'] else ''}: schema "
          f"{done['version']}, {done['sessions']} sessions, {done['cases']} cases, "
          f"{done['documents']} documents. Back up the rest of the data dir (documents, "
          "audit, accounts, catalog.json, secret.key, recordings) with your usual tools.")
    return 0
