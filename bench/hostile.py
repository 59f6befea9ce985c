"""Legitimate calls while one kiosk attacks the node, beside the same calls in quiet.

    python -m bench.hostile [--calls 10] [--window 10]

Each run starts a fresh ``smartcounter serve`` (127.0.0.1, forwarding relay, recording
on; ``bench.relay``'s server, participants and pre-encoded clip) and opens ``--calls``
two-way calls one after another, timing each from the kiosk's ``call.request`` to the
first video frame received on both sides (call set-up), then counts every stream's
received video frames over ``--window`` seconds. In the flood run an extra kiosk, from
before the first call until the end, keeps sending, as fast as its acks come back:
``call.request`` (one session, in another department's queue, then conflicts and rate
limits), ``rtc.offer`` with 1,900 media sections (refused for its waiting session), and
uploads of a 3.7 KB PDF that asks PDFium for gigabytes (the sandbox's work). Printed:
set-up p50/p95 and the lowest and median fps of both runs, side by side with the ratio,
and what the attacker got back.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import math
import os
import platform
import statistics
import time

import aiohttp

from bench.relay import Participant, ServerProcess, connect, encode_clip
from tests.security.hostile_files import nested_xobject_pdf


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def until(predicate, timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):  # aiortc counts frames: no event to wait on
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def open_call(server: ServerProcess, i: int, offers: asyncio.Queue,
                    clip) -> tuple[Participant, float]:
    """Call ``i``: request, accept, media both ways; its set-up time."""
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
    await until(lambda: kiosk.video_frames > 0 and offered_to.video_frames > 0)
    return kiosk, time.perf_counter() - started


async def attack(server: ServerProcess, stop: asyncio.Event, tally: collections.Counter) -> None:
    """The attacker kiosk: the last account."""
    token = server.kiosk_tokens[-1]
    sio = await connect(server.url, "/kiosk", token)
    bomb = nested_xobject_pdf(7)
    sdp = "v=0\r\n" + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" * 1900
    # Another department's queue: its one session takes no tax clerk from the others.
    session_id = (await sio.call("call.request", {"service_id": "property-record-enquiry"},
                                 namespace="/kiosk"))["session_id"]

    async def events() -> None:
        while not stop.is_set():
            for event, payload in (
                ("call.request", {"service_id": "property-record-enquiry"}),
                ("rtc.offer", {"session_id": session_id, "sdp": sdp, "type": "offer"}),
            ):
                ack = await sio.call(event, payload, namespace="/kiosk", timeout=30)
                tally[f"{event}: {ack['error']['code'] if not ack.get('ok') else 'ok'}"] += 1

    async def uploads() -> None:
        async with aiohttp.ClientSession() as http:
            while not stop.is_set():
                form = aiohttp.FormData()
                form.add_field("kind", "supporting")
                form.add_field("file", bomb, filename="x.pdf", content_type="application/pdf")
                async with http.post(f"{server.url}/api/v1/sessions/{session_id}/documents",
                                     data=form,
                                     headers={"Authorization": f"Bearer {token}"}) as resp:
                    tally[f"upload: {resp.status}"] += 1

    try:
        await asyncio.gather(events(), uploads())
    finally:
        await sio.disconnect()


async def run(calls: int, window: float, clip, flood: bool) -> dict:
    async with ServerProcess("forward", calls + 1) as server:
        stop, tally = asyncio.Event(), collections.Counter()
        attacker = asyncio.create_task(attack(server, stop, tally)) if flood else None
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
        kiosks, setups = [], []
        for i in range(calls):
            kiosk, setup = await open_call(server, i, offers, clip)
            kiosks.append(kiosk)
            setups.append(setup)
        streams = [*kiosks, *staff]
        before = [p.video_frames for p in streams]
        started = time.monotonic()
        await asyncio.sleep(window)
        elapsed = time.monotonic() - started
        fps = [(p.video_frames - b) / elapsed for p, b in zip(streams, before, strict=True)]
        stop.set()
        if attacker is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(attacker, 30)
        for p in streams:
            await p.stop_media()
            with contextlib.suppress(Exception):
                await p.sio.disconnect()
    return {"setup": setups, "fps": fps, "tally": dict(tally)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hostile",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--window", type=float, default=10.0)
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    clip = encode_clip()
    quiet = asyncio.run(run(args.calls, args.window, clip, flood=False))
    flooded = asyncio.run(run(args.calls, args.window, clip, flood=True))
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
    print("\nwhat the attacker got back:")
    for answer, count in sorted(flooded["tally"].items()):
        print(f"  {answer:<40} {count}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
