"""Signalling load test across nodes: many kiosks queueing and staff answering, on
loopback, with the nodes sharing one Redis and one data directory.

    python -m bench.load [--kiosks 200] [--staff 40] [--duration 120] [--nodes 2]
                         [--baseline-nodes 1] [--baseline-duration 60]
                         [--redis-url redis://127.0.0.1:6379/15] [--talk-s 2,5]
                         [--pause-s 0.5,2] [--cancel-share 0.05] [--seed 7]
                         [--store redis|sqlite] [--baseline-store redis|sqlite]

``--store sqlite --nodes 1 --baseline-store redis --baseline-nodes 1`` compares the
embedded store with Redis under the same load (point ``--redis-url`` at a Redis with
``appendfsync always`` to compare durable with durable).

Each node is a real ``smartcounter serve`` process on 127.0.0.1 (recording off, face
models from the tests' shared directory), all under one fresh Redis key prefix
(``scbench-…``, deleted afterwards) and one temporary data directory. The clients are
python-socketio clients in this process (websocket transport): kiosk i on node
i % N, staff member j on node (j + 1) % N, so most calls cross nodes; two departments
(tax, housing). Staff members go available, accept every offer, talk a random
``--talk-s``, hang up and finish wrap-up; kiosks request a call, wait in the queue, are
connected, wait for the end, pause ``--pause-s`` and call again, until ``--duration``
ends; a ``--cancel-share`` of the requests cancel while they wait. Then kiosks still
waiting cancel, calls in progress end, and the run is checked:

- every offer received once (by staff member and session), matching the sessions'
  audit trails (``call.offered`` events) one for one: none lost, none duplicated;
- a staff member is never offered a call unless available (never two at once);
- every session a kiosk got ``call.connected`` for was accepted by exactly one staff
  member who had its offer, and every request ends served or abandoned, none waiting;
- the supervisors' dashboard (one subscriber per node) agrees with the clients' counts
  of answered and abandoned calls per department, and the nodes agree with each other;
  the nodes' ``smartcounter_calls_total`` add up to the same.

Printed: routing decisions (offers) and answered calls per second, latency p50/p95/max
of ``call.request`` → ack, ``call.accept`` sent → the kiosk's ``call.connected``, and
``wrapup.done`` → the next ``call.offer`` while callers wait, per-node counts; the same
for a ``--baseline-nodes`` run beside it with the ratios. Exit status 1 if a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import re
import secrets
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import socketio

from media.vision.models import prepare
from sessions.accounts import AccountDirectory
from sessions.audit import verify_chain
from tests.harness import SHARED_MODELS_DIR, drop_redis_prefix, free_port

RESULTS_DIR = Path(__file__).resolve().parent / "results"
CLK_TCK = os.sysconf("SC_CLK_TCK")
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
# (department, the service its kiosks ask for), from the bundled catalog.
DEPARTMENTS = (("tax", "tax-enquiry"), ("housing", "property-record-enquiry"))
SUPERVISOR = "lsup"


@dataclass
class LoadConfig:
    kiosks: int = 200
    staff: int = 40
    duration_s: float = 120.0
    nodes: int = 2
    # "redis" (the nodes share it) or "sqlite" (one node on the embedded store)
    store: str = "redis"
    redis_url: str = DEFAULT_REDIS
    talk_s: tuple[float, float] = (2.0, 5.0)
    pause_s: tuple[float, float] = (0.5, 2.0)
    cancel_share: float = 0.05
    cancel_after_s: tuple[float, float] = (0.5, 5.0)
    seed: int = 7
    # Kiosks start within this many seconds of each other.
    ramp_s: float = 1.0
    drain_timeout_s: float = 60.0


def now() -> float:
    return time.perf_counter()


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def summary_ms(values: list[float]) -> dict[str, float | int | None]:
    """p50 / p95 (nearest rank) / max of seconds, in ms."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "max": None}
    return {"n": len(values), "p50": nearest_rank(values, 0.5) * 1000,
            "p95": nearest_rank(values, 0.95) * 1000, "max": max(values) * 1000}


# -- the nodes --------------------------------------------------------------------------------
class Cluster:
    """N ``smartcounter serve`` processes on one data directory and one Redis prefix, with
    the bench's kiosks, staff and a supervisor registered before they start."""

    def __init__(self, cfg: LoadConfig) -> None:
        self.cfg = cfg
        self.tmp = tempfile.TemporaryDirectory(prefix="scbench-load-")
        self.data = Path(self.tmp.name) / "shared"
        self.logs = Path(self.tmp.name) / "logs"
        self.prefix = f"scbench-{uuid.uuid4().hex[:12]}"
        self.ports = [free_port() for _ in range(cfg.nodes)]
        self.urls = [f"http://127.0.0.1:{p}" for p in self.ports]
        self.password = secrets.token_urlsafe(12)
        self.kiosk_tokens: dict[str, str] = {}
        self.procs: list[asyncio.subprocess.Process] = []
        self.log_files: list[Any] = []
        self.keep_logs: Path | None = None  # copy the nodes' logs there when stopping

    @staticmethod
    def kiosk_name(i: int) -> str:
        return f"lk{i:03d}"

    @staticmethod
    def staff_name(j: int) -> str:
        return f"ls{j:03d}"

    def _accounts(self) -> None:
        accounts = AccountDirectory(self.data)
        for i in range(self.cfg.kiosks):
            self.kiosk_tokens[self.kiosk_name(i)] = accounts.add_kiosk(
                self.kiosk_name(i), f"Load site {i % 7}")[1]
        for j in range(self.cfg.staff):
            dept = DEPARTMENTS[(j // 2) % len(DEPARTMENTS)][0]
            accounts.add_staff(self.staff_name(j), self.password, [dept], "staff", f"Staff {j}")
        accounts.add_staff(SUPERVISOR, self.password, [d for d, _ in DEPARTMENTS],
                           "supervisor", "Load Supervisor")

    async def start(self) -> None:
        self.data.mkdir(parents=True)
        self.logs.mkdir()
        await asyncio.to_thread(self._accounts)
        await asyncio.to_thread(prepare, SHARED_MODELS_DIR)  # once, not by each node
        secret = secrets.token_hex(32)
        base = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCOUNTER_")}
        if self.cfg.store == "redis":
            base |= {"SMARTCOUNTER_REDIS_URL": self.cfg.redis_url,
                     "SMARTCOUNTER_REDIS_PREFIX": self.prefix}
        base |= {
            "SMARTCOUNTER_SECRET_KEY": secret,
            "SMARTCOUNTER_RECORDING": "off",
            "SMARTCOUNTER_MODELS_DIR": str(SHARED_MODELS_DIR),
            "SMARTCOUNTER_VISION_WORKERS": "1",
            "SMARTCOUNTER_LOG_FORMAT": "json",
            "SMARTCOUNTER_REDIS_DURABILITY": "warn",  # the header prints Redis's settings
        }
        # The first node seeds the catalog in the shared directory; the others follow.
        await self._start_node(0, base)
        await asyncio.gather(*(self._start_node(i, base) for i in range(1, self.cfg.nodes)))

    async def _start_node(self, i: int, base: dict[str, str]) -> None:
        log = (self.logs / f"node-{i}.log").open("wb")
        self.log_files.append(log)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smartcounter.cli", "serve", "--host", "127.0.0.1",
            "--port", str(self.ports[i]), "--data-dir", str(self.data),
            "--store", self.cfg.store, "--node-id", f"node-{i}",
            env={**base, "SMARTCOUNTER_NODE_ID": f"node-{i}"},
            stdout=log, stderr=asyncio.subprocess.STDOUT,
        )
        self.procs.append(proc)
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(120):
                while True:
                    if proc.returncode is not None:
                        raise RuntimeError(f"node-{i} exited ({proc.returncode}); log:\n"
                                           + self.log_tail(i))
                    with contextlib.suppress(aiohttp.ClientConnectionError):
                        async with http.get(f"{self.urls[i]}/readyz") as resp:
                            if resp.status == 200:
                                return
                    await asyncio.sleep(0.1)

    def log_tail(self, i: int, lines: int = 20) -> str:
        path = self.logs / f"node-{i}.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def logged_errors(self) -> list[str]:
        """Error and critical lines the nodes logged (JSON lines; anything else that is
        not JSON, such as a traceback printed outside logging, counts too)."""
        found = []
        for i in range(self.cfg.nodes):
            path = self.logs / f"node-{i}.log"
            for line in path.read_text(errors="replace").splitlines():
                if not line.strip() or line.startswith("Smart Counter on "):
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    found.append(f"node-{i}: {line[:300]}")
                    continue
                if isinstance(entry, dict) and entry.get("level") in ("error", "critical"):
                    found.append(f"node-{i}: {entry.get('logger')}: {entry.get('message')}"[:300])
        return found

    def cpu_seconds(self) -> list[float]:
        out = []
        for proc in self.procs:
            fields = Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / CLK_TCK)
        return out

    async def login(self, http: aiohttp.ClientSession, node: int, username: str) -> str:
        """Sign in on a node; waits out the per-address sign-in limit (30 at once, then one
        a second) rather than raising it."""
        for _ in range(120):
            async with http.post(f"{self.urls[node]}/api/v1/auth/login",
                                 json={"username": username, "password": self.password}) as r:
                if r.status == 200:
                    return (await r.json())["token"]
                if r.status != 429:
                    raise RuntimeError(f"login {username}: {r.status} {await r.text()}")
            await asyncio.sleep(1.1)
        raise RuntimeError(f"login {username}: still rate-limited")

    async def metrics(self, node: int) -> dict[str, float]:
        """The node's call outcomes and handled events, from /metrics."""
        async with aiohttp.ClientSession() as http, \
                http.get(f"{self.urls[node]}/metrics") as resp:
            text = await resp.text()
        out: dict[str, float] = {}
        for line in text.splitlines():
            m = re.match(r'smartcounter_calls_total\{outcome="(\w+)"\} ([0-9.e+]+)', line)
            if m:
                out[f"calls.{m[1]}"] = float(m[2])
            m = re.match(r'smartcounter_socket_events_total\{code="(\w+)",event="([\w.]+)",'
                         r'namespace="(/\w+)"\} ([0-9.e+]+)', line)
            if m:
                out[f"events{m[3]}.{m[2]}.{m[1]}"] = float(m[4])
        return out

    def audit(self) -> dict[str, dict[str, Any]]:
        """Per session in the shared audit directory: to whom it was offered, who accepted
        it, how it ended, and whether its hash chain holds."""
        out = {}
        for path in sorted((self.data / "audit").glob("*.jsonl")):
            events = [json.loads(line) for line in path.read_text().splitlines() if line]
            out[path.stem] = {
                "offered": [e["data"].get("staff_id") for e in events
                            if e["type"] == "call.offered"],
                "accepted": [e["data"].get("staff_id") for e in events
                             if e["type"] == "call.accepted"],
                "department": next((e["data"].get("department_id") for e in events
                                    if e["type"] == "session.queued"), None),
                "final": next((e["type"] for e in reversed(events)
                               if e["type"] in ("session.closed", "session.abandoned")), None),
                "verified": verify_chain(events),
            }
        return out

    async def stop(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 20)
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        for log in self.log_files:
            log.close()
        if self.keep_logs is not None:
            shutil.copytree(self.logs, self.keep_logs)
        if self.cfg.store == "redis":
            await drop_redis_prefix(self.cfg.redis_url, self.prefix)
        self.tmp.cleanup()


# -- what the clients saw ---------------------------------------------------------------------
@dataclass
class Facts:
    """Everything the checks look at, as plain data (so a test can alter a copy and see
    that the checks catch it)."""

    nodes: int
    staff: dict[str, dict[str, Any]]  # name → {"department", "node"}
    kiosks: dict[str, dict[str, Any]]  # name → {"department", "node"}
    # One per call.request acknowledged: session_id, kiosk, department, times, events.
    requests: list[dict[str, Any]] = field(default_factory=list)
    refused_requests: list[str] = field(default_factory=list)
    offers: list[tuple[float, str, str]] = field(default_factory=list)  # (t, staff, sid)
    revokes: list[tuple[float, str, str, str]] = field(default_factory=list)  # +reason
    accepts: list[dict[str, Any]] = field(default_factory=list)  # staff, sid, code, times
    staff_ended: list[tuple[str, str, str]] = field(default_factory=list)  # staff, sid, reason
    violations: list[str] = field(default_factory=list)  # seen while it ran
    # Offers that came after their own revocation (the revocation overtook them) and
    # that the revocation's offer_id did not name: a console would show a dead offer.
    stale_offers: list[tuple[float, str, str]] = field(default_factory=list)
    # Late offers a console drops (their offer_id was revoked, or it is in a call).
    late_offers: list[tuple[float, str, str]] = field(default_factory=list)
    staff_log: list[tuple[float, str, str, str, str]] = field(
        default_factory=list)  # (t, staff, what, session, result), for post-mortems
    audit: dict[str, dict[str, Any]] = field(default_factory=dict)
    snapshots: dict[str, dict[str, Any]] = field(default_factory=dict)  # node → dashboard
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # node → figures
    server_errors: list[str] = field(default_factory=list)


class Run:
    """The live state shared by the clients of one run."""

    def __init__(self, cfg: LoadConfig, facts: Facts) -> None:
        self.cfg = cfg
        self.facts = facts
        self.rng = random.Random(cfg.seed)
        self.loading = True
        self.accept_sent: dict[str, float] = {}
        self.offered: set[str] = set()
        self.ended: set[str] = set()
        # Sessions waiting without an offer, by department (as the clients know them).
        self.waiting: dict[str, set[str]] = collections.defaultdict(set)
        self.staff: list[StaffAgent] = []
        self.staff_node_of_accept: dict[str, int] = {}
        self.lat_request_ack: list[float] = []
        self.lat_accept_connected: list[tuple[float, bool]] = []  # (s, crosses nodes)
        self.lat_wrapup_offer: list[float] = []
        self.queue_waits: list[float] = []
        self.queue_updates = 0
        self.tasks: set[asyncio.Task] = set()

    def spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def idle_staff(self, department: str) -> int:
        return sum(1 for s in self.staff if s.department == department and s.state == "available")


def new_client() -> socketio.AsyncClient:
    return socketio.AsyncClient(reconnection=False, request_timeout=30)


async def connect(sio: socketio.AsyncClient, url: str, namespace: str, token: str) -> None:
    await sio.connect(url, namespaces=[namespace], auth={"token": token},
                      transports=["websocket"], wait_timeout=30)


class KioskAgent:
    def __init__(self, run: Run, name: str, node: int, department: str, service: str) -> None:
        self.run, self.name, self.node = run, name, node
        self.department, self.service = department, service
        self.sio = new_client()
        self.calls: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, asyncio.Event] = {}
        self.sio.on("call.connected", self.on_connected, namespace="/kiosk")
        self.sio.on("call.ended", self.on_ended, namespace="/kiosk")
        self.sio.on("queue.update", self.on_queue_update, namespace="/kiosk")

    def _call(self, sid: str) -> dict[str, Any]:
        """The record of a session (an event may come before the request's ack)."""
        if sid not in self.calls:
            self.calls[sid] = {"session_id": sid, "kiosk": self.name, "node": self.node,
                               "department": self.department, "requested_at": None,
                               "acked_at": None, "connected": [], "ended": [], "cancel": None,
                               "drain": False, "queue_updates": 0}
            self.changed[sid] = asyncio.Event()
        return self.calls[sid]

    async def on_connected(self, data: dict) -> None:
        t = now()
        sid = data["session_id"]
        call = self._call(sid)
        call["connected"].append(t)
        sent = self.run.accept_sent.get(sid)
        if sent is not None and len(call["connected"]) == 1:
            crosses = self.run.staff_node_of_accept.get(sid, self.node) != self.node
            self.run.lat_accept_connected.append((t - sent, crosses))
        if call["requested_at"] is not None and len(call["connected"]) == 1:
            self.run.queue_waits.append(t - call["requested_at"])
        self.changed[sid].set()

    async def on_ended(self, data: dict) -> None:
        sid = data["session_id"]
        call = self._call(sid)
        call["ended"].append((now(), data.get("reason")))
        self.run.ended.add(sid)
        self.run.waiting[self.department].discard(sid)
        self.changed[sid].set()

    async def on_queue_update(self, data: dict) -> None:
        self.run.queue_updates += 1
        self._call(data["session_id"])["queue_updates"] += 1

    async def _wait(self, sid: str, timeout: float) -> None:
        event = self.changed[sid]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(0.0, timeout))
        event.clear()

    async def loop(self, deadline: float) -> None:
        rng = random.Random(f"{self.run.cfg.seed}-{self.name}")
        cfg = self.run.cfg
        await asyncio.sleep(rng.uniform(0, cfg.ramp_s))
        while now() < deadline:
            t0 = now()
            ack = await self.sio.call("call.request", {"service_id": self.service},
                                      namespace="/kiosk", timeout=60)
            t1 = now()
            if not ack.get("ok"):
                self.run.facts.refused_requests.append(f"{self.name}: {ack.get('error')}")
                await asyncio.sleep(1)
                continue
            self.run.lat_request_ack.append(t1 - t0)
            sid = ack["session_id"]
            call = self._call(sid)
            call["requested_at"], call["acked_at"] = t0, t1
            if call["connected"] and len(call["connected"]) == 1:
                self.run.queue_waits.append(call["connected"][0] - t0)
            if sid not in self.run.offered and sid not in self.run.ended:
                self.run.waiting[self.department].add(sid)
            cancel_at = t1 + rng.uniform(*cfg.cancel_after_s) \
                if rng.random() < cfg.cancel_share else math.inf
            await self._queue(call, cancel_at, deadline)
            if call["connected"] and not call["ended"]:
                limit = now() + cfg.talk_s[1] + 60
                while not call["ended"] and now() < limit:
                    await self._wait(sid, limit - now())
                if not call["ended"]:
                    self.run.facts.violations.append(
                        f"{self.name}: no call.ended for connected session {sid}")
            if now() >= deadline:
                break
            await asyncio.sleep(rng.uniform(*cfg.pause_s))

    async def _queue(self, call: dict[str, Any], cancel_at: float, deadline: float) -> None:
        """Wait in the queue until connected or ended; cancel at ``cancel_at`` or, at the
        end of the run, at ``deadline``."""
        sid = call["session_id"]
        give_up = math.inf
        while not call["connected"] and not call["ended"]:
            t = now()
            if t >= give_up:
                self.run.facts.violations.append(
                    f"{self.name}: session {sid} neither connected nor ended after its "
                    "cancel was refused")
                return
            due = min(cancel_at, deadline)
            if t < due:
                await self._wait(sid, min(due, give_up) - t)
                continue
            call["drain"] = t >= deadline and cancel_at > deadline
            ack = await self.sio.call("call.cancel", {"session_id": sid}, namespace="/kiosk",
                                      timeout=60)
            if ack.get("ok"):
                call["cancel"] = "ok"
                limit = now() + 30
                while not call["ended"] and now() < limit:
                    await self._wait(sid, limit - now())
                if not call["ended"]:
                    self.run.facts.violations.append(
                        f"{self.name}: no call.ended after cancelling {sid}")
                return
            code = (ack.get("error") or {}).get("code")
            call["cancel"] = code or "error"
            if code != "conflict":
                self.run.facts.violations.append(f"{self.name}: call.cancel {sid}: {ack}")
                return
            # Accepted meanwhile: the call goes ahead.
            cancel_at = deadline = math.inf
            give_up = now() + 60


class StaffAgent:
    def __init__(self, run: Run, name: str, node: int, department: str) -> None:
        self.run, self.name, self.node, self.department = run, name, node, department
        self.sio = new_client()
        self.state = "away"
        self.current: str | None = None
        self.seen: collections.Counter[str] = collections.Counter()
        self.revoked_first: set[str] = set()
        self.revoked_offer_ids: set[str] = set()
        self.wrapup_mark: tuple[float, bool] | None = None
        self.busy_until_idle = asyncio.Event()
        self.busy_until_idle.set()
        self.sio.on("call.offer", self.on_offer, namespace="/staff")
        self.sio.on("call.offer_revoked", self.on_revoked, namespace="/staff")
        self.sio.on("call.ended", self.on_ended, namespace="/staff")

    def _violation(self, text: str) -> None:
        self.run.facts.violations.append(f"{self.name}: {text}")

    def log(self, what: str, sid: str, result: str = "") -> None:
        self.run.facts.staff_log.append((now(), self.name, what, sid, result))

    async def go_available(self, tolerate_conflict: bool = False) -> None:
        self.state = "available"
        ack = await self.sio.call("presence.set", {"state": "available"}, namespace="/staff",
                                  timeout=60)
        self.log("presence.set", "", "ok" if ack.get("ok") else str(ack))
        code = (ack.get("error") or {}).get("code")
        if not ack.get("ok") and not (tolerate_conflict and code == "conflict"):
            self._violation(f"presence.set available: {ack}")

    async def on_offer(self, data: dict) -> None:
        t = now()
        sid = data["session_id"]
        run = self.run
        run.facts.offers.append((t, self.name, sid))
        run.offered.add(sid)
        for waiting in run.waiting.values():
            waiting.discard(sid)
        self.seen[sid] += 1
        self.log("offer", sid, self.state)
        if self.seen[sid] > 1:
            self._violation(f"offer of {sid} received {self.seen[sid]} times")
            return
        if data.get("offer_id") in self.revoked_offer_ids:
            # Its revocation overtook it (another node sent it): dropped, as a console does.
            run.facts.late_offers.append((t, self.name, sid))
            return
        if sid in self.revoked_first:
            # Revoked first, but not by its offer_id: a console would show a dead offer.
            run.facts.stale_offers.append((t, self.name, sid))
            return
        if self.state != "available":
            # A late offer (its revocation still to come): a console in a call drops it.
            # Accepting it anyway must be refused.
            run.facts.late_offers.append((t, self.name, sid))
            run.spawn(self.probe(sid))
            return
        if self.wrapup_mark is not None:
            mark, eligible = self.wrapup_mark
            if eligible:
                run.lat_wrapup_offer.append(t - mark)
            self.wrapup_mark = None
        self.state, self.current = "ringing", sid
        self.busy_until_idle.clear()
        run.spawn(self.answer(sid))

    async def on_revoked(self, data: dict) -> None:
        sid, reason = data["session_id"], data.get("reason")
        self.run.facts.revokes.append((now(), self.name, sid, reason))
        self.log("revoked", sid, f"{reason}, {self.state}")
        if data.get("offer_id"):
            self.revoked_offer_ids.add(data["offer_id"])
        if not self.seen[sid]:
            self.revoked_first.add(sid)  # the offer may still come (checked at the end)
        if self.current == sid and self.state == "ringing":
            self.current = None
            self.state = "available"
            self.busy_until_idle.set()
        if reason == "timeout" and self.state == "available":
            # The server set us away (the offer rang too long); come back.
            self.run.spawn(self.go_available(tolerate_conflict=True))

    async def probe(self, sid: str) -> None:
        """An offer that came while in another call: accept it as a console would let a
        person try; a stale one is refused, one the server really gave is hung up."""
        sent = now()
        ack = await self.sio.call("call.accept", {"session_id": sid}, namespace="/staff",
                                  timeout=60)
        code = "ok" if ack.get("ok") else (ack.get("error") or {}).get("code", "error")
        self.log("accept (while busy)", sid, code)
        self.run.facts.accepts.append({"staff": self.name, "session_id": sid, "code": code,
                                       "sent": sent, "acked": now(), "while_busy": True})
        if code == "ok":
            self._violation(f"accepted {sid} while in {self.current}: a second call at once")
            self.run.accept_sent.setdefault(sid, sent)
            await self.sio.call("call.hangup", {"session_id": sid}, namespace="/staff",
                                timeout=60)

    async def on_ended(self, data: dict) -> None:
        self.log("ended", data["session_id"], str(data.get("reason")))
        self.run.facts.staff_ended.append((self.name, data["session_id"], data.get("reason")))

    async def answer(self, sid: str) -> None:
        run = self.run
        sent = now()
        run.accept_sent.setdefault(sid, sent)
        run.staff_node_of_accept.setdefault(sid, self.node)
        ack = await self.sio.call("call.accept", {"session_id": sid}, namespace="/staff",
                                  timeout=60)
        code = "ok" if ack.get("ok") else (ack.get("error") or {}).get("code", "error")
        self.log("accept", sid, code)
        run.facts.accepts.append({"staff": self.name, "session_id": sid, "code": code,
                                  "sent": sent, "acked": now()})
        if code != "ok":
            if code != "conflict":
                self._violation(f"call.accept {sid}: {ack}")
            # Conflict: the caller left (the revocation comes, or came, separately).
            if self.current == sid:
                self.current, self.state = None, "available"
                self.busy_until_idle.set()
            return
        self.state = "busy"
        await asyncio.sleep(run.rng.uniform(*run.cfg.talk_s))
        ack = await self.sio.call("call.hangup", {"session_id": sid}, namespace="/staff",
                                  timeout=60)
        self.log("hangup", sid, "ok" if ack.get("ok") else str(ack))
        if not ack.get("ok"):
            self._violation(f"call.hangup {sid}: {ack}")
        self.state, self.current = "wrapup", None
        eligible = run.loading and len(run.waiting[self.department]) > run.idle_staff(
            self.department)
        self.state = "available"
        self.wrapup_mark = (now(), eligible)
        ack = await self.sio.call("wrapup.done", {}, namespace="/staff", timeout=60)
        self.log("wrapup.done", sid, "ok" if ack.get("ok") else str(ack))
        if not ack.get("ok"):
            self._violation(f"wrapup.done: {ack}")
        if self.state == "available":
            self.busy_until_idle.set()


# -- one run ----------------------------------------------------------------------------------
async def gather_limited(coros, limit: int = 25) -> list:
    gate = asyncio.Semaphore(limit)

    async def one(coro):
        async with gate:
            return await coro

    return await asyncio.gather(*(one(c) for c in coros))


async def redis_cpu(url: str | None) -> float:
    if url is None:  # the embedded store: its CPU is the node's
        return 0.0
    client = aioredis.from_url(url)
    try:
        info = await client.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])
    finally:
        await client.aclose()


async def snapshot_of(sio: socketio.AsyncClient, latest: dict[str, Any]) -> dict[str, Any]:
    """A fresh dashboard snapshot: dashboard.subscribe sends one before its ack."""
    latest.pop("snapshot", None)
    ack = await sio.call("dashboard.subscribe", {}, namespace="/supervisor", timeout=60)
    if not ack.get("ok"):
        raise RuntimeError(f"dashboard.subscribe: {ack}")
    for _ in range(100):
        if "snapshot" in latest:
            return latest["snapshot"]
        await asyncio.sleep(0.05)
    raise RuntimeError("no dashboard.snapshot after dashboard.subscribe")


async def run_load(cfg: LoadConfig, label: str = "", progress=print) -> dict[str, Any]:
    """One run: start the nodes, drive the load, drain, collect, check. Returns the
    results (``failures`` empty when every check passed)."""
    cluster = Cluster(cfg)
    staff_meta = {Cluster.staff_name(j): {"department": DEPARTMENTS[(j // 2) % 2][0],
                                          "node": (j + 1) % cfg.nodes}
                  for j in range(cfg.staff)}
    kiosk_meta = {Cluster.kiosk_name(i): {"department": DEPARTMENTS[(i // 2) % 2][0],
                                          "service": DEPARTMENTS[(i // 2) % 2][1],
                                          "node": i % cfg.nodes}
                  for i in range(cfg.kiosks)}
    facts = Facts(cfg.nodes, staff_meta, {k: {"department": v["department"], "node": v["node"]}
                                          for k, v in kiosk_meta.items()})
    run = Run(cfg, facts)
    supervisors: list[socketio.AsyncClient] = []
    latest: list[dict[str, Any]] = []
    peak_waiting = [0]
    timing: dict[str, float] = {}
    kiosks: list[KioskAgent] = []
    kiosk_tasks: list[asyncio.Task] = []
    try:
        t = now()
        await cluster.start()
        timing["start_s"] = now() - t
        progress(f"[{label}] {cfg.nodes} node(s) up in {timing['start_s']:.1f} s "
                 f"(prefix {cluster.prefix}); signing in and connecting "
                 f"{cfg.staff} staff, {cfg.kiosks} kiosks")
        t = now()
        async with aiohttp.ClientSession() as http:
            staff_tokens = await gather_limited(
                [cluster.login(http, m["node"], name) for name, m in staff_meta.items()], 8)
            sup_tokens = [await cluster.login(http, n, SUPERVISOR) for n in range(cfg.nodes)]
        run.staff = [StaffAgent(run, name, m["node"], m["department"])
                     for name, m in staff_meta.items()]
        kiosks = [KioskAgent(run, name, m["node"], m["department"], m["service"])
                  for name, m in kiosk_meta.items()]
        for n in range(cfg.nodes):
            sio = new_client()
            seen: dict[str, Any] = {}

            async def on_snapshot(data, seen=seen):
                seen["snapshot"] = data
                waiting = sum(d["waiting"] for d in data["departments"])
                peak_waiting[0] = max(peak_waiting[0], waiting)

            sio.on("dashboard.snapshot", on_snapshot, namespace="/supervisor")
            await connect(sio, cluster.urls[n], "/supervisor", sup_tokens[n])
            supervisors.append(sio)
            latest.append(seen)
            await snapshot_of(sio, seen)
        await gather_limited([connect(s.sio, cluster.urls[s.node], "/staff", tok)
                              for s, tok in zip(run.staff, staff_tokens, strict=True)])
        await gather_limited([connect(k.sio, cluster.urls[k.node], "/kiosk",
                                      cluster.kiosk_tokens[k.name]) for k in kiosks])
        await gather_limited([s.go_available() for s in run.staff])
        timing["connect_s"] = now() - t
        progress(f"[{label}] connected in {timing['connect_s']:.1f} s; load for "
                 f"{cfg.duration_s:.0f} s")

        redis_of = cfg.redis_url if cfg.store == "redis" else None
        cpu0, redis0, bench0 = cluster.cpu_seconds(), await redis_cpu(redis_of), \
            time.process_time()
        started = now()
        load0 = os.getloadavg()[0]
        deadline = started + cfg.duration_s
        kiosk_tasks = [asyncio.create_task(k.loop(deadline)) for k in kiosks]
        while now() < deadline:
            await asyncio.sleep(min(10.0, max(0.0, deadline - now())))
            progress(f"[{label}]   t={now() - started:5.0f} s: offers {len(facts.offers)}, "
                     f"answered {sum(a['code'] == 'ok' for a in facts.accepts)}, "
                     f"waiting {sum(map(len, run.waiting.values()))}, "
                     f"violations {len(facts.violations)}")
        ended = now()
        load1 = os.getloadavg()[0]
        cpu1, redis1, bench1 = cluster.cpu_seconds(), await redis_cpu(redis_of), \
            time.process_time()
        run.loading = False
        # Drain: the kiosks cancel what still waits and see their calls end.
        done, pending = await asyncio.wait(kiosk_tasks, timeout=cfg.drain_timeout_s)
        for task in pending:
            task.cancel()
            facts.violations.append("a kiosk did not finish within the drain timeout")
        for task in done:
            if task.exception() is not None:
                facts.violations.append(f"a kiosk failed: {task.exception()!r}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(cfg.talk_s[1] + 30):
                for s in run.staff:
                    await s.busy_until_idle.wait()
                while run.tasks:
                    await asyncio.wait(set(run.tasks))
        busy = [s.name for s in run.staff if s.state != "available"]
        if busy:
            facts.violations.append(f"staff not available after the drain: {busy}")
        timing["drain_s"] = now() - ended
        progress(f"[{label}] drained in {timing['drain_s']:.1f} s; collecting")

        for n, sio in enumerate(supervisors):
            facts.snapshots[f"node-{n}"] = await snapshot_of(sio, latest[n])
        for n in range(cfg.nodes):
            facts.metrics[f"node-{n}"] = await cluster.metrics(n)
        facts.server_errors = cluster.logged_errors()
        await gather_limited([c.sio.disconnect() for c in [*kiosks, *run.staff]], 50)
        for sio in supervisors:
            await sio.disconnect()
        supervisors.clear()
        for k in kiosks:
            facts.requests.extend(c for c in k.calls.values())
        facts.audit = await asyncio.to_thread(cluster.audit)
        failures = check(facts)
        if failures:
            keep = RESULTS_DIR / f"load-logs-{time.strftime('%Y%m%d-%H%M%S')}-{cfg.nodes}n"
            cluster.keep_logs = keep
            progress(f"[{label}] checks failed; the nodes' logs go to {keep}")
    finally:
        leftovers = [t for t in [*kiosk_tasks, *run.tasks] if not t.done()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        for sio in [*supervisors, *(c.sio for c in [*kiosks, *run.staff])]:
            if sio.connected:
                with contextlib.suppress(Exception):
                    await sio.disconnect()
        await cluster.stop()

    window = ended - started
    results_figures = figures(facts, run, started, ended, cpu1, cpu0, redis1 - redis0,
                              bench1 - bench0, peak_waiting[0])
    results_figures["load_average"] = [load0, load1]
    return {
        "label": label,
        "config": asdict(cfg),
        "timing": timing,
        "window_s": window,
        "figures": results_figures,
        "snapshots": facts.snapshots,
        "metrics": facts.metrics,
        "failures": failures,
        "facts": facts,
    }


# -- checks -----------------------------------------------------------------------------------
def check(facts: Facts) -> list[str]:
    """Every invariant of the run; each failure as a sentence naming what broke."""
    failures: list[str] = [f"seen while running: {v}" for v in facts.violations]
    failures += [f"call.request refused: {r}" for r in facts.refused_requests]
    failures += [f"server logged: {e}" for e in facts.server_errors[:20]]
    if len(facts.server_errors) > 20:
        failures.append(f"… and {len(facts.server_errors) - 20} more server errors")

    # Offers: each (staff, session) once, and exactly those of the audit trails.
    received = collections.Counter((staff, sid) for _, staff, sid in facts.offers)
    failures += [f"offer of {sid} to {staff} received {n} times (duplicated)"
                 for (staff, sid), n in received.items() if n > 1]
    trail = collections.Counter((staff, sid) for sid, a in facts.audit.items()
                                for staff in a["offered"])
    failures += [f"offer of {sid} to {staff} in the audit trail ({n}×) but received "
                 f"{received[(staff, sid)]}× (lost)"
                 for (staff, sid), n in trail.items() if received[(staff, sid)] < n]
    failures += [f"offer of {sid} to {staff} received {n}× but the trail has "
                 f"{trail[(staff, sid)]}"
                 for (staff, sid), n in received.items() if n > trail[(staff, sid)]]
    for (staff, sid) in received:
        dept = facts.audit.get(sid, {}).get("department")
        if dept != facts.staff.get(staff, {}).get("department"):
            failures.append(f"{sid} ({dept}) offered to {staff} of another department")

    failures += [f"{staff}: call.offer of {sid} arrived after its call.offer_revoked (the "
                 "console would show a dead offer)" for _, staff, sid in facts.stale_offers]
    failures += [f"{staff}: offer of {sid} revoked ({reason}) but never received (lost)"
                 for _, staff, sid, reason in facts.revokes if not received[(staff, sid)]]

    # Each offer ends in an accept or a revocation.
    accepted_ok = collections.defaultdict(list)
    for a in facts.accepts:
        if a["code"] == "ok":
            accepted_ok[a["session_id"]].append(a["staff"])
    revoked = {(staff, sid) for _, staff, sid, _ in facts.revokes}
    for (staff, sid) in received:
        if staff not in accepted_ok.get(sid, []) and (staff, sid) not in revoked:
            failures.append(f"offer of {sid} to {staff}: neither accepted nor revoked")
    for sid, staff in accepted_ok.items():
        if len(staff) != 1:
            failures.append(f"{sid} accepted by {len(staff)} staff members: {staff}")
        elif (staff[0], sid) not in received:
            failures.append(f"{sid} accepted by {staff[0]}, who never received its offer")

    # Every request accounted for.
    requested = {r["session_id"]: r for r in facts.requests if r["acked_at"] is not None}
    strays = [r["session_id"] for r in facts.requests if r["acked_at"] is None]
    failures += [f"kiosk events for {sid}, which no request of the kiosk returned"
                 for sid in strays]
    served = abandoned = 0
    for sid, r in requested.items():
        ends = [reason for _, reason in r["ended"]]
        if len(r["connected"]) > 1:
            failures.append(f"{sid}: call.connected {len(r['connected'])} times at the kiosk")
        if len(ends) > 1:
            failures.append(f"{sid}: call.ended {len(ends)} times at the kiosk ({ends})")
        if r["connected"]:
            if ends != ["hangup"]:
                failures.append(f"{sid}: connected, then ended {ends or 'never'}")
            elif len(accepted_ok.get(sid, [])) != 1:
                failures.append(f"{sid}: connected at the kiosk without exactly one accept "
                                f"({accepted_ok.get(sid, [])})")
            else:
                served += 1
            if facts.audit.get(sid, {}).get("final") != "session.closed":
                failures.append(f"{sid}: served, but its trail ends "
                                f"{facts.audit.get(sid, {}).get('final')}")
        elif r["cancel"] == "ok" and ends == ["abandoned"]:
            abandoned += 1
            if facts.audit.get(sid, {}).get("final") != "session.abandoned":
                failures.append(f"{sid}: cancelled, but its trail ends "
                                f"{facts.audit.get(sid, {}).get('final')}")
        else:
            failures.append(f"{sid} ({r['kiosk']}): neither served nor abandoned (still "
                            f"queued?): cancel {r['cancel']}, ended {ends}")
    for sid in accepted_ok:
        if sid not in requested or not requested[sid]["connected"]:
            failures.append(f"{sid} accepted but the kiosk never got call.connected")
    unknown = sorted(set(facts.audit) - set(requested))
    failures += [f"session {sid} exists on the server but no kiosk request returned it"
                 for sid in unknown]
    failures += [f"{sid}: audit trail broken" for sid, a in facts.audit.items()
                 if not a["verified"]]
    for sid, a in facts.audit.items():
        ok = accepted_ok.get(sid, [])
        if a["accepted"] != ok:
            failures.append(f"{sid}: the trail says accepted by {a['accepted']}, "
                            f"the staff saw {ok}")

    # Queue statistics: the dashboard on every node against the clients' counts.
    expected = {dept: {"answered": 0, "abandoned": 0} for dept, _ in DEPARTMENTS}
    for sid, r in requested.items():
        if sid in accepted_ok:
            expected[r["department"]]["answered"] += 1
        elif r["cancel"] == "ok":
            expected[r["department"]]["abandoned"] += 1
    staff_by_dept = collections.Counter(m["department"] for m in facts.staff.values())
    comparable = []
    for node, snap in sorted(facts.snapshots.items()):
        depts = {d["id"]: d for d in snap["departments"]}
        for dept, want in expected.items():
            got = depts.get(dept, {})
            for key in ("answered", "abandoned"):
                if got.get(key) != want[key]:
                    failures.append(f"dashboard on {node}: {dept} {key} {got.get(key)}, "
                                    f"the clients counted {want[key]}")
            if got.get("waiting") != 0:
                failures.append(f"dashboard on {node}: {dept} still has "
                                f"{got.get('waiting')} waiting after the drain")
            agents = got.get("agents", {})
            if agents.get("available") != staff_by_dept[dept]:
                failures.append(f"dashboard on {node}: {dept} agents {agents}, expected "
                                f"{staff_by_dept[dept]} available")
        if snap.get("calls"):
            failures.append(f"dashboard on {node}: {len(snap['calls'])} live calls after "
                            "the drain")
        comparable.append({k: v for k, v in snap.items() if k not in ("at", "agents")})
    if any(c != comparable[0] for c in comparable[1:]):
        failures.append("the nodes' dashboards differ")
    totals = collections.Counter()
    for m in facts.metrics.values():
        for key in ("answered", "abandoned", "completed"):
            totals[key] += int(m.get(f"calls.{key}", 0))
    want_totals = {"answered": sum(e["answered"] for e in expected.values()),
                   "abandoned": sum(e["abandoned"] for e in expected.values()),
                   "completed": served}
    for key, want in want_totals.items():
        if totals[key] != want:
            failures.append(f"the nodes' smartcounter_calls_total{{outcome={key!r}}} add up "
                            f"to {totals[key]}, the clients counted {want}")
    if not served:
        failures.append("no call was served")
    return failures


# -- figures ----------------------------------------------------------------------------------
def figures(facts: Facts, run: Run, started: float, ended: float, cpu1, cpu0, redis_cpu_s,
            bench_cpu_s, peak_waiting) -> dict[str, Any]:
    window = ended - started
    offers_in = sum(1 for t, _, _ in facts.offers if started <= t <= ended)
    accepts = [a for a in facts.accepts if a["code"] == "ok"]
    accepts_in = sum(1 for a in accepts if started <= a["acked"] <= ended)
    cross = [s for s, c in run.lat_accept_connected if c]
    requests = [r for r in facts.requests if r["acked_at"] is not None]
    per_node = {}
    for n in range(facts.nodes):
        m = facts.metrics.get(f"node-{n}", {})
        per_node[f"node-{n}"] = {
            "kiosks": sum(1 for k in facts.kiosks.values() if k["node"] == n),
            "staff": sum(1 for s in facts.staff.values() if s["node"] == n),
            "requests": int(m.get("events/kiosk.call.request.ok", 0)),
            "accepts": int(m.get("events/staff.call.accept.ok", 0)),
            "accept_conflicts": int(m.get("events/staff.call.accept.conflict", 0)),
            "answered": int(m.get("calls.answered", 0)),
            "abandoned": int(m.get("calls.abandoned", 0)),
            "completed": int(m.get("calls.completed", 0)),
            "cpu": (cpu1[n] - cpu0[n]) / window,
        }
    return {
        "window_s": window,
        "offers": len(facts.offers),
        "offers_per_s": offers_in / window,
        "answered_per_s": accepts_in / window,
        "requests": len(requests),
        "served": sum(1 for r in requests if r["connected"]),
        "abandoned": sum(1 for r in requests if r["cancel"] == "ok"),
        "abandoned_at_drain": sum(1 for r in requests if r["cancel"] == "ok" and r["drain"]),
        "revoked": collections.Counter(reason for *_, reason in facts.revokes),
        "accept_conflicts": sum(1 for a in facts.accepts if a["code"] == "conflict"),
        "late_offers": len(facts.late_offers),
        "queue_updates_per_s": run.queue_updates / window,
        "peak_waiting": peak_waiting,
        "latency_ms": {
            "request_ack": summary_ms(run.lat_request_ack),
            "accept_connected": summary_ms([s for s, _ in run.lat_accept_connected]),
            "accept_connected_cross_node": summary_ms(cross),
            "accept_connected_same_node": summary_ms(
                [s for s, c in run.lat_accept_connected if not c]),
            "wrapup_offer": summary_ms(run.lat_wrapup_offer),
            "queue_wait": summary_ms(run.queue_waits),
        },
        "cross_node_share": len(cross) / max(1, len(run.lat_accept_connected)),
        "per_node": per_node,
        "server_cpu": sum(p["cpu"] for p in per_node.values()),
        "redis_cpu": redis_cpu_s / window,
        "bench_cpu": bench_cpu_s / window,
    }


def fmt(value, spec: str = ".1f") -> str:
    return "—" if value is None else format(value, spec)


def report(main: dict[str, Any], baseline: dict[str, Any] | None) -> None:
    runs = [main, *([baseline] if baseline else [])]
    heads = [f"{r['config']['nodes']} node{'s' if r['config']['nodes'] > 1 else ''}, "
             f"{r['config']['store']}" + (" (baseline)" if r is baseline else "")
             for r in runs]
    print(f"\n{'':46}" + "".join(f"{h:>24}" for h in heads) + ("   ratio" if baseline else ""))

    def row(name: str, values: list, spec: str = ".1f", ratio: bool = True) -> None:
        cells = "".join(f"{fmt(v, spec):>24}" for v in values)
        tail = ""
        if baseline and ratio and None not in values and values[1]:
            tail = f"   {values[0] / values[1]:.2f}"
        print(f"{name:<46}{cells}{tail}")

    figs = [r["figures"] for r in runs]
    row("load window, s", [f["window_s"] for f in figs], ".0f", False)
    row("kiosks / staff", [f"{r['config']['kiosks']} / {r['config']['staff']}" for r in runs],
        "", False)
    row("routing decisions (call.offer) per s", [f["offers_per_s"] for f in figs], ".2f")
    row("answered calls per s", [f["answered_per_s"] for f in figs], ".2f")
    row("requests / served / abandoned (at drain)",
        [f"{f['requests']} / {f['served']} / {f['abandoned']} ({f['abandoned_at_drain']})"
         for f in figs], "", False)
    row("offers revoked (cancel / timeout)",
        [f"{f['revoked'].get('cancelled', 0)} / {f['revoked'].get('timeout', 0)}"
         for f in figs], "", False)
    row("late offers dropped by the console rule", [f["late_offers"] for f in figs], "d",
        False)
    row("queue.update events delivered per s", [f["queue_updates_per_s"] for f in figs], ".0f")
    row("peak waiting callers (dashboard)", [f["peak_waiting"] for f in figs], "d", False)
    for key, name in (("request_ack", "call.request → ack"),
                      ("accept_connected", "call.accept → kiosk call.connected"),
                      ("accept_connected_cross_node", "  the same, across nodes"),
                      ("accept_connected_same_node", "  the same, kiosk and staff on one node"),
                      ("wrapup_offer", "wrapup.done → next call.offer (callers wait)"),
                      ("queue_wait", "queue wait, call.request → call.connected")):
        stats = [f["latency_ms"][key] for f in figs]
        print(name)
        for q in ("p50", "p95", "max"):
            row(f"    {q}, ms", [s[q] for s in stats], ".1f" if key != "queue_wait" else ".0f")
        row("    n", [s["n"] for s in stats], "d", False)
    row("share of answers crossing nodes", [f["cross_node_share"] for f in figs], ".0%", False)
    row("server CPU, all nodes (1.0 = one core)", [f["server_cpu"] for f in figs], ".2f")
    row("Redis CPU", [f["redis_cpu"] for f in figs], ".2f")
    row("load generator CPU (this process)", [f["bench_cpu"] for f in figs], ".2f")
    row("machine load average, start → end of load",
        [f"{f['load_average'][0]:.1f} → {f['load_average'][1]:.1f}" for f in figs], "", False)
    for r in runs:
        print(f"\nper node, {r['config']['nodes']}-node run: kiosks staff  requests accepts "
              "answered abandoned completed  CPU")
        for node, p in r["figures"]["per_node"].items():
            print(f"  {node:<8} {p['kiosks']:>17} {p['staff']:>5} {p['requests']:>9} "
                  f"{p['accepts']:>7} {p['answered']:>8} {p['abandoned']:>9} "
                  f"{p['completed']:>9}  {p['cpu']:.2f}")
    for r in runs:
        fails = r["failures"]
        print(f"\nchecks, {r['config']['nodes']}-node run: "
              + ("all passed (offers once each and as the audit trails say; no staff offered "
                 "twice at once; every request served or abandoned, none left waiting; "
                 "dashboards and node counters agree with the clients)" if not fails
                 else f"{len(fails)} FAILED"))
        for f in fails[:40]:
            print(f"  FAIL {f}")
        if len(fails) > 40:
            print(f"  … {len(fails) - 40} more (in the JSON)")


def pair(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.load",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--kiosks", type=int, default=200)
    ap.add_argument("--staff", type=int, default=40)
    ap.add_argument("--duration", type=float, default=120.0, help="seconds of load (120)")
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--baseline-nodes", type=int, default=1,
                    help="nodes of the baseline run beside it (0: none)")
    ap.add_argument("--baseline-duration", type=float, default=60.0)
    ap.add_argument("--redis-url", default=DEFAULT_REDIS)
    ap.add_argument("--store", choices=("redis", "sqlite"), default="redis",
                    help="the store of the main run (sqlite: one node, the embedded store)")
    ap.add_argument("--baseline-store", choices=("redis", "sqlite"), default=None,
                    help="the store of the baseline run (default: the main run's)")
    ap.add_argument("--talk-s", type=pair, default=(2.0, 5.0), help="talk time range (2,5)")
    ap.add_argument("--pause-s", type=pair, default=(0.5, 2.0),
                    help="a kiosk's pause between calls (0.5,2)")
    ap.add_argument("--cancel-share", type=float, default=0.05,
                    help="share of requests cancelled while waiting (0.05)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)
    for store, nodes in ((args.store, args.nodes),
                         (args.baseline_store or args.store, args.baseline_nodes)):
        if store == "sqlite" and nodes > 1:
            ap.error("the embedded store (sqlite) runs one node")
    print(f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
          f"Python {platform.python_version()}, Redis {args.redis_url}; load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    base = LoadConfig(kiosks=args.kiosks, staff=args.staff, duration_s=args.duration,
                      nodes=args.nodes, store=args.store, redis_url=args.redis_url,
                      talk_s=args.talk_s,
                      pause_s=args.pause_s, cancel_share=args.cancel_share, seed=args.seed)

    def progress(text: str) -> None:
        print(text, flush=True)

    main_run = asyncio.run(run_load(base, f"{args.nodes} nodes, {args.store}", progress))
    baseline = None
    if args.baseline_nodes:
        cfg = dataclasses.replace(base, nodes=args.baseline_nodes,
                                  duration_s=args.baseline_duration,
                                  store=args.baseline_store or args.store)
        baseline = asyncio.run(run_load(
            cfg, f"{args.baseline_nodes} node baseline, {cfg.store}", progress))
    report(main_run, baseline)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min)")
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"load-{time.strftime('%Y%m%d-%H%M%S')}.json"

    def plain(r: dict[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in r.items() if k != "facts"}, "facts": asdict(r["facts"])}

    out.write_text(json.dumps({"run": plain(main_run),
                               "baseline": plain(baseline) if baseline else None,
                               "args": {k: v for k, v in vars(args).items()}},
                              indent=2, default=str))
    print(f"\nresults: {out}")
    failed = main_run["failures"] or (baseline and baseline["failures"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
