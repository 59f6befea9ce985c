"""Finding 3: an ``rtc.offer`` of 7,000 ``m=`` lines (63 KB, under the size cap) held the
event loop a second per offer, while aiortc built a transceiver for each. Now the offer
is read and refused first: ``bad_request`` at once, and the loop never held 50 ms."""

from __future__ import annotations

import asyncio
import contextlib
import time

import aiohttp

from signaling.keys import SERVICES
from tests.harness import running_server
from tests.helpers import open_call

FLOOD = [
    "m=audio \n" * 7000,  # the report's: not even a session description
    "v=0\r\n" + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n" * 1900,  # a valid start, then sections
    "v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n",  # not audio or video
    "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 AV1/90000\r\n",  # no VP8/H.264
]


async def test_crafted_offers_are_refused_before_anything_is_built(tmp_path):
    async with running_server(tmp_path) as server, contextlib.AsyncExitStack() as stack:
        kiosk, _staff, sid = await open_call(server, stack)
        metrics = server.app[SERVICES].metrics
        await asyncio.sleep(0.2)  # a few lag samples before
        worst_health = 0.0

        async def probe_health(stop: asyncio.Event) -> None:
            nonlocal worst_health
            async with aiohttp.ClientSession() as http:
                while not stop.is_set():
                    started = time.perf_counter()
                    async with http.get(f"{server.url}/healthz") as resp:
                        assert resp.status == 200
                    worst_health = max(worst_health, time.perf_counter() - started)
                    await asyncio.sleep(0.02)

        stop = asyncio.Event()
        prober = asyncio.create_task(probe_health(stop))
        started = time.perf_counter()
        acks = await asyncio.gather(*(
            kiosk.call("rtc.offer", {"session_id": sid, "sdp": sdp, "type": "offer"})
            for _ in range(8) for sdp in FLOOD))
        took = time.perf_counter() - started
        await asyncio.sleep(0.2)  # the lag samples of the flood's last moments
        stop.set()
        await prober
        assert {a["error"]["code"] for a in acks} == {"bad_request"}, acks[:2]
        assert all("sdp" in a["error"]["message"] for a in acks)
        assert took < 2, took
        assert metrics.max_lag_seen < 0.05, metrics.max_lag_seen
        assert worst_health < 0.1, worst_health
        assert server.app[SERVICES].hub.get(sid) is None  # no media was built
