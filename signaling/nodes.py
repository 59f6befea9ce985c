"""The nodes of a deployment, as the store sees them: each node beats several times a
``ttl_s`` (its ``seen`` time and the media address it advertises), and one whose beat
is older than ``ttl_s`` is dead. The first node to drop a dead node from
the store recovers its work:

- kiosks whose socket was on it get their grace period (``kiosk.lost``), as if their
  socket had dropped: they come back to another node with ``call.resume``, or their
  session ends when the grace period is over;
- staff whose socket was on it are treated as disconnected (``staff.lost`` during a
  call: the staff member has the grace period to come back).

A session's media is moved by :class:`signaling.media_gateway.MediaGateway`, without
waiting for the beat to expire: the first offer for a session whose home no longer
listens claims the session for the node that received it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from sessions.presence import PresenceState
from sessions.router import CallRouter
from sessions.store import Store

logger = logging.getLogger(__name__)


class Liveness:
    """Whether a node still beats: its beat in the store within ``ttl_s`` (this node
    always does). Apart from the registry, which recovers dead nodes' work, for the media
    gateway, which only asks."""

    def __init__(self, store: Store, node_id: str, ttl_s: float = 15.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store, self.node_id, self.ttl_s, self.clock = store, node_id, ttl_s, clock

    async def alive(self, node_id: str) -> bool:
        if node_id == self.node_id:
            return True
        info = (await self.store.nodes()).get(node_id)
        return info is not None and info.get("seen", 0) >= self.clock() - self.ttl_s


class NodeRegistry:
    def __init__(self, router: CallRouter, liveness: Liveness,
                 media_address: str | None = None) -> None:
        self.router = router
        self.liveness = liveness
        self.store = liveness.store
        self.node_id = liveness.node_id
        self.media_address = media_address
        self.ttl_s = liveness.ttl_s
        self.clock = liveness.clock
        # Since when every beat of this node has reached the store: a node that could
        # not beat itself (Redis was down) must not judge the others' beats.
        self._beating_since: float | None = None
        self._on_revived: list[Callable[[], Awaitable[None]]] = []
        self._left = False
        self._beaten = False  # once registered, a beat that registers anew was dropped

    def on_revived(self, hook: Callable[[], Awaitable[None]]) -> None:
        """Call ``hook()`` when this node finds it was taken for dead (its sockets'
        sessions were put on their grace period): the hook claims them back."""
        self._on_revived.append(hook)

    async def beat(self) -> None:
        if self._left:
            return
        now = self.clock()
        try:
            new = await self.store.beat_node(self.node_id, {
                "seen": now, "media_address": self.media_address,
            })
        except Exception:
            self._beating_since = None
            raise
        if self._beating_since is None:
            self._beating_since = now
        if new and self._beaten:
            logger.error("node %s was taken for dead by another node; claiming its "
                         "sockets back", self.node_id)
            for hook in self._on_revived:
                try:
                    await hook()
                except Exception:
                    logger.exception("claiming sockets back failed")
        self._beaten = True

    async def alive(self, node_id: str) -> bool:
        return await self.liveness.alive(node_id)

    async def leave(self) -> None:
        """This node stops (gracefully): nothing of it is left to recover."""
        self._left = True
        await self.store.drop_node(self.node_id)

    async def socket_is_here(self, role: str, principal_id: str) -> bool:
        """Whether the kiosk's or staff member's latest socket is on this node (one that
        has moved to another node must not be taken offline by its old socket)."""
        return await self._socket_on(role, principal_id, self.node_id)

    async def socket_here(self, role: str, principal_id: str) -> None:
        """Note that the kiosk's or staff member's socket is on this node (the last
        connection wins), for recovery if this node dies."""
        await self.store.put_record("socket", f"{role}:{principal_id}", {"node": self.node_id})

    async def _socket_on(self, role: str, principal_id: str, node_id: str) -> bool:
        record = await self.store.get_record("socket", f"{role}:{principal_id}")
        return record is not None and record["node"] == node_id

    async def reap(self) -> None:
        """Recover every node whose beat has expired (one node wins each)."""
        now = self.clock()
        if self._left or self._beating_since is None or now - self._beating_since < self.ttl_s:
            return
        cutoff = now - self.ttl_s
        for node_id, info in (await self.store.nodes()).items():
            if node_id == self.node_id or info.get("seen", 0) >= cutoff:
                continue
            if await self.store.drop_node(node_id, seen_before=cutoff):
                logger.warning("node %s stopped beating %.0f s ago; recovering its sessions",
                               node_id, self.clock() - info.get("seen", 0))
                try:
                    await self.recover(node_id)
                except Exception:
                    # Put it back: the next round (here or on another node) recovers it.
                    await self.store.beat_node(node_id, info)
                    raise

    async def recover(self, dead: str) -> None:
        for session in await self.store.live_sessions():
            if (session.kiosk_lost_at is None
                    and await self._socket_on("kiosk", session.kiosk_id, dead)):
                await self.router.kiosk_offline(session.kiosk_id, session.id)
        for presence in await self.store.list_presence():
            if (presence.state != PresenceState.OFFLINE
                    and await self._socket_on("staff", presence.staff_id, dead)):
                await self.router.staff_offline(presence.staff_id)
