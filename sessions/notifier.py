"""What the domain needs to tell people: a protocol the socket layer implements
(``signaling.notifier.SocketNotifier``), so that ``sessions/`` and the services built on
it never import socket.io."""

from __future__ import annotations

from typing import Any, Protocol


class Notifier(Protocol):
    async def to_kiosk(self, kiosk_id: str, event: str, payload: dict[str, Any]) -> None: ...

    async def to_staff(self, staff_id: str, event: str, payload: dict[str, Any]) -> None: ...

    async def release_media(self, session_id: str) -> None: ...
