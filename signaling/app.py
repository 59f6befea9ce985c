"""The aiohttp application: HTTP API, socket.io namespaces and background tasks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import socketio
from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from document_share.desk import CaseDesk
from media.vision.verifier import Verifier
from sessions.catalog import Catalog, CatalogError
from sessions.router import CallRouter

from .http_api import add_routes
from .http_common import api_errors_as_json
from .keys import SERVICES
from .kiosk_namespace import KioskNamespace
from .login_guard import LoginGuard
from .media_gateway import MediaGateway
from .metrics import CallCollector, ForwardingCollector, VerificationCollector
from .node_link import NodeLink
from .nodes import NodeRegistry
from .notifier import SocketNotifier
from .security_headers import identify, security_headers
from .services import Services
from .signed_urls import signed_url
from .staff_namespace import StaffNamespace
from .supervisor_namespace import SupervisorNamespace

logger = logging.getLogger(__name__)

LAG_SAMPLE_S = 0.05
# ``await app[DRAIN]()`` before stopping the app: see create_app's ``drain``.
DRAIN: web.AppKey[Callable[[], Awaitable[None]]] = web.AppKey("drain")


class NotDurable(RuntimeError):
    """The shared store could lose what this node acknowledges."""


def create_app(services: Services, make_router: Callable[..., CallRouter]) -> web.Application:
    """``make_router(notifier)`` builds the router once the socket server exists."""
    # With Redis, socket.io's Redis manager carries every emit to the node holding the
    # socket: the router on one node reaches a console connected to another.
    manager = (
        socketio.AsyncRedisManager(services.redis_url, channel=f"{services.redis_prefix}:sio")
        if services.redis_url else None
    )
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        max_http_buffer_size=256 * 1024,
        client_manager=manager,
        # One event of a socket at a time, in order, read only when the last is answered:
        # a client sending faster than it is answered waits in TCP (its own buffers), not
        # in a task per message here (see BaseNamespace._refuse_at_the_limits_pace).
        async_handlers=False,
    )
    gateway = MediaGateway(services.hub, services.store, services.metrics, services.node_id,
                           services.media_address, services.ice_allowed_networks)
    if services.redis_url:
        gateway.link = NodeLink(
            services.redis_url, services.redis_prefix, services.node_id, gateway.serve
        )
    notifier = SocketNotifier(sio, gateway)
    router = make_router(notifier)
    gateway.record = router.record
    nodes = NodeRegistry(router, services.store, services.node_id, services.media_address,
                         services.node_ttl_s)
    gateway.alive = nodes.alive
    services.nodes = nodes
    vision = services.vision
    verifier = Verifier(
        services.hub, services.store, notifier, router.record, vision.policy, vision.pool,
        vision.analyzer, vision.problem,
    )
    gateway.on_release(verifier.stop)
    desk = CaseDesk(
        services.store, router.record, notifier, services.blobs,
        lambda kind, item_id: signed_url(services.signer, kind, item_id),
    )
    services.router, services.sio, services.verifier = router, sio, verifier
    services.desk = desk
    services.login_guard = LoginGuard(services.store, services.login_policy)
    kiosk = KioskNamespace(
        router, services.accounts, gateway, services.metrics, desk, nodes,
        events_per_minute=services.events_per_minute,
        token_ttl_s=services.kiosk_token_ttl_s,
    )
    staff = StaffNamespace(
        router, services.store, services.accounts, services.tokens, gateway, services.metrics,
        verifier, services.blobs, desk, nodes, events_per_minute=services.events_per_minute,
    )
    supervisor = SupervisorNamespace(
        router, services.store, services.catalog, services.accounts, services.tokens, gateway,
        services.metrics, services.dashboard, events_per_minute=services.events_per_minute,
    )
    for namespace in (kiosk, staff, supervisor):
        sio.register_namespace(namespace)

    services.metrics.registry.register(ForwardingCollector(services.hub.consumers))
    services.metrics.registry.register(VerificationCollector(verifier))
    services.metrics.registry.register(CallCollector(router))
    app = web.Application(
        client_max_size=1024 * 1024, middlewares=[security_headers, api_errors_as_json]
    )
    app.on_response_prepare.append(identify)
    app[SERVICES] = services
    sio.attach(app)
    add_routes(app)

    async def heartbeat() -> None:
        await router.heartbeat(staff.local_staff())

    catalog_seen = {"mtime": _mtime(services.catalog_path)}

    async def reload_catalog() -> None:
        """Pick up a catalog changed by ``smartcounter catalog ...`` or by hand."""
        mtime = _mtime(services.catalog_path)
        if services.catalog_path is None or mtime == catalog_seen["mtime"]:
            return
        catalog_seen["mtime"] = mtime
        try:
            fresh = await asyncio.to_thread(Catalog.load, services.catalog_path)
        except CatalogError as exc:
            logger.error("catalog change ignored, the file is invalid: %s", exc)
            return
        services.catalog.update_from(fresh)
        logger.info("catalog reloaded: %d departments", len(fresh.departments))

    async def beat_and_reap() -> None:
        await nodes.beat()
        await nodes.reap()

    async def revived() -> None:
        await kiosk.claim_back()
        await staff.claim_back()

    nodes.on_revived(revived)

    async def sample_loop_lag() -> None:
        """One sample of how late the loop wakes a 50 ms timer."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(LAG_SAMPLE_S)
        services.metrics.observe_loop_lag(max(0.0, loop.time() - started - LAG_SAMPLE_S))

    async def revocations() -> None:
        for namespace in (kiosk, staff, supervisor):
            await namespace.cut_revoked(services.accounts)

    async def background(app: web.Application) -> AsyncIterator[None]:
        try:
            problem = await services.store.durability_problem()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Unreachable now: the node starts (it serves once the store is back, as in
            # any outage); its persistence could not be checked.
            problem = None
            logger.warning("the shared store is unreachable (%s): its persistence was not "
                           "checked", exc)
        if problem and services.store.shared and services.require_durable_store:
            raise NotDurable(f"{problem} (or set SMARTCOUNTER_REDIS_DURABILITY=warn to "
                             "start anyway)")
        if problem:
            logger.warning(problem)
        if not services.store.shared:  # before any client can connect
            await router.recover_after_restart()
        if gateway.link is not None:
            await gateway.link.start()
        stopping = asyncio.Event()
        jobs = {
            "tick": (services.tick_interval_s, router.tick),
            "redispatch": (5.0, router.redispatch),
            "queue_updates": (0.5, router.push_queue_updates),
            "media_reconcile": (10.0, gateway.reconcile),
            "heartbeat": (services.heartbeat_interval_s, heartbeat),
            "sweep": (services.presence_sweep_interval_s, router.sweep_presence),
            "dashboard": (1.0, supervisor.push_dashboard),
            "history": (15.0, supervisor.push_history),
            "revocations": (services.revocation_check_s, revocations),
            "catalog": (services.catalog_check_s, reload_catalog),
            "nodes": (max(0.2, services.node_ttl_s / 5), beat_and_reap),
            "loop_lag": (0.0, sample_loop_lag),
        }
        tasks = [
            asyncio.create_task(_every(interval, job, stopping), name=name)
            for name, (interval, job) in jobs.items()
        ]
        yield
        stopping.set()
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
        await verifier.close()
        if gateway.link is not None:
            await gateway.link.close()
        await services.hub.close()
        await asyncio.to_thread(vision.pool.close)
        await asyncio.to_thread(services.renderer.close)
        await services.store.close()

    async def disconnect_sockets(app: web.Application) -> None:
        # Close every client first, or aiohttp waits for their websockets to time out.
        # Both steps are bounded: engine.io's socket close waits for its send queue to
        # drain, which never happens for a socket whose peer has just gone, and its
        # shutdown awaits the ping task, which may be stuck closing such a socket.
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sio.eio.disconnect(), timeout=1)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(sio.shutdown(), timeout=1)

    async def drain() -> None:
        """Before a graceful stop (SIGTERM), while still serving: take no new calls
        here, hand the queue work over (kiosks waiting and staff not in a call are sent
        to reconnect to another node; the queue itself is in the shared store), and
        give the calls in progress on this node up to ``drain_timeout_s`` to end."""
        kiosk.draining = services.draining = True
        if services.redis_url:  # other nodes may take them
            await kiosk.hand_over()
            await staff.hand_over()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + services.drain_timeout_s
        calls = await kiosk.calls_in_progress()
        if calls:
            logger.info("shutting down: waiting up to %.0f s for %d call(s) to end",
                        services.drain_timeout_s, len(calls))
        while calls and loop.time() < deadline:
            await asyncio.sleep(0.5)  # calls end on their own; nothing to wait on
            calls = await kiosk.calls_in_progress()
        if calls:
            logger.warning("shutting down with %d call(s) still going", len(calls))
        # Stopping in order: no other node needs to recover this one.
        with contextlib.suppress(Exception):
            await nodes.leave()

    app[DRAIN] = drain
    app.cleanup_ctx.append(background)
    app.on_shutdown.append(disconnect_sockets)
    return app


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime_ns if path else None
    except OSError:
        return None


async def _every(
    interval: float, job: Callable[[], Awaitable[None]], stopping: asyncio.Event
) -> None:
    """Run ``job`` every ``interval`` seconds until ``stopping`` is set. The flag, not
    only the cancellation, ends the loop: a client library that swallows a cancellation
    in the middle of a call (seen with Redis) must not keep it running forever."""
    name = getattr(job, "__name__", job)
    store_down = False
    while not stopping.is_set():
        try:
            await job()
        except (RedisConnectionError, RedisTimeoutError) as exc:
            if not store_down:  # once per outage, not every tick
                logger.warning("background job %s: the shared store is unreachable (%s); "
                               "retrying", name, exc)
            store_down = True
        except Exception:
            logger.exception("background job %s failed", name)
        else:
            if store_down:
                logger.info("background job %s: the shared store is back", name)
            store_down = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=interval)
