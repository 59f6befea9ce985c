"""A session's evidence as one file: its audit chain (and whether it verifies, against its
chain and its anchor in the ledger), the ledger's head at the time (keep the file
elsewhere and it pins the ledger), and the sha256 of every file it refers to, checked
against the files as they are now."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from .audit import AuditLog, Verdict
from .files import sha256_file


def read_trail(audit: AuditLog, session_id: str) -> tuple[list[dict[str, Any]], str | None]:
    """The events and where the trail breaks (None if it holds): its chain, and its end
    against the anchor ledger (events removed from the end, the file deleted). A line
    that is not JSON at all is a break too."""
    verdict = audit.verify_sync(session_id)
    return verdict.events, verdict.broken


def _anchor(verdict: Verdict) -> dict[str, Any] | None:
    a = verdict.anchor
    return {"seq": a["seq"], "hash": a["event"], "ledger_entry": a["n"]} if a else None


def export(
    audit: AuditLog, session_id: str, file_of: Any, recordings: list[Path]
) -> dict[str, Any]:
    """``file_of(sha256)`` is where a stored file lives (it may be gone, e.g. purged)."""
    verdict = audit.verify_sync(session_id)
    events, broken = verdict.events, verdict.broken
    head = verdict.ledger_head
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
        "verified": verdict.verified,
        "break": broken,
        "anchor": _anchor(verdict),
        "unanchored_events": max(verdict.unanchored, 0),
        "ledger_head": {"entry": head["n"], "hash": head["hash"]} if head else None,
        "events": events,
        "files": files,
        "recordings": [{"name": p.name, "sha256": sha256_file(p), "bytes": p.stat().st_size}
                       for p in recordings],
    }


def write_export(report: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
