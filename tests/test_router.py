"""Routing rules with several kiosks and staff, on both stores, with a controlled clock."""

from __future__ import annotations

import pytest

from sessions.audit import AuditLog, verify_chain
from sessions.catalog import Catalog
from sessions.deadlines import Deadlines
from sessions.errors import BadRequest, Conflict, Forbidden, NotFound
from sessions.reassignment import Reassignment
from sessions.router import CallRouter, RoutingConfig, Staff
from tests.helpers import K1, K2, K3, TAX_A, TAX_B, Clock, RecordingNotifier, online_available

HOUSING = Staff("hana", "Hana", ("housing",))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def notifier():
    return RecordingNotifier()


@pytest.fixture
def router(store, tmp_path, clock, notifier):
    config = RoutingConfig(offer_timeout_s=20, staff_lost_grace_s=15, kiosk_lost_grace_s=15)
    return CallRouter(
        store, Catalog.default(), AuditLog(tmp_path / "audit", clock), notifier, config, clock
    )


@pytest.fixture
def deadlines(router):
    return Deadlines(router)


@pytest.fixture
def reassignment(router):
    return Reassignment(router)


async def test_offer_goes_to_longest_idle_staff_of_the_department(router, clock, notifier):
    await online_available(router, clock, HOUSING, TAX_B, TAX_A)  # bob idle longer than alice
    session, position, _ = await router.request_call(K1, "tax-enquiry", "en")
    assert session.state == "ringing" and session.offered_to == "bob"
    assert position == 0
    offers = notifier.of("staff", "bob", "call.offer")
    assert offers[0]["session_id"] == session.id and offers[0]["department_id"] == "tax"
    assert offers[0]["kiosk"] == {"id": "k1", "site": "Kwun Tong"}
    assert notifier.of("staff", "hana", "call.offer") == []
    assert notifier.of("staff", "alice", "call.offer") == []


async def test_department_isolation_and_forbidden_accept(router, clock, notifier):
    await online_available(router, clock, HOUSING)
    session, position, eta = await router.request_call(K1, "tax-enquiry", "en")
    assert session.state == "queued" and position == 1 and eta > 0
    assert notifier.of("staff", "hana", "call.offer") == []
    with pytest.raises(Forbidden):
        await router.accept(HOUSING, session.id)


async def test_accept_connects_both_sides(router, clock, notifier):
    await online_available(router, clock, TAX_A)
    session, _, _ = await router.request_call(K1, "tax-registration", "zh-Hant")
    connected = await router.accept(TAX_A, session.id)
    assert connected.state == "connected" and connected.staff_id == "alice"
    assert notifier.of("kiosk", "k1", "call.connected")[0]["staff"] == {
        "display_name": "Alice",
        "department_id": "tax",
    }
    assert (await router.store.get_presence("alice")).state == "busy"
    with pytest.raises(Conflict):
        await router.accept(TAX_A, session.id)


async def test_offer_timeout_moves_to_next_staff_and_sets_first_away(
    router, clock, notifier, deadlines
):
    await online_available(router, clock, TAX_A, TAX_B)
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    assert (await router.store.get_session(session.id)).offered_to == "alice"
    clock.advance(19.9)
    await deadlines.tick()
    assert (await router.store.get_session(session.id)).offered_to == "alice"
    clock.advance(0.2)
    await deadlines.tick()
    after = await router.store.get_session(session.id)
    assert after.state == "ringing" and after.offered_to == "bob"
    first_offer = notifier.of("staff", "alice", "call.offer")[0]
    assert notifier.of("staff", "alice", "call.offer_revoked") == [
        {"session_id": session.id, "offer_id": first_offer["offer_id"], "reason": "timeout"}
    ]
    # Each offer has its own id: a revocation names the one it ends.
    assert notifier.of("staff", "bob", "call.offer")[0]["offer_id"] != first_offer["offer_id"]
    assert (await router.store.get_presence("alice")).state == "away"
    with pytest.raises(Conflict):
        await router.accept(TAX_A, session.id)
    assert (await router.accept(TAX_B, session.id)).state == "connected"


async def test_decline_moves_to_next_staff_and_keeps_decliner_available(router, clock, notifier):
    await online_available(router, clock, TAX_A, TAX_B)
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.decline(TAX_A, session.id)
    after = await router.store.get_session(session.id)
    assert after.offered_to == "bob" and after.declined_by == ["alice"]
    assert (await router.store.get_presence("alice")).state == "available"
    # Alice is not offered the caller she declined, even once Bob declines too.
    await router.decline(TAX_B, session.id)
    after = await router.store.get_session(session.id)
    assert after.state == "queued" and after.declined_by == ["alice", "bob"]
    # A new caller is offered to Alice (longest idle) while the first keeps waiting.
    second, _, _ = await router.request_call(K2, "tax-enquiry", "en")
    assert (await router.store.get_session(second.id)).offered_to == "alice"


async def test_cancel_while_queued_updates_positions(router, clock, notifier):
    first, p1, _ = await router.request_call(K1, "tax-enquiry", "en")
    clock.advance(1)
    second, p2, _ = await router.request_call(K2, "tax-enquiry", "en")
    assert (p1, p2) == (1, 2)
    await router.cancel("k1", first.id)
    assert (await router.store.get_session(first.id)).state == "abandoned"
    assert notifier.of("kiosk", "k2", "queue.update") == []  # told at the next round
    await router.announcer.push()
    updates = notifier.of("kiosk", "k2", "queue.update")
    assert updates == [{"session_id": second.id, "position": 1, "eta_s": 240}]
    await router.announcer.push()  # nothing changed since: nothing sent
    assert len(notifier.of("kiosk", "k2", "queue.update")) == 1
    with pytest.raises(Forbidden):
        await router.cancel("k1", second.id)
    with pytest.raises(Conflict):
        await router.cancel("k1", first.id)


async def test_cancel_while_ringing_revokes_offer(router, clock, notifier):
    await online_available(router, clock, TAX_A)
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.cancel("k1", session.id)
    revoked = notifier.of("staff", "alice", "call.offer_revoked")[-1]
    assert revoked["reason"] == "cancelled"
    assert revoked["offer_id"] == notifier.of("staff", "alice", "call.offer")[-1]["offer_id"]
    assert (await router.store.get_presence("alice")).state == "available"
    assert (await router.store.get_session(session.id)).state == "abandoned"


async def test_staff_lost_beyond_grace_sends_caller_back_to_head(
    router, clock, notifier, deadlines
):
    await online_available(router, clock, TAX_A)
    first, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.accept(TAX_A, first.id)
    clock.advance(5)
    second, pos, _ = await router.request_call(K2, "tax-enquiry", "en")
    assert pos == 1
    await router.staff_offline("alice")
    clock.advance(14)
    await deadlines.tick()
    assert (await router.store.get_session(first.id)).state == "connected"
    clock.advance(2)
    await deadlines.tick()
    after = await router.store.get_session(first.id)
    assert after.state == "queued" and after.staff_id is None
    assert await router.store.queue("tax") == [first.id, second.id]
    await router.announcer.push()
    assert notifier.of("kiosk", "k1", "queue.update")[-1] == {
        "session_id": first.id,
        "position": 1,
        "eta_s": 240,
        "reason": "staff_lost",
    }
    assert notifier.of("kiosk", "k2", "queue.update")[-1]["position"] == 2
    assert first.id in notifier.released
    assert (await router.store.get_presence("alice")).state == "offline"
    # The next available staff member gets the caller at the head.
    await online_available(router, clock, TAX_B)
    assert (await router.store.get_session(first.id)).offered_to == "bob"


async def test_staff_back_within_grace_keeps_call(router, clock, notifier, deadlines):
    await online_available(router, clock, TAX_A)
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.accept(TAX_A, session.id)
    await router.staff_offline("alice")
    clock.advance(10)
    presence = await router.staff_online(TAX_A)
    assert presence.state == "busy" and presence.session_id == session.id
    clock.advance(30)
    await deadlines.tick()
    after = await router.store.get_session(session.id)
    assert after.state == "connected" and after.staff_lost_at is None


async def test_hangup_wrapup_then_next_call(router, clock, notifier):
    await online_available(router, clock, TAX_A)
    first, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.accept(TAX_A, first.id)
    second, _, _ = await router.request_call(K2, "tax-enquiry", "en")
    assert second.state == "queued"
    await router.hangup_by_kiosk("k1", first.id)
    assert notifier.of("staff", "alice", "call.ended")[-1] == {
        "session_id": first.id,
        "reason": "hangup",
    }
    assert notifier.of("kiosk", "k1", "call.ended")[-1]["reason"] == "hangup"
    assert (await router.store.get_presence("alice")).state == "wrapup"
    assert (await router.store.get_session(second.id)).state == "queued"
    presence = await router.wrapup_done(TAX_A)
    assert presence.state == "ringing" and presence.session_id == second.id
    with pytest.raises(Conflict):
        await router.wrapup_done(TAX_A)


async def test_staff_hangup_needs_own_call(router, clock, notifier):
    await online_available(router, clock, TAX_A, TAX_B)
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.accept(TAX_A, session.id)
    with pytest.raises(Forbidden):
        await router.hangup_by_staff(TAX_B, session.id)
    closed = await router.hangup_by_staff(TAX_A, session.id)
    assert closed.state == "closed" and closed.end_reason == "hangup"


async def test_kiosk_lost_in_queue_abandons_after_grace_and_resume_keeps_place(
    router, clock, notifier, deadlines
):
    s1, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    clock.advance(1)
    s2, _, _ = await router.request_call(K2, "tax-enquiry", "en")
    clock.advance(1)
    s3, _, _ = await router.request_call(K3, "tax-enquiry", "en")
    await router.kiosk_offline("k2", s2.id)
    clock.advance(10)
    resumed, position = await router.resume_kiosk("k2", s2.id)
    assert resumed.state == "queued" and position == 2
    await router.kiosk_offline("k3", s3.id)
    clock.advance(16)
    await deadlines.tick()
    assert (await router.store.get_session(s3.id)).state == "abandoned"
    assert (await router.store.get_session(s2.id)).state == "queued"
    assert await router.store.queue("tax") == [s1.id, s2.id]


async def test_multi_department_staff_takes_longest_waiting_first(router, clock, notifier):
    both = Staff("mei", "Mei", ("tax", "housing"))
    housing_call, _, _ = await router.request_call(K1, "property-record-enquiry", "en")
    clock.advance(1)
    tax_call, _, _ = await router.request_call(K2, "tax-enquiry", "en")
    await online_available(router, clock, both)
    assert (await router.store.get_session(housing_call.id)).offered_to == "mei"
    assert (await router.store.get_session(tax_call.id)).state == "queued"


async def test_every_transition_is_in_a_verified_audit_chain(router, clock, notifier):
    await online_available(router, clock, TAX_A, TAX_B)
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.decline(TAX_A, session.id)
    await router.accept(TAX_B, session.id)
    await router.hangup_by_staff(TAX_B, session.id)
    events = await router.audit.read(session.id)
    assert [e["type"] for e in events] == [
        "session.queued",
        "call.offered",
        "call.offer_ended",
        "call.offered",
        "call.accepted",
        "session.closed",
    ]
    assert verify_chain(events)
    events[2]["data"]["reason"] = "timeout"
    assert not verify_chain(events)


async def test_unknown_service_is_not_found(router):
    from sessions.errors import NotFound

    with pytest.raises(NotFound):
        await router.request_call(K1, "no-such-service", "en")


async def test_expired_heartbeat_counts_as_disconnect(router, clock, notifier, deadlines):
    await online_available(router, clock, TAX_A, TAX_B)
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    await router.accept(TAX_A, session.id)
    clock.advance(30)
    await router.heartbeat(["bob"])
    clock.advance(20)  # alice's node stopped refreshing her 50 s ago (ttl 45 s)
    await deadlines.sweep_presence()
    assert (await router.store.get_presence("bob")).state == "available"
    assert (await router.store.get_session(session.id)).staff_lost_at == clock.now
    clock.advance(16)
    await deadlines.tick()
    # Back at the head of the queue and straight away offered to Bob.
    assert (await router.store.get_session(session.id)).offered_to == "bob"


async def test_eta_follows_the_number_of_staff_taking_calls(router, clock, notifier):
    await router.request_call(K1, "property-record-enquiry", "en")
    clock.advance(1)
    _, position, eta = await router.request_call(K2, "property-record-enquiry", "en")
    assert (position, eta) == (2, 480)  # nobody signed in: counted as one agent
    clock.advance(1)
    third, position, eta = await router.request_call(K3, "property-record-enquiry", "en")
    assert (position, eta) == (3, 720)
    pushed = len(notifier.of("kiosk", "k3", "queue.update"))
    away = Staff("h0", "H0", ("housing",))
    await router.staff_online(away)  # signed in but away: takes no calls, ETA unchanged
    await router.announcer.push()
    assert len(notifier.of("kiosk", "k3", "queue.update")) == pushed
    await online_available(router, clock, Staff("h1", "H1", ("housing",)))
    await online_available(router, clock, Staff("h2", "H2", ("housing",)))
    await router.announcer.push()
    # The first two callers are ringing; the third is next, with two agents working.
    assert notifier.of("kiosk", "k3", "queue.update")[-1] == {
        "session_id": third.id,
        "position": 1,
        "eta_s": 240,
    }


async def test_dashboard_counts_answered_and_abandoned_calls_with_their_waits(
    router, clock, notifier
):
    from sessions.dashboard import DashboardConfig, history, record_samples, snapshot

    config = DashboardConfig(window_s=3600, target_s=60)
    answered, _, _ = await router.request_call(K1, "tax-enquiry", "en")  # t = 1000
    clock.advance(1)
    abandoned, _, _ = await router.request_call(K2, "tax-enquiry", "en")
    clock.advance(58)
    await online_available(router, clock, TAX_A)  # offered at 1059; the clock moves to 1060
    await router.accept(TAX_A, answered.id)  # answered after exactly the 60 s target
    waiting = await snapshot(router.store, router.catalog, clock(), config)
    tax = next(d for d in waiting["departments"] if d["id"] == "tax")
    assert tax["waiting"] == 1 and tax["longest_wait_s"] == 59.0
    assert tax["agents"]["busy"] == 1 and tax["answered"] == 1
    assert tax["service_level"] == 1.0 and tax["asa_s"] == 60.0
    await record_samples(router.store, router.catalog, clock())
    clock.advance(10)
    await router.cancel("k2", abandoned.id)
    after = await snapshot(router.store, router.catalog, clock(), config)
    tax = next(d for d in after["departments"] if d["id"] == "tax")
    assert (tax["waiting"], tax["answered"], tax["abandoned"]) == (0, 1, 1)
    assert tax["asa_s"] == 60.0 and tax["service_level"] == 1.0  # abandons do not count
    assert [c["session_id"] for c in after["calls"]] == [answered.id]
    assert after["calls"][0]["state"] == "connected" and after["calls"][0]["staff_id"] == "alice"
    assert [a["staff_id"] for a in after["agents"]] == ["alice"]
    housing = next(d for d in after["departments"] if d["id"] == "housing")
    assert housing["answered"] == 0 and housing["service_level"] is None
    chart = await history(router.store, router.catalog, clock())
    tax_samples = next(d for d in chart["departments"] if d["id"] == "tax")["samples"]
    assert [(s["waiting"], s["longest_wait_s"]) for s in tax_samples] == [(1, 59.0)]
    # An hour on, the window has rolled past both calls.
    clock.advance(3600)
    later = await snapshot(router.store, router.catalog, clock(), config)
    tax = next(d for d in later["departments"] if d["id"] == "tax")
    assert (tax["answered"], tax["abandoned"]) == (0, 0)


async def test_reassign_moves_a_waiting_caller_to_another_department_keeping_arrival_order(
    router, clock, notifier, reassignment
):
    early, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    clock.advance(1)
    later, _, _ = await router.request_call(K2, "property-record-enquiry", "en")
    moved = await reassignment.reassign(early.id, by="sup", department_id="housing")
    assert moved.state == "queued" and moved.department_id == "housing"
    assert await router.store.queue("housing") == [early.id, later.id]  # it came first
    assert await router.store.queue("tax") == []
    await online_available(router, clock, HOUSING)
    assert notifier.of("staff", "hana", "call.offer")[0]["session_id"] == early.id


async def test_reassign_to_a_staff_member_offers_now_and_takes_it_from_whoever_rang(
    router, clock, notifier, reassignment
):
    await online_available(router, clock, TAX_A, TAX_B)  # alice idle longer
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    assert (await router.store.get_session(session.id)).offered_to == "alice"
    offered = await reassignment.reassign(session.id, by="sup", staff_id="bob")
    assert offered.state == "ringing" and offered.offered_to == "bob"
    revoked = notifier.of("staff", "alice", "call.offer_revoked")[-1]
    assert revoked["reason"] == "reassigned"
    assert revoked["offer_id"] == notifier.of("staff", "alice", "call.offer")[-1]["offer_id"]
    assert (await router.store.get_presence("alice")).state == "available"
    assert notifier.of("staff", "bob", "call.offer")[-1]["session_id"] == session.id
    connected = await router.accept(TAX_B, session.id)
    assert connected.staff_id == "bob"
    with pytest.raises(Conflict):  # no longer waiting
        await reassignment.reassign(session.id, by="sup", department_id="housing")


async def test_reassign_refuses_what_cannot_be_done_and_changes_nothing(
    router, clock, notifier, reassignment
):
    await online_available(router, clock, HOUSING)
    session, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    with pytest.raises(Conflict, match="does not work for tax"):
        await reassignment.reassign(session.id, by="sup", staff_id="hana")
    with pytest.raises(NotFound):
        await reassignment.reassign(session.id, by="sup", department_id="nowhere")
    with pytest.raises(BadRequest):
        await reassignment.reassign(session.id, by="sup")
    await router.staff_online(TAX_A)  # online but away
    with pytest.raises(Conflict, match="not available"):
        await reassignment.reassign(session.id, by="sup", staff_id="alice")
    after = await router.store.get_session(session.id)
    assert (after.state, after.department_id) == ("queued", "tax")


class FlakyStore:
    """The store, with its ``reserve`` failing ``failures`` times (Redis gone a moment)."""

    def __init__(self, store, failures: int) -> None:
        self._store, self.failures = store, failures

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def reserve(self, *args):
        if self.failures:
            self.failures -= 1
            raise ConnectionError("the store went away")
        return await self._store.reserve(*args)


async def test_a_request_whose_routing_fails_stays_queued_once_and_is_routed_later(
    store, tmp_path, clock, notifier
):
    flaky = FlakyStore(store, failures=0)
    router = CallRouter(flaky, Catalog.default(), AuditLog(tmp_path / "audit", clock),
                        notifier, clock=clock)
    await online_available(router, clock, TAX_A)
    flaky.failures = 1
    session, position, _ = await router.request_call(K1, "tax-enquiry", "en")
    assert (await store.get_session(session.id)).state == "queued" and position == 0
    assert await store.live_sessions() == [await store.get_session(session.id)]
    await router.redispatch()
    assert (await store.get_session(session.id)).offered_to == "alice"
    assert notifier.of("staff", "alice", "call.offer")[0]["session_id"] == session.id


async def test_a_redispatch_in_the_middle_of_a_queue_round_does_not_break_it(
    router, clock, notifier
):
    first, _, _ = await router.request_call(K1, "tax-enquiry", "en")
    for kiosk in (K2, K3):
        clock.advance(1)
        await router.request_call(kiosk, "tax-enquiry", "en")
    await router.cancel("k1", first.id)
    tell = notifier.to_kiosk

    async def tell_while_redispatching(kiosk_id, event, payload):
        await router.redispatch()  # another job of the node, while this round awaits
        await tell(kiosk_id, event, payload)

    notifier.to_kiosk = tell_while_redispatching
    await router.announcer.push()
    assert notifier.of("kiosk", "k2", "queue.update")[-1]["position"] == 1
    assert notifier.of("kiosk", "k3", "queue.update")[-1]["position"] == 2


async def test_a_restart_closes_calls_requeues_offers_and_gives_waiting_kiosks_their_grace(
    router, clock, notifier, deadlines
):
    await online_available(router, clock, TAX_A, TAX_B)
    call, _, _ = await router.request_call(K1, "tax-enquiry", "en")  # offered to alice
    await router.accept(TAX_A, call.id)
    ringing, _, _ = await router.request_call(K2, "tax-enquiry", "en")  # offered to bob
    clock.advance(1)
    waiting, _, _ = await router.request_call(K3, "tax-enquiry", "en")
    assert (ringing.state, waiting.state) == ("ringing", "queued")
    clock.advance(100)

    await deadlines.recover_after_restart()  # as a new process on the same store would

    closed = await router.store.get_session(call.id)
    assert (closed.state, closed.end_reason, closed.ended_at) == ("closed", "server_restart",
                                                                   clock.now)
    requeued = await router.store.get_session(ringing.id)
    assert (requeued.state, requeued.offered_to) == ("queued", None)
    assert await router.store.queue("tax") == [ringing.id, waiting.id]  # places kept
    for sid in (ringing.id, waiting.id):
        s = await router.store.get_session(sid)
        assert s.kiosk_lost_at == clock.now
        assert s.deadline == clock.now + router.config.kiosk_lost_grace_s
    assert {p.state for p in await router.store.list_presence()} == {"offline"}
    trail = router.audit.read_sync(call.id)
    assert (trail[-1]["type"], trail[-1]["data"]["reason"]) == ("session.closed",
                                                                 "server_restart")
    assert [e["type"] for e in router.audit.read_sync(ringing.id)][-2:] == [
        "call.offer_ended", "kiosk.lost"]

    # The kiosk that comes back keeps its place; the one that does not is abandoned.
    resumed, position = await router.resume_kiosk(K2.id, ringing.id)
    assert (resumed.state, position) == ("queued", 1)
    clock.advance(router.config.kiosk_lost_grace_s)
    await deadlines.tick()
    assert (await router.store.get_session(waiting.id)).state == "abandoned"
    assert (await router.store.get_session(ringing.id)).state == "queued"
    abandoned = [o for o in await router.store.outcomes("tax", 0) if o.kind == "abandoned"]
    assert len(abandoned) == 1
