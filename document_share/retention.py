"""Retention: the documents, page images and signature images of sessions closed longer
ago than the retention period are deleted; their hashes stay in the record.

Works from the audit trails (which every node writes, whatever the store): a session's
trail names every file it stored (``document.added``, ``signature.submitted``,
``case.decided`` results) and says when it ended. Files are content-addressed and may be
shared between sessions, so a file still named by a session that is kept stays. Each
purged session's trail gets a ``documents.purged`` event listing what was deleted, and is
skipped next time.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from sessions.audit import AuditLog

from .storage import BlobStore

ENDINGS = ("session.closed", "session.abandoned")


@dataclass
class PurgeReport:
    sessions: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    kept_shared: list[str] = field(default_factory=list)


def _hashes(events: list[dict]) -> set[str]:
    found: set[str] = set()
    for event in events:
        data = event.get("data") or {}
        if event["type"] == "document.added" and data.get("sha256"):
            found.add(data["sha256"])
        elif event["type"] == "signature.submitted" and data.get("png_sha256"):
            found.add(data["png_sha256"])
        elif event["type"] == "case.decided":
            found.update(d["sha256"] for d in data.get("result_documents", []))
    return found


def purge(
    audit: AuditLog, blobs: BlobStore, pages_dir: Path, older_than_s: float,
    now: float | None = None, dry_run: bool = False,
) -> PurgeReport:
    """Blocking file work; returns what was (or, with ``dry_run``, would be) deleted."""
    cutoff = (time.time() if now is None else now) - older_than_s
    expired: dict[str, set[str]] = {}
    keep: set[str] = set()
    for path in sorted(audit.directory.glob("*.jsonl")):
        session_id = path.stem
        events = audit.read_sync(session_id)
        if any(e["type"] == "documents.purged" for e in events):
            continue
        ended = next((e for e in reversed(events) if e["type"] in ENDINGS), None)
        hashes = _hashes(events)
        if ended is not None and ended["at"] < cutoff and events[-1]["at"] < cutoff:
            expired[session_id] = hashes
        else:
            keep |= hashes
    report = PurgeReport()
    for session_id, hashes in expired.items():
        deleted = sorted(hashes - keep)
        report.sessions.append(session_id)
        report.files.extend(deleted)
        report.kept_shared.extend(sorted(hashes & keep))
        if dry_run:
            continue
        for sha256 in deleted:
            blobs.path_of(sha256).unlink(missing_ok=True)
            shutil.rmtree(pages_dir / sha256[:2] / sha256, ignore_errors=True)
        audit.append_sync(
            session_id, "documents.purged",
            {"sha256": deleted, "kept_shared": sorted(hashes & keep),
             "older_than_s": older_than_s},
        )
    return report
