"""A whole call in real headless Chromium: kiosk page → staff console → video both ways →
hang-up → wrap-up, on a real server (memory store)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.harness import Server
from tests.helpers import session_record

from .browser import STATS_JS, BrowserLog, console_login, open_kiosk, tax_call

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

# Records, on a console page, every call.offer its socket gets and every time the
# incoming-call panel is shown, so a test can say it never happened.
WATCH_INCOMING_JS = """
() => {
  const seen = (window.__e2eIncoming = { offers: [], shown: 0 });
  window.smartcounter.socket.on("call.offer", (msg) => seen.offers.push(msg));
  const panel = document.querySelector('[data-testid="incoming-call"]');
  if (!panel.hidden) seen.shown += 1;
  new MutationObserver(() => {
    if (!panel.hidden) seen.shown += 1;
  }).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
}
"""


def media_grew(stats: dict[str, Any] | None, after: dict[str, Any] | None) -> bool:
    """Video decoded and audio received, beyond ``after`` (at least 10 more frames)."""
    if not stats or not stats["video"] or not stats["audio"]:
        return False
    video, audio = stats["video"], stats["audio"]
    if after is None:
        return (
            video["framesDecoded"] > 0
            and audio["packetsReceived"] > 0
            and audio["totalSamplesReceived"] > 0
        )
    return (
        video["framesDecoded"] >= after["video"]["framesDecoded"] + 10
        and audio["packetsReceived"] > after["audio"]["packetsReceived"]
        and audio["totalSamplesReceived"] > after["audio"]["totalSamplesReceived"]
    )


async def media_sample(
    page: Page, after: dict[str, Any] | None = None, timeout: float = 20
) -> dict[str, Any]:
    """Poll the page's getStats() until video is decoded and audio received (more than in
    ``after``); fails after ``timeout`` seconds with the last stats seen."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        stats = await page.evaluate(STATS_JS)
        if media_grew(stats, after):
            return stats
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"media stopped on {page.url} ({timeout} s): {stats} after {after}"
            )
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("e2e_server", ["forward", "transcode"], indirect=True)
async def test_kiosk_calls_tax_and_alice_answers_on_video(
    e2e_server: Server, open_page, browser_log: BrowserLog, caplog: pytest.LogCaptureFixture
) -> None:
    server = e2e_server
    alice = await open_page("alice")
    hana = await open_page("hana")
    kiosk = await open_page("kiosk")
    await asyncio.gather(
        console_login(alice, server.url, "alice", server.passwords["alice"]),
        console_login(hana, server.url, "hana", server.passwords["hana"]),
        open_kiosk(kiosk, server.url, server.kiosk_tokens["k1"]),
    )
    await hana.evaluate(WATCH_INCOMING_JS)

    # The citizen asks for a tax enquiry; only tax staff (alice) is offered the call.
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("service-tax-enquiry").click()
    await expect(alice.get_by_test_id("incoming-call")).to_be_visible(timeout=10_000)
    await expect(alice.get_by_test_id("presence-state")).to_have_attribute("data-state", "ringing")
    await alice.get_by_test_id("accept").click()
    await expect(alice.get_by_test_id("presence-state")).to_have_attribute("data-state", "busy")
    await expect(kiosk.get_by_test_id("remote-video")).to_be_visible(timeout=10_000)

    session_id = await kiosk.evaluate("() => window.smartcounter.sessionId")
    assert session_id and session_id == await alice.evaluate("() => window.smartcounter.sessionId")

    # Video and audio flow both ways, and keep flowing.
    for page in (kiosk, alice):
        first = await media_sample(page)
        second = await media_sample(page, after=first)
        assert second["state"] == "connected", second
        assert second["video"]["framesDecoded"] > first["video"]["framesDecoded"] > 0
        assert second["audio"]["packetsReceived"] > first["audio"]["packetsReceived"] > 0
        assert second["audio"]["totalSamplesReceived"] > first["audio"]["totalSamplesReceived"] > 0
        # The picture reaches the <video> element itself.
        await page.wait_for_function(
            "() => document.querySelector('[data-testid=remote-video]').videoWidth > 0",
            timeout=10_000,
        )

    token = await server.login("alice")
    assert (await session_record(server, token, session_id))["state"] == "connected"

    # The citizen hangs up: both sides show the end, the session is closed.
    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("call-ended")).to_be_visible(timeout=10_000)
    await expect(alice.get_by_test_id("wrapup-done")).to_be_visible(timeout=10_000)
    await expect(alice.get_by_test_id("presence-state")).to_have_attribute("data-state", "wrapup")
    assert await kiosk.evaluate("() => window.smartcounter.pc") is None
    assert await alice.evaluate("() => window.smartcounter.pc") is None
    record = await session_record(server, token, session_id)
    assert record["state"] == "closed", record

    await alice.get_by_test_id("wrapup-done").click()
    await expect(alice.get_by_test_id("presence-state")).to_have_attribute(
        "data-state", "available"
    )

    # Housing staff never saw the tax call.
    seen = await hana.evaluate("() => window.__e2eIncoming")
    assert seen == {"offers": [], "shown": 0}, seen
    await expect(hana.get_by_test_id("incoming-call")).to_be_hidden()
    await expect(hana.get_by_test_id("presence-state")).to_have_attribute("data-state", "available")

    assert browser_log.unexpected() == []
    server_errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert server_errors == []


async def test_wrong_kiosk_token_shows_error(
    e2e_server: Server, open_page, browser_log: BrowserLog
) -> None:
    kiosk = await open_page("kiosk")
    await kiosk.goto(f"{e2e_server.url}/kiosk#token=not-a-real-token")
    await kiosk.get_by_test_id("lang-en").click()
    status = kiosk.get_by_test_id("status")
    await expect(status).to_have_attribute("data-kind", "error", timeout=10_000)
    await expect(status).to_have_text(
        "This kiosk is not registered / token invalid. Please contact staff."
    )
    assert await kiosk.evaluate("() => window.smartcounter.socket.connected") is False
    assert browser_log.unexpected() == []


@pytest.mark.parametrize("e2e_server", ["forward", "transcode"], indirect=True)
@pytest.mark.parametrize("reloaded", ["kiosk", "alice"])
async def test_page_reloaded_mid_call_takes_the_call_back(
    e2e_server: Server, open_page, browser_log: BrowserLog, reloaded: str
) -> None:
    """A kiosk or staff console reloaded during a call resumes the same session and
    renegotiates: media flows both ways again (the relay asks the other side's browser
    for a keyframe) and hanging up still ends the call on both sides."""
    server = e2e_server
    alice = await open_page("alice")
    kiosk = await open_page("kiosk")
    await tax_call(server.url, server.passwords, server.kiosk_tokens, alice, kiosk)
    await media_sample(kiosk)
    await media_sample(alice)
    session_id = await kiosk.evaluate("() => window.smartcounter.sessionId")
    page, other = (kiosk, alice) if reloaded == "kiosk" else (alice, kiosk)

    await page.reload()
    await expect(page.get_by_test_id("hangup")).to_be_visible(timeout=10_000)
    assert await page.evaluate("() => window.smartcounter.sessionId") == session_id
    first = await media_sample(page, timeout=10)
    await media_sample(page, after=first)
    await media_sample(other, after=await media_sample(other))

    await page.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("call-ended")).to_be_visible(timeout=10_000)
    await expect(alice.get_by_test_id("wrapup-done")).to_be_visible(timeout=10_000)
    assert browser_log.unexpected() == []
