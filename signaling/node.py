"""What :func:`signaling.app.create_app` composes from the services: the socket server,
the media gateway, the router and the parts built on them, each given its collaborators
in its constructor. Kept in the app under :data:`signaling.keys.NODE`."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

import socketio

from document_share.desk import CaseDesk
from media.vision.verifier import Verifier
from sessions.deadlines import Deadlines
from sessions.notifier import Notifier
from sessions.reassignment import Reassignment
from sessions.router import CallRouter

from .kiosk_namespace import KioskNamespace
from .login_guard import LoginGuard
from .media_gateway import MediaGateway
from .nodes import NodeRegistry
from .staff_namespace import StaffNamespace
from .supervisor_namespace import SupervisorNamespace


@dataclass(frozen=True)
class Node:
    sio: socketio.AsyncServer
    gateway: MediaGateway
    notifier: Notifier
    router: CallRouter
    deadlines: Deadlines
    reassignment: Reassignment
    nodes: NodeRegistry
    verifier: Verifier
    desk: CaseDesk
    login_guard: LoginGuard
    kiosk: KioskNamespace
    staff: StaffNamespace
    supervisor: SupervisorNamespace

    @property
    def namespaces(self) -> tuple[KioskNamespace, StaffNamespace, SupervisorNamespace]:
        return self.kiosk, self.staff, self.supervisor

    async def disconnect_sockets(self) -> None:
        """Close every client before the app stops, or aiohttp waits for their
        websockets to time out. Both steps are bounded: engine.io's socket close waits
        for its send queue to drain, which never happens for a socket whose peer has
        just gone, and its shutdown awaits the ping task, which may be stuck closing
        such a socket."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.eio.disconnect(), timeout=1)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.sio.shutdown(), timeout=1)
