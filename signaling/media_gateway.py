"""Answers participants' offers for connected sessions, and keeps the hub honest when a
session ends while an offer is being answered."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from media.peer import MediaHub
from sessions.errors import Conflict
from sessions.session import Session, SessionState
from sessions.store import Store

from .metrics import Metrics


class MediaGateway:
    def __init__(self, hub: MediaHub, store: Store, metrics: Metrics) -> None:
        self.hub = hub
        self.store = store
        self.metrics = metrics
        self._release_hooks: list[Callable[[str], Awaitable[None]]] = []
        # Sessions whose set-up time has been measured (the first time both answered).
        self._set_up: set[str] = set()

    def on_release(self, hook: Callable[[str], Awaitable[None]]) -> None:
        """Call ``hook(session_id)`` before a session's media is released (parts that
        look at the media, such as the verifier, stop first)."""
        self._release_hooks.append(hook)

    async def answer(
        self, session: Session, role: str, sdp: str, key: str | None = None, mode: str = "silent"
    ) -> dict:
        if session.state != SessionState.CONNECTED:
            raise Conflict(f"no call to connect media to: the session is {session.state}")
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
            await self.release(session.id)
            raise Conflict("the call ended while its media was being set up")
        return {"sdp": answer, "type": "answer"}

    async def leave(self, session_id: str, key: str) -> None:
        """One participant (a monitoring supervisor) leaves; the call goes on."""
        media = self.hub.get(session_id)
        if media is not None:
            await media.leave(key)

    async def release(self, session_id: str) -> None:
        self._set_up.discard(session_id)
        for hook in self._release_hooks:
            await hook(session_id)
        await self.hub.release(session_id)
        self.metrics.media_sessions.set(len(self.hub))
