"""Typed application keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from .drain import Drain
    from .node import Node
    from .services import Services

SERVICES: web.AppKey[Services] = web.AppKey("services")
# What create_app composed from them (router, namespaces, gateway...).
NODE: web.AppKey[Node] = web.AppKey("node")
# ``await app[DRAIN]()`` before stopping the app (signaling.drain).
DRAIN: web.AppKey[Drain] = web.AppKey("drain")
