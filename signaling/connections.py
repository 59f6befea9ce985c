"""Connection hygiene at the socket, before HTTP: aiohttp waits as long as a client likes
for a request's headers, so 1,500 connections that each send half a request stay open,
and past the open-files limit the node can accept no one (``/healthz`` included).

:class:`ConnectionGuard` wraps the server's protocol factory: a connection must complete
its first request's headers within ``header_timeout_s`` (or it is closed), and one
address may hold at most ``per_address`` connections (more are closed at once). Between
requests aiohttp's own keep-alive timeout applies. A reverse proxy in front sees one
address for everyone: give it a higher cap, or enforce these limits in the proxy.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from typing import Any, cast

from aiohttp import web

logger = logging.getLogger(__name__)


class ConnectionGuard:
    def __init__(self, header_timeout_s: float = 10.0, per_address: int = 256) -> None:
        self.header_timeout_s = header_timeout_s
        self.per_address = per_address
        self._open: collections.Counter[str] = collections.Counter()
        self._waiting: dict[Any, _Guarded] = {}  # aiohttp's protocol → its guard
        self.refused = 0  # connections over the per-address cap
        self.timed_out = 0  # connections closed for not sending their headers in time

    def install(self, server: web.Server) -> Callable[[], asyncio.Protocol]:
        """The protocol factory to listen with, in place of ``server``."""
        make_request = server.request_factory

        def request_factory(message, payload, protocol, writer, task, *args, **kwargs):
            guarded = self._waiting.pop(protocol, None)
            if guarded is not None:  # its headers are complete
                guarded.headers_done()
            return make_request(message, payload, protocol, writer, task, *args, **kwargs)

        server.request_factory = request_factory
        return lambda: _Guarded(server(), self)

    def open_connections(self) -> int:
        return sum(self._open.values())


class _Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the guard's two checks."""

    def __init__(self, inner: Any, guard: ConnectionGuard) -> None:
        self.inner, self.guard = inner, guard
        self.transport: asyncio.Transport | None = None
        self.address: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A TCP server's protocol is always handed a stream (read-write) transport.
        stream = cast(asyncio.Transport, transport)
        peer = stream.get_extra_info("peername")
        address = str(peer[0]) if peer else "unknown"
        if self.guard._open[address] >= self.guard.per_address:
            self.guard.refused += 1
            stream.abort()
            return
        self.address, self.transport = address, stream
        self.guard._open[address] += 1
        self.guard._waiting[self.inner] = self
        self._timer = asyncio.get_running_loop().call_later(
            self.guard.header_timeout_s, self._too_slow)
        self.inner.connection_made(transport)

    def _too_slow(self) -> None:
        self.guard.timed_out += 1
        self.guard._waiting.pop(self.inner, None)
        if self.transport is not None:
            self.transport.abort()

    def headers_done(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def data_received(self, data: bytes) -> None:
        if self.address is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.address is not None else None

    def connection_lost(self, exc: Exception | None) -> None:
        if self.address is None:  # refused: aiohttp never saw it
            return
        self.headers_done()
        self.guard._waiting.pop(self.inner, None)
        self.guard._open[self.address] -= 1
        if not self.guard._open[self.address]:
            del self.guard._open[self.address]
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()


class GuardedSite(web.TCPSite):
    """A TCP site whose connections pass through a :class:`ConnectionGuard`."""

    def __init__(self, runner: web.AppRunner, host: str, port: int,
                 guard: ConnectionGuard, **kwargs: Any) -> None:
        super().__init__(runner, host, port, **kwargs)
        self.guard = guard

    async def start(self) -> None:
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            self.guard.install(server), self._host, self._port, ssl=self._ssl_context,
            backlog=self._backlog, reuse_address=self._reuse_address,
            reuse_port=self._reuse_port,
        )
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
