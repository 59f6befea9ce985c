"""`smartcounter purge`: old closed sessions lose their files but keep their hashes;
files shared with a kept session stay; the server answers 410 for what is gone."""

from __future__ import annotations

import contextlib
import io
import json

from PIL import Image

from sessions.audit import verify_chain
from tests.harness import Client, run_cli, running_server
from tests.helpers import ASSETS, audit_events, fetch, open_call, signature_png, upload


def png_bytes(colour: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (200, 100), colour).save(out, "PNG")
    return out.getvalue()


async def test_purge_deletes_old_files_keeps_shared_ones_and_the_hashes(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        alice = await server.login("alice")
        kiosk, staff, old = await open_call(server, stack)
        _, shared = await upload(server, old, (ASSETS / "obama.jpg").read_bytes())
        _, own = await upload(server, old, png_bytes("red"), kind="form", name="f.png")
        request_id = (await staff.call("signature.request", {
            "session_id": old, "document_id": own["document_id"], "title": "T"}))["request_id"]
        signed = await kiosk.call("signature.submit", {"request_id": request_id,
                                                       "png_base64": signature_png()})
        assert signed["ok"]
        assert (await fetch(server, f"/api/v1/documents/{own['document_id']}/pages/1.png",
                            alice))[0] == 200  # a page image is cached
        assert (await kiosk.call("call.hangup", {"session_id": old}))["ok"]
        await staff.call("wrapup.done")

        # A second call, still going, stored the same photo.
        kiosk2 = Client("/kiosk")
        stack.push_async_callback(kiosk2.close)
        await kiosk2.connect(server.url, server.kiosk_tokens["k2"])
        current = (await kiosk2.call("call.request", {"service_id": "tax-enquiry"}))["session_id"]
        await staff.wait_for("call.offer", session_id=current)
        assert (await staff.call("call.accept", {"session_id": current}))["ok"]
        status, _ = await upload(server, current, (ASSETS / "obama.jpg").read_bytes(),
                                 token=server.kiosk_tokens["k2"])
        assert status == 201

        dry = run_cli(tmp_path, "purge", "--older-than", "0", "--dry-run")
        assert dry.returncode == 0 and "would delete 2 file(s) of 1 session(s)" in dry.stdout
        assert (await fetch(server, f"/api/v1/documents/{own['document_id']}", alice))[0] == 200

        done = run_cli(tmp_path, "purge", "--older-than", "0")
        assert done.returncode == 0, done.stderr
        assert "deleted 2 file(s) of 1 session(s)" in done.stdout and "1 shared" in done.stdout

        status, body, _ = await fetch(server, f"/api/v1/documents/{own['document_id']}", alice)
        assert status == 410 and "retention" in json.loads(body)["error"]["message"]
        assert (await fetch(server, f"/api/v1/documents/{own['document_id']}/pages/1.png",
                            alice))[0] == 410
        assert (await fetch(server, f"/api/v1/documents/{shared['document_id']}", alice))[0] == 200
        page_cache = server.settings.documents_dir / "pages" / own["sha256"][:2] / own["sha256"]
        assert not page_cache.exists()

        events = audit_events(server, old)
        assert verify_chain(events)
        purged = events[-1]
        assert purged["type"] == "documents.purged"
        signature_sha = next(e["data"]["png_sha256"] for e in events
                             if e["type"] == "signature.submitted")
        assert sorted(purged["data"]["sha256"]) == sorted([own["sha256"], signature_sha])
        assert purged["data"]["kept_shared"] == [shared["sha256"]]
        # The live session is untouched, and purging again finds nothing new.
        assert not [e for e in audit_events(server, current) if e["type"] == "documents.purged"]
        again = run_cli(tmp_path, "purge", "--older-than", "0")
        assert "deleted 0 file(s) of 0 session(s)" in again.stdout


def test_purge_refuses_a_negative_age(tmp_path):
    result = run_cli(tmp_path, "purge", "--older-than", "-1")
    assert result.returncode == 2 and "0 or more" in result.stderr
