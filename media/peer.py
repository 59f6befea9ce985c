"""Peer connections of a session's participants, and the hub that owns them all.

Each participant (the kiosk, the staff member) has one RTCPeerConnection to the server,
the session's media home. The kiosk's audio and video go to the staff member and the
staff member's to the kiosk.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiortc import (
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCSessionDescription,
)

from .errors import BadOffer, MediaClosed
from .relay import Fanout, RelayTrack

logger = logging.getLogger(__name__)

KINDS = ("audio", "video")
# Who receives whose media.
RECEIVES_FROM = {"kiosk": "staff", "staff": "kiosk"}


@dataclass
class IceServer:
    urls: list[str]
    username: str | None = None
    credential: str | None = None


@dataclass
class Participant:
    role: str
    pc: RTCPeerConnection
    outputs: dict[str, RelayTrack] = field(default_factory=dict)
    sources: dict[str, Fanout] = field(default_factory=dict)

    async def close(self) -> None:
        for fanout in self.sources.values():
            await fanout.close()
        for track in self.outputs.values():
            track.stop()
        await self.pc.close()


class SessionMedia:
    """The participants of one session and the relay between them."""

    def __init__(self, session_id: str, ice_servers: list[IceServer]) -> None:
        self.session_id = session_id
        self._ice_servers = ice_servers
        self.participants: dict[str, Participant] = {}
        self._lock = asyncio.Lock()
        self.closed = False

    def _configuration(self) -> RTCConfiguration:
        return RTCConfiguration(
            iceServers=[
                RTCIceServer(urls=s.urls, username=s.username, credential=s.credential)
                for s in self._ice_servers
            ]
        )

    async def answer(self, role: str, sdp: str) -> str:
        """Answer a participant's (complete, non-trickle) offer; a new offer from the same
        participant replaces its previous peer connection (reconnect, ICE restart)."""
        async with self._lock:
            if self.closed:
                raise MediaClosed(f"media of session {self.session_id} is closed")
            previous = self.participants.pop(role, None)
            if previous is not None:
                self._detach(previous)
                await previous.close()
            participant = Participant(role, RTCPeerConnection(self._configuration()))
            try:
                answer = await self._negotiate(participant, sdp)
            except BaseException:
                await participant.close()
                raise
            self.participants[role] = participant
            return answer

    async def _negotiate(self, participant: Participant, sdp: str) -> str:
        pc = participant.pc

        @pc.on("track")
        def on_track(track) -> None:
            fanout = Fanout(track, f"{self.session_id}:{participant.role}:{track.kind}")
            participant.sources[track.kind] = fanout
            for role, other in self.participants.items():
                if RECEIVES_FROM.get(role) == participant.role and track.kind in other.outputs:
                    fanout.attach(other.outputs[track.kind])

        @pc.on("connectionstatechange")
        def on_state() -> None:
            logger.info(
                "session %s %s peer connection %s",
                self.session_id,
                participant.role,
                pc.connectionState,
            )

        try:
            await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        except Exception as exc:  # aiortc raises several types for unusable SDP
            raise BadOffer(f"cannot use this SDP offer: {exc}") from exc
        kinds = {t.kind for t in pc.getTransceivers()}
        if not kinds:
            raise BadOffer("the offer has no audio or video section")
        sender_role = RECEIVES_FROM.get(participant.role)
        for kind in KINDS:
            if kind not in kinds:
                continue
            output = RelayTrack(kind)
            participant.outputs[kind] = output
            pc.addTrack(output)
            source_owner = self.participants.get(sender_role) if sender_role else None
            if source_owner is not None and kind in source_owner.sources:
                source_owner.sources[kind].attach(output)
        try:
            await pc.setLocalDescription(await pc.createAnswer())
        except Exception as exc:
            raise BadOffer(f"cannot answer this SDP offer: {exc}") from exc
        return pc.localDescription.sdp

    def _detach(self, participant: Participant) -> None:
        for other in self.participants.values():
            for kind, fanout in other.sources.items():
                if kind in participant.outputs:
                    fanout.detach(participant.outputs[kind])

    async def close(self) -> None:
        async with self._lock:
            self.closed = True
            participants, self.participants = list(self.participants.values()), {}
        for participant in participants:
            try:
                await participant.close()
            except Exception:  # a failing close must not stop the others
                logger.exception("closing %s of %s failed", participant.role, self.session_id)


class MediaHub:
    """Every session's media on this node."""

    def __init__(self, ice_servers: list[IceServer]) -> None:
        self.ice_servers = ice_servers
        self._sessions: dict[str, SessionMedia] = {}

    def __len__(self) -> int:
        return len(self._sessions)

    async def answer(self, session_id: str, role: str, sdp: str) -> str:
        media = self._sessions.get(session_id)
        if media is None or media.closed:
            media = self._sessions[session_id] = SessionMedia(session_id, self.ice_servers)
        return await media.answer(role, sdp)

    async def release(self, session_id: str) -> None:
        media = self._sessions.pop(session_id, None)
        if media is not None:
            await media.close()

    async def close(self) -> None:
        for session_id in list(self._sessions):
            await self.release(session_id)
