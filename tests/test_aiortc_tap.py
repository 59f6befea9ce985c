"""The aiortc internals the forwarding relay relies on. If aiortc changes, this fails
loudly: update media/aiortc_tap.py (and the pinned version) before anything else."""

from __future__ import annotations

import queue

import pytest
from aiortc import RTCPeerConnection
from aiortc.jitterbuffer import JitterFrame
from aiortc.rtcrtpreceiver import RTCRtpSynchronizationSource
from aiortc.rtp import (
    RTCP_PSFB_APP,
    RTCP_PSFB_FIR,
    RTCP_PSFB_PLI,
    RtcpPsfbPacket,
    pack_remb_fci,
    unpack_remb_fci,
)

from media import aiortc_tap


@pytest.fixture
async def transceiver():
    pc = RTCPeerConnection()
    yield pc.addTransceiver("video")
    await pc.close()


def test_pinned_version_and_methods_are_there():
    aiortc_tap.check_internals()


def test_receiver_still_has_a_decoder_queue_and_start_flag(transceiver):
    receiver = transceiver.receiver
    assert isinstance(receiver._RTCRtpReceiver__decoder_queue, queue.Queue)
    assert receiver._RTCRtpReceiver__started is False
    assert hasattr(receiver, "_RTCRtpReceiver__rtcp_ssrc")
    assert isinstance(receiver._RTCRtpReceiver__rtx_ssrc, dict)


def test_tap_gets_frames_and_decoder_only_when_asked(transceiver):
    seen = []
    tap = aiortc_tap.tap_receiver(transceiver.receiver, lambda c, f: seen.append(f))
    assert transceiver.receiver._RTCRtpReceiver__decoder_queue is tap
    frame = JitterFrame(b"\x00abc", 3000)
    tap.put(("vp8", frame))
    assert seen == [frame]
    assert tap._decoder.empty()
    tap.decode = True
    tap.put(("vp8", frame))
    assert tap.get(timeout=1) == ("vp8", frame)
    tap.put(None)  # the receiver stopping its decoder thread
    assert tap.get(timeout=1) is None


def test_tap_survives_a_failing_handler(transceiver):
    def boom(codec, frame):
        raise RuntimeError("consumer bug")

    tap = aiortc_tap.tap_receiver(transceiver.receiver, boom)
    tap.put(("vp8", JitterFrame(b"\x00", 0)))  # logged, not raised


def test_tapping_a_started_receiver_is_refused(transceiver):
    transceiver.receiver._RTCRtpReceiver__started = True
    try:
        with pytest.raises(aiortc_tap.InternalsChanged):
            aiortc_tap.tap_receiver(transceiver.receiver, lambda c, f: None)
    finally:  # it never really started: let the peer connection close it as such
        transceiver.receiver._RTCRtpReceiver__started = False


async def test_sender_feedback_reaches_callbacks(transceiver):
    sender = transceiver.sender
    keyframes, estimates = [], []
    aiortc_tap.on_feedback(sender, lambda: keyframes.append(1), estimates.append)
    for fmt in (RTCP_PSFB_PLI, RTCP_PSFB_FIR):
        await sender._handle_rtcp_packet(RtcpPsfbPacket(fmt=fmt, ssrc=1, media_ssrc=sender._ssrc))
    remb = RtcpPsfbPacket(
        fmt=RTCP_PSFB_APP, ssrc=1, media_ssrc=0, fci=pack_remb_fci(300_000, [sender._ssrc])
    )
    await sender._handle_rtcp_packet(remb)
    assert keyframes == [1, 1]
    assert estimates == [300_000]


async def test_outgoing_estimate_is_capped(transceiver):
    receiver = transceiver.receiver
    sent = []

    async def capture(packet):
        sent.append(packet)

    receiver._send_rtcp = capture
    cap = {"value": 250_000}
    aiortc_tap.cap_bandwidth_estimate(receiver, lambda: cap["value"])
    remb = RtcpPsfbPacket(fmt=RTCP_PSFB_APP, ssrc=7, media_ssrc=0, fci=pack_remb_fci(900_000, [42]))
    await receiver._send_rtcp(remb)
    cap["value"] = None
    await receiver._send_rtcp(remb)
    assert [unpack_remb_fci(p.fci) for p in sent] == [(250_000, [42]), (900_000, [42])]


def test_keyframe_requests_skip_the_retransmission_stream(transceiver, monkeypatch):
    receiver = transceiver.receiver
    receiver._RTCRtpReceiver__rtx_ssrc = {1111: 2222}
    seen = [
        RTCRtpSynchronizationSource(source=1111, timestamp=None),
        RTCRtpSynchronizationSource(source=2222, timestamp=None),
    ]
    monkeypatch.setattr(receiver, "getSynchronizationSources", lambda: seen)
    assert aiortc_tap.remote_ssrc(receiver) == 2222
