"""Node failure in real headless Chromium: two nodes as real processes on one Redis and
one data directory, behind a TCP load balancer that sends each new connection to the
first node that accepts it. The node hosting a live call is killed (SIGKILL); the kiosk
and console pages, with nothing but their own reconnect logic (socket.io reconnects,
``call.resume`` / ``presence.get``, ``MediaLink.restartIfSilent``), are back in the call
through the other node within 10 s, and the session keeps its document and an unbroken
audit trail that records the move. (tests/test_failover.py is the same scenario with
aiortc clients doing by hand what the pages do.)"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from playwright.async_api import Page, expect

from sessions.accounts import AccountDirectory
from sessions.audit import find_break
from sessions.redis_store import RedisStore
from tests.conftest import REDIS_URL
from tests.harness import NodeProcess, node_process
from tests.helpers import get_json, login, upload

from .browser import STATS_JS, BrowserLog, remote_video_playing, tax_call

pytestmark = [pytest.mark.e2e, pytest.mark.redis, pytest.mark.asyncio(loop_scope="session")]

PHOTO = Path(__file__).resolve().parents[1] / "assets" / "obama.jpg"
BACK_IN_CALL_S = 10.0
# Frames the new peer connection must have decoded to count as "back in the call".
NEW_FRAMES = 10


class TcpBalancer:
    """A TCP load balancer on 127.0.0.1 (random port): each incoming connection goes to
    the first backend, in order, that accepts a TCP connection; bytes are piped both ways
    and both sides are closed when either closes."""

    def __init__(self, backends: list[tuple[str, int]]) -> None:
        self.backends = backends
        self.picked: list[tuple[str, int]] = []  # the backend of each connection, in order
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter):
        self._tasks.add(task := asyncio.current_task())
        self._writers.add(client_w)
        try:
            for host, port in self.backends:
                try:
                    backend_r, backend_w = await asyncio.open_connection(host, port)
                except OSError:
                    continue
                self.picked.append((host, port))
                self._writers.add(backend_w)
                try:
                    await asyncio.gather(
                        self._pipe(client_r, backend_w), self._pipe(backend_r, client_w)
                    )
                finally:
                    self._writers.discard(backend_w)
                    backend_w.close()
                break
        finally:
            self._writers.discard(client_w)
            client_w.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        """Copy ``src`` to ``dst`` until either side ends, then close ``dst`` (which ends
        the copy the other way: closing a transport gives its reader EOF)."""
        try:
            while data := await src.read(65536):
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            dst.close()

    async def close(self) -> None:
        """Stop listening and close every connection; the pipes then end by themselves
        (a cancelled connection task is logged as an error by Python 3.11's streams)."""
        if self._server is None:
            return
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        await self._server.wait_closed()


def host_port(node: NodeProcess) -> tuple[str, int]:
    host, port = node.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


# The page's current peer connection: is it another one than the one marked before the
# kill (window.__e2eOldPc), and how far has its remote video got.
NEW_PC_JS = """
async () => {
  const pc = window.smartcounter && window.smartcounter.pc;
  if (!pc) return { pc: "none" };
  const out = { pc: pc === window.__e2eOldPc ? "old" : "new", state: pc.connectionState,
                framesDecoded: 0 };
  (await pc.getStats()).forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "video") out.framesDecoded = s.framesDecoded || 0;
  });
  return out;
}
"""

# The remote <video> shows the current peer connection's video track, and its picture
# advances (a new frame presented after this call).
VIDEO_ON_PC_JS = """
async () => {
  const v = document.querySelector("[data-testid=remote-video]");
  const pc = window.smartcounter && window.smartcounter.pc;
  if (!v || !pc || !v.srcObject) return "no video or no peer connection";
  const ids = pc.getReceivers().map((r) => r.track.id);
  if (!v.srcObject.getVideoTracks().some((t) => ids.includes(t.id) && t.readyState === "live"))
    return "the <video> shows another peer connection's track";
  const t0 = v.currentTime;
  const presented = await Promise.race([
    new Promise((resolve) => v.requestVideoFrameCallback(() => resolve(true))),
    new Promise((resolve) => setTimeout(() => resolve(false), 3000)),
  ]);
  if (!presented) return "no frame presented within 3 s";
  return v.videoWidth > 0 && v.currentTime > t0 ? "ok" : `currentTime ${t0} → ${v.currentTime}`;
}
"""


async def back_in_call(page: Page, killed_at: float, timeout: float) -> tuple[float, dict]:
    """Seconds from ``killed_at`` until the page decodes ``NEW_FRAMES`` frames on a new,
    connected peer connection, and when (s after the kill) it first had a new peer
    connection and saw it connected; fails after ``timeout`` seconds with the last stats."""
    deadline = killed_at + timeout
    seen: dict[str, float] = {}
    last: Any = None
    while (now := time.monotonic()) < deadline:
        last = await page.evaluate(NEW_PC_JS)
        if last.get("pc") == "new":
            seen.setdefault("new pc", now - killed_at)
            if last.get("state") == "connected":
                seen.setdefault("connected", now - killed_at)
                if last.get("framesDecoded", 0) >= NEW_FRAMES:
                    return now - killed_at, seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"{page.url}: not back in the call {timeout} s after the kill: {last}")


# Records when (Date.now()) the page's socket drops and connects again.
WATCH_SOCKET_JS = """
() => {
  const seen = (window.__e2eSocket = []);
  const socket = window.smartcounter.socket;
  socket.on("disconnect", (reason) => seen.push(["disconnect " + reason, Date.now()]));
  socket.on("connect", () => seen.push(["connect", Date.now()]));
}
"""


async def decoding(page: Page) -> None:
    """The page's current peer connection decodes remote video."""
    async with asyncio.timeout(20):
        while True:
            stats = await page.evaluate(STATS_JS)
            if stats and stats["video"] and stats["video"]["framesDecoded"] >= NEW_FRAMES:
                return
            await asyncio.sleep(0.1)


# Browser console errors a killed node may cause: a connection (websocket, fetch) that
# was open through the balancer to it ends without an answer.
NODE_LOST_ERRORS = re.compile(r"websocket|net::ERR_|Failed to load resource|Failed to fetch", re.I)


async def test_killing_the_node_of_a_live_browser_call_moves_it_to_the_other_node(
    tmp_path: Path, redis_prefix: str, open_page, browser_log: BrowserLog
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    directory = AccountDirectory(shared)
    _, kiosk_token = directory.add_kiosk("k1", "Site")
    directory.add_staff("alice", "alice-password", ["tax"], "staff", "Alice")
    directory.add_staff("sup", "sup-password-1", ["tax"], "supervisor", "Sup")
    fast = {"SMARTCOUNTER_NODE_TTL_S": "2"}
    store = RedisStore(REDIS_URL, prefix=redis_prefix)

    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(store.close)
        node_a = await stack.enter_async_context(
            node_process(shared, REDIS_URL, redis_prefix, "node-a", **fast)
        )
        node_b = await stack.enter_async_context(
            node_process(shared, REDIS_URL, redis_prefix, "node-b", **fast)
        )
        balancer = TcpBalancer([host_port(node_a), host_port(node_b)])
        await balancer.start()
        stack.push_async_callback(balancer.close)
        url = balancer.url

        def logs() -> str:
            return "\n".join(
                f"--- {n.node_id} log (tail)\n{n.log.read_text()[-3000:]}" for n in (node_a, node_b)
            )

        # A call through the balancer: both pages (and all their connections) on node A.
        alice = await open_page("alice")
        kiosk = await open_page("kiosk")
        await tax_call(url, {"alice": "alice-password"}, {"k1": kiosk_token}, alice, kiosk)
        await expect(alice.get_by_test_id("presence-state")).to_have_attribute(
            "data-state", "busy", timeout=10_000
        )
        sid = await kiosk.evaluate("() => window.smartcounter.sessionId")
        assert sid
        await alice.wait_for_function(
            "(sid) => window.smartcounter.sessionId === sid", arg=sid, timeout=10_000
        )
        for page in (kiosk, alice):
            await decoding(page)
            await remote_video_playing(page)
        assert await store.get_record("media_home", sid) == {"node": "node-a"}

        # A document on the session, uploaded through the balancer.
        status, document = await upload(
            SimpleNamespace(url=url, kiosk_tokens={"k1": kiosk_token}), sid, PHOTO.read_bytes()
        )
        assert status == 201, document
        staff_token = await login(url, "alice", "alice-password")
        assert set(balancer.picked) == {host_port(node_a)}, balancer.picked
        picked_before = len(balancer.picked)

        # Kill node A. The pages' sockets through the balancer close, socket.io reconnects
        # (to node B now), and each page offers its media again on a new peer connection.
        for page in (kiosk, alice):
            await page.evaluate("() => { window.__e2eOldPc = window.smartcounter.pc; }")
            await page.evaluate(WATCH_SOCKET_JS)
        errors_before = len(browser_log.errors)
        node_a.proc.kill()
        killed_at, killed_at_ms = time.monotonic(), time.time() * 1000
        await node_a.proc.wait()
        try:
            (kiosk_s, kiosk_seen), (alice_s, alice_seen) = await asyncio.gather(
                back_in_call(kiosk, killed_at, BACK_IN_CALL_S + 10),
                back_in_call(alice, killed_at, BACK_IN_CALL_S + 10),
            )
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nbrowser: {browser_log.errors}\n{logs()}") from None
        back_s = max(kiosk_s, alice_s)
        print(
            f"\nnode A killed: both pages back in the call after {back_s:.2f} s "
            f"(new peer connection decoding {NEW_FRAMES}+ frames)"
        )
        for name, page, seen, done in (
            ("kiosk", kiosk, kiosk_seen, kiosk_s),
            ("console", alice, alice_seen, alice_s),
        ):
            socket = await page.evaluate("() => window.__e2eSocket")
            steps = [(event, (t - killed_at_ms) / 1000) for event, t in socket]
            steps += [*seen.items(), (f"{NEW_FRAMES} frames decoded", done)]
            print(f"  {name}: " + ", ".join(f"{event} {t:.2f} s" for event, t in steps))
        assert back_s < BACK_IN_CALL_S, f"back in the call after {back_s:.1f} s"
        assert await store.get_record("media_home", sid) == {"node": "node-b"}
        assert set(balancer.picked[picked_before:]) == {host_port(node_b)}, balancer.picked

        # Both pages show the new media, and are still in the call.
        for page in (kiosk, alice):
            assert await page.evaluate(VIDEO_ON_PC_JS) == "ok", page.url
        await expect(alice.get_by_test_id("presence-state")).to_have_attribute("data-state", "busy")
        await expect(kiosk.get_by_test_id("hangup")).to_be_visible()
        await expect(alice.get_by_test_id("hangup")).to_be_enabled()

        # Node B finds node A dead.
        async with asyncio.timeout(15):
            while "node-a" in await store.nodes():  # noqa: ASYNC110 (the beats are in Redis)
                await asyncio.sleep(0.2)

        # Nothing acknowledged was lost: the document, and an unbroken trail that records
        # the move. (When node B drops node A, 2 s after its last beat, before a page is
        # back, the trail also has kiosk.lost / staff.lost and their *.resumed.)
        record = await get_json(f"{url}/api/v1/sessions/{sid}", staff_token)
        assert record["state"] == "connected", record
        assert [d["document_id"] for d in record["documents"]] == [document["document_id"]]

        await alice.get_by_test_id("hangup").click()
        await expect(kiosk.get_by_test_id("call-ended")).to_be_visible(timeout=10_000)
        await expect(alice.get_by_test_id("wrapup-done")).to_be_visible(timeout=10_000)

        sup_token = await login(url, "sup", "sup-password-1")
        trail = await get_json(f"{url}/api/v1/sessions/{sid}/audit", sup_token)
        assert trail["verified"] is True and find_break(trail["events"]) is None, trail
        types = [e["type"] for e in trail["events"]]
        print("audit trail:", " ".join(types))
        assert "session.closed" in types, types
        assert types.index("media.moved") > types.index("document.added"), types
        moved = [e for e in trail["events"] if e["type"] == "media.moved"]
        assert [e["data"] for e in moved] == [{"from_node": "node-a", "to_node": "node-b"}]

        # Before the kill no page logged an error; after it, only lost connections.
        unexpected = browser_log.unexpected()
        before_kill = [e for e in unexpected if e in browser_log.errors[:errors_before]]
        assert before_kill == [], before_kill
        after_kill = [e for e in unexpected if e not in before_kill]
        assert all(NODE_LOST_ERRORS.search(e) for e in after_kill), after_kill
        if after_kill:
            print("browser errors after the kill (expected):", *after_kill, sep="\n  ")
        assert "Traceback" not in node_b.log.read_text(), logs()
