"""Legitimate calls while one kiosk attacks the node, beside the same calls in quiet.

    python -m bench.hostile [--calls 10] [--rounds 3] [--window 5] [--pairs 2]
                            [--attack events,uploads]

Each run starts a fresh ``smartcounter serve`` (127.0.0.1, forwarding relay, recording
on; ``bench.relay``'s server, participants and pre-encoded clip). ``--rounds`` times it
opens ``--calls`` two-way calls one after another, timing each from the kiosk's
``call.request`` to the first video frame received on both sides (call set-up), counts
every stream's received video frames over ``--window`` seconds, and hangs them up. In a
flooded run an extra kiosk, in a process of its own (as it would be a machine of its
own), from before the first call to the end keeps sending, each as soon as the last is
answered: ``call.request`` (one session, in another department's queue, then conflicts
and rate limits), ``rtc.offer`` with 1,900 media sections (refused for its waiting
session), reconnecting at once when its socket is closed; and uploads of a 2 KB PDF
whose shading runs a 100,000-operator function per pixel, which no count of a page's
content sees (the sandbox's work, stopped at its 4 s timeout: the costliest upload
left). Quiet and flooded runs alternate ``--pairs`` times, pooled: a set-up p95 over one
run's 30 calls moves by ±30 % between identical runs. Printed: set-up p50/p95 and the
lowest and median fps, side by side with the ratio, and what the attacker got back.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import math
import os
import platform
import statistics
import sys
import time

import aiohttp
import socketio

from bench.relay import Participant, ServerProcess, connect, encode_clip
from tests.security.hostile_files import calculator_shading_pdf


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def until(predicate, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):  # aiortc counts frames: no event to wait on
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def open_call(server: ServerProcess, i: int, offers: asyncio.Queue,
                    clip) -> tuple[Participant, Participant, str, float]:
    """Call ``i``: request, accept, media both ways; its kiosk, officer, session and
    set-up time."""
    kiosk = Participant("kiosk", await connect(server.url, "/kiosk", server.kiosk_tokens[i]))
    started = time.perf_counter()
    ack = await kiosk.sio.call("call.request", {"service_id": "tax-enquiry"},
                               namespace="/kiosk")
    session_id = ack["session_id"]
    while True:
        offered_to, offered = await asyncio.wait_for(offers.get(), 30)
        if offered == session_id:
            break
    accepted = await offered_to.sio.call("call.accept", {"session_id": session_id},
                                         namespace="/staff")
    assert accepted["ok"], accepted
    await asyncio.gather(kiosk.start_media(session_id, clip),
                         offered_to.start_media(session_id, clip))
    frames = offered_to.video_frames
    await until(lambda: kiosk.video_frames > 0 and offered_to.video_frames > frames)
    return kiosk, offered_to, session_id, time.perf_counter() - started


async def close_call(kiosk: Participant, officer: Participant, session_id: str) -> None:
    """The kiosk hangs up; the officer ends wrap-up, ready for the next round's calls."""
    await kiosk.sio.call("call.hangup", {"session_id": session_id}, namespace="/kiosk")
    await kiosk.stop_media()
    await officer.stop_media()
    await kiosk.sio.disconnect()
    ack = await officer.sio.call("wrapup.done", {}, namespace="/staff")
    assert ack["ok"], ack


async def attack(url: str, token: str, parts: set[str], stop: asyncio.Event,
                 tally: collections.Counter) -> None:
    """The attacker kiosk's floods (``parts``: events, uploads) until ``stop``."""
    sio = await connect(url, "/kiosk", token)
    bomb = calculator_shading_pdf()
    sdp = "v=0\r\n" + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" * 1900
    # Another department's queue: its one session takes no tax clerk from the others.
    session_id = (await sio.call("call.request", {"service_id": "property-record-enquiry"},
                                 namespace="/kiosk"))["session_id"]

    async def events() -> None:
        nonlocal sio
        while not stop.is_set():
            if "/kiosk" not in sio.namespaces:  # closed for going on over its limit:
                tally["reconnected"] += 1  # straight back
                with contextlib.suppress(Exception):
                    await sio.disconnect()
                sio = await connect(url, "/kiosk", token)
            for event, payload in (
                ("call.request", {"service_id": "property-record-enquiry"}),
                ("rtc.offer", {"session_id": session_id, "sdp": sdp, "type": "offer"}),
            ):
                try:
                    ack = await sio.call(event, payload, namespace="/kiosk", timeout=5)
                except (socketio.exceptions.SocketIOError, TimeoutError):
                    break
                tally[f"{event}: {ack['error']['code'] if not ack.get('ok') else 'ok'}"] += 1

    async def uploads() -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                form = aiohttp.FormData()
                form.add_field("kind", "supporting")
                form.add_field("file", bomb, filename="x.pdf", content_type="application/pdf")
                async with http.post(f"{url}/api/v1/sessions/{session_id}/documents",
                                     data=form,
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
                    tally[f"upload: {resp.status}"] += 1

    floods = {"events": events, "uploads": uploads}
    try:
        await asyncio.gather(*(floods[part]() for part in sorted(parts)))
    finally:
        with contextlib.suppress(Exception):
            await sio.disconnect()


async def attacker_main(url: str, token: str, parts: set[str]) -> None:
    """The attacker as its own process (as it would be its own machine), so that its
    work does not slow the load generator's calls: floods until stdin closes, then
    prints what it got back as JSON."""
    stop, tally = asyncio.Event(), collections.Counter()
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    flood = asyncio.create_task(attack(url, token, parts, stop, tally))
    await reader.read()  # EOF: the measurement is over
    stop.set()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(flood, 30)
    print(json.dumps(dict(tally)), flush=True)


async def start_attacker(server: ServerProcess, parts: set[str]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.hostile", "--attacker", server.url,
        server.kiosk_tokens[-1], "--attack", ",".join(sorted(parts)),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    return proc


async def stop_attacker(proc: asyncio.subprocess.Process) -> dict:
    proc.stdin.close()
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    return json.loads(out.decode().strip().splitlines()[-1])


async def run(calls: int, rounds: int, window: float, clip, attack_parts: set[str]) -> dict:
    """``rounds`` times: ``calls`` calls set up one after another, their video counted
    for ``window`` seconds, then hung up."""
    async with ServerProcess("forward", calls + 1) as server:
        attacker = await start_attacker(server, attack_parts) if attack_parts else None
        offers: asyncio.Queue = asyncio.Queue()
        staff = []
        async with aiohttp.ClientSession() as http:
            for i in range(calls):
                member = Participant("staff", await connect(server.url, "/staff",
                                                            await server.login(http, i)))

                async def on_offer(data, p=member):
                    await offers.put((p, data["session_id"]))

                member.sio.on("call.offer", on_offer, namespace="/staff")
                await member.sio.call("presence.set", {"state": "available"},
                                      namespace="/staff")
                staff.append(member)
        setups, fps = [], []
        for _ in range(rounds):
            opened = []
            for i in range(calls):
                *call, setup = await open_call(server, i, offers, clip)
                opened.append(call)
                setups.append(setup)
            streams = [p for kiosk, officer, _ in opened for p in (kiosk, officer)]
            before = [p.video_frames for p in streams]
            started = time.monotonic()
            await asyncio.sleep(window)
            elapsed = time.monotonic() - started
            fps += [(p.video_frames - b) / elapsed for p, b in zip(streams, before, strict=True)]
            for call in opened:
                await close_call(*call)
        tally = await stop_attacker(attacker) if attacker is not None else {}
        for member in staff:
            with contextlib.suppress(Exception):
                await member.sio.disconnect()
    return {"setup": setups, "fps": fps, "tally": tally}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hostile",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--window", type=float, default=5.0)
    ap.add_argument("--pairs", type=int, default=2,
                    help="quiet and flooded runs, alternated, pooled (set-up tails are noisy)")
    ap.add_argument("--attack", default="events,uploads",
                    help="what the attacker floods, comma-separated (events, uploads)")
    ap.add_argument("--attacker", nargs=2, metavar=("URL", "TOKEN"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    parts = set(filter(None, args.attack.split(",")))
    if not parts <= {"events", "uploads"}:
        ap.error(f"--attack: unknown {sorted(parts - {'events', 'uploads'})}")
    if args.attacker:
        asyncio.run(attacker_main(*args.attacker, parts))
        return 0
    print(f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    clip = encode_clip()
    quiet = {"setup": [], "fps": [], "tally": collections.Counter()}
    flooded = {"setup": [], "fps": [], "tally": collections.Counter()}
    for _ in range(args.pairs):
        for pooled, attack_parts in ((quiet, set()), (flooded, parts)):
            result = asyncio.run(run(args.calls, args.rounds, args.window, clip, attack_parts))
            pooled["setup"] += result["setup"]
            pooled["fps"] += result["fps"]
            pooled["tally"].update(result["tally"])
    print(f"\n{len(quiet['setup'])} call set-ups and {len(quiet['fps'])} stream windows each")
    print(f"\n{'':34}{'quiet':>12}{'one kiosk flooding':>22}{'ratio':>8}")
    rows = (
        ("call set-up p50, ms", lambda r: nearest_rank(r["setup"], 0.5) * 1000),
        ("call set-up p95, ms", lambda r: nearest_rank(r["setup"], 0.95) * 1000),
        ("video fps, lowest stream", lambda r: min(r["fps"])),
        ("video fps, median stream", lambda r: statistics.median(r["fps"])),
    )
    for name, figure in rows:
        a, b = figure(quiet), figure(flooded)
        print(f"{name:<34}{a:>12.1f}{b:>22.1f}{b / a:>8.2f}")
    print(f"\nwhat the attacker got back, over {args.pairs} flooded runs:")
    for answer, count in sorted(flooded["tally"].items()):
        print(f"  {answer:<40} {count}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
