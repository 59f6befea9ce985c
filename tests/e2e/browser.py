"""Real headless Chromium for the end-to-end tests and the call-setup benchmark.

Facts behind the flags: /work/shared/WEBRTC-TESTING.md (fake camera and microphone, no
mDNS host candidates, nothing that phones home).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, Playwright, expect

CHROMIUM_PATH = Path("/usr/bin/chromium")
ASSETS = Path(__file__).resolve().parents[1] / "assets"
FACE_JPG = ASSETS / "obama.jpg"
# Another photo of the person on FACE_JPG: the kiosk's camera in the verification tests.
LIVE_FACE_JPG = ASSETS / "obama2.jpg"


def chromium_args(fake_video: Path) -> list[str]:
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={fake_video}",
        # Without it Chromium offers <uuid>.local host candidates that aioice cannot resolve.
        "--disable-features=WebRtcHideLocalIpsWithMdns",
        # The remote <video> must play (and present frames) without a user gesture.
        "--autoplay-policy=no-user-gesture-required",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-domain-reliability",
        "--metrics-recording-only",
        "--no-default-browser-check",
    ]


def make_fake_camera(dest: Path, source: Path = FACE_JPG) -> Path:
    """``source`` as a one-frame 640×480 yuv420p y4m at ``dest`` (Chromium loops it)."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        raise RuntimeError("ffmpeg is needed to make the fake camera file (apt-get install ffmpeg)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp.y4m")
    subprocess.run(
        [
            ffmpeg,
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(source),
            "-vf",
            "scale=640:480:force_original_aspect_ratio=decrease,"
            "pad=640:480:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p",
            "-frames:v",
            "1",
            "-pix_fmt",
            "yuv420p",
            str(tmp),
        ],
        check=True,
        timeout=60,
    )
    tmp.replace(dest)
    return dest


def require_chromium() -> None:
    """Skip the test (fail it on CI) when Chromium is not installed."""
    import pytest  # only the tests need it, not the benchmark that shares this module

    if not CHROMIUM_PATH.exists():
        reason = f"{CHROMIUM_PATH} is missing (apt-get install chromium): browser tests not run"
        if os.environ.get("CI"):
            pytest.fail(reason + " — CI must run them", pytrace=False)
        pytest.skip(reason)


async def launch_chromium(pw: Playwright, fake_video: Path, headless: bool = True) -> Browser:
    return await pw.chromium.launch(
        executable_path=str(CHROMIUM_PATH),
        headless=headless,
        args=chromium_args(fake_video),
    )


# -------------------------------------------------------------------- browser log

# Console errors that are not the page's fault.
IGNORED_ERRORS = [re.compile(r"favicon\.(ico|svg).*(404|Not Found)", re.I | re.S)]


@dataclass
class BrowserLog:
    """Console errors and uncaught exceptions of every page it watches."""

    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page, name: str) -> Page:
        def on_console(msg: ConsoleMessage) -> None:
            if msg.type == "error":
                where = msg.location.get("url", "") if msg.location else ""
                self.errors.append(f"[{name}] console.error: {msg.text} ({where})")

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"[{name}] uncaught: {exc}"))
        page.on("crash", lambda _: self.errors.append(f"[{name}] page crashed"))
        return page

    def unexpected(self) -> list[str]:
        return [e for e in self.errors if not any(p.search(e) for p in IGNORED_ERRORS)]


async def new_page(browser: Browser, log: BrowserLog, name: str) -> tuple[BrowserContext, Page]:
    """A fresh context (own storage, like another machine) with one watched page."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    log.watch(page, name)
    return context, page


# -------------------------------------------------------------------- page helpers

STATS_JS = """
async () => {
  const sc = window.smartcounter;
  const pc = sc && sc.pc;
  if (!pc) return null;
  const out = { state: pc.connectionState, video: null, audio: null };
  (await pc.getStats()).forEach((s) => {
    if (s.type !== "inbound-rtp") return;
    if (s.kind === "video") {
      out.video = {
        framesDecoded: s.framesDecoded || 0,
        framesReceived: s.framesReceived || 0,
        packetsReceived: s.packetsReceived || 0,
        frameWidth: s.frameWidth || 0,
        frameHeight: s.frameHeight || 0,
      };
    } else if (s.kind === "audio") {
      out.audio = {
        packetsReceived: s.packetsReceived || 0,
        totalSamplesReceived: s.totalSamplesReceived || 0,
      };
    }
  });
  return out;
}
"""


async def open_kiosk(page: Page, base_url: str, token: str) -> None:
    """The kiosk page, connected and showing its departments."""
    await page.goto(f"{base_url}/kiosk#token={token}")
    await page.wait_for_function(
        "() => window.smartcounter && window.smartcounter.socket"
        " && window.smartcounter.socket.connected",
        timeout=15_000,
    )
    await expect(page.get_by_test_id("dept-tax")).to_be_visible(timeout=15_000)


async def console_login(
    page: Page, base_url: str, username: str, password: str, available: bool = True
) -> None:
    """Sign in on the staff console and become available (or, with ``available=False``,
    stay away: nothing is offered until the test makes the staff member available)."""
    await page.goto(f"{base_url}/console")
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_function(
        "() => window.smartcounter && window.smartcounter.socket"
        " && window.smartcounter.socket.connected",
        timeout=15_000,
    )
    if available:
        await page.get_by_test_id("presence-available").click()
    await expect(page.get_by_test_id("presence-state")).to_have_attribute(
        "data-state", "available" if available else "away", timeout=10_000
    )


async def tax_call(base_url: str, passwords: dict, kiosk_tokens: dict, alice: Page,
                   kiosk: Page) -> None:
    """alice signs in on ``alice`` (available) while kiosk k1 opens on ``kiosk``; the
    kiosk asks for a tax enquiry and alice accepts it."""
    await asyncio.gather(
        console_login(alice, base_url, "alice", passwords["alice"]),
        open_kiosk(kiosk, base_url, kiosk_tokens["k1"]),
    )
    await kiosk.get_by_test_id("dept-tax").click()
    await kiosk.get_by_test_id("service-tax-enquiry").click()
    await alice.get_by_test_id("accept").click()


async def remote_video_playing(page: Page, timeout: float = 15_000) -> None:
    """Wait until the page's remote <video> shows a picture (frames decoded)."""
    await page.wait_for_function(
        "() => { const v = document.querySelector('[data-testid=remote-video]');"
        " return v && v.videoWidth > 0 && v.currentTime > 0; }",
        timeout=timeout,
    )


def audit_events(audit_dir: Path, session_id: str) -> list[dict]:
    """The session's audit trail (``DATA_DIR/audit/{session_id}.jsonl``), oldest first."""
    path = audit_dir / f"{session_id}.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def drag_through(page: Page, selector: str, points: list[tuple[float, float]]) -> None:
    """Press the mouse at the first of ``points`` and move it through the others, then
    release: each point is a fraction (x, y) of the box of the element at ``selector``."""
    target = page.locator(selector)
    await target.scroll_into_view_if_needed()
    box = await target.bounding_box()
    assert box, f"{selector} is not on screen"

    def at(point: tuple[float, float]) -> tuple[float, float]:
        return box["x"] + point[0] * box["width"], box["y"] + point[1] * box["height"]

    await page.mouse.move(*at(points[0]))
    await page.mouse.down()
    for point in points[1:]:
        await page.mouse.move(*at(point), steps=4)
    await page.mouse.up()


# -------------------------------------------------------------------- supervisor page


async def supervisor_sign_in(
    page: Page, base_url: str, password: str, username: str = "sup", lang: str | None = None
) -> None:
    """Sign in on the supervisor page (in ``lang`` if given); returns once the live
    dashboard has its first snapshot."""
    await page.goto(f"{base_url}/supervisor")
    if lang:
        await page.get_by_test_id(f"lang-{lang}").click()
    await page.get_by_test_id("login-username").fill(username)
    await page.get_by_test_id("login-password").fill(password)
    await page.get_by_test_id("login-submit").click()
    await page.wait_for_function(
        "() => window.smartcounter && window.smartcounter.socket"
        " && window.smartcounter.socket.connected && window.smartcounter.snapshot",
        timeout=15_000,
    )


# On the supervisor page: waits until both videos of the monitor's peer connection (the
# kiosk's on the first transceiver, the staff member's on the third) have decoded `more`
# frames more than when called; answers their frame counts and the audio packets the
# page sent (whisper, barge), or {error, ...} after timeoutMs.
MONITOR_DECODING_JS = """
async ({ more, timeoutMs }) => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const deadline = performance.now() + timeoutMs;
  const sample = async () => {
    const pc = window.smartcounter && window.smartcounter.pc;
    if (!pc) return null;
    const ids = pc.getTransceivers().map((t) => t.receiver.track.id);
    const out = { state: pc.connectionState, kiosk: 0, staff: 0, audioSent: 0 };
    (await pc.getStats()).forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "video") {
        if (s.trackIdentifier === ids[0]) out.kiosk = s.framesDecoded || 0;
        if (s.trackIdentifier === ids[2]) out.staff = s.framesDecoded || 0;
      } else if (s.type === "outbound-rtp" && s.kind === "audio") {
        out.audioSent += s.packetsSent || 0;
      }
    });
    return out;
  };
  const before = (await sample()) || { kiosk: 0, staff: 0 };
  let last = null;
  while (performance.now() < deadline) {
    last = await sample();
    if (
      last && last.kiosk > 0 && last.staff > 0
      && last.kiosk >= before.kiosk + more && last.staff >= before.staff + more
    ) {
      return { before, ...last };
    }
    await sleep(50);
  }
  return { error: "the monitor's videos did not decode", before, last };
}
"""


async def monitor_decoding(page: Page, more: int = 10, timeout_ms: int = 20_000) -> dict:
    """Both monitor videos of the supervisor page decode ``more`` frames more than now;
    answers the last stats (``kiosk``, ``staff``: frames decoded; ``audioSent``)."""
    stats = await page.evaluate(MONITOR_DECODING_JS, {"more": more, "timeoutMs": timeout_ms})
    assert "error" not in stats, stats
    return stats
