"""Media relay benchmark: N concurrent two-way calls through the server, forwarding
relay against the transcoding baseline, in one run.

    python -m bench.relay [--calls 1,5,10,20,30,40] [--baseline-calls 1,2,4] [--window 10]
                          [--sequential 200]

The server runs as its own process (``smartcounter serve`` on 127.0.0.1, recording on),
so its CPU and memory are read from /proc apart from the load generator's. The
generator costs little itself: every participant sends a clip encoded once at start
(VP8 640×480, 30 fps, ~800 kbit/s, key frame every second; Opus 20 ms frames) as
``av.Packet`` objects that aiortc packetizes without encoding, and counts received
frames from the receiver's encoded-frame tap (media/aiortc_tap.py) without decoding.

Per N, after a warm-up, over ``--window`` seconds: server CPU per call (100% = one
core), the lowest received video frame rate of any stream, the server's forwarding
delay (receive → hand-over to the sender, p50/p95, from /metrics), server memory per
call. Then ``--sequential`` calls one after another: the server's RSS after them against
after the first 10.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import platform
import secrets
import socket
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import aiohttp
import av
import numpy as np
import socketio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from media import aiortc_tap
from sessions.accounts import AccountDirectory

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGETS = {"cpu_ratio": 0.2, "calls": 40, "fps": 25.0, "delay_p95_ms": 10.0, "rss_mb": 20.0}


# -- the clip, encoded once -----------------------------------------------------------------
def encode_clip(seconds: float = 2.0) -> dict[str, list[bytes]]:
    enc = av.CodecContext.create("libvpx", "w")
    enc.width, enc.height, enc.pix_fmt = 640, 480, "yuv420p"
    enc.time_base = fractions.Fraction(1, 30)
    enc.bit_rate = 800_000
    enc.gop_size = 30
    enc.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    yy, xx = np.mgrid[0:480, 0:640]
    video = []
    for i in range(int(30 * seconds)):
        image = np.stack(
            [(xx + 4 * i) % 256, (yy + 2 * i) % 256, ((xx + yy) // 2 + 3 * i) % 256], axis=-1
        ).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        video += [bytes(p) for p in enc.encode(frame)]
    video += [bytes(p) for p in enc.encode(None)]
    aenc = av.CodecContext.create("libopus", "w")
    aenc.sample_rate, aenc.layout, aenc.format = 48000, "stereo", "s16"
    aenc.bit_rate = 32_000
    audio = []
    t = np.arange(960) / 48000
    for i in range(int(50 * seconds)):
        tone = (3000 * np.sin(2 * np.pi * 440 * (t + i * 0.02))).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(
            np.repeat(tone, 2)[None, :], format="s16", layout="stereo"
        )
        frame.sample_rate, frame.pts = 48000, i * 960
        audio += [bytes(p) for p in aenc.encode(frame)]
    return {"video": video, "audio": audio}


class ClipTrack(MediaStreamTrack):
    """Sends the pre-encoded clip in a loop, paced in real time."""

    # kind → (timestamp step, clock rate, seconds per frame)
    STEP: ClassVar[dict[str, tuple[int, int, float]]] = {
        "video": (3000, 90000, 1 / 30),
        "audio": (960, 48000, 0.02),
    }

    def __init__(self, kind: str, packets: list[bytes]) -> None:
        super().__init__()
        self.kind = kind
        self._packets = packets
        self._i = 0
        self._start: float | None = None

    async def recv(self) -> av.Packet:
        step, rate, period = self.STEP[self.kind]
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        wait = self._start + self._i * period - loop.time()
        if wait > 0:
            await asyncio.sleep(wait)
        packet = av.Packet(self._packets[self._i % len(self._packets)])
        packet.pts, packet.time_base = self._i * step, fractions.Fraction(1, rate)
        self._i += 1
        return packet


# -- one participant of the load ------------------------------------------------------------
@dataclass
class Participant:
    role: str
    sio: socketio.AsyncClient
    pc: RTCPeerConnection | None = None
    video_frames: int = 0
    offers: list[str] = field(default_factory=list)

    async def start_media(self, session_id: str, clip: dict[str, list[bytes]]) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(ClipTrack("video", clip["video"]))
        self.pc.addTrack(ClipTrack("audio", clip["audio"]))

        @self.pc.on("track")
        def on_track(track) -> None:
            receiver = next(
                t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track
            )
            if track.kind == "video":
                aiortc_tap.tap_receiver(receiver, self._count)
            else:
                aiortc_tap.tap_receiver(receiver, lambda codec, frame: None)

        await self.pc.setLocalDescription(await self.pc.createOffer())
        ack = await self.sio.call(
            "rtc.offer",
            {"session_id": session_id, "sdp": self.pc.localDescription.sdp, "type": "offer"},
            namespace=f"/{self.role}",
            timeout=30,
        )
        if not ack.get("ok"):
            raise RuntimeError(f"{self.role} offer refused: {ack}")
        await self.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], "answer"))

    def _count(self, codec, frame) -> None:
        self.video_frames += 1

    async def stop_media(self) -> None:
        if self.pc is not None:
            await self.pc.close()
            self.pc = None


# -- the server under test ------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, relay: str, accounts: int, recording: bool = True) -> None:
        self.relay = relay
        self.recording = recording
        self.accounts = accounts
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.tmp = tempfile.TemporaryDirectory(prefix="scbench-")
        self.data = Path(self.tmp.name)
        self.kiosk_tokens: list[str] = []
        self.password = secrets.token_urlsafe(12)
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> ServerProcess:
        directory = AccountDirectory(self.data)
        for i in range(self.accounts):
            self.kiosk_tokens.append(directory.add_kiosk(f"bk{i}", "bench")[1])
            directory.add_staff(f"bs{i}", self.password, ["tax"], "staff", f"Staff {i}")
        env = {
            **os.environ,
            "SMARTCOUNTER_MEDIA_RELAY": self.relay,
            "SMARTCOUNTER_RECORDING": "on" if self.recording else "off",
            "SMARTCOUNTER_OFFER_TIMEOUT_S": "60",
        }
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "smartcounter.cli",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(self.data),
            env=env,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return self
                await asyncio.sleep(0.1)
        raise RuntimeError("the server did not start")

    async def __aexit__(self, *exc) -> None:
        if self.proc and self.proc.returncode is None:
            self.proc.terminate()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.proc.wait(), 15)
            if self.proc.returncode is None:
                self.proc.kill()
                await self.proc.wait()
        self.tmp.cleanup()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    async def forward_delay_ms(self) -> dict[str, float]:
        async with aiohttp.ClientSession() as http, http.get(f"{self.url}/metrics") as resp:
            text = await resp.text()
        out = {}
        for line in text.splitlines():
            if line.startswith("smartcounter_forward_delay_seconds{"):
                q = line.split('quantile="')[1].split('"')[0]
                out[q] = float(line.rsplit(" ", 1)[1]) * 1000
        return out

    async def login(self, http: aiohttp.ClientSession, i: int) -> str:
        async with http.post(
            f"{self.url}/api/v1/auth/login", json={"username": f"bs{i}", "password": self.password}
        ) as resp:
            return (await resp.json())["token"]


async def connect(url: str, namespace: str, token: str) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    await sio.connect(
        url,
        namespaces=[namespace],
        auth={"token": token},
        transports=["websocket"],
        wait_timeout=10,
    )
    return sio


@dataclass
class Call:
    session_id: str
    kiosk: Participant
    staff: Participant


async def open_calls(server: ServerProcess, n: int, clip) -> list[Call]:
    """N staff available, N kiosks request; each offer is accepted; media starts."""
    offers: asyncio.Queue = asyncio.Queue()
    staff: list[Participant] = []
    async with aiohttp.ClientSession() as http:
        for i in range(n):
            sio = await connect(server.url, "/staff", await server.login(http, i))
            participant = Participant("staff", sio)

            async def on_offer(data, p=participant):
                await offers.put((p, data["session_id"]))

            sio.on("call.offer", on_offer, namespace="/staff")
            await sio.call("presence.set", {"state": "available"}, namespace="/staff")
            staff.append(participant)
    calls = []
    for i in range(n):
        sio = await connect(server.url, "/kiosk", server.kiosk_tokens[i])
        kiosk = Participant("kiosk", sio)
        ack = await sio.call("call.request", {"service_id": "tax-enquiry"}, namespace="/kiosk")
        staff_member, session_id = await asyncio.wait_for(offers.get(), 30)
        assert session_id == ack["session_id"], (session_id, ack)
        accepted = await staff_member.sio.call(
            "call.accept", {"session_id": session_id}, namespace="/staff"
        )
        assert accepted["ok"], accepted
        calls.append(Call(session_id, kiosk, staff_member))
    await asyncio.gather(
        *(p.start_media(c.session_id, clip) for c in calls for p in (c.kiosk, c.staff))
    )
    return calls


async def close_calls(calls: list[Call]) -> None:
    for c in calls:
        await c.kiosk.sio.call("call.hangup", {"session_id": c.session_id}, namespace="/kiosk")
    for c in calls:
        for p in (c.kiosk, c.staff):
            await p.stop_media()
            await p.sio.disconnect()


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


async def measure(
    relay: str, n: int, clip, window: float, warmup: float, recording: bool = True
) -> dict:
    async with ServerProcess(relay, n, recording) as server:
        rss_idle = server.rss_mb()
        calls = await open_calls(server, n, clip)
        streams = [p for c in calls for p in (c.kiosk, c.staff)]
        await asyncio.sleep(warmup)  # ICE, DTLS and the first key frames
        before = [p.video_frames for p in streams]
        cpu0, gen0, t0 = server.cpu_seconds(), own_cpu_seconds(), time.monotonic()
        await asyncio.sleep(window)
        elapsed = time.monotonic() - t0
        cpu = (server.cpu_seconds() - cpu0) / elapsed
        generator = (own_cpu_seconds() - gen0) / elapsed
        fps = [(p.video_frames - b) / elapsed for p, b in zip(streams, before, strict=True)]
        delay = await server.forward_delay_ms() if relay == "forward" else {}
        rss = server.rss_mb()
        await close_calls(calls)
    return {
        "relay": relay,
        "calls": n,
        "server_cpu": cpu,
        "cpu_per_call": cpu / n,
        "generator_cpu": generator,
        "fps_min": min(fps),
        "fps_median": statistics.median(fps),
        "delay_p50_ms": delay.get("0.5"),
        "delay_p95_ms": delay.get("0.95"),
        "rss_mb": rss,
        "rss_per_call_mb": (rss - rss_idle) / n,
    }


async def sequential(count: int, clip) -> dict:
    async with ServerProcess("forward", 1) as server:
        async with aiohttp.ClientSession() as http:
            token = await server.login(http, 0)
        staff = Participant("staff", await connect(server.url, "/staff", token))
        kiosk = Participant("kiosk", await connect(server.url, "/kiosk", server.kiosk_tokens[0]))
        offers: asyncio.Queue = asyncio.Queue()

        async def on_offer(data):
            await offers.put(data["session_id"])

        staff.sio.on("call.offer", on_offer, namespace="/staff")
        await staff.sio.call("presence.set", {"state": "available"}, namespace="/staff")
        rss_after = {}
        for i in range(1, count + 1):
            await kiosk.sio.call("call.request", {"service_id": "tax-enquiry"}, namespace="/kiosk")
            sid = await asyncio.wait_for(offers.get(), 30)
            await staff.sio.call("call.accept", {"session_id": sid}, namespace="/staff")
            await asyncio.gather(kiosk.start_media(sid, clip), staff.start_media(sid, clip))
            staff.video_frames = 0
            async with asyncio.timeout(20):
                while staff.video_frames < 5:  # noqa: ASYNC110 (a counter, no event to await)
                    await asyncio.sleep(0.02)
            await kiosk.sio.call("call.hangup", {"session_id": sid}, namespace="/kiosk")
            await kiosk.stop_media()
            await staff.stop_media()
            await staff.sio.call("wrapup.done", {}, namespace="/staff")
            if i in (10, count):
                await asyncio.sleep(1)  # let teardown finish before reading memory
                rss_after[i] = server.rss_mb()
        for p in (kiosk, staff):
            await p.sio.disconnect()
    return {
        "calls": count,
        "rss_after_10_mb": rss_after[10],
        "rss_after_all_mb": rss_after[count],
        "growth_mb": rss_after[count] - rss_after[10],
    }


def fmt(value, spec=".1f") -> str:
    return "—" if value is None else format(value, spec)


def report(rows: list[dict], seq: dict | None) -> None:
    print(
        "\nrelay       calls  server CPU  CPU/call  gen CPU  fps min  fps med  "
        "delay p50/p95 ms  RSS MB  MB/call"
    )
    for r in rows:
        print(
            f"{r['relay']:<10} {r['calls']:>6}  {r['server_cpu']:>9.0%}  {r['cpu_per_call']:>8.1%}"
            f"  {r['generator_cpu']:>7.0%}  {r['fps_min']:>7.1f}  {r['fps_median']:>7.1f}  "
            f"{fmt(r['delay_p50_ms'], '.2f'):>7}/{fmt(r['delay_p95_ms'], '.2f'):<7}  "
            f"{r['rss_mb']:>6.0f}  {r['rss_per_call_mb']:>7.1f}"
        )
    forward = {r["calls"]: r for r in rows if r["relay"] == "forward"}
    baseline = {r["calls"]: r for r in rows if r["relay"] == "transcode"}
    print("\nCPU per call, forward vs transcode (target ratio <= 1/5):")
    for n in sorted(set(forward) & set(baseline)):
        ratio = forward[n]["cpu_per_call"] / baseline[n]["cpu_per_call"]
        print(
            f"  {n:>3} calls: forward {forward[n]['cpu_per_call']:.1%}  transcode "
            f"{baseline[n]['cpu_per_call']:.1%}  ratio {ratio:.3f} (1/{1 / ratio:.1f})"
        )
    ok = [n for n, r in forward.items() if r["fps_min"] >= TARGETS["fps"]]
    print(
        f"\nlargest N (forward, recording on) with every stream >= {TARGETS['fps']:.0f} fps: "
        f"{max(ok) if ok else 0} (target {TARGETS['calls']}; tried {sorted(forward)})"
    )
    p95 = [r["delay_p95_ms"] for r in forward.values() if r["delay_p95_ms"] is not None]
    if p95:
        print(
            f"forwarding delay p95, worst N: {max(p95):.2f} ms (target < "
            f"{TARGETS['delay_p95_ms']:.0f} ms)"
        )
    if seq:
        print(
            f"RSS over {seq['calls']} sequential calls: {seq['rss_after_10_mb']:.1f} MB after 10,"
            f" {seq['rss_after_all_mb']:.1f} MB after {seq['calls']}: growth "
            f"{seq['growth_mb']:+.1f} MB (target < {TARGETS['rss_mb']:.0f} MB)"
        )


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", default="1,5,10,20,30,40")
    ap.add_argument("--baseline-calls", default="1,2,4")
    ap.add_argument("--window", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=4.0)
    ap.add_argument("--sequential", type=int, default=200)
    ap.add_argument("--no-recording", action="store_true", help="measure without recording")
    args = ap.parse_args()
    clip = encode_clip()
    kbps = sum(map(len, clip["video"])) * 8 / 2 / 1000
    print(
        f"clip: {len(clip['video'])} VP8 frames 640x480 (~{kbps:.0f} kbit/s), "
        f"{len(clip['audio'])} Opus frames; {os.cpu_count()} CPUs, {platform.processor()}"
    )
    rows = []
    plan = [("transcode", int(n)) for n in args.baseline_calls.split(",") if n] + [
        ("forward", int(n)) for n in args.calls.split(",") if n
    ]
    for relay, n in plan:
        row = await measure(relay, n, clip, args.window, args.warmup, not args.no_recording)
        rows.append(row)
        print(
            f"  {relay} x{n}: server {row['server_cpu']:.0%} CPU, fps min {row['fps_min']:.1f}",
            flush=True,
        )
    seq = await sequential(args.sequential, clip) if args.sequential >= 10 else None
    report(rows, seq)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"relay-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps({"rows": rows, "sequential": seq, "args": vars(args)}, indent=2))
    print(f"\nresults: {out}")


if __name__ == "__main__":
    asyncio.run(main())
