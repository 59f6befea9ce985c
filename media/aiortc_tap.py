"""The one place that reaches inside aiortc, for the forwarding relay.

aiortc has no public hook for encoded media, so this module relies on these internals of
aiortc 1.16.0 (pinned in pyproject.toml; :func:`check_internals` fails loudly, and its
test with it, if any of them changes):

- ``RTCRtpReceiver.__decoder_queue``: the ``queue.Queue`` the receiver puts each
  complete encoded frame on (``(codec, JitterFrame)``, ``None`` to stop) and its decoder
  thread reads. :class:`EncodedTap` stands in for it before the receiver starts, so
  frames go to the relay and reach the decoder only while someone wants decoded frames.
- ``RTCRtpReceiver._send_rtcp_pli(ssrc)`` and ``_send_rtcp(packet)``: to ask the sending
  browser for a keyframe, and to cap the bandwidth estimate (REMB) sent to it;
  ``__rtcp_ssrc`` (our SSRC in RTCP) and ``__rtx_ssrc`` (retransmission SSRCs, which must
  not be asked for keyframes).
- ``RTCRtpSender._send_keyframe()`` and ``_handle_rtcp_packet(packet)``: where a receiving
  browser's keyframe requests (PLI/FIR) and bandwidth estimates (REMB) arrive.

The sending side needs no internals: a track whose ``recv()`` returns ``av.Packet`` is
packetized by aiortc without encoding (``Encoder.pack``).
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Awaitable, Callable
from typing import Any

import aiortc
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.rtp import RTCP_PSFB_APP, RtcpPsfbPacket, pack_remb_fci, unpack_remb_fci

logger = logging.getLogger(__name__)

TESTED_AIORTC = "1.16.0"
_DECODER_QUEUE = "_RTCRtpReceiver__decoder_queue"
_STARTED = "_RTCRtpReceiver__started"
_RTCP_SSRC = "_RTCRtpReceiver__rtcp_ssrc"
_RTX_SSRC = "_RTCRtpReceiver__rtx_ssrc"


class InternalsChanged(RuntimeError):
    """aiortc no longer has what the forwarding relay relies on."""


def check_internals() -> None:
    """Raise :class:`InternalsChanged` naming what is missing."""
    problems = []
    if aiortc.__version__ != TESTED_AIORTC:
        problems.append(f"aiortc is {aiortc.__version__}, tested with {TESTED_AIORTC}")
    for cls, names in (
        (RTCRtpReceiver, ["_send_rtcp_pli", "_send_rtcp", "_handle_rtp_packet"]),
        (RTCRtpSender, ["_send_keyframe", "_handle_rtcp_packet"]),
    ):
        problems += [f"{cls.__name__}.{n} is gone" for n in names if not hasattr(cls, n)]
    if problems:
        raise InternalsChanged("; ".join(problems))


class EncodedTap:
    """Stands in for a receiver's decoder queue (see the module docstring).

    ``put`` runs on the event loop (the receiver calls it from its RTP handler); ``get``
    runs in the receiver's decoder thread.
    """

    def __init__(self, on_frame: Callable[[Any, Any], None], decode_backlog: int = 8) -> None:
        self._on_frame = on_frame
        self._decoder: queue.Queue[Any] = queue.Queue(maxsize=decode_backlog)
        self.decode = False

    def put(self, item: Any, *args: Any, **kwargs: Any) -> None:
        if item is None:  # the receiver stops its decoder thread
            self._decoder.put(None)
            return
        codec, encoded_frame = item
        try:
            self._on_frame(codec, encoded_frame)
        except Exception:  # a failing consumer must not break the receiver
            logger.exception("encoded frame handler failed")
        if self.decode:
            try:
                self._decoder.put_nowait(item)
            except queue.Full:
                pass  # the decoder is behind: decoded frames are sampled, not needed all

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self._decoder.get(*args, **kwargs)


def tap_receiver(receiver: RTCRtpReceiver, on_frame: Callable[[Any, Any], None]) -> EncodedTap:
    """Divert ``receiver``'s encoded frames to ``on_frame(codec, JitterFrame)``.

    Must run before the receiver starts (in the peer connection's ``track`` event).
    """
    if getattr(receiver, _STARTED, True):
        raise InternalsChanged("the receiver has already started (or has no start flag)")
    if not isinstance(getattr(receiver, _DECODER_QUEUE, None), queue.Queue):
        raise InternalsChanged("RTCRtpReceiver has no decoder queue to tap")
    tap = EncodedTap(on_frame)
    setattr(receiver, _DECODER_QUEUE, tap)
    return tap


def remote_ssrc(receiver: RTCRtpReceiver) -> int | None:
    """The media stream's SSRC: not its retransmission (RTX) stream's, which Chrome often
    sends first (padding) and which ignores keyframe requests."""
    rtx = getattr(receiver, _RTX_SSRC, None) or {}
    sources = [s.source for s in receiver.getSynchronizationSources() if s.source not in rtx]
    return sources[0] if sources else None


async def request_keyframe(receiver: RTCRtpReceiver) -> bool:
    """Send a PLI to whoever sends to ``receiver``; False if nothing was received yet."""
    ssrc = remote_ssrc(receiver)
    if ssrc is None:
        return False
    await receiver._send_rtcp_pli(ssrc)
    return True


def cap_bandwidth_estimate(receiver: RTCRtpReceiver, cap: Callable[[], int | None]) -> None:
    """Every REMB ``receiver`` sends upstream is lowered to ``cap()`` when that is lower:
    the sender then never sends more than the slowest consumer can take."""
    original = receiver._send_rtcp

    async def send_rtcp(packet: Any) -> None:
        limit = cap()
        if limit is not None and isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = None, []
            if bitrate is not None and limit < bitrate:
                packet = RtcpPsfbPacket(
                    fmt=RTCP_PSFB_APP,
                    ssrc=packet.ssrc,
                    media_ssrc=0,
                    fci=pack_remb_fci(limit, ssrcs),
                )
        await original(packet)

    # Deliberate: aiortc has no hook for outgoing RTCP (see the module docstring).
    receiver._send_rtcp = send_rtcp  # type: ignore[method-assign]


async def send_bandwidth_estimate(receiver: RTCRtpReceiver, bitrate: int) -> bool:
    """Send a REMB for ``receiver``'s stream now (when the cap drops)."""
    ssrc = remote_ssrc(receiver)
    rtcp_ssrc = getattr(receiver, _RTCP_SSRC, None)
    if ssrc is None or rtcp_ssrc is None:
        return False
    packet = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=rtcp_ssrc, media_ssrc=0, fci=pack_remb_fci(bitrate, [ssrc])
    )
    await receiver._send_rtcp(packet)
    return True


def on_feedback(
    sender: RTCRtpSender,
    keyframe_requested: Callable[[], None],
    bandwidth_estimated: Callable[[int], Awaitable[None] | None],
) -> None:
    """Call ``keyframe_requested()`` when ``sender``'s receiver asks for a keyframe
    (PLI/FIR) and ``bandwidth_estimated(bps)`` when it reports an estimate (REMB)."""
    handle = sender._handle_rtcp_packet

    def send_keyframe() -> None:
        keyframe_requested()

    async def handle_rtcp_packet(packet: Any) -> None:
        if isinstance(packet, RtcpPsfbPacket) and packet.fmt == RTCP_PSFB_APP:
            try:
                bitrate, ssrcs = unpack_remb_fci(packet.fci)
            except ValueError:
                bitrate, ssrcs = None, []
            if bitrate is not None and sender._ssrc in ssrcs:
                result = bandwidth_estimated(bitrate)
                if result is not None:
                    await result
        await handle(packet)

    # Deliberate: aiortc has no hook for incoming feedback (see the module docstring).
    sender._send_keyframe = send_keyframe  # type: ignore[method-assign]
    sender._handle_rtcp_packet = handle_rtcp_packet  # type: ignore[method-assign]
