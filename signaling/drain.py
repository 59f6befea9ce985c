"""A graceful stop (SIGTERM): before the app stops, while it still serves, the node
takes no new calls, hands its queue work over and lets the calls in progress end."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .node import Node

logger = logging.getLogger(__name__)

POLL_S = 0.5  # calls end on their own: nothing to wait on but their count


class Drain:
    def __init__(self, node: Node, shared: bool, timeout_s: float = 60.0) -> None:
        self.node = node
        self.shared = shared  # other nodes (a shared store) may take the queue's work
        self.timeout_s = timeout_s
        # Set once draining: /readyz answers 503 so that load balancers send no one new.
        self.draining = False

    async def __call__(self) -> None:
        """Kiosks waiting and staff not in a call are sent to reconnect to another node
        (the queue itself is in the shared store); the calls in progress here get up to
        ``timeout_s`` to end; then the node leaves the registry, so that no other node
        needs to recover it."""
        kiosk, staff = self.node.kiosk, self.node.staff
        kiosk.draining = self.draining = True
        if self.shared:
            await kiosk.hand_over()
            await staff.hand_over()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout_s
        calls = await kiosk.calls_in_progress()
        if calls:
            logger.info("shutting down: waiting up to %.0f s for %d call(s) to end",
                        self.timeout_s, len(calls))
        while calls and loop.time() < deadline:
            await asyncio.sleep(POLL_S)
            calls = await kiosk.calls_in_progress()
        if calls:
            logger.warning("shutting down with %d call(s) still going", len(calls))
        with contextlib.suppress(Exception):
            await self.node.nodes.leave()
