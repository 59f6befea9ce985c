"""Identity verification in real headless Chromium: the kiosk (whose camera shows
obama2.jpg) scans an ID card during a call, the staff console starts the verification,
the kiosk shows the head-turn prompt, the console shows the result and the audit trail
holds it.

The fake camera is a still photo: it cannot turn its head, so the challenge times out
and liveness fails — the verification as a whole fails, as it must for a photo. The face
match is still decided: obama.jpg (the same person) matches, biden.jpg does not.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from sessions.audit import verify_chain
from tests.harness import Server
from tests.helpers import session_record

from .browser import (
    ASSETS,
    BrowserLog,
    audit_events,
    remote_video_playing,
    tax_call,
)

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

PROMPTS = {
    "zh-Hant": {"turn_left": "請把頭轉向左邊", "turn_right": "請把頭轉向右邊"},
    "en": {
        "turn_left": "Please turn your head to the left",
        "turn_right": "Please turn your head to the right",
    },
}


# The kiosk's camera on or off (a disabled track sends black frames: nobody in view).
SET_CAMERA_JS = """
(on) => {
  const senders = window.smartcounter.pc.getSenders();
  const video = senders.find((s) => s.track && s.track.kind === "video");
  video.track.enabled = on;
}
"""


async def scan_id_card(kiosk: Page, photo: Path, through_chooser: bool) -> str:
    """Put ``photo`` in the kiosk's scanner: through the "Scan ID card" button and the
    file chooser it opens, or straight into the file input. Returns the document id."""
    if through_chooser:
        async with kiosk.expect_file_chooser(timeout=5_000) as chooser_info:
            await kiosk.get_by_test_id("id-scan").click()
        chooser = await chooser_info.value
        assert await chooser.element.get_attribute("data-testid") == "id-scan-input"
        await chooser.set_files(photo)
    else:
        await kiosk.get_by_test_id("id-scan-input").set_input_files(photo)
    status = kiosk.get_by_test_id("id-scan-status")
    await expect(status).to_have_attribute("data-state", "done", timeout=10_000)
    document_id = await status.get_attribute("data-document-id")
    assert document_id and document_id.startswith("doc_"), document_id
    return document_id


async def expect_prompt(kiosk: Page, kind: str | None = None) -> str:
    """The head-turn prompt is up on the kiosk, in zh-Hant with English beneath; returns
    the challenge it shows."""
    prompt = kiosk.get_by_test_id("challenge-prompt")
    await expect(prompt).to_be_visible(timeout=10_000)
    if kind is not None:
        await expect(prompt).to_have_attribute("data-challenge", kind)
    shown = await prompt.get_attribute("data-challenge")
    assert shown in ("turn_left", "turn_right"), shown
    await expect(kiosk.get_by_test_id("challenge-text")).to_have_text(PROMPTS["zh-Hant"][shown])
    await expect(kiosk.get_by_test_id("challenge-text-other")).to_have_text(PROMPTS["en"][shown])
    seconds = await kiosk.get_by_test_id("challenge-countdown").get_attribute("data-seconds")
    assert seconds is not None and 1 <= int(seconds) <= 3, seconds
    return shown


@pytest.mark.parametrize(
    ("verification_server", "id_photo", "same_person"),
    [
        # The server asks a random head turn itself; the ID is scanned with the button.
        pytest.param({}, "obama.jpg", True, id="genuine-id-server-challenge"),
        # The staff member asks for the head turn; the ID is put in the file input.
        pytest.param(
            {"challenge_mode": "staff"}, "biden.jpg", False, id="impostor-id-staff-challenge"
        ),
    ],
    indirect=["verification_server"],
)
async def test_staff_verifies_the_caller_against_the_scanned_id_card(
    verification_server: Server,
    open_page,
    open_live_face_page,
    browser_log: BrowserLog,
    caplog: pytest.LogCaptureFixture,
    id_photo: str,
    same_person: bool,
) -> None:
    server = verification_server
    staff_asks = server.settings.verification.challenge_mode == "staff"
    alice = await open_page("alice")
    kiosk = await open_live_face_page("kiosk")
    # A tax call; the kiosk's video reaches the staff console (through the server).
    await tax_call(server.url, server.passwords, server.kiosk_tokens, alice, kiosk)
    await expect(kiosk.get_by_test_id("remote-video")).to_be_visible(timeout=10_000)
    await remote_video_playing(alice)
    session_id = await kiosk.evaluate("() => window.smartcounter.sessionId")
    assert session_id and session_id == await alice.evaluate("() => window.smartcounter.sessionId")

    # Nothing to verify against yet.
    panel = alice.get_by_test_id("verify-panel")
    await expect(panel).to_be_visible()
    await expect(alice.get_by_test_id("verify-status")).to_have_attribute("data-status", "idle")
    await expect(alice.get_by_test_id("verify-documents")).to_have_attribute("data-count", "0")
    await expect(alice.get_by_test_id("verify-start")).to_be_disabled()
    await expect(kiosk.get_by_test_id("challenge-prompt")).to_be_hidden()

    # The citizen scans the ID card; the console lists it.
    document_id = await scan_id_card(kiosk, ASSETS / id_photo, through_chooser=not staff_asks)
    await expect(alice.get_by_test_id("verify-documents")).to_have_attribute("data-count", "1")
    listed = alice.get_by_test_id("verify-document")
    await expect(listed).to_have_attribute("data-document-id", document_id)
    await expect(listed).to_have_attribute("data-kind", "id_card")

    # The staff member starts the verification.
    await alice.get_by_test_id("verify-start").click()
    status = alice.get_by_test_id("verify-status")
    await expect(status).to_have_attribute("data-status", "pending", timeout=10_000)
    await expect(alice.get_by_test_id("verify-id-face")).to_be_visible()
    await expect(alice.get_by_test_id("verify-start")).to_be_disabled()

    # The head turn: asked by the staff member, or by the server once the face is steady.
    if staff_asks:
        await expect(alice.get_by_test_id("verify-challenge-left")).to_be_enabled()
        await alice.get_by_test_id("verify-challenge-left").click()
        kind = await expect_prompt(kiosk, "turn_left")
        # The prompt follows the kiosk's language.
        await kiosk.get_by_test_id("lang-en").click()
        await expect(kiosk.get_by_test_id("challenge-text")).to_have_text(PROMPTS["en"][kind])
        await expect(kiosk.get_by_test_id("challenge-text-other")).to_have_text(
            PROMPTS["zh-Hant"][kind]
        )
    else:
        kind = await expect_prompt(kiosk)
    await expect(alice.get_by_test_id("verify-challenge")).to_have_attribute("data-kind", kind)

    # A photo cannot turn: the prompt counts down and goes, the challenge fails.
    await expect(kiosk.get_by_test_id("challenge-prompt")).to_be_hidden(timeout=10_000)
    await expect(status).to_have_attribute("data-status", "failed", timeout=15_000)
    await expect(alice.get_by_test_id("verify-reason")).to_have_attribute(
        "data-reason", "challenge_failed"
    )
    match = alice.get_by_test_id("verify-match")
    await expect(match).to_have_attribute("data-passed", "true" if same_person else "false")
    score = float(await match.get_attribute("data-score") or "nan")
    threshold = float(await match.get_attribute("data-threshold") or "nan")
    assert (score >= threshold) is same_person, (score, threshold)
    liveness = alice.get_by_test_id("verify-liveness")
    await expect(liveness).to_have_attribute("data-passed", "false")
    await expect(liveness).to_have_attribute("data-challenge-passed", "false")
    await expect(alice.get_by_test_id("verify-challenge")).to_have_attribute("data-state", "failed")
    await expect(alice.get_by_test_id("verify-consistency")).to_have_attribute(
        "data-passed", "true"
    )
    await expect(alice.get_by_test_id("verify-challenge-left")).to_be_disabled()
    await expect(alice.get_by_test_id("verify-challenge-right")).to_be_disabled()
    await expect(alice.get_by_test_id("verify-error")).to_be_hidden()
    # Both face crops are shown (decoded images, side by side).
    for testid in ("verify-id-face", "verify-live-face"):
        face = alice.get_by_test_id(testid)
        await expect(face).to_be_visible()
        assert (await face.get_attribute("src") or "").startswith("data:image/jpeg;base64,")
        await alice.wait_for_function(
            f"() => document.querySelector('[data-testid={testid}]').naturalWidth > 0",
            timeout=5_000,
        )

    # The result is in the audit trail (chained, fsynced before the final update) and
    # in the session record.
    events = audit_events(server.settings.audit_dir, session_id)
    assert verify_chain(events)
    types = [e["type"] for e in events]
    assert "verification.started" in types and "verification.challenge" in types, types
    challenge = next(e for e in events if e["type"] == "verification.challenge")
    assert challenge["data"]["challenge"] == kind
    completed = [e for e in events if e["type"] == "verification.completed"]
    assert len(completed) == 1, types
    result = completed[0]["data"]
    assert result["status"] == "failed" and result["reason"] == "challenge_failed", result
    assert result["match"]["passed"] is same_person, result["match"]
    assert result["liveness"]["passed"] is False, result["liveness"]
    assert result["id_document_id"] == document_id
    assert result["models"], result
    token = await server.login("alice")
    record = await session_record(server, token, session_id)
    assert record["verification"]["status"] == "failed", record["verification"]
    assert record["verification"]["match"]["passed"] is same_person
    assert [d["document_id"] for d in record["documents"]] == [document_id]

    # After the check the server watches who is at the kiosk: the person leaves (the
    # camera goes black) and comes back; the console says so.
    presence = alice.get_by_test_id("verify-presence")
    await expect(presence).to_be_hidden()
    await kiosk.evaluate(SET_CAMERA_JS, False)
    await expect(presence).to_have_attribute("data-state", "absent", timeout=10_000)
    await expect(presence).to_be_visible()
    await kiosk.evaluate(SET_CAMERA_JS, True)
    await expect(presence).to_have_attribute("data-state", "present", timeout=10_000)

    # The call ends: the kiosk forgets its scan, the console's panel is reset.
    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("call-ended")).to_be_visible(timeout=10_000)
    await expect(kiosk.get_by_test_id("id-scan-status")).to_have_attribute("data-state", "idle")
    await expect(kiosk.get_by_test_id("challenge-prompt")).to_be_hidden()
    await expect(alice.get_by_test_id("wrapup-done")).to_be_visible(timeout=10_000)
    await expect(panel).to_be_hidden()
    await expect(status).to_have_attribute("data-status", "idle")
    await expect(alice.get_by_test_id("verify-documents")).to_have_attribute("data-count", "0")
    await expect(alice.get_by_test_id("verify-match")).to_have_attribute("data-passed", "")
    await expect(alice.get_by_test_id("verify-id-face")).to_be_hidden()
    await expect(presence).to_be_hidden()

    assert browser_log.unexpected() == []
    server_errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert server_errors == []
