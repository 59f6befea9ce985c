"""The node's background work, owned in one place: checks at start, the periodic jobs
(queue ticks, dispatch, announcements, media reconciliation, presence, the supervisors'
dashboard, revocations, the catalog file, node beats, the loop-lag probe), and the
closing of what they use, in order, at stop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from aiohttp import web
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from sessions.catalog import Catalog, CatalogError

from .node import Node
from .services import Services

logger = logging.getLogger(__name__)

LAG_SAMPLE_S = 0.05


class NotDurable(RuntimeError):
    """The shared store could lose what this node acknowledges."""


class CatalogWatch:
    """Picks up a catalog file changed by ``smartcounter catalog ...`` or by hand."""

    def __init__(self, catalog: Catalog, path: Path | None) -> None:
        self.catalog, self.path = catalog, path
        self._seen = _mtime(path)

    async def check(self) -> None:
        mtime = _mtime(self.path)
        if self.path is None or mtime == self._seen:
            return
        self._seen = mtime
        try:
            fresh = await asyncio.to_thread(Catalog.load, self.path)
        except CatalogError as exc:
            logger.error("catalog change ignored, the file is invalid: %s", exc)
            return
        self.catalog.update_from(fresh)
        logger.info("catalog reloaded: %d departments", len(fresh.departments))


class BackgroundJobs:
    def __init__(self, services: Services, node: Node) -> None:
        self.services, self.node = services, node
        self.catalog = CatalogWatch(services.catalog, services.catalog_path)
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task] = []

    def _jobs(self) -> dict[str, tuple[float, Callable[[], Awaitable[None]]]]:
        s, node = self.services, self.node
        router, supervisor = node.router, node.supervisor
        return {
            "tick": (s.tick_interval_s, node.deadlines.tick),
            "redispatch": (5.0, router.redispatch),
            "queue_updates": (0.5, router.announcer.push),
            "media_reconcile": (10.0, node.gateway.reconcile),
            "heartbeat": (s.heartbeat_interval_s, self._heartbeat),
            "sweep": (s.presence_sweep_interval_s, node.deadlines.sweep_presence),
            "dashboard": (1.0, supervisor.push_dashboard),
            "history": (15.0, supervisor.push_history),
            "revocations": (s.revocation_check_s, self._revocations),
            "catalog": (s.catalog_check_s, self.catalog.check),
            "nodes": (max(0.2, s.node_ttl_s / 5), self._beat_and_reap),
            "loop_lag": (0.0, self._sample_loop_lag),
        }

    async def lifetime(self, app: web.Application) -> AsyncIterator[None]:
        """For ``app.cleanup_ctx``: started before the app serves, stopped after."""
        await self.start()
        yield
        await self.stop()

    async def start(self) -> None:
        await self._check_durability()
        if not self.services.store.shared:  # before any client can connect
            await self.node.deadlines.recover_after_restart()
        if self.node.gateway.link is not None:
            await self.node.gateway.link.start()
        self._tasks = [asyncio.create_task(_every(interval, job, self._stopping), name=name)
                       for name, (interval, job) in self._jobs().items()]

    async def stop(self) -> None:
        self._stopping.set()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)
        s = self.services
        await self.node.verifier.close()
        if self.node.gateway.link is not None:
            await self.node.gateway.link.close()
        await s.hub.close()
        await asyncio.to_thread(s.vision.pool.close)
        await asyncio.to_thread(s.renderer.close)
        await s.store.close()

    async def _check_durability(self) -> None:
        s = self.services
        try:
            problem = await s.store.durability_problem()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            # Unreachable now: the node starts (it serves once the store is back, as in
            # any outage); its persistence could not be checked.
            problem = None
            logger.warning("the shared store is unreachable (%s): its persistence was not "
                           "checked", exc)
        if problem and s.store.shared and s.require_durable_store:
            raise NotDurable(f"{problem} (or set SMARTCOUNTER_REDIS_DURABILITY=warn to "
                             "start anyway)")
        if problem:
            logger.warning(problem)

    async def _heartbeat(self) -> None:
        await self.node.router.heartbeat(self.node.staff.local_staff())

    async def _beat_and_reap(self) -> None:
        await self.node.nodes.beat()
        await self.node.nodes.reap()

    async def _revocations(self) -> None:
        for namespace in self.node.namespaces:
            await namespace.cut_revoked(self.services.accounts)

    async def _sample_loop_lag(self) -> None:
        """One sample of how late the loop wakes a 50 ms timer."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(LAG_SAMPLE_S)
        self.services.metrics.observe_loop_lag(max(0.0, loop.time() - started - LAG_SAMPLE_S))


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
