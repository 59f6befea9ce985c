"""The multi-node load test (bench/load.py), short: 40 kiosks and 8 staff on two real
server processes sharing one Redis prefix and one data directory for 20 s. Every
invariant the benchmark checks must hold (offers once each, as the audit trails say;
no staff member offered a call while not available; every request served or abandoned,
none left waiting; the dashboards on both nodes and the nodes' counters agree with the
clients). Timing is not asserted. Then the checks are shown to catch faults planted in
a copy of what the run saw."""

from __future__ import annotations

import copy

import pytest

from bench.load import LoadConfig, check, run_load
from tests.conftest import REDIS_URL


def planted(facts, plant) -> list[str]:
    altered = copy.deepcopy(facts)
    plant(altered)
    return check(altered)


@pytest.mark.redis
@pytest.mark.timeout(300)
async def test_two_nodes_under_load_lose_and_duplicate_nothing():
    cfg = LoadConfig(kiosks=40, staff=8, duration_s=20, nodes=2, redis_url=REDIS_URL,
                     talk_s=(0.5, 1.5), pause_s=(0.2, 0.8), cancel_share=0.15,
                     cancel_after_s=(0.2, 2.0), seed=11)
    result = await run_load(cfg, "ci", progress=lambda text: None)
    failures = result["failures"]
    assert not failures, "\n".join(failures[:30])

    figures, facts = result["figures"], result["facts"]
    assert figures["served"] >= 20, figures
    assert figures["abandoned"] >= 1, figures  # cancels happened and were accounted for
    assert figures["cross_node_share"] > 0, figures  # answers did cross nodes
    assert all(m["calls.answered"] > 0 for m in facts.metrics.values()), facts.metrics
    assert figures["latency_ms"]["accept_connected"]["n"] == figures["served"]

    # The checks catch what they are for.
    served = next(r for r in facts.requests if r["connected"])
    sid = served["session_id"]
    offer = next(o for o in facts.offers if o[2] == sid)
    assert any("received 2 times" in f
               for f in planted(facts, lambda f: f.offers.append(offer)))
    assert any("(lost)" in f or "never received its offer" in f
               for f in planted(facts, lambda f: f.offers.remove(offer)))

    def unanswered(f):
        r = next(r for r in f.requests if r["session_id"] == sid)
        r["connected"], r["ended"] = [], []

    assert any("neither served nor abandoned" in f for f in planted(facts, unanswered))

    def miscount(f):
        tax = next(d for d in f.snapshots["node-1"]["departments"] if d["id"] == "tax")
        tax["answered"] += 1

    found = planted(facts, miscount)
    assert any("dashboard on node-1" in f for f in found), found
    assert any("dashboards differ" in f for f in found), found

    def stale(f):
        f.stale_offers.append((offer[0], offer[1], sid))

    assert any("after its call.offer_revoked" in f for f in planted(facts, stale))
