"""The decoded side branch: frames of a participant's video, decoded, at a chosen rate,
for parts that look at the picture (the identity verifier). Nothing is decoded for the
relay itself, so a track nobody samples costs no decoding at all.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import cast

from aiortc.mediastreams import MediaStreamError
from av import VideoFrame

from .forwarder import Producer
from .relay import Fanout, RelayTrack

logger = logging.getLogger(__name__)

FrameHandler = Callable[[VideoFrame], Awaitable[None] | None]


class FrameSampler:
    """Calls ``on_frame`` with at most ``fps`` decoded frames a second until closed."""

    def __init__(self, source: Producer | Fanout, fps: float, on_frame: FrameHandler) -> None:
        if fps <= 0:
            raise ValueError("fps must be positive")
        self.interval = 1.0 / fps
        self._on_frame = on_frame
        self._source = source
        if isinstance(source, Producer):
            source.set_decoding(True)  # aiortc decodes into the receiver's own track
            self._track = source.receiver.track
            self._relay_track: RelayTrack | None = None
        else:
            self._relay_track = RelayTrack("video")
            source.attach(self._relay_track)  # the transcoding relay decodes anyway
            self._track = self._relay_track
        self._closed = False
        self._task = asyncio.create_task(self._run(), name="frame-sampler")

    async def _run(self) -> None:
        next_at = 0.0
        while True:
            try:
                frame = await self._track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if now < next_at:
                continue  # read (so frames do not pile up) but not wanted yet
            next_at = now + self.interval
            try:
                # Both tracks are video tracks that decode: recv() gives VideoFrames.
                result = self._on_frame(cast(VideoFrame, frame))
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("frame handler failed")

    @property
    def ended(self) -> bool:
        """The track ended (its participant left or reconnected with a new one)."""
        return self._task.done()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._task.cancel()
        await asyncio.wait([self._task])
        if isinstance(self._source, Producer):
            self._source.set_decoding(False)
        elif self._relay_track is not None:
            self._source.detach(self._relay_track)
            self._relay_track.stop()
