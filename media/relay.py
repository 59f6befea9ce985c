"""Relay between participants: one reader per received track fans frames out to the
tracks that send them on to other participants.

This is the transcoding relay (aiortc decodes what it receives and encodes again for
each sender). A forwarding relay that passes encoded frames instead plugs in at the same
two points: :class:`Fanout` (what a participant sends in, a producer) and
:class:`RelayTrack` (one receiver's copy out, a consumer).
"""

from __future__ import annotations

import asyncio
import collections
import logging

from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av.frame import Frame
from av.packet import Packet

logger = logging.getLogger(__name__)

# Bounded per-consumer buffers: video keeps only the freshest frames (latency over
# completeness), audio a little more so short scheduling hiccups are not audible.
BUFFER_FRAMES = {"video": 2, "audio": 10}


class RelayTrack(MediaStreamTrack):
    """An outgoing track fed by whichever :class:`Fanout` is attached to it.

    It may be created before its source exists (the other participant has not joined
    yet) and survives a change of source (the other participant reconnects).
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._frames: collections.deque = collections.deque(maxlen=BUFFER_FRAMES[kind])
        self._ready = asyncio.Event()

    def push(self, frame) -> None:
        self._frames.append(frame)  # a full deque drops its oldest frame
        self._ready.set()

    async def recv(self):
        while not self._frames:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        return self._frames.popleft()

    def stop(self) -> None:
        super().stop()
        self._ready.set()


def _pts(frame: Frame | Packet) -> int:
    """The pts of a frame from a received track (aiortc stamps each one it decodes)."""
    assert frame.pts is not None, "a received frame without a timestamp"
    return frame.pts


class Fanout:
    """Reads one received track (always, so frames never pile up in aiortc) and pushes
    each frame to the attached :class:`RelayTrack` consumers."""

    def __init__(
        self, source: MediaStreamTrack, name: str, continue_from: int | None = None
    ) -> None:
        """``continue_from``: the timestamp this source's first frame gets, so that a
        participant who reconnects does not send the receivers' timeline backwards (a
        browser drops video whose timestamps jump back)."""
        self.source = source
        self.kind = source.kind
        self.name = name
        self._continue_from = continue_from
        self._offset = 0
        self.last_pts: int | None = None
        self.frames = 0
        self._consumers: set[RelayTrack] = set()
        self._task = asyncio.create_task(self._run(), name=f"fanout:{name}")

    def attach(self, consumer: RelayTrack) -> None:
        self._consumers.add(consumer)

    def detach(self, consumer: RelayTrack) -> None:
        self._consumers.discard(consumer)

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.source.recv()
            except MediaStreamError:
                logger.debug("source %s ended", self.name)
                return
            if self.frames == 0 and self._continue_from is not None:
                self._offset = self._continue_from - _pts(frame)
            if self._offset:
                frame.pts = _pts(frame) + self._offset  # before anyone else sees the frame
            self.last_pts = frame.pts
            self.frames += 1
            for consumer in tuple(self._consumers):
                consumer.push(frame)

    async def close(self) -> None:
        self._consumers.clear()
        self._task.cancel()
        await asyncio.wait([self._task])
