"""Media through the server with real aiortc peers on loopback: the kiosk's video and
audio reach the staff member and the staff member's reach the kiosk; re-offers replace
a participant's connection; hang-up frees everything."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import threading

import aiohttp
import numpy as np
import pytest
import socketio
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AudioStreamTrack
from av import VideoFrame

from signaling.keys import SERVICES
from tests.harness import Client, running_server
from tests.helpers import Monitor, Peer, mean_colour, open_call, wait_until


@pytest.fixture(params=["forward", "transcode"])
async def call(request, tmp_path):
    async with running_server(tmp_path, relay=request.param) as server:
        async with contextlib.AsyncExitStack() as stack:
            kiosk, staff, sid = await open_call(server, stack)
            yield server, kiosk, staff, sid


async def test_media_is_relayed_both_ways(call):
    server, kiosk_client, staff_client, sid = call
    red, blue = (220, 30, 30), (30, 30, 220)
    kiosk, staff = Peer(kiosk_client, red), Peer(staff_client, blue)
    try:
        await kiosk.connect(sid)
        await staff.connect(sid)
        await wait_until(
            lambda: len(staff.video_frames) >= 3 and len(kiosk.video_frames) >= 3, what="video"
        )
        await wait_until(lambda: staff.audio_frames > 10 and kiosk.audio_frames > 10, what="audio")
        # Each side sees the other's colour (lossy codec: compare the dominant channel).
        assert np.argmax(staff.mean_colour()) == 0, staff.mean_colour()
        assert np.argmax(kiosk.mean_colour()) == 2, kiosk.mean_colour()

        # A re-offer (reconnect / ICE restart) replaces the kiosk's connection; media flows again.
        await kiosk.close()
        kiosk = Peer(kiosk_client, red)
        await kiosk.connect(sid)
        staff.video_frames.clear()
        await wait_until(
            lambda: len(staff.video_frames) >= 3 and len(kiosk.video_frames) >= 3, what="video"
        )
        hub = server.app[SERVICES].hub
        assert len(hub) == 1

        assert (await kiosk_client.call("call.hangup", {"session_id": sid}))["ok"]
        await wait_until(lambda: len(hub) == 0, what="media released")
        await wait_until(
            lambda: staff.pc.connectionState in ("closed", "failed"),
            timeout=40,
            what="staff pc closed",
        )
    finally:
        await kiosk.close()
        await staff.close()


async def ffprobe(path) -> dict:
    proc = await asyncio.create_subprocess_exec(
        "ffprobe",
        "-v",
        "error",
        "-count_frames",
        "-show_entries",
        "stream=codec_name,nb_read_frames:format=duration",
        "-of",
        "json",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return json.loads(out)


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe (ffmpeg) is not installed")
async def test_both_directions_are_recorded_playable_and_for_supervisors_only(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        kiosk_client, staff_client, sid = await open_call(server, stack)
        kiosk, staff = Peer(kiosk_client, (200, 40, 40)), Peer(staff_client, (40, 40, 200))
        try:
            await kiosk.connect(sid)
            await staff.connect(sid)
            await wait_until(lambda: len(staff.video_frames) >= 3, what="video")
            started = asyncio.get_running_loop().time()
            media = server.app[SERVICES].hub.get(sid)
            await asyncio.sleep(3)  # let ~3 s of media through, then measure what was sent
            sent = media.producer("kiosk", "video").frames
            assert (await kiosk_client.call("call.hangup", {"session_id": sid}))["ok"]
            elapsed = asyncio.get_running_loop().time() - started
        finally:
            await kiosk.close()
            await staff.close()
        async with aiohttp.ClientSession() as http:
            url = f"{server.url}/api/v1/sessions/{sid}/recordings"
            staff_headers = {"Authorization": f"Bearer {await server.login('alice')}"}
            async with http.get(url, headers=staff_headers) as resp:
                assert resp.status == 403
            sup = {"Authorization": f"Bearer {await server.login('sup')}"}
            async with http.get(url, headers=sup) as resp:
                assert resp.status == 200
                listing = (await resp.json())["recordings"]
            assert [r["name"] for r in listing] == ["kiosk-1.webm", "staff-1.webm"]
            async with http.get(server.url + listing[0]["url"], headers=staff_headers) as resp:
                assert resp.status == 403
            async with http.get(server.url + listing[0]["url"], headers=sup) as resp:
                assert resp.status == 200
                body = await resp.read()
        path = tmp_path / "kiosk-1-download.webm"
        path.write_bytes(body)
        info = await ffprobe(path)
        streams = {s["codec_name"]: int(s["nb_read_frames"]) for s in info["streams"]}
        assert set(streams) == {"vp8", "opus"}
        # Everything the kiosk sent (from the first keyframe) is in the file.
        assert abs(streams["vp8"] - sent) <= 0.1 * sent, (streams, sent)
        duration = float(info["format"]["duration"])
        assert abs(duration - elapsed) <= 0.1 * elapsed + 0.5, (duration, elapsed)


async def test_silent_monitor_receives_both_directions_and_sends_nothing(call):
    server, kiosk_client, staff_client, sid = call
    kiosk, staff = Peer(kiosk_client, (220, 30, 30)), Peer(staff_client, (30, 30, 220))
    supervisor = Client("/supervisor")
    await supervisor.connect(server.url, await server.login("sup"))
    monitor = Monitor(supervisor)
    try:
        await kiosk.connect(sid)
        await staff.connect(sid)
        await monitor.pc.setLocalDescription(await monitor.pc.createOffer())
        offer = {
            "session_id": sid,
            "sdp": monitor.pc.localDescription.sdp,
            "type": "offer",
            "purpose": "monitor",
        }
        early = await supervisor.call("rtc.offer", offer)
        assert early["error"]["code"] == "conflict"  # monitor.start first
        if server.settings.media_relay == "transcode":  # mixing needs the forwarding relay
            barge = await supervisor.call("monitor.start", {"session_id": sid, "mode": "barge"})
            assert barge["error"]["code"] == "unavailable"
        assert (await supervisor.call("monitor.start", {"session_id": sid, "mode": "silent"}))["ok"]
        answer = await supervisor.call("rtc.offer", offer, timeout=20)
        assert answer["ok"], answer
        await monitor.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await wait_until(
            lambda: len(monitor.frames) == 2 and all(len(f) >= 2 for f in monitor.frames.values()),
            what="both directions at the monitor",
        )
        kiosk_mid, staff_mid = sorted(monitor.frames, key=int)
        assert np.argmax(monitor.colour(kiosk_mid)) == 0  # the kiosk's red
        assert np.argmax(monitor.colour(staff_mid)) == 2  # the staff member's blue
        # Neither party receives anything from the supervisor: one video, one audio each,
        # carrying the other party's media.
        for peer in (kiosk, staff):
            assert sorted(r.track.kind for r in peer.pc.getReceivers()) == ["audio", "video"]
        assert np.argmax(kiosk.mean_colour()) == 2 and np.argmax(staff.mean_colour()) == 0
        events = [e["type"] for e in await server.app[SERVICES].audit.read(sid)]
        assert "monitor.started" in events
        assert (await supervisor.call("monitor.stop", {"session_id": sid}))["ok"]
        await wait_until(
            lambda: monitor.pc.connectionState in ("closed", "failed"),
            timeout=40,
            what="monitor released",
        )
    finally:
        for p in (kiosk, staff, monitor):
            await p.close()
        await supervisor.close()


async def test_supervisor_namespace_refuses_staff_tokens(call):
    server = call[0]
    c = Client("/supervisor")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await c.connect(server.url, await server.login("alice"))
    assert c.connect_error["data"] == {"code": "unauthorized"}
    await c.close()


async def test_decoded_side_branch_samples_at_the_asked_rate(call):
    server, kiosk_client, staff_client, sid = call
    kiosk, staff = Peer(kiosk_client, (220, 30, 30)), Peer(staff_client, (30, 30, 220))
    try:
        await kiosk.connect(sid)
        await staff.connect(sid)
        await wait_until(lambda: len(staff.video_frames) >= 3, what="video")
        media = server.app[SERVICES].hub.get(sid)
        producer = media.producer("kiosk", "video")
        if producer is not None:  # forwarding: nothing is decoded while nobody asks
            assert producer.tap.decode is False
            assert producer.receiver.track._queue.qsize() == 0
        frames: list[VideoFrame] = []
        sampler = media.sample("kiosk", fps=5, on_frame=frames.append)
        await wait_until(lambda: len(frames) >= 1, what="a first decoded frame")
        first = asyncio.get_running_loop().time()
        await asyncio.sleep(2)
        count = len(frames) - 1
        await sampler.close()
        elapsed = asyncio.get_running_loop().time() - first
        assert 0.6 * 5 * elapsed <= count <= 5 * elapsed + 1, (count, elapsed)
        colour = mean_colour(frames[-1])
        assert np.argmax(colour) == 0  # the kiosk's red, decoded
        if producer is not None:
            assert producer.tap.decode is False
    finally:
        await kiosk.close()
        await staff.close()


class ToneTrack(AudioStreamTrack):
    """A loud 440 Hz tone: the supervisor's voice."""

    async def recv(self):
        frame = await super().recv()
        t = (frame.pts + np.arange(frame.samples)) / frame.sample_rate
        tone = (8000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
        frame.planes[0].update(tone.tobytes())
        return frame


@pytest.mark.parametrize("mode,kiosk_hears", [("whisper", False), ("barge", True)])
async def test_whisper_reaches_staff_only_and_barge_both(tmp_path, mode, kiosk_hears):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        kiosk_client, staff_client, sid = await open_call(server, stack)
        # Both parties send silence, so whatever they hear above it is the supervisor.
        kiosk, staff = Peer(kiosk_client, (200, 0, 0)), Peer(staff_client, (0, 0, 200))
        supervisor = Client("/supervisor")
        await supervisor.connect(server.url, await server.login("sup"))
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        try:
            await kiosk.connect(sid)
            await staff.connect(sid)
            await wait_until(
                lambda: staff.audio_frames > 20 and kiosk.audio_frames > 20, what="audio both ways"
            )
            assert max(staff.audio_levels) < 50 and max(kiosk.audio_levels) < 50
            pc.addTransceiver("video", direction="recvonly")
            pc.addTrack(ToneTrack())  # the first audio section: kiosk audio in, voice out
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
            assert (await supervisor.call("monitor.start", {"session_id": sid, "mode": mode}))["ok"]
            await pc.setLocalDescription(await pc.createOffer())
            answer = await supervisor.call(
                "rtc.offer",
                {
                    "session_id": sid,
                    "sdp": pc.localDescription.sdp,
                    "type": "offer",
                    "purpose": "monitor",
                },
                timeout=20,
            )
            assert answer["ok"], answer
            await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
            await wait_until(
                lambda: min(staff.audio_levels[-5:]) > 1000,
                timeout=20,
                what="the staff member hearing the supervisor",
            )
            staff_count = staff.audio_frames
            await wait_until(lambda: staff.audio_frames > staff_count + 25, what="more audio")
            if kiosk_hears:
                await wait_until(
                    lambda: min(kiosk.audio_levels[-5:]) > 1000,
                    timeout=10,
                    what="the kiosk hearing the supervisor",
                )
            else:
                assert max(kiosk.audio_levels) < 50  # the citizen hears nothing of it
            assert (await supervisor.call("monitor.stop", {"session_id": sid}))["ok"]
            staff_count = staff.audio_frames
            await wait_until(
                lambda: (
                    staff.audio_frames > staff_count + 25 and max(staff.audio_levels[-10:]) < 50
                ),
                what="silence again after the supervisor left",
            )
        finally:
            await pc.close()
            for p in (kiosk, staff):
                await p.close()
            await supervisor.close()


async def test_teardown_frees_peer_connections_tasks_and_threads(tmp_path):
    """Two calls one after the other: after the second, as many tasks, threads and open
    files as after the first (the recording writer thread is started by the first)."""
    async with running_server(tmp_path) as server:
        staff_client = Client("/staff")
        await staff_client.connect(server.url, await server.login("alice"))
        kiosk_client = Client("/kiosk")
        await kiosk_client.connect(server.url, server.kiosk_tokens["k1"])
        hub = server.app[SERVICES].hub

        async def one_call() -> None:
            await staff_client.call("presence.set", {"state": "available"})
            ack = await kiosk_client.call("call.request", {"service_id": "tax-enquiry"})
            sid = ack["session_id"]
            await staff_client.wait_for("call.offer", session_id=sid)
            await staff_client.call("call.accept", {"session_id": sid})
            kiosk, staff = Peer(kiosk_client, (200, 0, 0)), Peer(staff_client, (0, 0, 200))
            await kiosk.connect(sid)
            await staff.connect(sid)
            await wait_until(lambda: len(staff.video_frames) >= 3, what="video")
            await kiosk_client.call("call.hangup", {"session_id": sid})
            await kiosk.close()
            await staff.close()
            await staff_client.call("wrapup.done", {})
            await wait_until(lambda: len(hub) == 0, what="media released")

        def snapshot() -> tuple[int, int, int]:
            fds = len(os.listdir("/proc/self/fd"))
            # The event loop's executor keeps a pool of threads that grows on demand up to
            # its limit ("asyncio_N"): those are reused, not leaked.
            threads = sum(not t.name.startswith("asyncio_") for t in threading.enumerate())
            return len(asyncio.all_tasks()), threads, fds

        def decoder_threads() -> int:
            return sum(t.name.endswith("-decoder") for t in threading.enumerate())

        await one_call()
        await wait_until(lambda: decoder_threads() == 0, timeout=20, what="decoders end")
        before = snapshot()
        await one_call()
        await wait_until(lambda: decoder_threads() == 0, timeout=20, what="decoders end")
        after = snapshot()
        assert all(a <= b for a, b in zip(after, before, strict=True)), (before, after)


async def test_h264_when_the_first_offer_has_no_vp8_and_legs_must_match(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        kiosk_client, staff_client, sid = await open_call(server, stack)
        kiosk = Peer(kiosk_client, (220, 30, 30), video_codec="video/H264")
        staff = Peer(staff_client, (30, 30, 220))  # offers VP8 and H.264
        vp8_only = Peer(staff_client, (30, 30, 220), video_codec="video/VP8")
        try:
            await kiosk.connect(sid)
            assert server.app[SERVICES].hub.get(sid).video_codec == "video/H264"
            await vp8_only.pc.setLocalDescription(await vp8_only.pc.createOffer())
            refused = await staff_client.call(
                "rtc.offer",
                {"session_id": sid, "sdp": vp8_only.pc.localDescription.sdp, "type": "offer"},
            )
            assert refused["error"]["code"] == "bad_request"
            assert "H264" in refused["error"]["message"]
            await staff.connect(sid)
            await wait_until(
                lambda: len(staff.video_frames) >= 3 and len(kiosk.video_frames) >= 3,
                what="H.264 video both ways",
            )
            assert np.argmax(staff.mean_colour()) == 0 and np.argmax(kiosk.mean_colour()) == 2
            await kiosk_client.call("call.hangup", {"session_id": sid})
        finally:
            for p in (kiosk, staff, vp8_only):
                await p.close()
        recording = tmp_path / "recordings" / sid / "kiosk-1.ts"
        info = await ffprobe(recording)
        assert {s["codec_name"] for s in info["streams"]} == {"h264", "opus"}
