"""Property-based fuzzing of every socket event: whatever the payload, the server
answers an ack of the documented shape with a documented code, and the connection stays
up. (The HTTP API is fuzzed by schemathesis, tests/test_openapi.py.)

The server and its clients live on an event loop in a background thread, so that
hypothesis can drive them from ordinary (synchronous) test functions."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.errors import CODES
from tests.harness import Client, running_server
from tests.helpers import open_call

EVENTS = {
    "/kiosk": {
        "call.request": ["service_id", "language"],
        "call.cancel": ["session_id"],
        "call.hangup": ["session_id"],
        "call.resume": ["session_id"],
        "rtc.offer": ["session_id", "sdp", "type"],
        "signature.submit": ["request_id", "png_base64", "strokes"],
        "print.done": ["job_id", "status"],
    },
    "/staff": {
        "presence.get": [],
        "presence.set": ["state"],
        "call.accept": ["session_id"],
        "call.decline": ["session_id"],
        "call.hangup": ["session_id"],
        "wrapup.done": [],
        "rtc.offer": ["session_id", "sdp", "type"],
        "verification.start": ["session_id", "id_document_id"],
        "verification.challenge": ["session_id", "challenge"],
        "document.annotate": ["session_id", "document_id", "page", "shapes"],
        "document.request_rescan": ["session_id", "document_id", "reason"],
        "signature.request": ["session_id", "document_id", "title"],
        "case.submit": ["session_id"],
        "case.decide": ["receipt_no", "decision", "reason", "result_document_ids"],
        "print.send": ["session_id", "document_id"],
    },
    "/supervisor": {
        "dashboard.subscribe": [],
        "monitor.start": ["session_id", "mode"],
        "monitor.stop": ["session_id"],
        "rtc.offer": ["session_id", "sdp", "type", "purpose"],
        "call.reassign": ["session_id", "staff_id", "department_id"],
    },
}

scalars = (st.none() | st.booleans() | st.integers(-2**40, 2**40)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40))
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12,
)


def unlimited(settings) -> None:
    settings.events_per_minute = 1e9  # fuzzing sends far more than any client would


class World:
    """A server with a live call, on a loop of its own thread."""

    def __init__(self, data_dir: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.stop: asyncio.Event | None = None
        self.clients: dict[str, Client] = {}
        self.known: dict[str, str] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(data_dir,), daemon=True)

    def _run(self, data_dir: Path) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._main(data_dir))

    async def _main(self, data_dir: Path) -> None:
        self.stop = asyncio.Event()
        try:
            async with running_server(data_dir, configure=unlimited) as server, \
                    contextlib.AsyncExitStack() as stack:
                kiosk, staff, sid = await open_call(server, stack)
                sup = Client("/supervisor")
                stack.push_async_callback(sup.close)
                await sup.connect(server.url, await server.login("sup"))
                self.clients = {"/kiosk": kiosk, "/staff": staff, "/supervisor": sup}
                self.known = {"session_id": sid, "service_id": "tax-enquiry"}
                self.ready.set()
                await self.stop.wait()
        except BaseException as exc:  # reported to the test thread
            self.error = exc
            self.ready.set()

    def call(self, namespace: str, event: str, payload) -> dict:
        future = asyncio.run_coroutine_threadsafe(
            self.clients[namespace].call(event, payload, timeout=20), self.loop
        )
        return future.result(timeout=30)

    def connected(self, namespace: str) -> bool:
        return self.clients[namespace].sio.connected

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Iterator[World]:
    w = World(tmp_path_factory.mktemp("fuzz"))
    w.thread.start()
    assert w.ready.wait(timeout=60), "the server did not start"
    if w.error:
        raise w.error
    yield w
    w.close()


def payloads(fields: list[str], known: dict[str, str]):
    """Arbitrary JSON, or objects with the event's own field names (and sometimes the
    live session's real ids) holding arbitrary values: the second reach past the
    validation into the handlers."""
    field_value = {
        name: (st.sampled_from([known[name]]) | json_values) if name in known else json_values
        for name in fields
    }
    shaped = st.fixed_dictionaries({}, optional=field_value)
    return json_values | shaped


def check(ack) -> None:
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), ack
    if not ack["ok"]:
        error = ack["error"]
        assert error["code"] in CODES and isinstance(error["message"], str), ack
        # "internal" is documented, but it means a handler failed: a bug, not an answer.
        assert error["code"] != "internal", ack


FUZZ = settings(max_examples=25, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@pytest.mark.parametrize(
    "namespace,event",
    [(ns, ev) for ns, events in EVENTS.items() for ev in events],
    ids=lambda v: v,
)
def test_every_event_survives_arbitrary_payloads(world, namespace, event):
    fields = EVENTS[namespace][event]

    @FUZZ
    @given(payload=payloads(fields, world.known))
    def fuzz(payload) -> None:
        check(world.call(namespace, event, payload))
        assert world.connected(namespace)

    fuzz()
    assert world.error is None


def test_unknown_events_are_refused_clearly(world):
    for namespace in EVENTS:
        ack = world.call(namespace, "no.such.event", {})
        assert ack["ok"] is False and ack["error"]["code"] == "bad_request"
        assert world.connected(namespace)
