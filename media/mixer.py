"""Audio mixing for whisper and barge: a supervisor's voice added to what one side of a
call hears.

Only the audio of the listening side is touched, and only while a supervisor speaks
into the call: each forwarded Opus frame is decoded, the supervisor's latest samples
are added, and the sum is encoded again with the frame's own timestamp (so the
receiver's timeline runs on). An Opus frame of 20 ms decodes and encodes in about 0.1 ms,
like packetizing, so this runs inline rather than in a worker pool.
"""

from __future__ import annotations

import collections
import fractions
import logging

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext

logger = logging.getLogger(__name__)

SAMPLE_RATE = 48000
TIME_BASE = fractions.Fraction(1, SAMPLE_RATE)
# At most this much of the supervisor's voice waits to be mixed (interleaved stereo).
MAX_BACKLOG_SAMPLES = 2 * SAMPLE_RATE // 5  # 200 ms


def _decoder() -> AudioCodecContext:
    codec = av.CodecContext.create("libopus", "r")
    codec.format, codec.layout, codec.sample_rate = "s16", "stereo", SAMPLE_RATE
    return codec


class Voice:
    """A supervisor's decoded voice, waiting to be mixed into one or more directions."""

    def __init__(self) -> None:
        self._decoder = _decoder()
        self._listeners: set[AudioMixer] = set()

    def add_packet(self, packet: av.Packet, keyframe: bool = False) -> None:
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError:
            return
        for frame in frames:
            samples = frame.to_ndarray().reshape(-1)
            for mixer in tuple(self._listeners):
                mixer.add_samples(samples)

    def feed(self, mixer: AudioMixer) -> None:
        self._listeners.add(mixer)


class AudioMixer:
    """Mixes the voices fed to it into the Opus frames of one consumer."""

    def __init__(self) -> None:
        self._decoder = _decoder()
        self._encoder = av.CodecContext.create("libopus", "w")
        self._encoder.format, self._encoder.layout = "s16", "stereo"
        self._encoder.sample_rate, self._encoder.time_base = SAMPLE_RATE, TIME_BASE
        self._encoder.bit_rate = 64000
        self._encoder.options = {"application": "voip"}
        self._backlog: collections.deque[np.ndarray] = collections.deque()
        self._backlog_samples = 0

    def add_samples(self, samples: np.ndarray) -> None:
        self._backlog.append(samples)
        self._backlog_samples += samples.size
        while self._backlog_samples > MAX_BACKLOG_SAMPLES:
            self._backlog_samples -= self._backlog.popleft().size

    def _take(self, count: int) -> np.ndarray:
        out = np.zeros(count, dtype=np.int32)
        filled = 0
        while filled < count and self._backlog:
            chunk = self._backlog[0]
            n = min(count - filled, chunk.size)
            out[filled : filled + n] = chunk[:n]
            filled += n
            if n == chunk.size:
                self._backlog.popleft()
            else:
                self._backlog[0] = chunk[n:]
            self._backlog_samples -= n
        return out

    def mix(self, packet: av.Packet) -> av.Packet | None:
        """The packet with the voices added; None while the encoder is still priming."""
        if not self._backlog:
            return packet  # nobody speaking: forward as it is
        try:
            frames = self._decoder.decode(packet)
        except av.FFmpegError:
            return packet
        out: list[av.Packet] = []
        for frame in frames:
            main = frame.to_ndarray().reshape(-1).astype(np.int32)
            mixed = np.clip(main + self._take(main.size), -32768, 32767).astype(np.int16)
            pcm = av.AudioFrame.from_ndarray(mixed.reshape(1, -1), format="s16", layout="stereo")
            pcm.sample_rate, pcm.pts, pcm.time_base = SAMPLE_RATE, frame.pts, TIME_BASE
            out += self._encoder.encode(pcm)
        if not out:
            return None
        result = av.Packet(bytes(out[0]))
        result.pts, result.time_base = packet.pts, packet.time_base
        return result
