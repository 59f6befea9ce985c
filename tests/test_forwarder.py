"""Producer → consumer forwarding: keyframe gating, backlog, timestamps, feedback."""

from __future__ import annotations

import asyncio

import pytest
from aiortc import RTCPeerConnection, RTCRtpCodecParameters
from aiortc.jitterbuffer import JitterFrame

from media import aiortc_tap, forwarder
from media.forwarder import Consumer, Producer

KEY, DELTA = b"\x00key", b"\x01delta"


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
async def receiver():
    pc = RTCPeerConnection()
    yield pc.addTransceiver("video").receiver
    await pc.close()


@pytest.fixture
def keyframe_requests(monkeypatch):
    sent = []

    async def fake_request(receiver):
        sent.append(asyncio.get_running_loop().time())
        return True

    monkeypatch.setattr(aiortc_tap, "request_keyframe", fake_request)
    return sent


VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
H264 = RTCRtpCodecParameters(mimeType="video/H264", clockRate=90000, payloadType=102)


def feed(producer: Producer, data: bytes, ts: int, codec=VP8) -> None:
    producer.tap.put((codec, JitterFrame(data, ts)))


async def drain(consumer: Consumer) -> list[tuple[bytes, int]]:
    out = []
    while consumer._queue:
        packet = await consumer.recv()
        out.append((bytes(packet), packet.pts))
    return out


async def test_consumer_starts_at_a_keyframe(receiver, keyframe_requests):
    producer = Producer("video", receiver, "t")
    consumer = Consumer("video")
    producer.attach(consumer)
    feed(producer, DELTA, 0)
    feed(producer, KEY, 3000)
    feed(producer, DELTA, 6000)
    assert await drain(consumer) == [(KEY, 3000), (DELTA, 6000)]
    assert consumer.dropped == 1
    await asyncio.sleep(0)
    assert len(keyframe_requests) == 1  # asked for one on attach
    await producer.close()


async def test_consumer_that_falls_behind_restarts_from_a_keyframe(receiver, keyframe_requests):
    producer = Producer("video", receiver, "t")
    consumer = Consumer("video")
    producer.attach(consumer)
    feed(producer, KEY, 0)
    for i in range(1, forwarder.BACKLOG["video"] + 5):
        feed(producer, DELTA, i * 3000)
    assert consumer.needs_keyframe and not consumer._queue
    feed(producer, KEY, 999_000)
    assert [d for d, _ in await drain(consumer)] == [KEY]
    await producer.close()


async def test_keyframe_requests_are_rate_limited(receiver, keyframe_requests, monkeypatch):
    monkeypatch.setattr(forwarder, "KEYFRAME_INTERVAL_S", 0.2)
    producer = Producer("video", receiver, "t")
    for _ in range(5):
        producer.request_keyframe()
        await asyncio.sleep(0)
    assert len(keyframe_requests) == 1
    producer.request_keyframe()  # within the interval: sent when it ends
    async with asyncio.timeout(2):
        await producer._keyframe_task
    assert len(keyframe_requests) == 2
    assert keyframe_requests[1] - keyframe_requests[0] >= 0.19
    await producer.close()


async def test_timestamps_keep_going_when_the_producer_changes(keyframe_requests):
    pcs = [RTCPeerConnection(), RTCPeerConnection()]
    first = Producer("video", pcs[0].addTransceiver("video").receiver, "a")
    second = Producer("video", pcs[1].addTransceiver("video").receiver, "b")
    consumer = Consumer("video")
    first.attach(consumer)
    feed(first, KEY, 90_000)
    second.attach(consumer)  # the participant reconnected: timestamps restart at 0
    feed(second, KEY, 0)
    feed(second, DELTA, 3000)
    assert [pts for _, pts in await drain(consumer)] == [90_000, 93_000, 96_000]
    for p in (first, second):
        await p.close()
    for pc in pcs:
        await pc.close()


async def test_lowest_bandwidth_estimate_wins(receiver, keyframe_requests, monkeypatch):
    sent = []

    async def fake_send(receiver, bitrate):
        sent.append(bitrate)
        return True

    monkeypatch.setattr(aiortc_tap, "send_bandwidth_estimate", fake_send)
    producer = Producer("video", receiver, "t")
    a, b = Consumer("video"), Consumer("video")
    producer.attach(a)
    producer.attach(b)
    producer.report_bandwidth(a, 900_000)
    producer.report_bandwidth(b, 400_000)
    await producer._bandwidth_task
    assert sent == [400_000]  # the latest, lowest estimate reaches the sender at once
    producer.report_bandwidth(b, 2_000_000)
    assert producer.bandwidth_cap() == 900_000
    b.stop()  # a consumer that leaves no longer holds the others back
    producer.report_bandwidth(a, 1_500_000)
    assert producer.bandwidth_cap() == 1_500_000
    assert sent == [400_000]  # raises wait for the receiver's own periodic estimate
    await producer.close()


async def test_delay_is_measured_and_close_detaches(receiver, keyframe_requests):
    clock = Clock()
    producer = Producer("video", receiver, "t", clock=clock)
    consumer = Consumer("video", clock=clock)
    producer.attach(consumer)
    feed(producer, KEY, 0)
    clock.now += 0.004
    await consumer.recv()
    assert consumer.delays[-1] == pytest.approx(0.004)
    await producer.close()
    assert consumer.producer is None
    feed(producer, KEY, 3000)
    assert not consumer._queue


def test_h264_keyframes_are_idr_access_units():
    sps, pps = b"\x00\x00\x00\x01\x67\x42\x00", b"\x00\x00\x00\x01\x68\xce"
    idr, non_idr = b"\x00\x00\x01\x65\x88\x84", b"\x00\x00\x00\x01\x41\x9a"
    assert forwarder.is_h264_keyframe(sps + pps + idr)
    assert not forwarder.is_h264_keyframe(non_idr)
    assert not forwarder.is_h264_keyframe(b"")


async def test_h264_frames_are_gated_on_idr(receiver, keyframe_requests):
    producer = Producer("video", receiver, "t")
    consumer = Consumer("video")
    producer.attach(consumer)
    feed(producer, b"\x00\x00\x00\x01\x41\x9a", 0, H264)
    feed(producer, b"\x00\x00\x00\x01\x67\x42\x00\x00\x00\x01\x65\x88", 3000, H264)
    assert [pts for _, pts in await drain(consumer)] == [3000]
    assert producer.codec_name == "H264"
    await producer.close()
