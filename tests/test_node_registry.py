"""Nodes beating in the store, on both stores, with a controlled clock: a silent node is
recovered by exactly one survivor, never by a node that could not beat itself, and a node
wrongly taken for dead claims its sockets back."""

from __future__ import annotations

import pytest

from sessions.audit import AuditLog
from sessions.catalog import Catalog
from sessions.router import CallRouter
from signaling.nodes import Liveness, NodeRegistry
from tests.helpers import K1, K2, TAX_A, TAX_B, Clock, RecordingNotifier, online_available

TTL = 10.0


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def router(store, tmp_path, clock):
    return CallRouter(store, Catalog.default(), AuditLog(tmp_path / "audit", clock),
                      RecordingNotifier(), clock=clock)


async def a_call_and_a_caller(router, clock):
    """k1 in a call with alice; k2 queued, then offered to bob (ringing)."""
    await online_available(router, clock, TAX_A)
    call, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.accept(TAX_A, call.id)
    waiting, _, _ = await router.request_call(K2, "tax-enquiry", "en")
    await online_available(router, clock, TAX_B)
    return call, waiting


async def test_the_kiosks_and_staff_of_a_dead_node_get_their_grace_period(
    router, clock, store
):
    a = NodeRegistry(router, Liveness(store, "a", TTL, clock))
    b = NodeRegistry(router, Liveness(store, "b", TTL, clock), "192.0.2.9")
    call, waiting = await a_call_and_a_caller(router, clock)
    for role, who in (("kiosk", "k1"), ("kiosk", "k2"), ("staff", "alice")):
        await a.socket_here(role, who)
    await b.socket_here("staff", "bob")
    await a.beat()
    await b.beat()
    assert (await store.nodes())["b"]["media_address"] == "192.0.2.9"

    clock.advance(TTL - 1)
    await b.beat()
    await b.reap()  # b has not beaten for a whole TTL itself yet: it judges no one
    clock.advance(2)
    await b.beat()
    await b.reap()  # a has been silent for more than the TTL
    assert list(await store.nodes()) == ["b"]

    assert (await store.get_session(call.id)).kiosk_lost_at == clock.now
    assert (await store.get_session(call.id)).staff_lost_at == clock.now  # alice, in it
    assert (await store.get_session(waiting.id)).kiosk_lost_at == clock.now
    # Bob (on b) was ringing for k2, now away: the offer ends, k2 keeps its place, and
    # bob stays available rather than being set away for a call no one would answer.
    assert (await store.get_session(waiting.id)).state == "queued"
    assert (await store.get_presence("bob")).state == "available"
    types = [e["type"] for e in await router.audit.read(call.id)]
    assert types[-2:] == ["kiosk.lost", "staff.lost"]

    # Once only: another survivor finds nothing left to recover.
    c = NodeRegistry(router, Liveness(store, "c", TTL, clock))
    await c.beat()
    clock.advance(TTL + 1)
    await c.beat()
    await c.reap()
    assert [e["type"] for e in await router.audit.read(call.id)] == types


async def test_a_node_taken_for_dead_claims_its_sockets_back(router, clock, store):
    a = NodeRegistry(router, Liveness(store, "a", TTL, clock))
    call, _ = await a_call_and_a_caller(router, clock)
    await a.socket_here("kiosk", "k1")
    await a.beat()
    claimed = []

    async def claim_back() -> None:
        claimed.append(clock.now)
        await router.resume_kiosk("k1", call.id)

    a.on_revived(claim_back)
    clock.advance(TTL + 1)
    await a.beat()
    assert claimed == []  # still known: nothing to claim
    await store.drop_node("a")  # another node took it for dead (a long pause, say)
    await router.kiosk_offline("k1", call.id)
    await a.beat()
    assert claimed == [clock.now]
    assert (await store.get_session(call.id)).kiosk_lost_at is None
    assert "a" in await store.nodes()


async def test_a_node_that_left_neither_beats_nor_reaps(router, clock, store):
    a = NodeRegistry(router, Liveness(store, "a", TTL, clock))
    b = NodeRegistry(router, Liveness(store, "b", TTL, clock))
    await a.beat()
    await b.beat()
    await a.leave()
    clock.advance(TTL + 1)
    await a.beat()
    await a.reap()
    assert list(await store.nodes()) == ["b"]
