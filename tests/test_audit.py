"""The audit trail as evidence: served with its verdict, verified and exported by the
CLI, and any edit, removal or swap of a stored event detected."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import aiohttp
import pytest

from tests.harness import running_server
from tests.test_cli import run_cli
from tests.test_media import open_call
from tests.test_verification_flow import upload

ASSETS = Path(__file__).parent / "assets"


@pytest.fixture
async def finished_call(tmp_path):
    """A call with a document, hung up; its trail's path."""
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        kiosk, _staff, sid = await open_call(server, stack)
        _, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes())
        assert (await kiosk.call("call.hangup", {"session_id": sid}))["ok"]
        yield server, sid, doc, server.settings.audit_dir / f"{sid}.jsonl"


def rewrite(path: Path, change) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(change(lines)) + "\n")


def edit_one(lines: list[str]) -> list[str]:
    event = json.loads(lines[2])
    event["data"]["edited"] = True
    return [*lines[:2], json.dumps(event), *lines[3:]]


@pytest.mark.parametrize(
    "tamper,words",
    [
        (edit_one, "was altered"),
        (lambda lines: [*lines[:2], *lines[3:]], "removed"),
        (lambda lines: [*lines[:2], lines[3], lines[2], *lines[4:]], "reordered"),
        (lambda lines: [*lines[:2], "{not json", *lines[3:]], "not JSON"),
    ],
    ids=["edit", "delete", "swap", "garbage"],
)
async def test_tampering_is_detected_by_audit_verify_and_the_api(finished_call, tamper, words):
    server, sid, _doc, path = finished_call
    before = run_cli("audit", "verify", sid, data_dir=server.settings.data_dir)
    assert before.returncode == 0 and "chain verified" in before.stdout, before.stdout
    rewrite(path, tamper)
    after = run_cli("audit", "verify", sid, data_dir=server.settings.data_dir)
    assert after.returncode == 1 and "BROKEN" in after.stdout and words in after.stdout, (
        after.stdout)
    async with aiohttp.ClientSession() as http:
        headers = {"Authorization": f"Bearer {await server.login('sup')}"}
        async with http.get(f"{server.url}/api/v1/sessions/{sid}/audit",
                            headers=headers) as resp:
            body = await resp.json()
    assert resp.status == 200 and body["verified"] is False and words in body["break"]


async def test_the_api_serves_the_trail_to_supervisors_only(finished_call):
    server, sid, _doc, _path = finished_call
    async with aiohttp.ClientSession() as http:
        for who, status in (("sup", 200), ("alice", 403)):
            headers = {"Authorization": f"Bearer {await server.login(who)}"}
            async with http.get(f"{server.url}/api/v1/sessions/{sid}/audit",
                                headers=headers) as resp:
                assert resp.status == status
                if status == 200:
                    body = await resp.json()
                    assert body["verified"] is True
                    assert [e["seq"] for e in body["events"]] == list(
                        range(1, len(body["events"]) + 1))
                    assert body["events"][-1]["type"] == "session.closed"


async def test_export_writes_the_chain_and_the_files_hashes(finished_call, tmp_path):
    server, sid, doc, _path = finished_call
    out = tmp_path / "evidence.json"
    result = run_cli("audit", "export", sid, "--out", str(out),
                     data_dir=server.settings.data_dir)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(out.read_text())
    assert report["verified"] is True and report["session_id"] == sid
    assert {"kind": "document", "id": doc["document_id"], "sha256": doc["sha256"],
            "present": True, "intact": True} in report["files"]
    assert report["events"][-1]["type"] == "session.closed"
    missing = run_cli("audit", "verify", "no-such-session", data_dir=server.settings.data_dir)
    assert missing.returncode == 2 and "no audit trail" in missing.stderr
