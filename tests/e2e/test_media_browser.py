"""Media through the forwarding relay in real headless Chromium: a supervisor listening in
silently to a live call, a second staff-side browser joining a call, and the recordings
of a call.

The first two are keyframe tests. The relay forwards encoded frames, so a receiver that
joins a running call can only start decoding at a keyframe; browsers send one when asked
(PLI) and otherwise very rarely. The calls are kept up a few seconds before anyone joins,
so the sender's last keyframe is old: a joiner that decodes within 2 s of its answer
shows that the server asked the sender for a fresh one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from playwright.async_api import Page, expect

from signaling.keys import SERVICES
from tests.harness import Server

from .browser import BrowserLog, console_login, open_kiosk
from .conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]

T = TypeVar("T")

# A joiner must decode its first frame within this long after it got its answer.
FIRST_FRAME_MS = 2000
# How long a call runs before someone joins it (the sender's last keyframe is this old).
CALL_AGE_S = 4

# Inbound and outbound RTP of one of the page's peer connections: the page's own
# (window.smartcounter.pc) or the second staff browser's (window.__second.pc).
PC_STATS_JS = """
async (which) => {
  const pc = which === "second"
    ? (window.__second && window.__second.pc)
    : (window.smartcounter && window.smartcounter.pc);
  if (!pc) return null;
  const out = {
    state: pc.connectionState,
    transceivers: pc.getTransceivers().length,
    inbound: [],
    outbound: [],
  };
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp") {
      out.inbound.push({
        kind: s.kind,
        track: s.trackIdentifier,
        framesDecoded: s.framesDecoded || 0,
        packetsReceived: s.packetsReceived || 0,
        totalSamplesReceived: s.totalSamplesReceived || 0,
      });
    } else if (s.type === "outbound-rtp") {
      out.outbound.push({
        kind: s.kind,
        framesEncoded: s.framesEncoded || 0,
        keyFramesEncoded: s.keyFramesEncoded || 0,
        pliCount: s.pliCount || 0,
        firCount: s.firCount || 0,
      });
    }
  });
  return out;
}
"""

# On the supervisor page, after the monitor button was clicked: waits for the answer,
# then polls getStats() until the kiosk's and the staff's video (the first and third
# transceivers) have each decoded a frame. Times are ms after the answer arrived.
MONITOR_FIRST_FRAMES_JS = """
async (timeoutMs) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const sc = window.smartcounter;
  const deadline = performance.now() + timeoutMs;
  while (!(sc.pc && sc.answeredAt != null)) {
    if (performance.now() > deadline) return { error: "no answer to the monitor's rtc.offer" };
    await sleep(10);
  }
  const pc = sc.pc;
  const answeredAt = sc.answeredAt;
  const kinds = pc.getTransceivers().map((t) => t.receiver.track.kind);
  const ids = pc.getTransceivers().map((t) => t.receiver.track.id);
  const first = {};
  let last = null;
  while (performance.now() < deadline) {
    const stats = await pc.getStats();
    const now = performance.now();
    last = [];
    stats.forEach((s) => {
      if (s.type !== "inbound-rtp" || s.kind !== "video") return;
      last.push({ track: s.trackIdentifier, framesDecoded: s.framesDecoded || 0 });
      const id = s.trackIdentifier;
      if ((s.framesDecoded || 0) > 0 && !(id in first)) first[id] = now;
    });
    if (ids[0] in first && ids[2] in first) {
      return { kinds, kioskMs: first[ids[0]] - answeredAt, staffMs: first[ids[2]] - answeredAt };
    }
    await sleep(15);
  }
  return {
    error: "monitor videos did not decode",
    kinds,
    last,
    connection: pc.connectionState,
    ice: pc.iceConnectionState,
  };
}
"""

# On a page of the same origin: a second staff-side browser of `token`'s staff member
# joins `sessionId` (camera + microphone, sendrecv, non-trickle offer on /staff) and
# reports how long after its answer it decoded the kiosk's video.
SECOND_STAFF_JOIN_JS = """
async ({ token, sessionId, timeoutMs }) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const { connect } = await import("/static/shared/socket.js");
  const { loadIceConfig, waitForIceGathering } = await import("/static/shared/rtc.js");
  const client = connect("/staff", token);
  await new Promise((resolve, reject) => {
    client.socket.once("connect", resolve);
    client.socket.once("connect_error", reject);
  });
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: true,
    video: { width: 640, height: 480 },
  });
  const pc = new RTCPeerConnection(await loadIceConfig(token));
  for (const kind of ["audio", "video"]) {
    const track = stream.getTracks().find((t) => t.kind === kind);
    pc.addTransceiver(track, { direction: "sendrecv", streams: [stream] });
  }
  // Play what arrives, as a console would (Chrome only pulls audio that has a sink).
  const remote = new MediaStream();
  const video = document.createElement("video");
  video.autoplay = true;
  video.playsInline = true;
  video.dataset.testid = "second-remote-video";
  document.body.append(video);
  pc.addEventListener("track", (event) => {
    remote.addTrack(event.track);
    video.srcObject = remote;
    video.play().catch(() => {});
  });
  window.__second = { client, pc, stream };
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIceGathering(pc);
  const answer = await client.request(
    "rtc.offer", { session_id: sessionId, sdp: pc.localDescription.sdp, type: "offer" }, 15000,
  );
  const answeredAt = performance.now();
  await pc.setRemoteDescription({ type: answer.type, sdp: answer.sdp });
  const deadline = answeredAt + timeoutMs;
  let last = null;
  while (performance.now() < deadline) {
    const stats = await pc.getStats();
    const now = performance.now();
    let decoded = 0;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") decoded = s.framesDecoded || 0;
    });
    last = decoded;
    if (decoded > 0) return { firstFrameMs: now - answeredAt };
    await sleep(15);
  }
  return { error: "the second staff browser decoded no kiosk video", last };
}
"""

CLOSE_SECOND_JS = """
() => {
  const second = window.__second;
  if (!second) return;
  second.pc.close();
  for (const track of second.stream.getTracks()) track.stop();
  second.client.socket.disconnect();
}
"""


# -------------------------------------------------------------------- helpers


async def poll(
    probe: Callable[[], Awaitable[T | None]], timeout: float, what: str, interval: float = 0.1
) -> T:
    """``await probe()`` until it returns something other than None or False; fails
    after ``timeout`` seconds saying what was awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await probe()
        if result is not None and result is not False:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(interval)


async def pc_stats(page: Page, which: str = "own") -> dict[str, Any] | None:
    return await page.evaluate(PC_STATS_JS, which)


def inbound(stats: dict[str, Any] | None, kind: str) -> list[dict[str, Any]]:
    return [s for s in (stats or {}).get("inbound", []) if s["kind"] == kind]


def outbound(stats: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    found = [s for s in (stats or {}).get("outbound", []) if s["kind"] == kind]
    assert len(found) == 1, stats
    return found[0]


def frames(stats: dict[str, Any] | None) -> dict[str, int]:
    """Frames decoded so far per inbound video track."""
    return {s["track"]: s["framesDecoded"] for s in inbound(stats, "video")}


async def decoding(page: Page, which: str = "own", more: int = 10, timeout: float = 20) -> dict:
    """Wait until every inbound video of the page's pc has decoded ``more`` frames more
    than now (at least one frame more than nothing, for a fresh pc)."""
    before = frames(await pc_stats(page, which))

    async def grew() -> dict | None:
        stats = await pc_stats(page, which)
        now = frames(stats)
        if not now or any(now.get(t, 0) < before.get(t, 0) + more for t in now):
            return None
        return stats

    return await poll(grew, timeout, f"{page.url} ({which} pc) to decode {more} more frames")


async def start_tax_call(server: Server, open_page) -> tuple[Page, Page, str]:
    """Kiosk k1 asks for a tax enquiry, alice accepts; returns once both pages decode
    the other's video."""
    kiosk = await open_page("kiosk")
    alice = await open_page("alice")
    await asyncio.gather(
        console_login(alice, server.url, "alice", server.passwords["alice"]),
        open_kiosk(kiosk, server.url, server.kiosk_tokens["k1"]),
    )
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("service-tax-enquiry").click()
    await expect(alice.get_by_test_id("incoming-call")).to_be_visible(timeout=10_000)
    await alice.get_by_test_id("accept").click()
    session_id = await poll(
        lambda: alice.evaluate("() => window.smartcounter.sessionId"), 10, "the accepted call"
    )
    assert session_id == await kiosk.evaluate("() => window.smartcounter.sessionId")
    await asyncio.gather(decoding(kiosk), decoding(alice))
    return kiosk, alice, session_id


async def supervisor_login(page: Page, server: Server, username: str = "sup") -> None:
    await page.goto(f"{server.url}/supervisor")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(server.passwords[username])
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_function(
        "() => window.smartcounter && window.smartcounter.socket"
        " && window.smartcounter.socket.connected",
        timeout=15_000,
    )


async def http_get(server: Server, path: str, token: str) -> tuple[int, bytes]:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.url}{path}", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            return resp.status, await resp.read()


def ffprobe(path: Path) -> dict[str, Any]:
    ffprobe_bin = shutil.which("ffprobe")
    assert ffprobe_bin, "ffprobe is needed (apt-get install ffmpeg)"
    result = subprocess.run(
        [
            ffprobe_bin,
            "-v",
            "error",
            "-count_frames",
            "-show_streams",
            "-show_format",
            "-of",
            "json",
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


async def audio_flowing(page: Page, which: str = "own", streams: int = 1) -> bool:
    """The page's pc has ``streams`` inbound audio streams, each of them played out."""
    audio = inbound(await pc_stats(page, which), "audio")
    return len(audio) == streams and all(a["totalSamplesReceived"] > 0 for a in audio)


async def no_monitor(server: Server, session_id: str) -> bool:
    media = server.app[SERVICES].hub.get(session_id)
    return media is None or not any(k.startswith("monitor:") for k in media.participants)


def server_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


# -------------------------------------------------------------------- tests


async def test_supervisor_listens_silently_to_both_sides(
    e2e_server: Server, open_page, browser_log: BrowserLog, caplog: pytest.LogCaptureFixture
) -> None:
    server = e2e_server
    hub = server.app[SERVICES].hub
    kiosk, alice, session_id = await start_tax_call(server, open_page)
    await asyncio.sleep(CALL_AGE_S)  # a scenario step: the call has been going a while

    sup = await open_page("sup")
    await supervisor_login(sup, server)
    await sup.get_by_test_id("lang-en").click()
    row = sup.get_by_test_id(f"call-{session_id}")
    await expect(row).to_be_visible(timeout=10_000)
    await expect(row).to_have_attribute("data-state", "connected")
    listen = sup.get_by_test_id(f"monitor-{session_id}")
    await expect(listen).to_have_text("Listen (silent)")

    kiosk_before, alice_before = await pc_stats(kiosk), await pc_stats(alice)
    await listen.click()
    first = await sup.evaluate(MONITOR_FIRST_FRAMES_JS, 15_000)
    print("monitor, first frames after the answer:", first)
    assert "error" not in first, first
    assert first["kinds"] == ["video", "audio", "video", "audio"], first
    assert first["kioskMs"] < FIRST_FRAME_MS, first
    assert first["staffMs"] < FIRST_FRAME_MS, first

    # Both monitor videos keep decoding, and reach their <video> elements; audio arrives.
    stats = await decoding(sup)
    assert len(inbound(stats, "video")) == 2, stats
    assert stats["state"] == "connected", stats
    await poll(lambda: audio_flowing(sup, streams=2), 10, "both parties' audio at the monitor")
    for test_id in ("monitor-kiosk-video", "monitor-staff-video"):
        await sup.wait_for_function(
            f"() => document.querySelector('[data-testid={test_id}]').videoWidth > 0",
            timeout=10_000,
        )
    await expect(sup.get_by_test_id("status")).to_have_text("Listening to the call.")
    await expect(listen).to_be_disabled()
    assert await sup.evaluate("() => window.smartcounter.sessionId") == session_id

    # The senders were asked for keyframes (what lets the monitor start at once).
    kiosk_now, alice_now = await pc_stats(kiosk), await pc_stats(alice)
    for before, now in ((kiosk_before, kiosk_now), (alice_before, alice_now)):
        assert (
            outbound(now, "video")["keyFramesEncoded"]
            > outbound(before, "video")["keyFramesEncoded"]
        ), (before, now)

    # Silent: the parties get nothing of the supervisor, and their call goes on.
    for page in (kiosk, alice):
        stats = await decoding(page)
        assert stats["transceivers"] == 2, stats
        assert len(inbound(stats, "video")) == 1, stats
        assert len(inbound(stats, "audio")) == 1, stats
    media = hub.get(session_id)
    assert media is not None
    monitors = [k for k in media.participants if k.startswith("monitor:")]
    assert len(monitors) == 1, list(media.participants)

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await sup.screenshot(path=str(ARTIFACTS / "supervisor-monitor.png"), full_page=True)

    # While a call is monitored its row offers one (disabled) button saying so; the
    # language switch works while monitoring.
    assert await row.get_by_role("button").count() == 1
    await sup.get_by_test_id("lang-zh-Hant").click()
    await expect(sup.get_by_test_id("monitor-stop")).to_have_text("停止監聽")
    await sup.get_by_test_id("lang-zh-Hans").click()
    await expect(sup.get_by_test_id("monitor-stop")).to_have_text("停止监听")
    await sup.get_by_test_id("lang-en").click()

    # Stop: the page and the server forget the monitor, the call goes on.
    await sup.get_by_test_id("monitor-stop").click()
    await expect(sup.get_by_test_id("monitor-panel")).to_be_hidden()
    await expect(sup.get_by_test_id("status")).to_have_text("Stopped listening.")
    assert await sup.evaluate("() => window.smartcounter.pc") is None
    await poll(lambda: no_monitor(server, session_id), 5, "the server to drop the monitor")
    await decoding(kiosk)

    # Listening again works at once too; then the call ends under the monitor: the page
    # says so, and the call leaves the list at the next poll.
    await listen.click()
    again = await sup.evaluate(MONITOR_FIRST_FRAMES_JS, 15_000)
    print("monitor again, first frames after the answer:", again)
    assert "error" not in again, again
    assert max(again["kioskMs"], again["staffMs"]) < FIRST_FRAME_MS, again
    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("call-ended")).to_be_visible(timeout=10_000)
    await expect(row).to_be_hidden(timeout=10_000)
    await expect(sup.get_by_test_id("monitor-panel")).to_be_hidden()
    await expect(sup.get_by_test_id("status")).to_have_text(
        "The call you were listening to has ended."
    )
    assert await sup.evaluate("() => window.smartcounter.pc") is None
    await expect(sup.get_by_test_id("calls-count")).to_have_text("0")

    assert browser_log.unexpected() == []
    assert server_errors(caplog) == []


async def test_second_staff_browser_joining_later_gets_kiosk_video_at_once(
    e2e_server: Server, open_page, browser_log: BrowserLog, caplog: pytest.LogCaptureFixture
) -> None:
    server = e2e_server
    kiosk, _alice, session_id = await start_tax_call(server, open_page)
    await asyncio.sleep(CALL_AGE_S)  # a scenario step: the call has been going a while

    # Alice's second browser (same origin, its own storage) joins the call on /staff.
    second = await open_page("alice-2")
    await second.goto(f"{server.url}/console")
    kiosk_before = await pc_stats(kiosk)
    joined = await second.evaluate(
        SECOND_STAFF_JOIN_JS,
        {
            "token": await server.login("alice"),
            "sessionId": session_id,
            "timeoutMs": 15_000,
        },
    )
    print("second staff browser, first kiosk frame after the answer:", joined)
    assert "error" not in joined, joined
    assert joined["firstFrameMs"] < FIRST_FRAME_MS, joined
    # The kiosk was asked for a keyframe, and the second browser keeps decoding.
    kiosk_now = await pc_stats(kiosk)
    assert (
        outbound(kiosk_now, "video")["keyFramesEncoded"]
        > outbound(kiosk_before, "video")["keyFramesEncoded"]
    ), (kiosk_before, kiosk_now)
    stats = await decoding(second, "second")
    assert len(inbound(stats, "video")) == 1 and len(inbound(stats, "audio")) == 1, stats
    await poll(lambda: audio_flowing(second, "second"), 10, "kiosk audio at the second browser")
    await second.wait_for_function(
        "() => document.querySelector('[data-testid=second-remote-video]').videoWidth > 0",
        timeout=10_000,
    )

    await second.evaluate(CLOSE_SECOND_JS)
    assert browser_log.unexpected() == []
    assert server_errors(caplog) == []


async def test_recordings_of_a_call_after_the_kiosk_hangs_up(
    e2e_server: Server, open_page, browser_log: BrowserLog, tmp_path: Path
) -> None:
    server = e2e_server
    kiosk, alice, session_id = await start_tax_call(server, open_page)
    await asyncio.sleep(CALL_AGE_S)  # a scenario step: something worth recording
    await decoding(kiosk)
    await kiosk.get_by_test_id("hangup").click()
    await expect(kiosk.get_by_test_id("call-ended")).to_be_visible(timeout=10_000)
    await expect(alice.get_by_test_id("wrapup-done")).to_be_visible(timeout=10_000)

    listing_path = f"/api/v1/sessions/{session_id}/recordings"
    status, _ = await http_get(server, listing_path, await server.login("alice"))
    assert status == 403
    sup_token = await server.login("sup")
    status, body = await http_get(server, listing_path, sup_token)
    assert status == 200, body
    recordings = json.loads(body)["recordings"]
    assert sorted(r["name"] for r in recordings) == ["kiosk-1.webm", "staff-1.webm"], recordings
    kiosk_rec = next(r for r in recordings if r["name"] == "kiosk-1.webm")

    # Hang-up finalises the file (on the writer thread): wait until it reads back whole.
    path = tmp_path / "kiosk-1.webm"

    async def complete() -> dict[str, Any] | None:
        status, data = await http_get(server, kiosk_rec["url"], sup_token)
        assert status == 200, data[:200]
        path.write_bytes(data)
        info = await asyncio.to_thread(ffprobe, path)
        duration = info.get("format", {}).get("duration")
        return info if duration not in (None, "N/A") else None

    info = await poll(complete, 10, "kiosk-1.webm to be finalised", interval=0.25)
    streams = {s["codec_type"]: s for s in info["streams"]}
    assert streams["video"]["codec_name"] == "vp8", info
    assert streams["audio"]["codec_name"] == "opus", info
    assert int(streams["video"]["nb_read_frames"]) > 3 * 15, info
    assert int(streams["audio"]["nb_read_frames"]) > 0, info
    assert float(info["format"]["duration"]) > 3, info
    assert browser_log.unexpected() == []


async def test_supervisor_page_refuses_staff_accounts(
    e2e_server: Server, open_page, browser_log: BrowserLog
) -> None:
    page = await open_page("alice-on-supervisor")
    await page.goto(f"{e2e_server.url}/supervisor")
    await page.get_by_test_id("lang-en").click()
    await page.get_by_test_id("login-username").fill("alice")
    await page.get_by_test_id("login-password").fill(e2e_server.passwords["alice"])
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_have_text(
        "This page is for supervisors only. Please use the staff console."
    )
    await page.get_by_test_id("lang-zh-Hant").click()
    await expect(page.get_by_test_id("login-error")).to_have_text(
        "此頁面僅供班長使用，請使用坐席控制台。"
    )
    assert await page.evaluate("() => window.smartcounter.socket") is None
    await page.get_by_test_id("login-password").fill("wrong")
    await page.get_by_test_id("login-submit").click()
    await expect(page.get_by_test_id("login-error")).to_have_text("使用者名稱或密碼錯誤。")
    # The browser itself reports the refused sign-in (401) on the console; nothing else.
    refused = "status of 401 (Unauthorized) (http://127.0.0.1"
    errors = browser_log.unexpected()
    assert [e for e in errors if refused not in e or "/api/v1/auth/login" not in e] == []
    assert len(errors) == 1, errors
