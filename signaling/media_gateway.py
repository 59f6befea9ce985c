"""Answers participants' offers for connected sessions, and keeps the hub honest when a
session ends while an offer is being answered.

With several nodes, a session's media lives on one node, its *media home*: the first
node that answers an offer for it claims it in the store. An offer that reaches another
node is passed to the home node (:mod:`signaling.node_link`), whose answer comes back,
so that the browser's ICE goes straight to the home node. Everything else that works
on the media (a monitor leaving, identity verification, the release at the end of the
call) is run there too, by name (:meth:`MediaGateway.at_home`).

When the home node has died (no node listens under its name), the next offer for the
session claims it for the node that received the offer (compare-and-set in the store):
the media moves, and the move is in the session's audit trail."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from media.offer_check import Network, check_offer, screen_candidates
from media.peer import MediaHub
from sessions.audit import AuditLog
from sessions.errors import Conflict, Unavailable
from sessions.session import Session, SessionState
from sessions.store import RecordStore, SessionStore

from .candidates import advertise
from .metrics import Metrics
from .node_link import NodeGone, NodeLink, RemoteError

logger = logging.getLogger(__name__)

# How long an offer waits for a home node that beats but does not listen before the
# media is taken from it (its node link subscribing again after a Redis blip).
HOME_RESUBSCRIBE_GRACE_S = 1.0

Op = Callable[[Session, dict[str, Any]], Awaitable[dict[str, Any]]]


class MediaHomeStore(SessionStore, RecordStore, Protocol):
    """Sessions, and the ``media_home`` records saying which node holds a call's media."""


class MediaGateway:
    def __init__(self, hub: MediaHub, store: MediaHomeStore, metrics: Metrics, audit: AuditLog,
                 alive: Callable[[str], Awaitable[bool]], node_id: str = "local",
                 media_address: str | None = None,
                 allowed_networks: list[Network] | None = None,
                 redis_url: str | None = None, redis_prefix: str = "sc") -> None:
        self.hub = hub
        # Where offers' ICE candidates may point (None: anywhere but loopback and
        # link-local, for peers not on this machine).
        self.allowed_networks = allowed_networks
        self.store = store
        self.metrics = metrics
        self.audit = audit
        self.alive = alive  # whether a node still beats (signaling.nodes.Liveness)
        self.node_id = node_id
        # The address browsers reach this node's media on (None: the host candidates
        # aiortc gathered).
        self.media_address = media_address
        # With Redis, several nodes: requests for sessions whose media is elsewhere.
        self.link = (NodeLink(redis_url, redis_prefix, node_id, self.serve)
                     if redis_url else None)
        self._release_hooks: list[Callable[[str], Awaitable[None]]] = []
        self._ops: dict[str, Op] = {"answer": self._answer_op, "leave": self._leave_op}
        # Sessions whose set-up time has been measured (the first time both answered).
        self._set_up: set[str] = set()

    def on_release(self, hook: Callable[[str], Awaitable[None]]) -> None:
        """Call ``hook(session_id)`` before a session's media is released (parts that
        look at the media, such as the verifier, stop first)."""
        self._release_hooks.append(hook)

    def add_op(self, name: str, op: Op) -> None:
        """``op(session, body)`` runs on the session's media home (see :meth:`at_home`)."""
        self._ops[name] = op

    async def _home(self, session_id: str) -> str | None:
        """The node recorded as the session's media home, if any."""
        record = await self.store.get_record("media_home", session_id)
        return record["node"] if record else None

    async def _claim(self, session_id: str) -> str:
        """The session's media home, claimed by this node if it has none yet."""
        try:
            await self.store.put_record("media_home", session_id, {"node": self.node_id},
                                        create=True)
            return self.node_id
        except Conflict:
            return await self._home(session_id) or self.node_id

    async def _take_over(self, session_id: str, dead: str) -> str:
        """The home node is gone: this node becomes the home, unless another node has
        just done so (then that one is the home)."""
        try:
            await self.store.put_record("media_home", session_id, {"node": self.node_id},
                                        expect={"node": [dead]})
        except Conflict:
            return await self._home(session_id) or self.node_id
        logger.warning("media of session %s moves from node %s (gone) to node %s",
                       session_id, dead, self.node_id)
        await self.audit.append(session_id, "media.moved",
                                {"from_node": dead, "to_node": self.node_id})
        return self.node_id

    async def at_home(self, session: Session, op: str, body: dict[str, Any],
                      claim: bool = False, take_over: bool = False) -> dict[str, Any]:
        """Run ``op`` on the session's media home: here, or on the node that holds it
        (over the node link). With ``claim``, a session without a home gets this node
        as its home; with ``take_over`` too (the call's own participants offering),
        so does one whose home is gone."""
        if self.link is None:
            return await self._ops[op](session, body)
        if claim:
            home = await self._claim(session.id)
        else:
            home = await self._home(session.id) or self.node_id
        waited = False
        for _ in range(4):
            if take_over and home != self.node_id and not await self.alive(home):
                # Silent past its TTL (a machine that vanished without closing its
                # connections still looks subscribed): do not wait for it to answer.
                home = await self._take_over(session.id, home)
            if home == self.node_id:
                return await self._ops[op](session, body)
            try:
                return await self.link.request(
                    home, {**body, "op": op, "session_id": session.id})
            except NodeGone:
                if not take_over:
                    raise
                if not waited and await self.alive(home):
                    # Beating but not listening: its link may be subscribing again after
                    # a blip of Redis. Give it a moment before taking its calls.
                    waited = True
                    await asyncio.sleep(HOME_RESUBSCRIBE_GRACE_S)
                    continue
                home = await self._take_over(session.id, home)
        raise Unavailable("the call's media is moving between nodes; try again")

    async def reconcile(self) -> None:
        """Release media this node holds for calls that are over, or whose home has
        moved to another node (taken over while this node could not be reached): a
        release that could not reach this node must not leave the media running."""
        for session_id in self.hub.session_ids():
            session = await self.store.get_session(session_id)
            home = await self._home(session_id) if self.link is not None else None
            if (session is None or session.state != SessionState.CONNECTED
                    or home not in (None, self.node_id)):
                logger.info("releasing stale media of session %s here", session_id)
                await self._release_here(session_id)

    async def serve(self, body: dict) -> dict:
        """A request from another node (see :mod:`signaling.node_link`)."""
        if body.get("op") == "release":
            await self._release_here(body["session_id"])
            return {"ok": True}
        op = self._ops.get(body.get("op", ""))
        if op is None:
            raise Conflict(f"unknown operation {body.get('op')!r}")
        session = await self.store.get_session(body["session_id"])
        if session is None:
            raise Conflict("the call has ended")
        return await op(session, body)

    async def answer(
        self, session: Session, role: str, sdp: str, key: str | None = None,
        mode: str = "silent", peer: str | None = None,
    ) -> dict:
        """``peer``: the address the offer came from (its loopback candidates are kept
        only when it is this machine)."""
        if session.state != SessionState.CONNECTED:
            raise Conflict(f"no call to connect media to: the session is {session.state}")
        check_offer(sdp)  # before aiortc builds anything for it, here or on the home node
        sdp = screen_candidates(sdp, _is_loopback(peer), self.allowed_networks)
        reply = await self.at_home(
            session, "answer", {"role": role, "sdp": sdp, "key": key, "mode": mode},
            claim=True, take_over=role in ("kiosk", "staff"),
        )
        return {"sdp": reply["sdp"], "type": reply["type"]}

    async def _answer_op(self, session: Session, body: dict[str, Any]) -> dict[str, Any]:
        role, key, mode = body["role"], body.get("key"), body.get("mode", "silent")
        started = time.perf_counter()
        answer = await self.hub.answer(session.id, role, body["sdp"], key, mode)
        if self.media_address:
            answer = advertise(answer, self.media_address)
        self.metrics.rtc_answer_seconds.observe(time.perf_counter() - started)
        media = self.hub.get(session.id)
        if (
            role in ("kiosk", "staff") and media is not None and session.answered_at
            and {"kiosk", "staff"} <= {p.role for p in media.participants.values()}
            and session.id not in self._set_up
        ):
            self._set_up.add(session.id)
            self.metrics.call_setup_seconds.observe(time.time() - session.answered_at)
        self.metrics.media_sessions.set(len(self.hub))
        after = await self.store.get_session(session.id)
        if after is None or after.state != SessionState.CONNECTED:
            await self._release_here(session.id)
            if self.link is not None:  # claimed after the release removed the record
                await self.store.delete_record("media_home", session.id)
            raise Conflict("the call ended while its media was being set up")
        return {"sdp": answer, "type": "answer"}

    async def leave(self, session_id: str, key: str) -> None:
        """One participant (a monitoring supervisor) leaves; the call goes on."""
        session = await self.store.get_session(session_id)
        if session is None:
            return
        try:
            await self.at_home(session, "leave", {"key": key})
        except NodeGone:
            pass  # nothing of this call is left on that node

    async def _leave_op(self, session: Session, body: dict[str, Any]) -> dict[str, Any]:
        media = self.hub.get(session.id)
        if media is not None:
            await media.leave(body["key"])
        return {"ok": True}

    async def release(self, session_id: str) -> None:
        """The call is over: its media home releases the media, and the home record
        goes (an offer arriving later finds the call ended)."""
        if self.link is not None:
            home = await self._home(session_id)
            if home not in (None, self.node_id):
                try:
                    await self.link.request(home,
                                            {"op": "release", "session_id": session_id})
                except (RemoteError, Unavailable):
                    pass  # that node is gone: nothing of this call is left on it
            else:
                await self._release_here(session_id)
            await self.store.delete_record("media_home", session_id)
            return
        await self._release_here(session_id)

    async def _release_here(self, session_id: str) -> None:
        self._set_up.discard(session_id)
        for hook in self._release_hooks:
            await hook(session_id)
        await self.hub.release(session_id)
        self.metrics.media_sessions.set(len(self.hub))


def _is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
