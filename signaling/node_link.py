"""Requests between the nodes of a deployment, over Redis pub/sub: each node listens on
its own channel, and a request names the node that must serve it and waits for the
reply on the asking node's channel. Used to have a session's *media home* (the node
holding its peer connections) answer an offer that reached another node, and release
the session's media when the call ends elsewhere."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from media.errors import MediaError
from sessions.errors import DomainError, Unavailable
from sessions.redis_store import connect

logger = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class RemoteError(DomainError):
    """An error the serving node answered with, carrying its docs/protocol.md code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NodeGone(Unavailable):
    """No node listens under that name: it has stopped or died."""


class NodeLink:
    def __init__(self, url: str, prefix: str, node_id: str, handle: Handler,
                 timeout_s: float = 20.0) -> None:
        self.node_id = node_id
        self.timeout_s = timeout_s
        self._prefix = prefix
        self._handle = handle
        self._redis = connect(url)
        self._pubsub = self._redis.pubsub()
        self._pending: dict[str, asyncio.Future] = {}
        self._serving: set[asyncio.Task] = set()
        self._listener: asyncio.Task | None = None

    def _inbox(self, node_id: str) -> str:
        return f"{self._prefix}:node:{node_id}"

    async def start(self) -> None:
        self._listener = asyncio.create_task(self._listen_forever(), name="node-link")

    async def _listen_forever(self) -> None:
        """Listen, and after Redis goes away (a restart, an outage) subscribe again as
        soon as it is back."""
        delay = 0.2
        while True:
            try:
                await self._pubsub.subscribe(self._inbox(self.node_id))
                delay = 0.2
                await self._listen()
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                logger.warning("node link lost Redis (%s); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                with contextlib.suppress(Exception):
                    await self._pubsub.aclose()
                self._pubsub = self._redis.pubsub()

    async def _listen(self) -> None:
        async for message in self._pubsub.listen():
            if message.get("type") != "message":
                continue
            try:
                envelope = json.loads(message["data"])
            except (TypeError, ValueError):
                continue
            if envelope.get("kind") == "request":
                task = asyncio.create_task(self._serve(envelope))
                self._serving.add(task)
                task.add_done_callback(self._serving.discard)
            elif envelope.get("kind") == "reply":
                future = self._pending.pop(envelope.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(envelope.get("body") or {})

    async def _serve(self, envelope: dict[str, Any]) -> None:
        try:
            body = await self._handle(envelope["body"])
        except (DomainError, MediaError) as exc:
            body = {"error": {"code": exc.code, "message": str(exc)}}
        except Exception:
            logger.exception("serving a request from node %s failed", envelope.get("from"))
            body = {"error": {"code": "internal", "message": "the media home failed"}}
        reply = {"kind": "reply", "id": envelope["id"], "body": body}
        await self._redis.publish(self._inbox(envelope["from"]), json.dumps(reply))

    async def request(self, node_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """``body`` served by ``node_id``; raises :class:`RemoteError` with its error, or
        :class:`NodeGone` when no such node listens, or :class:`Unavailable` when it
        does not answer in time."""
        request_id = uuid.uuid4().hex
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        envelope = {"kind": "request", "id": request_id, "from": self.node_id, "body": body}
        try:
            listeners = await self._redis.publish(self._inbox(node_id), json.dumps(envelope))
            if not listeners:
                raise NodeGone(f"node {node_id} (this call's media home) is not running")
            reply = await asyncio.wait_for(future, self.timeout_s)
        except TimeoutError as exc:
            raise Unavailable(f"node {node_id} (this call's media home) did not answer") from exc
        finally:
            self._pending.pop(request_id, None)
        if "error" in reply:
            raise RemoteError(reply["error"]["code"], reply["error"]["message"])
        return reply

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.wait([self._listener])
        for task in list(self._serving):
            task.cancel()
        if self._serving:
            await asyncio.wait(self._serving)
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self._redis.aclose()
