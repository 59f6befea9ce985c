"""The shared shape of the socket.io namespaces: event names with dots map to
``on_<name_with_underscores>`` methods, each declared with :func:`event` so that its
payload is validated, its caller known, and every outcome an ack of docs/protocol.md."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio
from pydantic import BaseModel, ValidationError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from media.errors import MediaError
from sessions.accounts import AccountDirectory
from sessions.errors import DomainError
from sessions.log_context import bind_session

from .auth import Principal, TokenIssuer, current_principal
from .errors import error_ack
from .metrics import Metrics
from .payloads import describe
from .rate_limit import RateLimiter

logger = logging.getLogger(__name__)

Handler = Callable[[Any, str, Principal, Any], Awaitable[dict[str, Any] | None]]


def event(model: type[BaseModel]) -> Callable[[Handler], Callable[..., Awaitable[dict]]]:
    """Declare a client → server event handler taking a validated ``model`` payload."""

    def decorate(handler: Handler) -> Callable[..., Awaitable[dict]]:
        @functools.wraps(handler)
        async def wrapper(self: BaseNamespace, sid: str, data: Any = None, *_: Any) -> dict:
            name = handler.__name__.removeprefix("on_").replace("_", ".")
            ack = await self._run(name, sid, model, data, handler)
            code = "ok" if ack.get("ok") else ack["error"]["code"]
            self.metrics.socket_events.labels(self.namespace, name, code).inc()
            return ack

        wrapper.is_event = True  # type: ignore[attr-defined]
        return wrapper

    return decorate


class BaseNamespace(socketio.AsyncNamespace):
    def __init__(self, namespace: str, metrics: Metrics, events_per_minute: float = 600) -> None:
        super().__init__(namespace)
        self.metrics = metrics
        self.principals: dict[str, Principal] = {}
        # Each socket's peer address (what its media offers' candidates are judged by).
        self.addresses: dict[str, str | None] = {}
        # Events per kiosk or account on this node, however many sockets it opens:
        # generous for any real client (a burst at connect, a few a second in a call), a
        # wall for a script hammering the server.
        self.event_limit = RateLimiter(per_minute=events_per_minute,
                                       burst=max(1, int(events_per_minute / 10)))
        # Refusals per socket: a burst's worth, then one a second, or it is closed.
        self._refusals = RateLimiter(per_minute=60, burst=self.event_limit.burst)

    async def trigger_event(self, event_name: str, *args: Any) -> Any:
        if event_name == "connect" and len(args) >= 2 and isinstance(args[1], dict):
            request = args[1].get("aiohttp.request")  # engine.io's REMOTE_ADDR is fixed
            self.addresses[args[0]] = getattr(request, "remote", None)
            try:
                return await super().trigger_event(event_name, *args)
            except BaseException:  # refused: no disconnect will follow
                self.addresses.pop(args[0], None)
                raise
        if event_name in ("connect", "disconnect"):
            return await super().trigger_event(event_name, *args)
        handler = getattr(self, "on_" + (event_name or "").replace(".", "_"), None)
        if handler is None or not getattr(handler, "is_event", False):
            return error_ack("bad_request", f"unknown event {event_name!r}")
        return await handler(*args)

    async def _run(
        self, name: str, sid: str, model: type[BaseModel], data: Any, handler: Handler
    ) -> dict[str, Any]:
        principal = self.principals.get(sid)
        if principal is None:
            return error_ack("unauthorized", "not signed in")
        if not self.event_limit.allow(principal.id):
            return await self._refuse_at_the_limits_pace(sid, principal)
        try:
            payload = model.model_validate({} if data is None else data)
        except ValidationError as exc:
            return error_ack("bad_request", describe(exc))
        bind_session(getattr(payload, "session_id", None))
        try:
            result = await handler(self, sid, principal, payload)
        except (DomainError, MediaError) as exc:
            return error_ack(exc.code, str(exc))
        except (RedisConnectionError, RedisTimeoutError):
            logger.warning("%s %s: the shared store is unreachable", self.namespace, name)
            return error_ack("unavailable", "the shared store is unreachable; try again shortly")
        except Exception:
            logger.exception("%s %s failed for %s", self.namespace, name, principal.id)
            return error_ack("internal", "internal error; it has been logged")
        return {"ok": True, **(result or {})}

    async def _refuse_at_the_limits_pace(self, sid: str, principal: Principal) -> dict:
        """The ``rate_limited`` answer, given only when the client's limit would allow its
        next event (:meth:`RateLimiter.hold`). Each event costs the node a fraction of a
        millisecond however fast it is refused, and a socket's next event is read only
        once this one is answered, so a client over its limit is held to the limit's
        pace, over all its sockets. A socket that goes on regardless (a burst's worth of
        refusals, then more than one a second), or one more of a client with a burst's
        worth already waiting, is closed: its backlog is dropped with it."""
        if not self._refusals.allow(sid) or not await self.event_limit.hold(
                principal.id, most=self.event_limit.burst):
            logger.warning("%s %s: goes on far over its event limit; socket closed",
                           self.namespace, principal.id)
            await self.disconnect(sid)
            return error_ack("rate_limited", "too many events; disconnected")
        return error_ack("rate_limited", "too many events; slow down")

    async def remember(self, sid: str, principal: Principal, room: str) -> None:
        self.principals[sid] = principal
        await self.enter_room(sid, room)
        self.metrics.connections.labels(self.namespace).inc()

    def forget(self, sid: str) -> Principal | None:
        """The principal of a socket that disconnected (None if it never got in)."""
        self.addresses.pop(sid, None)
        principal = self.principals.pop(sid, None)
        if principal is not None:
            self.metrics.connections.labels(self.namespace).dec()
        return principal

    async def account_principal(
        self, auth: Any, role: str, tokens: TokenIssuer, accounts: AccountDirectory
    ) -> Principal:
        """The staff member or supervisor a connect's login token names, checked against
        their account as it is now (disabled accounts are refused; departments and name
        come from the account, so changes apply at the next connect)."""
        token = auth.get("token") if isinstance(auth, dict) else None
        principal = tokens.verify(token) if isinstance(token, str) else None
        if principal is None or principal.role != role:
            raise refuse(f"a valid {role} token is required")
        current = await asyncio.to_thread(current_principal, accounts, principal)
        if current is None:
            raise refuse(f"this {role} account is disabled or its sign-in was revoked")
        return current

    async def cut_revoked(self, accounts: AccountDirectory) -> list[str]:
        """Disconnect this node's sockets whose account has been disabled or revoked
        since they connected, or whose sign-in ended (password reset, sign-out), or whose
        departments changed (the console reconnects with them); returns their ids."""
        cut = []
        for sid, principal in list(self.principals.items()):
            current = await asyncio.to_thread(current_principal, accounts, principal)
            if current is None or current.departments != principal.departments:
                cut.append(principal.id)
                logger.info("cutting %s %s: account disabled or revoked", self.namespace,
                            principal.id)
                await self.disconnect(sid)
        return cut

    def sockets_of(self, principal_id: str) -> list[str]:
        return [sid for sid, p in self.principals.items() if p.id == principal_id]


def refuse(message: str) -> socketio.exceptions.ConnectionRefusedError:
    return socketio.exceptions.ConnectionRefusedError(message, {"code": "unauthorized"})
