"""``smartcounter backup`` and ``smartcounter store check|rebuild``: the store as a
projection of the audit trails, and a consistent copy of the embedded store."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from document_share.pages import count_pdf_pages
from document_share.storage import BlobStore
from sessions.audit import AuditLog
from sessions.factory import create_store
from sessions.files import fsync_dir
from sessions.projection import PagesOf, Report, check, rebuild
from sessions.sqlite_schema import current_version
from sessions.sqlite_store import SQLiteStore

from .config import Settings


def _trails(audit: AuditLog) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for session_id in audit.session_ids():
        yield session_id, audit.read_sync(session_id)


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
    if settings.store_kind == "sqlite":
        store = SQLiteStore(settings.store_path, exclusive=exclusive)
    else:
        store = create_store(settings.store_kind, redis_url=settings.redis_url,
                             prefix=settings.redis_prefix)
    try:
        await store.ping()
        return await work(store)
    finally:
        await store.close()


def cmd_store_check(settings: Settings) -> int:
    if settings.store_kind == "memory":
        print("error: the in-memory store lives in its server's process", file=sys.stderr)
        return 2
    audit = AuditLog(settings.audit_dir)
    report: Report = asyncio.run(_with_store(
        settings, False, lambda store: check(store, _trails(audit), _pages_of(settings))))
    for difference in report.differences:
        print(difference)
    print(f"{report.sessions} session trail(s) compared with the {settings.store_kind} store: "
          f"{len(report.differences)} difference(s)")
    return 1 if report.differences else 0


def cmd_store_rebuild(settings: Settings) -> int:
    if settings.store_kind == "memory":
        print("error: the in-memory store lives in its server's process", file=sys.stderr)
        return 2
    audit = AuditLog(settings.audit_dir)
    report: Report = asyncio.run(_with_store(
        settings, True, lambda store: rebuild(store, _trails(audit), _pages_of(settings))))
    added = ", ".join(f"{n} {what}" for what, n in report.added.items())
    print(f"{report.sessions} session trail(s) read; added to the {settings.store_kind} "
          f"store: {added}")
    return 0


def backup(source: Path, dest: Path) -> dict[str, Any]:
    """A consistent copy of the embedded store at ``dest`` (SQLite's online backup: one
    read transaction, so writers go on meanwhile), fsynced and checked. Blocking."""
    if not source.exists():
        raise FileNotFoundError(f"no embedded store at {source}")
    if dest.is_dir():
        dest = dest / time.strftime("store-%Y%m%dT%H%M%SZ.sqlite3", time.gmtime())
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
    return {"path": dest, "version": version, **counts}


def cmd_backup(settings: Settings, dest: str) -> int:
    if settings.store_kind != "sqlite":
        print("error: `backup` copies the embedded store; back Redis up with its own "
              "tools (its append-only file, or BGSAVE and the RDB file)", file=sys.stderr)
        return 2
    done = backup(settings.store_path, Path(dest))
    print(f"backed up {settings.store_path} to {done['path']} (schema {done['version']}: "
          f"{done['sessions']} sessions, {done['cases']} cases, {done['documents']} "
          "documents); the files under the data dir (documents, audit, accounts) are "
          "backed up with your usual tools")
    return 0
