"""Peer connections of a session's participants, and the hub that owns them all.

Each participant (the kiosk, the staff member) has one RTCPeerConnection to the server,
the session's media home. The kiosk's audio and video go to the staff member and the
staff member's to the kiosk, through the configured relay: ``forward`` (encoded frames,
:mod:`media.forwarder`, the default) or ``transcode`` (aiortc decodes and re-encodes,
:mod:`media.relay`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiortc import (
    RTCBundlePolicy,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)

from .errors import BadOffer, MediaClosed
from .forwarder import FRAME_STEP, Consumer, Producer
from .mixer import AudioMixer, Voice
from .recorder import Recording, Recordings, RecordingWriter
from .relay import Fanout, RelayTrack
from .sampler import FrameHandler, FrameSampler

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")
RELAYS = ("forward", "transcode")
# Who receives whose media. A monitoring supervisor receives both directions: the
# first video and audio sections of its offer carry the kiosk's, the second the staff's.
RECEIVES_FROM = {"kiosk": ("staff",), "staff": ("kiosk",), "monitor": ("kiosk", "staff")}
# The forwarding relay passes frames as they were encoded, so every leg of a call must
# use the same codec: the first offer decides, VP8 if it has it (every WebRTC browser
# does), otherwise H.264; audio is always Opus.
VIDEO_CODECS = ("video/VP8", "video/H264")
_MEDIA_SECTION = re.compile(r"^m=(audio|video) ", re.MULTILINE)
_VIDEO_RTPMAP = re.compile(r"^a=rtpmap:\d+ ([A-Za-z0-9-]+)/90000", re.MULTILINE)


@dataclass
class IceServer:
    urls: list[str]
    username: str | None = None
    credential: str | None = None


@dataclass
class Participant:
    role: str
    pc: RTCPeerConnection
    # (whose media, kind) → RelayTrack | Consumer
    outputs: dict[tuple[str, str], Any] = field(default_factory=dict)
    sources: dict[str, Any] = field(default_factory=dict)  # kind → Fanout | Producer
    recording: Recording | None = None
    # A monitoring supervisor's mode (silent, whisper, barge) and decoded voice.
    mode: str = "silent"
    voice: Voice | None = None

    async def close(self) -> None:
        if self.recording is not None:
            await self.recording.close()
        for source in self.sources.values():
            await source.close()
        for track in self.outputs.values():
            track.stop()
        await self.pc.close()


class SessionMedia:
    """The participants of one session and the relay between them."""

    def __init__(
        self,
        session_id: str,
        ice_servers: list[IceServer],
        relay: str,
        new_recording: Callable[[str], Recording] | None = None,
    ) -> None:
        if relay not in RELAYS:
            raise ValueError(f"relay must be one of {RELAYS}, not {relay!r}")
        self.session_id = session_id
        self.relay = relay
        self._ice_servers = ice_servers
        self._new_recording = new_recording
        # The video codec every leg of this call uses (forwarding relay).
        self.video_codec: str | None = None
        self.participants: dict[str, Participant] = {}
        self._timelines: dict[tuple[str, str], int] = {}
        self._lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self.closed = False

    def _configuration(self) -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                for s in self._ice_servers
            ],
            # Browsers bundle every section on one transport. With aiortc's default
            # (balanced) a second audio section is left on a transport that never
            # starts (aiortc issue #1414): the monitor would get no staff audio.
            bundlePolicy=RTCBundlePolicy.MAX_BUNDLE,
        )

    async def answer(
        self, role: str, sdp: str, key: str | None = None, mode: str = "silent"
    ) -> str:
        """Answer a participant's (complete, non-trickle) offer; a new offer from the same
        participant replaces its previous peer connection (reconnect, ICE restart).

        ``role`` is ``kiosk``, ``staff`` or ``monitor``; ``key`` names the participant
        (defaults to the role; one per supervisor for monitors).
        """
        key = key or role
        async with self._lock:
            if self.closed:
                raise MediaClosed(f"media of session {self.session_id} is closed")
            previous = self.participants.pop(key, None)
            if previous is not None:
                self._mix_voices()
                self._remember_timelines(key, previous)
                await previous.close()
            participant = Participant(role, RTCPeerConnection(self._configuration()), mode=mode)
            try:
                answer = await self._negotiate(participant, sdp, key)
            except BaseException:
                await participant.close()
                raise
            self.participants[key] = participant
            self._mix_voices()
            return answer

    async def leave(self, key: str) -> bool:
        async with self._lock:
            participant = self.participants.pop(key, None)
            self._mix_voices()
        if participant is None:
            return False
        await participant.close()
        return True

    def _mix_voices(self) -> None:
        """Whisper: a supervisor's voice goes to the staff member; barge: to both sides.
        Recomputed whenever someone joins or leaves."""
        wanted: dict[int, tuple[Consumer, list[Voice]]] = {}
        for listener in self.participants.values():
            if listener.role not in ("kiosk", "staff"):
                continue
            consumer = listener.outputs.get((RECEIVES_FROM[listener.role][0], "audio"))
            if not isinstance(consumer, Consumer):
                continue
            voices = [
                m.voice
                for m in self.participants.values()
                if m.role == "monitor"
                and m.voice is not None
                and (m.mode == "barge" or (m.mode == "whisper" and listener.role == "staff"))
            ]
            wanted[id(consumer)] = (consumer, voices)
        for consumer, voices in wanted.values():
            if not voices:
                consumer.mixer = None
                continue
            consumer.mixer = consumer.mixer or AudioMixer()
            for voice in voices:
                voice.feed(consumer.mixer)

    def _remember_timelines(self, key: str, previous: Participant) -> None:
        """Where a replaced participant's decoded tracks left off (transcoding relay;
        the forwarding consumers keep their own timelines)."""
        for kind, source in previous.sources.items():
            if isinstance(source, Fanout) and source.last_pts is not None:
                self._timelines[(key, kind)] = source.last_pts + FRAME_STEP[kind]

    def _make_source(self, participant: Participant, track: Any, key: str) -> Any:
        name = f"{self.session_id}:{participant.role}:{track.kind}"
        if self.relay == "transcode":
            return Fanout(track, name, self._timelines.pop((key, track.kind), None))
        receiver = next(
            t.receiver for t in participant.pc.getTransceivers() if t.receiver.track is track
        )
        return Producer(track.kind, receiver, name)

    def _sender(self, role: str) -> Participant | None:
        return next((p for p in self.participants.values() if p.role == role), None)

    async def _negotiate(self, participant: Participant, sdp: str, key: str) -> str:
        pc = participant.pc

        @pc.on("track")
        def on_track(track) -> None:
            source = self._make_source(participant, track, key)
            participant.sources[track.kind] = source
            if participant.role == "monitor":
                if track.kind == "audio" and isinstance(source, Producer):
                    participant.voice = Voice()
                    source.listen(participant.voice.add_packet)
                    self._mix_voices()
                return
            if isinstance(source, Producer) and self._new_recording is not None:
                if participant.recording is None:
                    participant.recording = self._new_recording(participant.role)
                participant.recording.follow(source)
            for other in self.participants.values():
                output = other.outputs.get((participant.role, track.kind))
                if output is not None:
                    source.attach(output)

        @pc.on("connectionstatechange")
        def on_state() -> None:
            logger.info(
                "session %s %s peer connection %s",
                self.session_id,
                participant.role,
                pc.connectionState,
            )
            if pc.connectionState in ("failed", "closed") and participant.recording:
                # The peer crashed or left: finalise what was recorded of it.
                task = asyncio.create_task(participant.recording.close())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        kinds = _MEDIA_SECTION.findall(sdp)
        if not kinds:
            raise BadOffer("the offer has no audio or video section")
        video_codec = None
        if self.relay == "forward" and "video" in kinds:
            video_codec = self._choose_video_codec(sdp)
        # Transceivers made before the offer is applied take it in order, with our codec
        # preferences: aiortc negotiates codecs while applying the offer.
        for kind in kinds:
            transceiver = pc.addTransceiver(kind, direction="sendrecv")
            if self.relay == "forward":
                self._prefer_codec(transceiver, video_codec)
        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises several types for unusable SDP
            raise BadOffer(f"cannot use this SDP offer: {exc}") from exc
        if video_codec is not None:
            self.video_codec = video_codec
        transceivers = [t for t in pc.getTransceivers() if t.mid is not None]
        sources = RECEIVES_FROM[participant.role]
        for transceiver in transceivers:
            kind = transceiver.kind
            source_role = next((r for r in sources if (r, kind) not in participant.outputs), None)
            if source_role is None:
                continue  # more sections of this kind than there are senders of it
            output: Any = Consumer(kind) if self.relay == "forward" else RelayTrack(kind)
            participant.outputs[(source_role, kind)] = output
            sender = pc.addTrack(output)
            if isinstance(output, Consumer):
                output.watch_feedback(sender)
            owner = self._sender(source_role)
            if owner is not None and kind in owner.sources:
                owner.sources[kind].attach(output)
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise BadOffer(f"cannot answer this SDP offer: {exc}") from exc
        return pc.localDescription.sdp

    def _choose_video_codec(self, sdp: str) -> str:
        offered = {f"VIDEO/{name.upper()}" for name in _VIDEO_RTPMAP.findall(sdp)}
        if self.video_codec is not None:
            if self.video_codec.upper() not in offered:
                raise BadOffer(f"this call's video is {self.video_codec}: the offer must have it")
            return self.video_codec
        for codec in VIDEO_CODECS:
            if codec.upper() in offered:
                return codec
        raise BadOffer("the offer must include VP8 or H.264 video")

    @staticmethod
    def _prefer_codec(transceiver: Any, video_codec: str | None) -> None:
        wanted = (video_codec, "video/rtx") if transceiver.kind == "video" else ("audio/opus",)
        codecs = [
            c for c in RTCRtpSender.getCapabilities(transceiver.kind).codecs if c.mimeType in wanted
        ]
        transceiver.setCodecPreferences(codecs)

    def producer(self, role: str, kind: str) -> Producer | None:
        """The forwarding producer of a participant's track, if it is sending one."""
        participant = self._sender(role)
        source = participant.sources.get(kind) if participant else None
        return source if isinstance(source, Producer) else None

    def sample(self, role: str, fps: float, on_frame: FrameHandler) -> FrameSampler:
        """Decoded frames of ``role``'s video at ``fps`` (the decoded side branch)."""
        participant = self._sender(role)
        source = participant.sources.get("video") if participant else None
        if source is None:
            raise MediaClosed(f"{role} sends no video in session {self.session_id}")
        return FrameSampler(source, fps, on_frame)

    def consumers(self) -> list[Consumer]:
        return [
            o
            for p in self.participants.values()
            for o in p.outputs.values()
            if isinstance(o, Consumer)
        ]

    async def close(self) -> None:
        async with self._lock:
            self.closed = True
            participants, self.participants = list(self.participants.values()), {}
        for participant in participants:
            try:
                await participant.close()
            except Exception:  # a failing close must not stop the others
                logger.exception("closing %s of %s failed", participant.role, self.session_id)
        if self._tasks:
            await asyncio.wait(self._tasks)


class MediaHub:
    """Every session's media on this node."""

    def __init__(
        self,
        ice_servers: list[IceServer],
        relay: str = "forward",
        recordings: Recordings | None = None,
    ) -> None:
        """``recordings``: where calls are recorded (forwarding relay only); None: off."""
        if relay not in RELAYS:
            raise ValueError(f"relay must be one of {RELAYS}, not {relay!r}")
        self.ice_servers = ice_servers
        self.relay = relay
        self.recordings = recordings if relay == "forward" else None
        self._writer: RecordingWriter | None = None
        self._sessions: dict[str, SessionMedia] = {}

    def _recording_factory(self, session_id: str) -> Callable[[str], Recording] | None:
        recordings = self.recordings
        if recordings is None:
            return None
        if self._writer is None:
            self._writer = RecordingWriter()

        def new_recording(role: str) -> Recording:
            writer = self._writer
            # Calls are answered only while the hub is open (close() drops the writer).
            assert writer is not None, "a recording started after the media hub closed"
            return Recording(recordings.new_file(session_id, role), writer)

        return new_recording

    def __len__(self) -> int:
        return len(self._sessions)

    def session_ids(self) -> list[str]:
        return list(self._sessions)

    def get(self, session_id: str) -> SessionMedia | None:
        return self._sessions.get(session_id)

    def consumers(self) -> list[Consumer]:
        return [c for media in self._sessions.values() for c in media.consumers()]

    async def answer(
        self, session_id: str, role: str, sdp: str, key: str | None = None, mode: str = "silent"
    ) -> str:
        media = self._sessions.get(session_id)
        if media is None or media.closed:
            media = SessionMedia(
                session_id, self.ice_servers, self.relay, self._recording_factory(session_id)
            )
            self._sessions[session_id] = media
        return await media.answer(role, sdp, key, mode)

    async def release(self, session_id: str) -> None:
        media = self._sessions.pop(session_id, None)
        if media is not None:
            await media.close()

    async def close(self) -> None:
        for session_id in list(self._sessions):
            await self.release(session_id)
        if self._writer is not None:
            await asyncio.to_thread(self._writer.close)
            self._writer = None
