"""A session's evidence as one file: its audit chain (and whether it verifies), and the
sha256 of every file it refers to, checked against the files as they are now."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .audit import AuditLog, find_break
from .files import sha256_file


def read_trail(audit: AuditLog, session_id: str) -> tuple[list[dict[str, Any]], str | None]:
    """The events and where the chain breaks (None if it holds). A line that is not JSON
    at all is a break too."""
    try:
        events = audit.read_sync(session_id)
    except ValueError as exc:
        return [], f"the trail is not JSON lines any more: {exc}"
    return events, find_break(events)


def export(
    audit: AuditLog, session_id: str, file_of: Any, recordings: list[Path]
) -> dict[str, Any]:
    """``file_of(sha256)`` is where a stored file lives (it may be gone, e.g. purged)."""
    events, broken = read_trail(audit, session_id)
    files = []
    for event in events:
        data = event.get("data") or {}
        named = []
        if event["type"] == "document.added":
            named.append(("document", data.get("document_id"), data.get("sha256")))
        elif event["type"] == "signature.submitted" and data.get("png_sha256"):
            named.append(("signature", data.get("signature_id"), data["png_sha256"]))
        elif event["type"] == "case.decided":
            named += [("result", d["document_id"], d["sha256"])
                      for d in data.get("result_documents", [])]
        for kind, item_id, sha256 in named:
            path = file_of(sha256)
            files.append({"kind": kind, "id": item_id, "sha256": sha256,
                          "present": path.exists(),
                          "intact": path.exists() and sha256_file(path) == sha256})
    return {
        "session_id": session_id,
        "exported_at": time.time(),
        "verified": broken is None and bool(events),
        "break": broken,
        "events": events,
        "files": files,
        "recordings": [{"name": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size}
                       for p in recordings],
    }


def write_export(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
