"""Delivers the router's notifications: socket.io rooms (so, through the client manager,
to sockets on any node) and this node's media hub."""

from __future__ import annotations

import logging
from typing import Any

import socketio

from .media_gateway import MediaGateway

logger = logging.getLogger(__name__)


class SocketNotifier:
    def __init__(self, sio: socketio.AsyncServer, media: MediaGateway) -> None:
        self.sio = sio
        self.media = media

    async def to_kiosk(self, kiosk_id: str, event: str, payload: dict[str, Any]) -> None:
        await self.sio.emit(event, payload, room=f"kiosk:{kiosk_id}", namespace="/kiosk")

    async def to_staff(self, staff_id: str, event: str, payload: dict[str, Any]) -> None:
        await self.sio.emit(event, payload, room=f"staff:{staff_id}", namespace="/staff")

    async def release_media(self, session_id: str) -> None:
        """Never fails the transition that asked for it (the call is over either way);
        media left behind is released by the gateway's reconcile."""
        try:
            await self.media.release(session_id)
        except Exception:
            logger.exception("releasing the media of session %s failed", session_id)
