"""One contract, run against both stores (Redis on a real server)."""

from __future__ import annotations

import asyncio

import pytest

from sessions.errors import Conflict, NotFound
from sessions.presence import Presence
from sessions.records import Case, Decision, ResultJob
from tests.helpers import make_case, make_document, make_session


def make_staff(staff_id: str, depts=("tax",), state="available", idle_since=0.0) -> Presence:
    return Presence(
        staff_id=staff_id,
        display_name=staff_id.title(),
        departments=list(depts),
        state=state,
        since=idle_since,
        idle_since=idle_since,
    )


async def test_session_roundtrip_and_queue_order(store):
    await store.create_session(make_session("b", score=20.0))
    await store.create_session(make_session("a", score=10.0))
    await store.create_session(make_session("c", dept="housing", score=5.0))
    assert await store.queue("tax") == ["a", "b"]
    assert await store.queue("housing") == ["c"]
    got = await store.get_session("a")
    assert got == make_session("a", score=10.0)
    assert await store.get_session("nope") is None


async def test_create_twice_conflicts(store):
    await store.create_session(make_session("a"))
    with pytest.raises(Conflict):
        await store.create_session(make_session("a"))


async def test_update_is_compare_and_set(store):
    await store.create_session(make_session("a"))
    updated = await store.update_session(
        "a", {"state": "abandoned", "end_reason": "abandoned"}, expect={"state": ["queued"]}
    )
    assert updated.state == "abandoned" and updated.end_reason == "abandoned"
    assert await store.queue("tax") == []
    with pytest.raises(Conflict, match="state"):
        await store.update_session("a", {"state": "ringing"}, expect={"state": ["queued"]})
    assert (await store.get_session("a")).state == "abandoned"
    with pytest.raises(NotFound):
        await store.update_session("zzz", {"state": "closed"})


async def test_expect_none_matches_null(store):
    await store.create_session(make_session("a"))
    await store.update_session("a", {"staff_id": "s1"}, expect={"staff_id": [None]})
    with pytest.raises(Conflict):
        await store.update_session("a", {"staff_id": "s2"}, expect={"staff_id": [None]})


async def test_requeue_changes_department_index(store):
    await store.create_session(make_session("a"))
    await store.update_session("a", {"department_id": "housing"})
    assert await store.queue("tax") == []
    assert await store.queue("housing") == ["a"]


async def test_deadline_index(store):
    await store.create_session(make_session("a", deadline=100.0))
    await store.create_session(make_session("b", deadline=300.0))
    await store.create_session(make_session("c"))
    assert [s.id for s in await store.due_sessions(200.0)] == ["a"]
    await store.update_session("a", {"deadline": None})
    assert await store.due_sessions(200.0) == []
    assert [s.id for s in await store.due_sessions(300.0)] == ["b"]


async def test_lists_survive_roundtrip_empty(store):
    await store.create_session(make_session("a"))
    s = await store.update_session("a", {"declined_by": []})
    assert s.declined_by == []
    await store.put_presence(make_staff("s1", depts=()))
    assert (await store.get_presence("s1")).departments == []


async def test_availability_index_longest_idle_first(store):
    await store.put_presence(make_staff("late", idle_since=30.0))
    await store.put_presence(make_staff("early", idle_since=10.0))
    await store.put_presence(make_staff("away", state="away", idle_since=1.0))
    await store.put_presence(make_staff("other", depts=("housing",), idle_since=5.0))
    assert await store.available_staff("tax") == ["early", "late"]
    await store.update_presence("early", {"state": "busy"}, expect={"state": ["available"]})
    assert await store.available_staff("tax") == ["late"]
    with pytest.raises(Conflict):
        await store.update_presence("early", {"state": "away"}, expect={"state": ["available"]})
    ids = sorted(p.staff_id for p in await store.list_presence())
    assert ids == ["away", "early", "late", "other"]


async def test_reserve_pairs_head_with_longest_idle(store):
    await store.put_presence(make_staff("s2", idle_since=20.0))
    await store.put_presence(make_staff("s1", idle_since=10.0))
    await store.create_session(make_session("second", score=2.0))
    await store.create_session(make_session("first", score=1.0))
    session, staff = await store.reserve("tax", now=50.0, expires_at=70.0)
    assert (session.id, staff.staff_id) == ("first", "s1")
    assert session.state == "ringing" and session.offered_to == "s1"
    assert session.offer_expires_at == 70.0 and session.deadline == 70.0
    assert staff.state == "ringing" and staff.session_id == "first" and staff.since == 50.0
    assert await store.queue("tax") == ["second"]
    assert await store.available_staff("tax") == ["s2"]
    assert [s.id for s in await store.due_sessions(70.0)] == ["first"]


async def test_reserve_skips_staff_who_declined(store):
    await store.put_presence(make_staff("s1", idle_since=10.0))
    await store.put_presence(make_staff("s2", idle_since=20.0))
    await store.create_session(make_session("a", declined_by=["s1"]))
    session, staff = await store.reserve("tax", now=1.0, expires_at=2.0)
    assert (session.id, staff.staff_id) == ("a", "s2")


async def test_reserve_passes_over_session_nobody_left_to_offer(store):
    await store.put_presence(make_staff("s1", idle_since=10.0))
    await store.create_session(make_session("a", score=1.0, declined_by=["s1"]))
    await store.create_session(make_session("b", score=2.0))
    session, _ = await store.reserve("tax", now=1.0, expires_at=2.0)
    assert session.id == "b"
    assert await store.queue("tax") == ["a"]


async def test_reserve_nothing_to_do(store):
    assert await store.reserve("tax", 0.0, 1.0) is None
    await store.create_session(make_session("a"))
    assert await store.reserve("tax", 0.0, 1.0) is None
    await store.put_presence(make_staff("h", depts=("housing",)))
    assert await store.reserve("tax", 0.0, 1.0) is None


async def test_reserve_is_atomic_under_concurrency(store):
    for i in range(5):
        await store.put_presence(make_staff(f"s{i}", idle_since=float(i)))
    for i in range(20):
        await store.create_session(make_session(f"c{i:02d}", score=float(i)))
    results = await asyncio.gather(*(store.reserve("tax", 1.0, 2.0) for _ in range(20)))
    made = [r for r in results if r is not None]
    assert len(made) == 5
    assert len({s.id for s, _ in made}) == 5
    assert len({p.staff_id for _, p in made}) == 5
    assert {s.id for s, _ in made} == {f"c{i:02d}" for i in range(5)}
    assert len(await store.queue("tax")) == 15


async def test_live_index_follows_state(store):
    await store.create_session(make_session("a"))
    await store.create_session(make_session("b"))
    await store.update_session("b", {"state": "connected"})
    assert [s.id for s in await store.live_sessions()] == ["a", "b"]
    await store.update_session("a", {"state": "abandoned"})
    await store.update_session("b", {"state": "closed"})
    assert await store.live_sessions() == []


async def test_documents_indexed_by_session_in_order(store):
    await store.add_document(make_document("d2"))
    await store.add_document(make_document("d1"))
    await store.add_document(make_document("d3", session_id="s2"))
    assert [d.document_id for d in await store.session_documents("s1")] == ["d2", "d1"]
    assert await store.get_document("d3") == make_document("d3", session_id="s2")
    assert await store.get_document("nope") is None
    assert await store.session_documents("empty") == []


async def test_document_id_taken_conflicts_and_changes_nothing(store):
    await store.add_document(make_document("d1"))
    with pytest.raises(Conflict):
        await store.add_document(make_document("d1", session_id="s9", kind="form"))
    assert (await store.get_document("d1")).kind == "id_card"
    assert await store.session_documents("s9") == []


async def test_verification_result_replaced_whole_with_empty_lists_kept(store):
    assert await store.get_verification("s1") is None
    await store.put_verification("s1", {"status": "failed", "frame_times": []})
    await store.put_verification("s1", {"status": "passed", "frame_times": [], "match": {}})
    assert await store.get_verification("s1") == {
        "status": "passed", "frame_times": [], "match": {}
    }


async def test_records_are_whole_and_create_refuses_a_taken_id(store):
    assert await store.get_record("signature", "x") is None
    await store.put_record("signature", "x", {"strokes": [], "n": 1}, create=True)
    with pytest.raises(Conflict):
        await store.put_record("signature", "x", {"n": 2}, create=True)
    await store.put_record("signature", "x", {"strokes": [], "n": 3})
    assert await store.get_record("signature", "x") == {"strokes": [], "n": 3}
    assert await store.get_record("print_job", "x") is None  # kinds are separate


async def test_several_sessions_are_read_at_once_in_order(store):
    for sid in ("s1", "s2"):
        await store.create_session(make_session(sid))
    found = await store.get_sessions(["s2", "nope", "s1"])
    assert [s.id if s else None for s in found] == ["s2", None, "s1"]
    assert await store.get_sessions([]) == []


async def test_a_record_is_replaced_by_compare_and_set(store):
    with pytest.raises(Conflict):  # nothing to compare with
        await store.put_record("media_home", "s1", {"node": "b"}, expect={"node": ["a"]})
    await store.put_record("media_home", "s1", {"node": "a"}, create=True)
    with pytest.raises(Conflict):
        await store.put_record("media_home", "s1", {"node": "c"}, expect={"node": ["b"]})
    await store.put_record("media_home", "s1", {"node": "b"}, expect={"node": ["a"]})
    assert await store.get_record("media_home", "s1") == {"node": "b"}
    await store.delete_record("media_home", "s1")
    await store.delete_record("media_home", "s1")  # gone already: no error
    assert await store.get_record("media_home", "s1") is None


async def test_nodes_beat_and_exactly_one_caller_drops_a_node(store):
    assert await store.beat_node("a", {"seen": 1.0, "media_address": "192.0.2.1"}) is True
    assert await store.beat_node("b", {"seen": 2.0}) is True
    assert await store.beat_node("a", {"seen": 3.0, "media_address": "192.0.2.1"}) is False
    assert await store.nodes() == {
        "a": {"seen": 3.0, "media_address": "192.0.2.1"}, "b": {"seen": 2.0}
    }
    assert await store.drop_node("a", seen_before=3.0) is False  # it beat since: alive
    assert [await store.drop_node("a", seen_before=3.5), await store.drop_node("a")] == [
        True, False]
    assert list(await store.nodes()) == ["b"]
    assert await store.drop_node("b") is True


async def test_cases_indexed_by_state_and_session_and_updated_by_compare_and_set(store):
    await store.create_case(make_case("B-2", 20.0))
    await store.create_case(make_case("A-1", 10.0, session_id="s2"))
    with pytest.raises(Conflict):
        await store.create_case(make_case("A-1", 30.0))
    assert [c.receipt_no for c in await store.cases("submitted")] == ["A-1", "B-2"]
    assert [c.receipt_no for c in await store.session_cases("s2")] == ["A-1"]
    decided = await store.update_case(
        "A-1", {"state": "approved", "result_document_ids": ["d1"]},
        expect={"state": ["submitted"]},
    )
    assert decided.state == "approved" and decided.result_document_ids == ["d1"]
    with pytest.raises(Conflict):
        await store.update_case("A-1", {"state": "rejected"}, expect={"state": ["submitted"]})
    with pytest.raises(NotFound):
        await store.update_case("nope", {"state": "approved"})
    assert [c.receipt_no for c in await store.cases("submitted")] == ["B-2"]
    assert [c.receipt_no for c in await store.cases("approved")] == ["A-1"]
    assert (await store.get_case("B-2")).result_document_ids == []


async def test_concurrent_decisions_on_one_case_let_exactly_one_win(store):
    await store.create_case(make_case("C-3", 1.0))

    async def decide(decision: str):
        try:
            return await store.update_case(
                "C-3", {"state": decision}, expect={"state": ["submitted"]}
            )
        except Conflict:
            return None

    results = await asyncio.gather(*(decide(d) for d in ["approved", "rejected"] * 5))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert (await store.get_case("C-3")).state == winners[0].state


async def test_a_case_comes_back_whole_with_its_decision_and_jobs(store):
    lodged = make_case("D-4", 5.0)
    await store.create_case(lodged)
    assert await store.get_case("D-4") == lodged
    decision = Decision("approved", None, "alice", 9.0)
    jobs = [ResultJob("job_1", "d1", "Licence")]
    decided = await store.update_case("D-4", {
        "state": "approved", "decision": decision.to_dict(),
        "result_document_ids": ["d1"], "print_jobs": [j.to_dict() for j in jobs],
    }, expect={"state": ["submitted"]})
    expected = Case(**{**lodged.__dict__, "state": "approved", "decision": decision,
                       "result_document_ids": ["d1"], "print_jobs": jobs})
    assert decided == expected
    assert await store.get_case("D-4") == expected
    assert await store.session_cases("s1") == [expected]


async def test_outcomes_counted_once_per_session_and_read_from_a_time(store):
    await store.record_outcome("tax", "s1", "answered", 12.5, 100.0)
    await store.record_outcome("tax", "s1", "answered", 99.0, 101.0)  # a retry: ignored
    await store.record_outcome("tax", "s2", "abandoned", 3.0, 200.0)
    await store.record_outcome("housing", "s3", "answered", 1.0, 150.0)
    found = await store.outcomes("tax", since=0.0)
    assert [(o.kind, o.wait_s, o.at) for o in found] == [
        ("answered", 12.5, 100.0), ("abandoned", 3.0, 200.0)
    ]
    assert [o.at for o in await store.outcomes("tax", since=100.0)] == [200.0]
    # A day later the old ones are gone.
    await store.record_outcome("tax", "s4", "answered", 1.0, 200.0 + 86400 + 1)
    assert [o.at for o in await store.outcomes("tax", since=0.0)] == [86601.0]


async def test_samples_keep_one_per_minute_the_last_written(store):
    await store.record_sample("tax", 100, 3, 40.0)
    await store.record_sample("tax", 100, 4, 45.0)
    await store.record_sample("tax", 101, 0, 0.0)
    assert await store.samples("tax", 100) == [
        {"minute": 100, "waiting": 4, "longest_wait_s": 45.0},
        {"minute": 101, "waiting": 0, "longest_wait_s": 0.0},
    ]
    assert await store.samples("tax", 101) == [
        {"minute": 101, "waiting": 0, "longest_wait_s": 0.0}
    ]
    assert await store.samples("housing", 0) == []


async def test_hits_count_within_a_window_and_reset(store):
    import time as _time

    now = _time.time()
    assert [await store.hit("login:alice", 60, now) for _ in range(3)] == [1, 2, 3]
    assert await store.hit("login:bob", 60, now) == 1
    await store.reset_hits("login:alice")
    assert await store.hit("login:alice", 60, now) == 1


async def test_a_kiosk_has_one_live_session_at_most_even_when_asked_at_once(store):
    attempts = [make_session(f"s{i}", kiosk_id="k9", score=float(i)) for i in range(20)]
    results = await asyncio.gather(*(store.create_session(s) for s in attempts),
                                   return_exceptions=True)
    created = [s.id for s, r in zip(attempts, results, strict=True) if r is None]
    assert len(created) == 1
    assert all(isinstance(r, Conflict) and created[0] in str(r) for r in results if r)
    assert (await store.kiosk_session("k9")).id == created[0]
    assert await store.queue("tax") == created
    # Another kiosk is not affected; once the session ends the kiosk may ask again.
    await store.create_session(make_session("other", kiosk_id="k8"))
    await store.update_session(created[0], {"state": "abandoned"})
    assert await store.kiosk_session("k9") is None
    await store.create_session(make_session("again", kiosk_id="k9"))
    assert (await store.kiosk_session("k9")).id == "again"


async def test_reserve_passes_over_a_caller_whose_kiosk_is_away(store):
    await store.create_session(make_session("away", score=1.0, kiosk_lost_at=5.0))
    await store.create_session(make_session("here", score=2.0))
    await store.put_presence(make_staff("alice"))
    session, _ = await store.reserve("tax", now=10.0, expires_at=30.0)
    assert session.id == "here"
    assert await store.queue("tax") == ["away"]  # keeps its place for when it is back
    assert await store.reserve("tax", now=11.0, expires_at=31.0) is None
