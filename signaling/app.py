"""The aiohttp application of one node: the services composed into a :class:`Node`,
routes and middlewares, the background jobs and the drain, each in its own module."""

from __future__ import annotations

from collections.abc import Callable

import socketio
from aiohttp import web

from document_share.desk import CaseDesk
from media.vision.verifier import Verifier
from sessions.deadlines import Deadlines
from sessions.notifier import Notifier
from sessions.reassignment import Reassignment
from sessions.router import CallRouter

from .drain import Drain
from .http_api import add_routes
from .http_common import api_errors_as_json
from .jobs import BackgroundJobs
from .keys import DRAIN, NODE, SERVICES
from .kiosk_namespace import KioskNamespace
from .login_guard import LoginGuard
from .media_gateway import MediaGateway
from .metrics import CallCollector, ForwardingCollector, VerificationCollector
from .node import Node
from .nodes import Liveness, NodeRegistry
from .notifier import SocketNotifier
from .security_headers import identify, security_headers
from .services import Services
from .signed_urls import signed_url
from .staff_namespace import StaffNamespace
from .supervisor_namespace import SupervisorNamespace


def create_app(services: Services,
               make_router: Callable[[Notifier], CallRouter]) -> web.Application:
    """``make_router(notifier)`` builds the router once the socket server exists."""
    node = compose(services, make_router)
    services.metrics.registry.register(ForwardingCollector(services.hub.consumers))
    services.metrics.registry.register(VerificationCollector(node.verifier))
    services.metrics.registry.register(CallCollector(node.router))
    app = web.Application(
        client_max_size=1024 * 1024, middlewares=[security_headers, api_errors_as_json]
    )
    app.on_response_prepare.append(identify)
    app[SERVICES] = services
    app[NODE] = node
    node.sio.attach(app)
    add_routes(app)
    app[DRAIN] = Drain(node, shared=services.redis_url is not None,
                       timeout_s=services.drain_timeout_s)
    app.cleanup_ctx.append(BackgroundJobs(services, node).lifetime)
    app.on_shutdown.append(lambda app: node.disconnect_sockets())
    return app


def compose(services: Services, make_router: Callable[[Notifier], CallRouter]) -> Node:
    """The node's parts, each given what it works with when it is made."""
    s = services
    sio = socketio.AsyncServer(
        async_mode="aiohttp",
        max_http_buffer_size=256 * 1024,
        # With Redis, socket.io's Redis manager carries every emit to the node holding
        # the socket: the router on one node reaches a console connected to another.
        client_manager=(socketio.AsyncRedisManager(s.redis_url, channel=f"{s.redis_prefix}:sio")
                        if s.redis_url else None),
        # One event of a socket at a time, in order, read only when the last is answered:
        # a client sending faster than it is answered waits in TCP (its own buffers), not
        # in a task per message here (see BaseNamespace._refuse_at_the_limits_pace).
        async_handlers=False,
    )
    liveness = Liveness(s.store, s.node_id, s.node_ttl_s)
    gateway = MediaGateway(s.hub, s.store, s.metrics, s.audit, liveness.alive, s.node_id,
                           s.media_address, s.ice_allowed_networks,
                           redis_url=s.redis_url, redis_prefix=s.redis_prefix)
    notifier = SocketNotifier(sio, gateway)
    router = make_router(notifier)
    nodes = NodeRegistry(router, liveness, s.media_address)
    vision = s.vision
    verifier = Verifier(s.hub, s.store, notifier, router.record, vision.policy, vision.pool,
                        vision.analyzer, vision.problem)
    gateway.on_release(verifier.stop)
    desk = CaseDesk(s.store, router.record, notifier, s.blobs,
                    lambda kind, item_id: signed_url(s.signer, kind, item_id))
    kiosk = KioskNamespace(router, s.accounts, gateway, s.metrics, desk, nodes,
                           events_per_minute=s.events_per_minute,
                           token_ttl_s=s.kiosk_token_ttl_s)
    staff = StaffNamespace(router, s.store, s.accounts, s.tokens, gateway, s.metrics,
                           verifier, s.blobs, desk, nodes,
                           events_per_minute=s.events_per_minute)
    reassignment = Reassignment(router)
    supervisor = SupervisorNamespace(router, reassignment, s.store, s.catalog, s.accounts,
                                     s.tokens, gateway, s.metrics, s.dashboard,
                                     events_per_minute=s.events_per_minute)
    for namespace in (kiosk, staff, supervisor):
        sio.register_namespace(namespace)

    async def claim_back() -> None:
        await kiosk.claim_back()
        await staff.claim_back()

    nodes.on_revived(claim_back)
    return Node(sio, gateway, notifier, router, Deadlines(router), reassignment, nodes, verifier,
                desk, LoginGuard(s.store, s.login_policy), kiosk, staff, supervisor)
