"""A real server on 127.0.0.1 (random port) and socket.io clients for it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis.asyncio as aioredis
import socketio
from aiohttp import web

from smartcounter.app import build_app
from smartcounter.config import Settings


async def drop_redis_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` (what a test or benchmark run left in Redis)."""
    client = aioredis.from_url(url)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


# Converted face models shared by every test server (preparing them takes seconds; a
# prepared directory is checked and reused).
SHARED_MODELS_DIR = Path(tempfile.gettempdir()) / "smartcounter-test-models"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    settings: Settings
    runner: web.AppRunner
    app: web.Application
    kiosk_tokens: dict[str, str] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    async def login(self, username: str) -> str:
        async with aiohttp.ClientSession() as http:
            async with http.post(
                f"{self.url}/api/v1/auth/login",
                json={"username": username, "password": self.passwords[username]},
            ) as resp:
                assert resp.status == 200, await resp.text()
                return (await resp.json())["token"]


STAFF = {
    "alice": ["tax"],
    "bob": ["tax"],
    "hana": ["housing"],
}


@contextlib.asynccontextmanager
async def running_server(
    data_dir: Path,
    redis_url: str | None = None,
    prefix: str = "sc",
    relay: str = "forward",
    models_dir: Path | None = None,
    configure=None,
    seed_accounts: bool = True,
    **routing,
):
    """``configure(settings)`` may change any setting before the app is built; a second
    node on the same data directory passes ``seed_accounts=False``."""
    from sessions.accounts import AccountDirectory

    settings = Settings(
        port=free_port(), data_dir=data_dir, redis_url=redis_url, redis_prefix=prefix
    )
    settings.tick_interval_s = 0.05
    settings.redis_durability = "warn"  # the tests' Redis keeps nothing on disk
    settings.node_id = f"node-{settings.port}"  # several nodes may share one Redis
    settings.media_relay = relay
    settings.models_dir = models_dir or SHARED_MODELS_DIR
    for name, value in routing.items():
        setattr(settings.routing, name, value)
    accounts = AccountDirectory(data_dir)
    server_kiosks, passwords = {}, {}
    for kiosk_id in ("k1", "k2") if seed_accounts else ():
        _, server_kiosks[kiosk_id] = accounts.add_kiosk(kiosk_id, f"Site of {kiosk_id}")
    if seed_accounts:
        for username, depts in STAFF.items():
            passwords[username] = f"pw-{username}-123"
            accounts.add_staff(username, passwords[username], depts, "staff", username.title())
        passwords["sup"] = "pw-sup-1234"
        accounts.add_staff("sup", passwords["sup"], ["tax", "housing"], "supervisor", "Sup")
    if configure is not None:
        configure(settings)
    app = build_app(settings)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", settings.port).start()
    try:
        yield Server(settings, runner, app, server_kiosks, passwords)
    finally:
        await runner.cleanup()


@dataclass
class NodeProcess:
    """A node run as its own process (``smartcounter serve``), to be killed for real."""

    proc: asyncio.subprocess.Process
    url: str
    node_id: str
    log: Path


@contextlib.asynccontextmanager
async def node_process(data_dir: Path, redis_url: str, prefix: str, node_id: str, **env: str):
    """``smartcounter serve`` on 127.0.0.1 (random port) as one node of a deployment on
    ``redis_url``/``prefix`` sharing ``data_dir``; ``env`` adds SMARTCOUNTER_* settings.
    Its log goes to ``data_dir/<node_id>.log``. Killed on exit if still running."""
    port = free_port()
    log = data_dir / f"{node_id}.log"
    environment = {
        **os.environ, "SMARTCOUNTER_REDIS_PREFIX": prefix, "SMARTCOUNTER_RECORDING": "off",
        "SMARTCOUNTER_REDIS_DURABILITY": "warn",
        "SMARTCOUNTER_MODELS_DIR": str(SHARED_MODELS_DIR), **env,
    }
    with log.open("ab") as log_file:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smartcounter.cli", "serve", "--host", "127.0.0.1",
            "--port", str(port), "--data-dir", str(data_dir), "--redis-url", redis_url,
            "--node-id", node_id, env=environment, stdout=subprocess.DEVNULL, stderr=log_file,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http, asyncio.timeout(60):
            while True:
                assert proc.returncode is None, f"{node_id} exited: {log.read_text()[-2000:]}"
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{url}/readyz") as resp:
                        if resp.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield NodeProcess(proc, url, node_id, log)
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


def run_cli(data_dir: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """``smartcounter ARGS`` on DATA_DIR (``SMARTCOUNTER_DATA_DIR``), ``stdin`` its input,
    its output captured (blocking)."""
    return subprocess.run(
        [sys.executable, "-m", "smartcounter.cli", *args], input=stdin,
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "SMARTCOUNTER_LOG_FORMAT": "text",
             "SMARTCOUNTER_DATA_DIR": str(data_dir)},
    )


def print_logs(*servers: ServeProcess) -> None:
    """For a failing test: what each server that ran wrote."""
    for server in servers:
        if server.proc is not None:
            print(f"--- {server.log_path.name}\n{server.log()}")


class ServeProcess:
    """``smartcounter serve`` as a process of its own on 127.0.0.1 (random port), to be
    stopped with SIGTERM or killed with SIGKILL; its output goes to ``log``. ``env`` adds
    SMARTCOUNTER_* settings (no Redis URL: the embedded store)."""

    def __init__(self, data_dir: Path, log: Path, **env: str) -> None:
        self.data_dir, self.log_path, self.env = data_dir, log, env
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: asyncio.subprocess.Process | None = None

    async def start(self, timeout_s: float = 60, ssl: Any = None) -> None:
        environment = {
            **os.environ, "SMARTCOUNTER_RECORDING": "off",
            "SMARTCOUNTER_MODELS_DIR": str(SHARED_MODELS_DIR), "SMARTCOUNTER_LOG_FORMAT": "text",
            **self.env,
        }
        with self.log_path.open("ab") as log:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "smartcounter.cli", "serve", "--port", str(self.port),
                "--data-dir", str(self.data_dir), env=environment, stdout=log,
                stderr=subprocess.STDOUT,
            )
        async with aiohttp.ClientSession() as http, asyncio.timeout(timeout_s):
            while True:
                assert self.proc.returncode is None, f"server exited:\n{self.log()}"
                with contextlib.suppress(aiohttp.ClientConnectionError):
                    async with http.get(f"{self.url}/healthz", ssl=ssl) as resp:
                        if resp.status == 200:
                            return
                await asyncio.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def send(self, sig: int) -> None:
        assert self.proc is not None and self.proc.returncode is None
        os.kill(self.proc.pid, sig)

    async def wait(self, timeout_s: float = 30) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout_s)

    async def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
        await self.proc.wait()


class RedisServer:
    """A Redis of a test's own on a free port: durable as the README says (append-only
    file, fsynced before each answer), or, with ``durable=False``, keeping nothing."""

    def __init__(self, directory: Path, durable: bool = True) -> None:
        self.directory, self.port, self.durable = directory, free_port(), durable
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--dir", str(self.directory), "--appendonly", "yes" if self.durable else "no",
             "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )

    async def ready(self) -> None:
        async with asyncio.timeout(20):
            while True:
                done = await asyncio.create_subprocess_exec(
                    "redis-cli", "-p", str(self.port), "ping",
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
                out, _ = await done.communicate()
                if out.strip() == b"PONG":
                    return
                await asyncio.sleep(0.05)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Client:
    """A socket.io client that records server events and can wait for them."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: list[tuple[str, Any]] = []
        self._changed = asyncio.Condition()

        async def on_any(event, data=None):
            self.events.append((event, data))
            async with self._changed:
                self._changed.notify_all()

        self.sio.on("*", on_any, namespace=namespace)
        self.connect_error: Any = None

        async def on_connect_error(data=None):
            self.connect_error = data

        self.sio.on("connect_error", on_connect_error, namespace=namespace)

    async def connect(self, url: str, token: str | None) -> None:
        auth = {"token": token} if token is not None else None
        await self.sio.connect(
            url, namespaces=[self.namespace], auth=auth, transports=["websocket"], wait_timeout=5
        )

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> dict:
        if data is None:
            return await self.sio.call(event, namespace=self.namespace, timeout=timeout)
        return await self.sio.call(event, data, namespace=self.namespace, timeout=timeout)

    async def wait_for(self, event: str, timeout: float = 5, **match: Any) -> Any:
        """The first recorded ``event`` whose payload has the ``match`` fields."""
        return await self.wait_for_match(
            event, lambda data: all((data or {}).get(k) == v for k, v in match.items()), timeout
        )

    async def wait_for_match(self, event: str, predicate, timeout: float = 5) -> Any:
        """The first recorded ``event`` whose payload satisfies ``predicate``."""

        def found():
            for name, data in self.events:
                if name == event and predicate(data):
                    return True, data
            return False, None

        async with asyncio.timeout(timeout):
            async with self._changed:
                while True:
                    ok, data = found()
                    if ok:
                        return data
                    await self._changed.wait()

    async def close(self) -> None:
        await self.sio.disconnect()


def mint_calls_accounts(data_dir: Path, calls: int) -> tuple[list[str], list[str]]:
    """``calls`` kiosks and tax clerks: their kiosk tokens and staff tokens (minted with
    the data dir's key: that many sign-ins from one address would meet the rate limit)."""
    from sessions.accounts import AccountDirectory
    from signaling.auth import TokenIssuer, load_or_create_secret

    accounts = AccountDirectory(data_dir)
    issuer = TokenIssuer(load_or_create_secret(data_dir))
    kiosks = [accounts.add_kiosk(f"k{i}", "Burst")[1] for i in range(calls)]
    staff = [issuer.issue(accounts.add_staff(f"clerk{i}", f"pw-clerk-{i}-1", ["tax"], "staff",
                                             f"Clerk {i}"))[0] for i in range(calls)]
    return kiosks, staff


async def connect_calls(url: str, kiosk_tokens, staff_tokens, clients) -> list[tuple[Client, str]]:
    """One connected call per staff member: (their client, the session id)."""
    calls = []
    for kiosk_token, staff_token in zip(kiosk_tokens, staff_tokens, strict=True):
        staff, kiosk = Client("/staff"), Client("/kiosk")
        clients += [staff, kiosk]
        await staff.connect(url, staff_token)
        await kiosk.connect(url, kiosk_token)
        assert (await staff.call("presence.set", {"state": "available"}))["ok"]
        ack = await kiosk.call("call.request", {"service_id": "tax-enquiry"})
        await staff.wait_for("call.offer", session_id=ack["session_id"])
        assert (await staff.call("call.accept", {"session_id": ack["session_id"]}))["ok"]
        calls.append((staff, ack["session_id"]))
    return calls
