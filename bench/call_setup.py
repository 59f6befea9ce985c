"""Call set-up time in real Chromium: the kiosk's click on a service → the first kiosk
video frame decoded in the staff member's browser (DESIGN: median < 1.5 s on loopback).

    python -m bench.call_setup [--calls 20] [--redis-url URL] [--relay forward|transcode]

Starts the real server on 127.0.0.1 (embedded SQLite store unless --redis-url), one headless
Chromium with a kiosk page and a staff console (alice, tax, available), and makes
``--calls`` sequential calls. Every call: the kiosk clicks ``tax-enquiry``; the console
accepts the moment the incoming call shows (a click made inside the page, so no
automation round trip is counted); the staff page notes the first decoded kiosk frame;
then the kiosk hangs up and the staff member finishes wrap-up before the next call.

Clocks: both pages run in one browser and the server in this process, all on this
machine's wall clock, so page times (``performance.timeOrigin + performance.now()``, ms)
and server times (``time.time()``) are comparable.

"First frame decoded" is measured twice on the staff page: ``rvfc`` is the presentation
time of the first frame from ``requestVideoFrameCallback`` on the remote <video> (a frame
presented has been decoded); ``stats`` is the first ``getStats()`` poll (every 10 ms)
that sees ``framesDecoded > 0`` (later than the decode by up to the poll interval and
the getStats latency). The headline uses ``rvfc`` and falls back to ``stats``.

A call with no frame within FRAME_TIMEOUT_S counts as failed (infinitely slow in the
statistics); the run goes on and the command exits with status 1. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from playwright.async_api import Page, async_playwright, expect
from playwright.async_api import TimeoutError as PlaywrightTimeoutError

from signaling.keys import NODE
from tests.e2e.browser import (
    CHROMIUM_PATH,
    BrowserLog,
    console_login,
    launch_chromium,
    make_fake_camera,
    new_page,
    open_kiosk,
)
from tests.harness import Server, drop_redis_prefix, running_server

TARGET_MEDIAN_MS = 1500.0  # docs/architecture.md, "Call setup"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
DEPARTMENT, SERVICE = "tax", "tax-enquiry"
STAFF = "alice"
TIME_LIMIT_S = 170  # the whole run, start-up included, stays under 3 minutes
FRAME_TIMEOUT_S = 10  # a call with no frame by then counts as failed

# Kiosk page: when the service button is clicked and when the call's events come and go.
KIOSK_PROBE_JS = """
() => {
  const now = () => performance.timeOrigin + performance.now();
  const B = (window.__bench = { cur: null });
  document.addEventListener("click", (e) => {
    const tile = e.target.closest && e.target.closest('[data-testid^="service-"]');
    if (tile && B.cur && !B.cur.click) B.cur.click = now();
  }, { capture: true });
  const socket = window.smartcounter.socket;
  socket.onAnyOutgoing((event) => {
    if (!B.cur) return;
    if (event === "call.request" && !B.cur.request_sent) B.cur.request_sent = now();
    if (event === "rtc.offer" && !B.cur.kiosk_offer_sent) B.cur.kiosk_offer_sent = now();
  });
  socket.on("call.connected", () => { if (B.cur && !B.cur.connected) B.cur.connected = now(); });
  setInterval(() => {
    const pc = window.smartcounter.pc;
    if (!B.cur || !pc) return;
    if (!B.cur.kiosk_pc) B.cur.kiosk_pc = now();
    if (pc.connectionState === "connected" && !B.cur.kiosk_ice) B.cur.kiosk_ice = now();
  }, 10);
}
"""

# Staff page: accept at once, then note the first decoded frame of the kiosk's video.
STAFF_PROBE_JS = """
() => {
  const now = () => performance.timeOrigin + performance.now();
  const B = (window.__bench = { cur: null, rvfc: null });
  const panel = document.querySelector('[data-testid="incoming-call"]');
  const accept = document.querySelector('[data-testid="accept"]');
  const video = document.querySelector('[data-testid="remote-video"]');
  new MutationObserver(() => {
    if (B.cur && !panel.hidden && !accept.disabled && !B.cur.accept_click) {
      B.cur.offer_shown = now();
      accept.click();
      B.cur.accept_click = now();
    }
  }).observe(panel, { attributes: true, attributeFilter: ["hidden"] });
  const socket = window.smartcounter.socket;
  socket.on("call.offer", () => { if (B.cur && !B.cur.offer_event) B.cur.offer_event = now(); });
  socket.onAnyOutgoing((event) => {
    if (B.cur && event === "rtc.offer" && !B.cur.staff_offer_sent) B.cur.staff_offer_sent = now();
  });
  let polling = false;
  setInterval(async () => {
    const pc = window.smartcounter.pc;
    if (!B.cur || !pc || polling) return;
    if (!B.cur.staff_pc) B.cur.staff_pc = now();
    if (pc.connectionState === "connected" && !B.cur.staff_ice) B.cur.staff_ice = now();
    if (B.cur.frame_stats) return;
    polling = true;
    try {
      const cur = B.cur;
      (await pc.getStats()).forEach((s) => {
        if (s.type === "inbound-rtp" && s.kind === "video" && s.framesDecoded > 0
            && !cur.frame_stats) {
          cur.frame_stats = now();
          cur.frame_size = [s.frameWidth, s.frameHeight];
        }
      });
    } finally {
      polling = false;
    }
  }, 10);
  B.arm = () => {
    B.cur = {};
    if (B.rvfc !== null) video.cancelVideoFrameCallback(B.rvfc);
    const cur = B.cur;
    B.rvfc = video.requestVideoFrameCallback((t, meta) => {
      B.rvfc = null;
      cur.frame_rvfc = performance.timeOrigin + meta.presentationTime;
      cur.frame_rvfc_callback = now();
    });
  };
}
"""


def instrument_server(server: Server, marks: dict[str, dict[str, float]]) -> None:
    """Wrap the server's handlers (in this process) to note their start and end times per
    session: marks[session_id]["<name>_start" | "<name>_end"] (epoch ms)."""
    router = server.app[NODE].router
    gateway = server.app[NODE].gateway

    def wrap(obj: Any, attr: str, name_of, session_of) -> None:
        original = getattr(obj, attr)

        @functools.wraps(original)
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.time() * 1000
            result = await original(*args, **kwargs)
            end = time.time() * 1000
            sid = session_of(args, result)
            mark = marks.setdefault(sid, {})
            mark.setdefault(f"{name_of(args)}_start", start)
            mark.setdefault(f"{name_of(args)}_end", end)
            return result

        setattr(obj, attr, timed)

    wrap(router, "request_call", lambda a: "server_request", lambda a, r: r[0].id)
    wrap(router, "accept", lambda a: "server_accept", lambda a, r: r.id)
    wrap(gateway, "answer", lambda a: f"server_answer_{a[1]}", lambda a, r: a[0].id)


# (label, from mark, to mark): the stages printed for every call, in ms. The kiosk and
# the staff page negotiate their media in parallel once the call is accepted.
STAGES = [
    ("to offer", "click", "offer_event"),  # call.request handled, call.offer at staff
    ("accept", "offer_event", "server_accept_end"),  # console shows it, clicks, server
    ("k gather", "connected", "kiosk_offer_sent"),  # kiosk: new RTCPeerConnection, ICE
    ("k answer", "server_answer_kiosk_start", "server_answer_kiosk_end"),
    ("s gather", "server_accept_end", "staff_offer_sent"),
    ("s answer", "server_answer_staff_start", "server_answer_staff_end"),
    ("s ice", "server_answer_staff_end", "staff_ice"),
    ("ice→frame", "staff_ice", "first_frame"),
]


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summarize(values: list[float]) -> dict[str, float]:
    """Order statistics; a failed call counts as infinitely slow (``inf``)."""
    finite = [v for v in values if math.isfinite(v)]
    return {
        "n": len(values),
        "failed": len(values) - len(finite),
        "min": min(values),
        "median": statistics.median(values),
        "p95": nearest_rank(values, 0.95),
        "max": max(values),
        "mean_of_successful": statistics.fmean(finite) if finite else math.inf,
    }


def json_safe(value: Any) -> Any:
    """``inf`` (a failed call) as null: JSON has no infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_safe(v) for v in value]
    return value


async def wait_mark(page: Page, name: str, timeout_ms: float) -> None:
    await page.wait_for_function(
        "(name) => window.__bench.cur && window.__bench.cur[name] !== undefined",
        arg=name,
        polling=20,
        timeout=timeout_ms,
    )


async def end_call(kiosk: Page, staff: Page) -> None:
    """Hang up at the kiosk, back to its start screen; the staff member wraps up."""
    hangup, cancel = kiosk.get_by_test_id("hangup"), kiosk.get_by_test_id("cancel")
    if await hangup.is_visible():
        await hangup.click()
        await expect(kiosk.get_by_test_id("call-ended")).to_be_visible(timeout=10_000)
        await kiosk.get_by_test_id("call-ended").click()  # skips the 6 s "thank you" screen
    elif await cancel.is_visible():  # never connected: leave the queue
        await cancel.click()
    await expect(kiosk.get_by_test_id(f"dept-{DEPARTMENT}")).to_be_visible(timeout=10_000)
    await staff.wait_for_function(
        "() => ['wrapup', 'available'].includes("
        "document.querySelector('[data-testid=presence-state]').dataset.state)",
        timeout=10_000,
    )
    if await staff.get_by_test_id("wrapup-done").is_visible():
        await staff.get_by_test_id("wrapup-done").click()
    await expect(staff.get_by_test_id("presence-state")).to_have_attribute(
        "data-state", "available", timeout=10_000
    )


async def one_call(kiosk: Page, staff: Page, server_marks: dict[str, dict[str, float]]) -> dict:
    await staff.evaluate("() => window.__bench.arm()")
    await kiosk.evaluate("() => { window.__bench.cur = {}; }")
    await kiosk.get_by_test_id(f"dept-{DEPARTMENT}").click()
    await kiosk.get_by_test_id(f"service-{SERVICE}").click()
    failed = None
    try:
        await wait_mark(staff, "frame_stats", FRAME_TIMEOUT_S * 1000)
    except PlaywrightTimeoutError:
        failed = f"no kiosk frame decoded on the staff page within {FRAME_TIMEOUT_S} s"
    else:
        with contextlib.suppress(PlaywrightTimeoutError):  # rVFC may come a little later
            await wait_mark(staff, "frame_rvfc", 2_000)
    k = await kiosk.evaluate("() => window.__bench.cur")
    s = await staff.evaluate("() => window.__bench.cur")
    session_id = await kiosk.evaluate("() => window.smartcounter.sessionId")
    await end_call(kiosk, staff)

    marks: dict[str, Any] = {**k, **s, **server_marks.get(session_id, {})}
    if not failed:
        marks["first_frame"] = marks.get("frame_rvfc") or marks["frame_stats"]
    t0 = marks["click"]
    rel = {
        name: round(value - t0, 1)
        for name, value in marks.items()
        if isinstance(value, float | int) and name != "click"
    }
    server_ms = sum(
        marks[f"{name}_end"] - marks[f"{name}_start"]
        for name in (
            "server_request",
            "server_accept",
            "server_answer_kiosk",
            "server_answer_staff",
        )
        if f"{name}_end" in marks
    )
    stages = {
        label: round(marks[b] - marks[a], 1) for label, a, b in STAGES if a in marks and b in marks
    }
    return {
        "session_id": session_id,
        "failed": failed,
        "setup_ms": None if failed else round(marks["first_frame"] - t0, 1),
        "setup_stats_ms": None if failed else round(marks["frame_stats"] - t0, 1),
        "setup_rvfc_ms": round(marks["frame_rvfc"] - t0, 1) if marks.get("frame_rvfc") else None,
        "server_ms": round(server_ms, 1),
        "first_frame_source": None if failed else ("rvfc" if marks.get("frame_rvfc") else "stats"),
        "frame_size": marks.get("frame_size"),
        "stages_ms": stages,
        "marks_ms_since_click": dict(sorted(rel.items(), key=lambda kv: kv[1])),
    }


def fmt(v: float | None, width: int = 7) -> str:
    if v is None:
        return f"{'—':>{width}}"
    return f"{'fail':>{width}}" if math.isinf(v) else f"{v:{width}.0f}"


def ms(v: float) -> str:
    return "fail" if math.isinf(v) else f"{v:.0f} ms"


def report(calls: list[dict], meta: dict) -> dict:
    ok = [c for c in calls if not c["failed"]]

    def of(key: str) -> list[float]:
        return [math.inf if c["failed"] else c[key] for c in calls]

    summary: dict[str, Any] = {
        "calls": len(calls),
        "failed": len(calls) - len(ok),
        "setup_ms": summarize(of("setup_ms")),
        "setup_stats_ms": summarize(of("setup_stats_ms")),
        "server_ms": summarize([c["server_ms"] for c in ok]) if ok else None,
        "stages_ms": {
            label: summarize(vals)
            for label, *_ in STAGES
            if (vals := [c["stages_ms"][label] for c in ok if label in c["stages_ms"]])
        },
    }
    median = summary["setup_ms"]["median"]
    summary["target_median_ms"] = TARGET_MEDIAN_MS
    summary["median_over_target"] = round(median / TARGET_MEDIAN_MS, 3)
    summary["meets_target"] = median < TARGET_MEDIAN_MS

    print()
    labels = [label for label, *_ in STAGES]
    print(
        f"{'call':>4} {'setup':>7} {'(stats)':>7} {'server':>7}  "
        + " ".join(f"{label:>10}" for label in labels)
    )
    for i, c in enumerate(calls, 1):
        setup = math.inf if c["failed"] else c["setup_ms"]
        stats = math.inf if c["failed"] else c["setup_stats_ms"]
        print(
            f"{i:>4} {fmt(setup)} {fmt(stats)} {fmt(c['server_ms'])}  "
            + " ".join(fmt(c["stages_ms"].get(label), 10) for label in labels)
            + (f"  FAILED: {c['failed']}" if c["failed"] else "")
        )
    print()
    print(
        f"call set-up, kiosk click → first kiosk frame decoded on the staff page "
        f"({meta['relay']} relay, {meta['store']} store, {len(calls)} calls, ms):"
    )
    print(f"  {'':24} {'median':>8} {'p95':>8} {'min':>8} {'max':>8}")
    rows = [
        ("setup (headline)", summary["setup_ms"]),
        ("setup (getStats poll)", summary["setup_stats_ms"]),
    ]
    if summary["server_ms"]:
        rows.append(("server-side part", summary["server_ms"]))
    rows += [(f"  stage: {k}", v) for k, v in summary["stages_ms"].items()]
    for name, st in rows:
        print(
            f"  {name:24} " + " ".join(fmt(st[key], 8) for key in ("median", "p95", "min", "max"))
        )
    verdict = "meets" if summary["meets_target"] else "MISSES"
    print()
    print(
        f"DESIGN target: median < {TARGET_MEDIAN_MS:.0f} ms | measured median"
        f" {ms(median)}, p95 {ms(summary['setup_ms']['p95'])}"
        f" | median/target = {summary['median_over_target']:.2f} → {verdict} the target"
    )
    if summary["failed"]:
        print(
            f"{summary['failed']} of {len(calls)} calls FAILED (no kiosk frame on the staff "
            f"page within {FRAME_TIMEOUT_S} s); they count as infinitely slow above"
        )
    return summary


async def run(args: argparse.Namespace) -> int:
    if not CHROMIUM_PATH.exists():
        print(f"{CHROMIUM_PATH} is missing: apt-get install chromium", file=sys.stderr)
        return 2
    started = time.monotonic()
    prefix = f"scbench-{uuid.uuid4().hex[:10]}"
    store = "redis" if args.redis_url else "sqlite"
    server_kw: dict[str, Any] = {"redis_url": args.redis_url, "prefix": prefix}
    if args.relay:
        server_kw["relay"] = args.relay
    calls: list[dict] = []
    log = BrowserLog()
    with tempfile.TemporaryDirectory(prefix="sc-bench-") as tmp:
        camera = make_fake_camera(Path(tmp) / "face.y4m")
        try:
            async with (
                running_server(Path(tmp) / "data", **server_kw) as server,
                async_playwright() as pw,
            ):
                relay = getattr(server.settings, "media_relay", "default")
                server_marks: dict[str, dict[str, float]] = {}
                instrument_server(server, server_marks)
                browser = await launch_chromium(pw, camera, headless=not args.headed)
                meta = {
                    "relay": relay,
                    "store": store,
                    "chromium": browser.version,
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "machine": platform.machine(),
                    "warmup_calls": args.warmup,
                }
                _, staff = await new_page(browser, log, "staff")
                _, kiosk = await new_page(browser, log, "kiosk")
                await console_login(staff, server.url, STAFF, server.passwords[STAFF])
                await open_kiosk(kiosk, server.url, server.kiosk_tokens["k1"])
                await staff.evaluate(STAFF_PROBE_JS)
                await kiosk.evaluate(KIOSK_PROBE_JS)
                total = args.warmup + args.calls
                for i in range(total):
                    result = await one_call(kiosk, staff, server_marks)
                    warm = i < args.warmup
                    tag = "warm-up" if warm else f"{i - args.warmup + 1}/{args.calls}"
                    line = (
                        f"FAILED ({result['failed']})"
                        if result["failed"]
                        else f"{result['setup_ms']:6.0f} ms (stats {result['setup_stats_ms']:.0f}"
                        f" ms, server {result['server_ms']:.0f} ms)"
                    )
                    print(f"call {tag:>7}: {line}", flush=True)
                    if not warm:
                        calls.append(result)
                await browser.close()
        finally:
            if args.redis_url:
                await drop_redis_prefix(args.redis_url, prefix)

    summary = report(calls, meta)
    errors = log.unexpected()
    if errors:
        print("\nbrowser errors:\n  " + "\n  ".join(errors))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    out = RESULTS_DIR / f"call_setup-{stamp}.json"
    out.write_text(
        json.dumps(
            {
                "benchmark": "call_setup",
                "measured": "kiosk click on a service → first kiosk video frame decoded in"
                " the staff browser",
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "wall_s": round(time.monotonic() - started, 1),
                "meta": meta,
                "summary": json_safe(summary),
                "calls": calls,
                "browser_errors": errors,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nresults: {out} ({time.monotonic() - started:.0f} s in all)")
    return 1 if summary["failed"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.call_setup", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--calls", type=int, default=20, help="measured calls (default 20)")
    parser.add_argument("--warmup", type=int, default=1, help="calls made first, not counted")
    parser.add_argument("--redis-url", default=None, help="use Redis (default: the embedded store)")
    parser.add_argument(
        "--relay", choices=["forward", "transcode"], default=None, help="media relay"
    )
    parser.add_argument("--headed", action="store_true", help="show the browser")
    args = parser.parse_args(argv)
    if args.calls < 1 or args.warmup < 0:
        parser.error("--calls must be at least 1 and --warmup at least 0")
    try:
        return asyncio.run(asyncio.wait_for(run(args), TIME_LIMIT_S))
    except TimeoutError:
        print(f"gave up: the benchmark took over {TIME_LIMIT_S} s", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
