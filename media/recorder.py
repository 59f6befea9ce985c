"""Recording by remuxing: each direction of a call (what the kiosk sends, what the staff
member sends) goes into a WebM file as it was encoded — VP8 and Opus packets written as
they arrive, never decoded or encoded again.

Writes happen on one writer thread per node (a bounded queue in front of it), so the
event loop never waits on the disk; a recording falls behind rather than the call.
"""

from __future__ import annotations

import asyncio
import collections
import fractions
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import av

from .forwarder import Producer, stamped_pts

logger = logging.getLogger(__name__)

_SAFE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
RECORDING_SUFFIXES = (".webm", ".ts")


def vp8_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 key frame header (RFC 6386 9.1)."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(
        data[8:10], "little"
    ) & 0x3FFF


class RecordingWriter:
    """The one thread that writes every recording of this node.

    Packets are handed over through a deque (appending is cheap and thread-safe) that the
    thread drains every few milliseconds: waking a thread per packet (``queue.Queue``)
    cost the event loop a quarter of its time at 10 calls.
    """

    POLL_S = 0.02

    def __init__(self, backlog: int = 8192) -> None:
        self._jobs: collections.deque[Callable[[], None]] = collections.deque()
        self._backlog = backlog
        self._stop = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._run, name="recording-writer", daemon=True)
        self._thread.start()

    def submit(self, job: Callable[[], None]) -> bool:
        if len(self._jobs) >= self._backlog:
            # The disk is behind: lose recording, never the call, and say so.
            if self.dropped % 1000 == 0:
                logger.warning("recording writer is behind: %d packets dropped", self.dropped + 1)
            self.dropped += 1
            return False
        self._jobs.append(job)
        return True

    def submit_wait(self, job: Callable[[], None]) -> None:
        """For jobs that must not be lost (closing a file): waits for room."""
        while len(self._jobs) >= self._backlog and self._thread.is_alive():
            time.sleep(self.POLL_S)
        self._jobs.append(job)

    def _run(self) -> None:
        while True:
            while self._jobs:
                job = self._jobs.popleft()
                try:
                    job()
                except Exception:
                    logger.exception("recording write failed")
            if self._stop.is_set():
                return
            self._stop.wait(self.POLL_S)

    def close(self) -> None:
        """Write what is queued, then stop the thread."""
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass
class _Track:
    time_base: fractions.Fraction
    stream: Any = None
    first_pts: int | None = None
    start: float = 0.0  # seconds into the recording at which this track's first frame came


class Recording:
    """One direction of one call, from its producers to ``path``."""

    def __init__(self, path: Path, writer: RecordingWriter, clock=time.monotonic) -> None:
        self.path = path
        self._writer = writer
        self._clock = clock
        self._container: Any = None
        self._began: float | None = None
        self._tracks = {
            "video": _Track(fractions.Fraction(1, 90000)),
            "audio": _Track(fractions.Fraction(1, 48000)),
        }
        self._producers: list[tuple[Producer, Callable]] = []
        self.video_codec = "VP8"
        self.closed = False

    def follow(self, producer: Producer) -> None:
        def listener(packet: av.Packet, keyframe: bool) -> None:
            if producer.kind == "video":
                self.video_codec = producer.codec_name or "VP8"
            self._on_packet(producer.kind, packet, keyframe)

        producer.listen(listener)
        self._producers.append((producer, listener))

    def _on_packet(self, kind: str, packet: av.Packet, keyframe: bool) -> None:
        if self.closed:
            return
        now = self._clock()
        if self._began is None:
            if kind != "video" or not keyframe:
                return  # a recording starts with a picture
            self._began = now
        track = self._tracks[kind]
        packet_pts = stamped_pts(packet)
        if track.first_pts is None:
            track.first_pts = packet_pts
            track.start = now - self._began
        offset = round(track.start / track.time_base)
        pts = packet_pts - track.first_pts + offset
        data = bytes(packet)
        self._writer.submit(lambda: self._write(kind, data, pts, keyframe))

    def _open(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Streams without an encoder: the packets are written as they are.
        if self.video_codec == "H264":
            # H.264 arrives as Annex B with its parameter sets in-band, which MPEG-TS
            # carries as it is (WebM cannot hold H.264).
            self.path = self.path.with_suffix(".ts")
            self._container = av.open(str(self.path), "w", format="mpegts")
            video = self._container.add_mux_stream("h264")
        else:
            width, height = vp8_size(data) or (640, 480)
            self._container = av.open(str(self.path), "w", format="webm")
            video = self._container.add_mux_stream("vp8", width=width, height=height)
        audio = self._container.add_mux_stream("opus", rate=48000)
        self._tracks["video"].stream, self._tracks["audio"].stream = video, audio

    def _write(self, kind: str, data: bytes, pts: int, keyframe: bool) -> None:
        if self._container is None:
            if kind != "video":
                return
            self._open(data)
        track = self._tracks[kind]
        packet = av.Packet(data)
        packet.pts = packet.dts = pts
        packet.time_base = track.time_base
        packet.stream = track.stream
        if keyframe:
            packet.is_keyframe = True
        try:
            self._container.mux(packet)
        except av.FFmpegError as exc:  # e.g. a timestamp out of order after packet loss
            logger.debug("dropped a %s packet of %s: %s", kind, self.path.name, exc)

    def _finish(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    async def close(self) -> None:
        """Stop following the producers and finalise the file (on the writer thread,
        after the packets already queued)."""
        if self.closed:
            return
        self.closed = True
        for producer, listener in self._producers:
            producer.unlisten(listener)
        self._producers.clear()
        done = asyncio.get_running_loop().create_future()

        def finish() -> None:
            try:
                self._finish()
            finally:
                done.get_loop().call_soon_threadsafe(_resolve, done)

        await asyncio.to_thread(self._writer.submit_wait, finish)
        await done


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


class Recordings(Protocol):
    """Where calls are recorded: a local file per direction and connection, written as
    the call goes (:class:`Recording`).

    Every node of a deployment must see every recording (the media of a call can move
    between nodes). :class:`RecordingDirectory` keeps them in a directory all nodes
    share. An object-storage implementation would record to a local file as well and
    upload it once its recording is closed, listing the uploaded ones in :meth:`files`.
    """

    def new_file(self, session_id: str, role: str) -> Path:
        """The file for a participant's next recording in the session (one that
        reconnects starts another: ``kiosk-1``, ``kiosk-2``, ...)."""

    def files(self, session_id: str) -> list[Path]:
        """The session's recordings, by name."""


class RecordingDirectory:
    """:class:`Recordings` in ``DATA_DIR/recordings/<session id>/``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def new_file(self, session_id: str, role: str) -> Path:
        n = sum(1 for p in self.files(session_id) if p.name.startswith(role)) + 1
        return self.root / session_id / f"{role}-{n}.webm"

    def files(self, session_id: str) -> list[Path]:
        if not _SAFE.match(session_id):
            return []
        folder = self.root / session_id
        if not folder.is_dir():
            return []
        return sorted(p for p in folder.iterdir() if p.suffix in RECORDING_SUFFIXES)
