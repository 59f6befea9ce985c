"""Answers participants' offers for connected sessions, and keeps the hub honest when a
session ends while an offer is being answered.

With several nodes, a session's media lives on one node, its *media home*: the first
node that answers an offer for it claims it in the store. An offer that reaches another
node is passed to the home node (:mod:`signaling.node_link`), whose answer comes back,
so that the browser's ICE goes straight to the home node; the release at the end of
the call goes there too."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from media.peer import MediaHub
from sessions.errors import Conflict, Unavailable
from sessions.session import Session, SessionState
from sessions.store import Store

from .metrics import Metrics
from .node_link import NodeLink, RemoteError


class MediaGateway:
    def __init__(self, hub: MediaHub, store: Store, metrics: Metrics,
                 node_id: str = "local") -> None:
        self.hub = hub
        self.store = store
        self.metrics = metrics
        self.node_id = node_id
        self.link: NodeLink | None = None  # set on a deployment of several nodes
        self._release_hooks: list[Callable[[str], Awaitable[None]]] = []
        # Sessions whose set-up time has been measured (the first time both answered).
        self._set_up: set[str] = set()

    def on_release(self, hook: Callable[[str], Awaitable[None]]) -> None:
        """Call ``hook(session_id)`` before a session's media is released (parts that
        look at the media, such as the verifier, stop first)."""
        self._release_hooks.append(hook)

    async def _home(self, session_id: str) -> str:
        """The session's media home, claimed by this node if it has none yet."""
        try:
            await self.store.put_record("media_home", session_id, {"node": self.node_id},
                                        create=True)
            return self.node_id
        except Conflict:
            record = await self.store.get_record("media_home", session_id)
            return record["node"] if record else self.node_id

    async def answer(
        self, session: Session, role: str, sdp: str, key: str | None = None, mode: str = "silent"
    ) -> dict:
        if session.state != SessionState.CONNECTED:
            raise Conflict(f"no call to connect media to: the session is {session.state}")
        if self.link is not None:
            home = await self._home(session.id)
            if home != self.node_id:
                reply = await self.link.request(home, {
                    "op": "answer", "session_id": session.id, "role": role, "sdp": sdp,
                    "key": key, "mode": mode,
                })
                return {"sdp": reply["sdp"], "type": reply["type"]}
        return await self._answer_here(session, role, sdp, key, mode)

    async def serve(self, body: dict) -> dict:
        """A request from another node (see :mod:`signaling.node_link`)."""
        if body.get("op") == "release":
            await self._release_here(body["session_id"])
            return {"ok": True}
        session = await self.store.get_session(body["session_id"])
        if session is None:
            raise Conflict("the call has ended")
        return await self._answer_here(
            session, body["role"], body["sdp"], body.get("key"), body.get("mode", "silent")
        )

    async def _answer_here(
        self, session: Session, role: str, sdp: str, key: str | None, mode: str
    ) -> dict:
        started = time.perf_counter()
        answer = await self.hub.answer(session.id, role, sdp, key, mode)
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
            raise Conflict("the call ended while its media was being set up")
        return {"sdp": answer, "type": "answer"}

    async def leave(self, session_id: str, key: str) -> None:
        """One participant (a monitoring supervisor) leaves; the call goes on."""
        media = self.hub.get(session_id)
        if media is not None:
            await media.leave(key)

    async def release(self, session_id: str) -> None:
        """The call is over: its media home releases the media."""
        if self.link is not None:
            record = await self.store.get_record("media_home", session_id)
            if record is not None and record["node"] != self.node_id:
                try:
                    await self.link.request(record["node"],
                                            {"op": "release", "session_id": session_id})
                except (RemoteError, Unavailable):
                    pass  # that node is gone: nothing of this call is left on it
                return
        await self._release_here(session_id)

    async def _release_here(self, session_id: str) -> None:
        self._set_up.discard(session_id)
        for hook in self._release_hooks:
            await hook(session_id)
        await self.hub.release(session_id)
        self.metrics.media_sessions.set(len(self.hub))
