"""What supervisors watch (docs/protocol.md ``dashboard.snapshot``): per department the queue,
the window's statistics and the agents by state; the live calls; every agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .catalog import Catalog
from .presence import PresenceState
from .session import SessionState
from .statistics import summarize
from .store import Store

AGENT_STATES = ("available", "ringing", "busy", "wrapup", "away")
WAITING_STATES = (SessionState.QUEUED, SessionState.RINGING)


@dataclass(frozen=True)
class DashboardConfig:
    window_s: float = 3600.0
    # docs/protocol.md: the service level's target wait, 60 s by default.
    target_s: float = 60.0


async def snapshot(store: Store, catalog: Catalog, now: float,
                   config: DashboardConfig) -> dict[str, Any]:
    live = await store.live_sessions()
    agents = [p for p in await store.list_presence() if p.state != PresenceState.OFFLINE]
    departments = []
    for department in catalog.departments:
        waiting = [s for s in live
                   if s.department_id == department.id and s.state in WAITING_STATES]
        summary = summarize(
            await store.outcomes(department.id, now - config.window_s), now,
            config.window_s, config.target_s,
        )
        by_state = dict.fromkeys(AGENT_STATES, 0)
        for agent in agents:
            if department.id in agent.departments and agent.state in by_state:
                by_state[agent.state] += 1
        departments.append({
            "id": department.id,
            "waiting": len(waiting),
            "longest_wait_s": round(max((now - s.created_at for s in waiting), default=0.0), 1),
            **summary.public(),
            "agents": by_state,
        })
    calls = [
        {
            "session_id": s.id,
            "department_id": s.department_id,
            "service_id": s.service_id,
            "kiosk_id": s.kiosk_id,
            "staff_id": s.staff_id or s.offered_to,
            "state": s.state,
            "since": s.connected_at if s.state == SessionState.CONNECTED else s.created_at,
        }
        for s in sorted(live, key=lambda s: s.created_at)
    ]
    return {
        "at": now,
        "target_s": config.target_s,
        "window_s": config.window_s,
        "departments": departments,
        "calls": calls,
        "agents": [
            {"staff_id": a.staff_id, "display_name": a.display_name, "state": a.state,
             "since": a.since, "departments": a.departments}
            for a in sorted(agents, key=lambda a: a.staff_id)
        ],
    }


async def record_samples(store: Store, catalog: Catalog, now: float) -> None:
    """This minute's queue length and longest wait per department (for the chart)."""
    live = await store.live_sessions()
    minute = int(now // 60)
    for department in catalog.departments:
        waiting = [s for s in live
                   if s.department_id == department.id and s.state in WAITING_STATES]
        longest = round(max((now - s.created_at for s in waiting), default=0.0), 1)
        await store.record_sample(department.id, minute, len(waiting), longest)


async def history(store: Store, catalog: Catalog, now: float,
                  minutes: int = 60) -> dict[str, Any]:
    since = int(now // 60) - minutes + 1
    return {
        "at": now,
        "departments": [
            {"id": d.id, "samples": await store.samples(d.id, since)}
            for d in catalog.departments
        ],
    }
