"""Identity verification through a real server: an aiortc kiosk whose camera shows
obama2.jpg, the ID uploaded over HTTP, the staff member's events, the stored result and
the audit trail; and the server without models."""

from __future__ import annotations

import contextlib

import aiohttp
import cv2
import numpy as np
import pytest

from signaling.keys import NODE
from tests.harness import Client, running_server
from tests.helpers import (
    ASSETS,
    ImageTrack,
    Peer,
    audit_events,
    camera_frame,
    fast,
    open_call,
    upload,
    wait_until,
)


@contextlib.asynccontextmanager
async def call_with_camera(tmp_path, picture: str, **kw):
    async with running_server(tmp_path, configure=fast, **kw) as server:
        async with contextlib.AsyncExitStack() as stack:
            kiosk, staff, sid = await open_call(server, stack)
            camera = ImageTrack(camera_frame(picture))
            kiosk_peer = Peer(kiosk, (0, 0, 0), video_track=camera)
            stack.push_async_callback(kiosk_peer.close)
            staff_peer = Peer(staff, (0, 0, 0))
            stack.push_async_callback(staff_peer.close)
            await kiosk_peer.connect(sid)
            await staff_peer.connect(sid)
            await wait_until(lambda: staff_peer.video_frames, what="kiosk video at the staff")
            server.camera = camera
            yield server, kiosk, staff, sid


@pytest.mark.parametrize(
    "id_photo,match", [("obama.jpg", True), ("biden.jpg", False)], ids=["genuine", "impostor"]
)
async def test_verification_of_a_still_picture_matches_the_id_but_is_not_live(
    tmp_path, id_photo, match
):
    async with call_with_camera(tmp_path, "obama2.jpg") as (server, kiosk, staff, sid):
        status, doc = await upload(server, sid, (ASSETS / id_photo).read_bytes())
        assert status == 201, doc
        added = await staff.wait_for("document.added", session_id=sid)
        assert added["document_id"] == doc["document_id"] and added["kind"] == "id_card"

        ack = await staff.call(
            "verification.start", {"session_id": sid, "id_document_id": doc["document_id"]}
        )
        assert ack == {"ok": True}
        first = await staff.wait_for("verification.update", session_id=sid, status="pending")
        assert first["id_face"].startswith("data:image/jpeg;base64,")
        challenge = await kiosk.wait_for("verification.challenge", timeout=10, session_id=sid)
        assert challenge["challenge"] in ("turn_left", "turn_right")
        assert challenge["timeout_s"] == 1.5

        final = await staff.wait_for("verification.update", timeout=15, session_id=sid,
                                     status="failed")
        assert final["match"]["passed"] is match
        assert (final["match"]["score"] >= 0.363) is match
        assert final["face_present"] is True
        # A photo cannot turn its head: the challenge times out, liveness fails.
        assert final["challenge"]["state"] == "failed"
        assert final["liveness"]["passed"] is False
        assert final["reason"] == "challenge_failed"
        assert final["live_face"].startswith("data:image/jpeg;base64,")
        assert final["id_face"] == first["id_face"]
        updates = [d for e, d in staff.events if e == "verification.update"]
        assert all("id_face" not in u for u in updates[1:-1])  # sent once, kept by the console

        token = await server.login("alice")
        async with aiohttp.ClientSession() as http:
            async with http.get(
                f"{server.url}/api/v1/sessions/{sid}",
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                record = await resp.json()
        stored = record["verification"]
        assert stored["status"] == "failed" and stored["match"]["passed"] is match
        assert stored["id_document_id"] == doc["document_id"]
        assert [m["name"] for m in stored["models"]] == [
            "yunet-2023mar", "sface-2021dec", "liveness_human"
        ]
        assert len(stored["frame_times"]) >= 5
        assert record["documents"][0]["sha256"] == doc["sha256"]

        types = [e["type"] for e in audit_events(server, sid)]
        assert "verification.interrupted" not in types
        for expected in ("document.added", "verification.started", "verification.challenge",
                         "verification.completed"):
            assert expected in types
        completed = next(e for e in audit_events(server, sid)
                         if e["type"] == "verification.completed")
        assert completed["data"]["match"]["passed"] is match

        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/metrics") as resp:
                metrics = await resp.text()
        assert ('smartcounter_verifications_total{reason="challenge_failed",status="failed"} 1.0'
                in metrics)
        assert 'smartcounter_face_analysis_seconds{quantile="0.95"}' in metrics
        assert "smartcounter_face_models_loaded 1.0" in metrics
        # The call itself: answered once, set up once, an upload of the ID's size.
        assert 'smartcounter_calls_total{outcome="answered"} 1.0' in metrics
        assert "smartcounter_queue_wait_seconds_count 1.0" in metrics
        assert "smartcounter_call_setup_seconds_count 1.0" in metrics
        assert 'smartcounter_uploads_total{status="201"} 1.0' in metrics
        assert "smartcounter_upload_bytes_count 1.0" in metrics
        assert "smartcounter_forwarded_bytes" in metrics


async def test_presence_watch_warns_when_the_person_leaves_and_someone_else_sits_down(
    tmp_path,
):
    async with call_with_camera(tmp_path, "obama2.jpg") as (server, _kiosk, staff, sid):
        status, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes())
        assert status == 201
        await staff.call(
            "verification.start", {"session_id": sid, "id_document_id": doc["document_id"]}
        )
        await staff.wait_for("verification.update", timeout=15, session_id=sid, status="failed")
        server.camera.image = np.zeros_like(server.camera.image)  # the person leaves
        absent = await staff.wait_for("verification.presence", timeout=10, session_id=sid)
        assert absent["state"] == "absent"
        server.camera.image = np.ascontiguousarray(camera_frame("biden.jpg")[..., ::-1])
        changed = await staff.wait_for(
            "verification.presence", timeout=10, session_id=sid, state="changed"
        )
        assert changed["at"] > absent["at"]
        states = [e["data"]["state"] for e in audit_events(server, sid)
                  if e["type"] == "verification.presence"]
        assert states == ["absent", "changed"]


async def test_id_without_a_face_is_refused_with_a_clear_status(tmp_path):
    async with call_with_camera(tmp_path, "obama2.jpg") as (server, _kiosk, staff, sid):
        blank = cv2.imencode(".jpg", np.full((400, 300, 3), 220, np.uint8))[1].tobytes()
        status, doc = await upload(server, sid, blank)
        assert status == 201
        ack = await staff.call(
            "verification.start", {"session_id": sid, "id_document_id": doc["document_id"]}
        )
        assert ack["ok"] is False and ack["error"]["code"] == "bad_request"
        assert "no face" in ack["error"]["message"]
        update = await staff.wait_for("verification.update", session_id=sid)
        assert update["status"] == "failed" and update["reason"] == "id_no_face"
        assert update["match"]["threshold"] == 0.363 and update["match"]["passed"] is False
        assert "consistency" in update["liveness"] and "no face" in update["message"]


async def test_verification_events_check_role_session_and_document(tmp_path):
    async with call_with_camera(tmp_path, "obama2.jpg") as (server, kiosk, staff, sid):
        status, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes(),
                                   kind="form")
        assert status == 201
        start = {"session_id": sid, "id_document_id": doc["document_id"]}
        ack = await staff.call("verification.start", start)
        assert ack["error"]["code"] == "bad_request" and "not an id_card" in ack["error"]["message"]
        ack = await staff.call("verification.start", {**start, "id_document_id": "doc_nope"})
        assert ack["error"]["code"] == "not_found"
        ack = await staff.call("verification.start", {"session_id": sid})
        assert ack["error"]["code"] == "bad_request" and "id_document_id" in ack["error"]["message"]
        ack = await staff.call("verification.challenge", {"session_id": sid,
                                                          "challenge": "turn_left"})
        assert ack["error"]["code"] == "conflict"  # nothing in progress
        ack = await staff.call("verification.challenge", {"session_id": sid, "challenge": "blink"})
        assert ack["error"]["code"] == "bad_request"
        # Another department's staff member, and a colleague not on the call.
        for username, code in (("hana", "forbidden"), ("bob", "forbidden")):
            other = Client("/staff")
            await other.connect(server.url, await server.login(username))
            try:
                ack = await other.call("verification.start", start)
                assert ack["error"]["code"] == code, (username, ack)
            finally:
                await other.close()
        # The kiosk namespace has no such event.
        ack = await kiosk.call("verification.start", start)
        assert ack["error"]["code"] == "bad_request"


async def test_without_models_calls_work_and_verification_is_unavailable(tmp_path):
    def broken(settings) -> None:
        fast(settings)
        settings.models_auto_prepare = False
        settings.models_dir = tmp_path / "no-models"

    async with running_server(tmp_path, configure=broken) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/readyz") as resp:
                body = await resp.json()
                assert resp.status == 503
                assert "smartcounter models prepare" in body["checks"]["models"]
                assert body["checks"]["store"] == "ok"
        async with contextlib.AsyncExitStack() as stack:
            _kiosk, staff, sid = await open_call(server, stack)
            status, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes())
            assert status == 201
            ack = await staff.call(
                "verification.start", {"session_id": sid, "id_document_id": doc["document_id"]}
            )
            assert ack["ok"] is False and ack["error"]["code"] == "unavailable"
            assert "models prepare" in ack["error"]["message"]


async def test_a_corrupt_antispoof_model_makes_verification_unavailable(tmp_path):
    corrupt = tmp_path / "antispoof.onnx"
    corrupt.write_bytes(b"not an onnx model")

    def configure(settings) -> None:
        settings.antispoof_model = corrupt

    async with running_server(tmp_path, configure=configure) as server:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{server.url}/readyz") as resp:
                assert resp.status == 503
                assert "cannot load" in (await resp.json())["checks"]["models"]


async def test_hanging_up_mid_verification_stops_it_and_records_the_interruption(tmp_path):
    async with call_with_camera(tmp_path, "obama2.jpg") as (server, _kiosk, staff, sid):
        _, doc = await upload(server, sid, (ASSETS / "obama.jpg").read_bytes())
        await staff.call(
            "verification.start", {"session_id": sid, "id_document_id": doc["document_id"]}
        )
        await staff.wait_for("verification.update", session_id=sid, status="pending")
        assert (await staff.call("call.hangup", {"session_id": sid}))["ok"]
        verifier = server.app[NODE].verifier
        await wait_until(lambda: not verifier.watched_sessions, what="the verification to stop")
        events = audit_events(server, sid)
        interrupted = [e for e in events if e["type"] == "verification.interrupted"]
        assert [e["data"]["reason"] for e in interrupted] == ["call_ended"]
        assert "verification.completed" not in [e["type"] for e in events]
