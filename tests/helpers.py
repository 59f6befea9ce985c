"""What many tests share besides running servers (tests/harness.py): media peers, uploads,
the audit trail, fakes of the router's clock and notifier, store records."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import fractions
import io
import json
from pathlib import Path
from typing import Any

import aiohttp
import cv2
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError, VideoStreamTrack
from av import VideoFrame
from PIL import Image

from sessions.records import Case, Document, DocumentRef
from sessions.router import Kiosk, Staff
from sessions.session import Session
from tests.harness import Client

ASSETS = Path(__file__).parent / "assets"


class ColourTrack(VideoStreamTrack):
    """320x240 frames of one colour, so each side can tell whose video it receives."""

    def __init__(self, rgb: tuple[int, int, int]) -> None:
        super().__init__()
        self.image = np.zeros((240, 320, 3), dtype=np.uint8)
        self.image[:, :] = rgb

    async def recv(self) -> VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = VideoFrame.from_ndarray(self.image, format="rgb24")
        frame.pts, frame.time_base = pts, time_base or fractions.Fraction(1, 90000)
        return frame


class ImageTrack(ColourTrack):
    """A still picture (BGR array) as a camera."""

    def __init__(self, bgr: np.ndarray) -> None:
        super().__init__((0, 0, 0))
        self.image = np.ascontiguousarray(bgr[..., ::-1])


def mean_colour(frame: VideoFrame) -> np.ndarray:
    return frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(axis=0)


class AiortcPeer:
    """An aiortc peer connection whose track readers stop when it closes."""

    pc: RTCPeerConnection
    _readers: list[asyncio.Task]

    async def close(self) -> None:
        await self.pc.close()
        for task in self._readers:
            task.cancel()
        if self._readers:
            await asyncio.wait(self._readers)


class Peer(AiortcPeer):
    """A participant's browser stand-in: sends a colour and some audio, counts frames."""

    def __init__(
        self, client: Client, rgb: tuple[int, int, int], video_codec: str | None = None,
        video_track: VideoStreamTrack | None = None,
    ) -> None:
        self.client = client
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        video = self.pc.addTransceiver(video_track or ColourTrack(rgb))
        if video_codec:  # offer only this video codec
            video.setCodecPreferences(
                [
                    c
                    for c in RTCRtpSender.getCapabilities("video").codecs
                    if c.mimeType in (video_codec, "video/rtx")
                ]
            )
        self.pc.addTrack(AudioStreamTrack())
        self.video_frames: list[VideoFrame] = []
        self.audio_frames = 0
        self.audio_levels: list[float] = []
        self._readers: list[asyncio.Task] = []

        @self.pc.on("track")
        def on_track(track) -> None:
            self._readers.append(asyncio.create_task(self._read(track)))

    async def _read(self, track) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if track.kind == "video":
                self.video_frames.append(frame)
                del self.video_frames[:-5]
            else:
                self.audio_frames += 1
                self.audio_levels.append(float(np.abs(frame.to_ndarray()).mean()))
                del self.audio_levels[:-25]

    async def connect(self, session_id: str) -> dict:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        ack = await self.client.call(
            "rtc.offer",
            {"session_id": session_id, "sdp": self.pc.localDescription.sdp, "type": "offer"},
            timeout=20,
        )
        assert ack["ok"], ack
        await self.pc.setRemoteDescription(RTCSessionDescription(ack["sdp"], ack["type"]))
        return ack

    def mean_colour(self) -> np.ndarray:
        return mean_colour(self.video_frames[-1])


async def wait_until(predicate, timeout: float = 15.0, what: str = "condition") -> None:
    """Poll ``predicate`` (state of aiortc objects, which offer no event to wait on)."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out after {timeout}s waiting for {what}") from None


async def open_call(server, stack: contextlib.AsyncExitStack) -> tuple[Client, Client, str]:
    """Kiosk k1 calls tax and alice accepts; both clients close when ``stack`` does."""
    staff = Client("/staff")
    stack.push_async_callback(staff.close)
    await staff.connect(server.url, await server.login("alice"))
    await staff.call("presence.set", {"state": "available"})
    kiosk = Client("/kiosk")
    stack.push_async_callback(kiosk.close)
    await kiosk.connect(server.url, server.kiosk_tokens["k1"])
    ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
    await staff.wait_for("call.offer", session_id=ack["session_id"])
    assert (await staff.call("call.accept", {"session_id": ack["session_id"]}))["ok"]
    return kiosk, staff, ack["session_id"]


class Monitor(AiortcPeer):
    """A supervisor's receive-only peer: kiosk video and audio, then staff video and audio."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        for kind in ("video", "audio", "video", "audio"):
            self.pc.addTransceiver(kind, direction="recvonly")
        self.frames: dict[str, list[VideoFrame]] = {}
        self._readers: list[asyncio.Task] = []

        @self.pc.on("track")
        def on_track(track) -> None:
            if track.kind == "video":
                mid = next(t.mid for t in self.pc.getTransceivers() if t.receiver.track is track)
                self._readers.append(asyncio.create_task(self._read(mid, track)))

    async def _read(self, mid: str, track) -> None:
        frames = self.frames.setdefault(mid, [])
        while True:
            try:
                frames.append(await track.recv())
            except MediaStreamError:
                return
            del frames[:-3]

    def colour(self, mid: str) -> np.ndarray:
        return mean_colour(self.frames[mid][-1])


def camera_frame(name: str | Path) -> np.ndarray:
    """The photo (a name in tests/assets, or a path) fitted into a 640×480 frame, as a
    kiosk camera would see a person."""
    image = cv2.imread(str(ASSETS / name))
    scale = 480 / image.shape[0]
    image = cv2.resize(image, (round(image.shape[1] * scale), 480))
    frame = np.zeros((480, 640, 3), np.uint8)
    x0 = (640 - image.shape[1]) // 2
    frame[:, x0 : x0 + image.shape[1]] = image
    return frame


def fast(settings) -> None:
    settings.verification = dataclasses.replace(
        settings.verification, challenge_timeout_s=1.5, window_s=4.0, presence_fps=2.0
    )


async def upload(server, sid: str, data: bytes, kind: str = "id_card",
                 token: str | None = None, name: str = "scan.jpg") -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("kind", kind)
    form.add_field("file", data, filename=name, content_type="image/jpeg")
    headers = {"Authorization": f"Bearer {token or server.kiosk_tokens['k1']}"}
    async with aiohttp.ClientSession() as http:
        async with http.post(
            f"{server.url}/api/v1/sessions/{sid}/documents", data=form, headers=headers
        ) as resp:
            return resp.status, await resp.json()


def audit_events(server, sid: str) -> list[dict]:
    path = server.settings.audit_dir / f"{sid}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def pdf_of_pages(count: int, size=(600, 800)) -> bytes:
    colours = ["white", "yellow", "cyan", "pink"]
    pages = [Image.new("RGB", size, colours[i % 4]) for i in range(count)]
    out = io.BytesIO()
    pages[0].save(out, "PDF", save_all=True, append_images=pages[1:])
    return out.getvalue()


def signature_png() -> str:
    image = Image.new("RGBA", (400, 150), (0, 0, 0, 0))
    for x in range(50, 350):
        image.putpixel((x, 75 + (x % 20) - 10), (0, 0, 0, 255))
    out = io.BytesIO()
    image.save(out, "PNG")
    return base64.b64encode(out.getvalue()).decode()


async def fetch(server, url: str, token: str | None = None) -> tuple[int, bytes, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as http:
        async with http.get(server.url + url, headers=headers) as resp:
            return resp.status, await resp.read(), resp.headers.get("Content-Type", "")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RecordingNotifier:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, str, dict]] = []
        self.released: list[str] = []

    async def to_kiosk(self, kiosk_id, event, payload):
        self.events.append(("kiosk", kiosk_id, event, payload))

    async def to_staff(self, staff_id, event, payload):
        self.events.append(("staff", staff_id, event, payload))

    async def release_media(self, session_id):
        self.released.append(session_id)

    def of(self, who: str, ident: str, event: str) -> list[dict]:
        return [p for w, i, e, p in self.events if (w, i, e) == (who, ident, event)]


TAX_A = Staff("alice", "Alice", ("tax",))


TAX_B = Staff("bob", "Bob", ("tax",))


K1, K2, K3 = Kiosk("k1", "Kwun Tong"), Kiosk("k2", "Kwun Tong"), Kiosk("k3", "Macau")


async def online_available(router, clock, *staff):
    for s in staff:
        await router.staff_online(s)
        clock.advance(1)
        await router.set_presence(s, "available")


def make_session(sid: str, dept: str = "tax", score: float = 1.0, **kw) -> Session:
    fields = dict(
        id=sid,
        kiosk_id=f"kiosk-{sid}",  # a kiosk has one live session at most
        kiosk_site="Kwun Tong",
        department_id=dept,
        service_id="tax-enquiry",
        language="en",
        state="queued",
        created_at=score,
        queue_score=score,
        queued_at=score,
    )
    fields.update(kw)
    return Session(**fields)


def make_document(document_id: str, session_id: str = "s1", kind: str = "id_card") -> Document:
    return Document(document_id=document_id, session_id=session_id, kiosk_id="k1", kind=kind,
                    sha256="ab" * 32, pages=1, content_type="image/jpeg", size=10,
                    created_at=1.0)


def make_case(receipt_no: str, at: float, session_id: str = "s1", state="submitted") -> Case:
    return Case(receipt_no=receipt_no, session_id=session_id, kiosk_id="k1",
                department_id="tax", service_id="tax-enquiry", staff_id="alice", state=state,
                submitted_at=at, documents=[DocumentRef("d1", "ab" * 32, "form")])


async def login(url: str, username: str, password: str) -> str:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{url}/api/v1/auth/login",
                             json={"username": username, "password": password}) as resp:
            assert resp.status == 200, await resp.text()
            return (await resp.json())["token"]


async def get_json(url: str, token: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()


async def session_record(server, token: str, session_id: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(
            f"{server.url}/api/v1/sessions/{session_id}",
            headers={"Authorization": f"Bearer {token}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json()
