"""Delivers the router's notifications: socket.io rooms (so, through the client manager,
to sockets on any node) and this node's media hub."""

from __future__ import annotations

from typing import Any

import socketio

from .media_gateway import MediaGateway


class SocketNotifier:
    def __init__(self, sio: socketio.AsyncServer, media: MediaGateway) -> None:
        self.sio = sio
        self.media = media

    async def to_kiosk(self, kiosk_id: str, event: str, payload: dict[str, Any]) -> None:
        await self.sio.emit(event, payload, room=f"kiosk:{kiosk_id}", namespace="/kiosk")

    async def to_staff(self, staff_id: str, event: str, payload: dict[str, Any]) -> None:
        await self.sio.emit(event, payload, room=f"staff:{staff_id}", namespace="/staff")

    async def release_media(self, session_id: str) -> None:
        await self.media.release(session_id)
