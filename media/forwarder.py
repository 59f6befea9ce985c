"""The forwarding relay: encoded frames go from a :class:`Producer` (what a participant
sends in on one track) to each :class:`Consumer` (one receiver's copy out) without
decoding or encoding.

Keyframes: a consumer that joins, or that fell behind and dropped frames, waits for the
next keyframe and asks its producer for one; the producer sends a PLI upstream, at most
every :data:`KEYFRAME_INTERVAL_S` (a late request is sent when the interval ends).
Receivers' keyframe requests and bandwidth estimates are passed upstream the same way;
the lowest estimate of all consumers caps what the sender is asked to send.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import time
from collections.abc import Callable
from typing import Any

import av
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from . import aiortc_tap
from .mixer import AudioMixer

logger = logging.getLogger(__name__)

KEYFRAME_INTERVAL_S = 0.5
TIME_BASE = {"video": fractions.Fraction(1, 90000), "audio": fractions.Fraction(1, 48000)}
# One frame's worth of timestamp, used to keep a consumer's timestamps going forward when
# its producer changes (the participant reconnected).
FRAME_STEP = {"video": 3000, "audio": 960}
# A consumer holds at most this many frames; past it the consumer is behind and starts
# again from a fresh keyframe rather than adding latency.
BACKLOG = {"video": 30, "audio": 50}


def is_vp8_keyframe(data: bytes) -> bool:
    """RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame."""
    return bool(data) and not data[0] & 0x01


def is_h264_keyframe(data: bytes) -> bool:
    """An Annex B access unit (as aiortc depayloads it) holding an IDR slice (NAL type 5)."""
    start = data.find(b"\x00\x00\x01")
    while start != -1 and start + 3 < len(data):
        if data[start + 3] & 0x1F == 5:
            return True
        start = data.find(b"\x00\x00\x01", start + 3)
    return False


KEYFRAME_TESTS = {"VP8": is_vp8_keyframe, "H264": is_h264_keyframe}


def stamped_pts(packet: av.Packet) -> int:
    """The pts of a packet a :class:`Producer` handed on (it stamps each one with the
    frame's RTP timestamp)."""
    assert packet.pts is not None, "a producer's packet without a timestamp"
    return packet.pts


class Consumer(MediaStreamTrack):
    """An outgoing track of encoded frames (``av.Packet``); aiortc's sender packetizes
    them as they are."""

    def __init__(self, kind: str, clock: Callable[[], float] = time.perf_counter) -> None:
        super().__init__()
        self.kind = kind
        self.producer: Producer | None = None
        self._clock = clock
        self._queue: collections.deque[tuple[av.Packet, float]] = collections.deque()
        self._ready = asyncio.Event()
        self.needs_keyframe = kind == "video"
        self.dropped = 0
        self.forwarded = 0
        self.forwarded_bytes = 0
        # Receive → hand-over-to-sender delay of recent frames, in seconds.
        self.delays: collections.deque[float] = collections.deque(maxlen=2048)
        self._offset = 0
        self._last_pts: int | None = None
        self._last_source: Producer | None = None
        # Set while a supervisor whispers or barges into this (audio) consumer.
        self.mixer: AudioMixer | None = None

    def push(self, producer: Producer, packet: av.Packet, keyframe: bool, at: float) -> None:
        if self.needs_keyframe:
            if not keyframe:
                self.dropped += 1
                producer.request_keyframe()  # again (rate-limited), in case one was lost
                return
            self.needs_keyframe = False
        if len(self._queue) >= BACKLOG[self.kind]:
            self.dropped += len(self._queue)
            self._queue.clear()
            if self.kind == "video":
                self.needs_keyframe = True
                producer.request_keyframe()
                if not keyframe:
                    return
        if producer is not self._last_source:
            self._last_source = producer
            if self._last_pts is not None:
                self._offset = self._last_pts + FRAME_STEP[self.kind] - stamped_pts(packet)
        if self._offset:
            shifted = av.Packet(bytes(packet))
            shifted.pts, shifted.time_base = stamped_pts(packet) + self._offset, packet.time_base
            packet = shifted
        if self.mixer is not None:
            mixed = self.mixer.mix(packet)
            if mixed is None:
                return
            packet = mixed
        self._last_pts = packet.pts
        self._queue.append((packet, at))
        self._ready.set()

    async def recv(self) -> av.Packet:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._ready.clear()
            await self._ready.wait()
        packet, at = self._queue.popleft()
        self.delays.append(self._clock() - at)
        self.forwarded += 1
        self.forwarded_bytes += packet.size
        return packet

    def watch_feedback(self, sender: RTCRtpSender) -> None:
        """Pass the receiving browser's keyframe requests and estimates to the producer."""

        def keyframe_requested() -> None:
            if self.producer is not None:
                self.producer.request_keyframe()

        def bandwidth_estimated(bitrate: int) -> None:
            if self.producer is not None:
                self.producer.report_bandwidth(self, bitrate)

        aiortc_tap.on_feedback(sender, keyframe_requested, bandwidth_estimated)

    def stop(self) -> None:
        super().stop()
        if self.producer is not None:
            self.producer.detach(self)
        self._ready.set()


class Producer:
    """One participant's incoming track, tapped before aiortc decodes it."""

    def __init__(
        self,
        kind: str,
        receiver: RTCRtpReceiver,
        name: str,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.kind = kind
        self.receiver = receiver
        self.name = name
        self._clock = clock
        self._consumers: set[Consumer] = set()
        self._listeners: set[Callable[[av.Packet, bool], None]] = set()
        self._estimates: dict[Consumer, int] = {}
        self._time_base = TIME_BASE[kind]
        self._last_keyframe_request = -KEYFRAME_INTERVAL_S
        self._keyframe_task: asyncio.Task | None = None
        self._bandwidth_task: asyncio.Task | None = None
        self.frames = 0
        self.closed = False
        self._decoders = 0
        self.codec_name: str | None = None  # of the first frame: "VP8", "H264", "opus"
        self.tap = aiortc_tap.tap_receiver(receiver, self._on_frame)
        aiortc_tap.cap_bandwidth_estimate(receiver, self.bandwidth_cap)

    # -- frames ----------------------------------------------------------------------------
    def _on_frame(self, codec: Any, frame: Any) -> None:
        at = self._clock()
        data = frame.data
        packet = av.Packet(data)
        packet.pts, packet.time_base = frame.timestamp, self._time_base
        if self.codec_name is None:
            self.codec_name = codec.name
        test = KEYFRAME_TESTS.get(codec.name) if self.kind == "video" else None
        keyframe = bool(test and test(data))
        self.frames += 1
        for consumer in tuple(self._consumers):
            consumer.push(self, packet, keyframe, at)
        for listener in tuple(self._listeners):
            listener(packet, keyframe)

    def attach(self, consumer: Consumer) -> None:
        if consumer.producer is not None and consumer.producer is not self:
            consumer.producer.detach(consumer)
        consumer.producer = self
        self._consumers.add(consumer)
        if self.kind == "video":
            consumer.needs_keyframe = True
            self.request_keyframe()

    def detach(self, consumer: Consumer) -> None:
        self._consumers.discard(consumer)
        self._estimates.pop(consumer, None)
        if consumer.producer is self:
            consumer.producer = None

    def listen(self, listener: Callable[[av.Packet, bool], None]) -> None:
        """Every frame also goes to ``listener(packet, keyframe)`` (the recorder)."""
        self._listeners.add(listener)
        if self.kind == "video":
            self.request_keyframe()

    def unlisten(self, listener: Callable[[av.Packet, bool], None]) -> None:
        self._listeners.discard(listener)

    # -- feedback upstream -----------------------------------------------------------------
    def request_keyframe(self) -> None:
        if self.kind != "video" or self.closed:
            return
        if self._keyframe_task is not None and not self._keyframe_task.done():
            return  # one is already on its way
        wait = self._last_keyframe_request + KEYFRAME_INTERVAL_S - self._clock()
        self._keyframe_task = asyncio.create_task(self._send_keyframe_request(max(0.0, wait)))

    async def _send_keyframe_request(self, delay: float) -> None:
        if delay:
            await asyncio.sleep(delay)
        self._last_keyframe_request = self._clock()
        try:
            await aiortc_tap.request_keyframe(self.receiver)
        except ConnectionError:
            pass

    def bandwidth_cap(self) -> int | None:
        return min(self._estimates.values()) if self._estimates else None

    def report_bandwidth(self, consumer: Consumer, bitrate: int) -> None:
        before = self.bandwidth_cap()
        self._estimates[consumer] = bitrate
        cap = self.bandwidth_cap()
        if cap is not None and (before is None or cap < before) and not self.closed:
            if self._bandwidth_task is None or self._bandwidth_task.done():
                self._bandwidth_task = asyncio.create_task(self._send_bandwidth())

    async def _send_bandwidth(self) -> None:
        """Tell the sender the current cap at once (it drops; raises wait for the
        receiver's next periodic estimate, which is capped on the way out)."""
        cap = self.bandwidth_cap()
        if cap is None:
            return
        try:
            await aiortc_tap.send_bandwidth_estimate(self.receiver, cap)
        except ConnectionError:
            pass

    # -- decoded side branch ---------------------------------------------------------------
    def set_decoding(self, on: bool) -> None:
        """Let aiortc decode this track (into ``receiver.track``) only while someone
        asks (counted, so several samplers can share it)."""
        self._decoders = max(0, self._decoders + (1 if on else -1))
        was, self.tap.decode = self.tap.decode, self._decoders > 0
        if self.tap.decode and not was:
            self.request_keyframe()  # the decoder needs a picture to start from

    async def close(self) -> None:
        self.closed = True
        for consumer in tuple(self._consumers):
            self.detach(consumer)
        self._listeners.clear()
        tasks = [t for t in (self._keyframe_task, self._bandwidth_task) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
