"""``case.submit`` acknowledgement latency on the embedded store (SQLite) and on Redis,
side by side in one run.

    python -m bench.case_submit [--calls 100] [--rounds 3]

For each store a real ``smartcounter serve`` process runs on 127.0.0.1 (recording off):
the embedded store under a fresh data dir, and Redis started by the benchmark itself
with the settings the README asks for (``appendonly yes``, ``appendfsync always``, its
files in a temporary directory; so both stores fsync before they answer). ``--calls``
calls are connected (one kiosk and one clerk each); then, per round, half of them lodge
their application one after the other (the latency of one ``case.submit`` on an idle
server: audit append + fsync, the store's write + fsync, the receipt to the kiosk) and
the other half all at once (a burst: each acknowledgement's latency, and the burst's
rate). Printed: p50 / p95 / max in ms for both, the burst rate, and SQLite / Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import platform
import tempfile
import time
from pathlib import Path

from media.vision.models import prepare
from tests.harness import (
    SHARED_MODELS_DIR,
    Client,
    RedisServer,
    ServeProcess,
    connect_calls,
    mint_calls_accounts,
)


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def submit(staff: Client, sid: str) -> float:
    started = time.perf_counter()
    ack = await staff.call("case.submit", {"session_id": sid}, timeout=30)
    assert ack.get("ok"), ack
    return time.perf_counter() - started


async def measure(url: str, kiosk_tokens: list[str],
                  staff_tokens: list[str]) -> dict[str, list[float] | float]:
    clients: list[Client] = []
    try:
        connected = await connect_calls(url, kiosk_tokens, staff_tokens, clients)
        half = len(connected) // 2
        one_by_one = [await submit(staff, sid) for staff, sid in connected[:half]]
        started = time.perf_counter()
        burst = await asyncio.gather(*(submit(staff, sid) for staff, sid in connected[half:]))
        burst_s = time.perf_counter() - started
        return {"sequential": one_by_one, "burst": list(burst),
                "burst_rate": len(burst) / burst_s}
    finally:
        for client in clients:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 2)


async def run_store(store: str, calls: int, rounds: int, tmp: Path) -> dict:
    """``rounds`` fresh servers (and Redis) of ``store``, their figures pooled."""
    pooled: dict = {"sequential": [], "burst": [], "burst_rate": []}
    for n in range(rounds):
        base = tmp / f"{store}-{n}"
        base.mkdir()
        tokens = await asyncio.to_thread(mint_calls_accounts, base / "data", calls)
        redis = None
        env = {"SMARTCOUNTER_VISION_WORKERS": "1"}
        if store == "redis":
            redis = RedisServer(base / "redis")
            redis.start()
            await redis.ready()
            env["SMARTCOUNTER_REDIS_URL"] = redis.url
        server = ServeProcess(base / "data", base / "server.log", **env)
        try:
            await server.start()
            figures = await measure(server.url, *tokens)
        finally:
            await server.stop()
            if redis is not None:
                redis.stop()
        pooled["sequential"] += figures["sequential"]
        pooled["burst"] += figures["burst"]
        pooled["burst_rate"].append(figures["burst_rate"])
    return pooled


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.case_submit",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100, help="connected calls per round (100)")
    ap.add_argument("--rounds", type=int, default=3, help="fresh servers per store (3)")
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python "
          f"{platform.python_version()}; load average {os.getloadavg()[0]:.1f}", flush=True)
    prepare(SHARED_MODELS_DIR)
    with tempfile.TemporaryDirectory(prefix="scbench-submit-") as tmp:
        results = {}
        for store in ("sqlite", "redis"):
            print(f"[{store}] {args.rounds} round(s) of {args.calls} calls", flush=True)
            results[store] = asyncio.run(run_store(store, args.calls, args.rounds, Path(tmp)))
    s, r = results["sqlite"], results["redis"]
    print(f"\n{'case.submit → ack, ms':<40}{'sqlite':>12}{'redis (AOF always)':>22}{'ratio':>8}")
    for kind, label in (("sequential", "one at a time"), ("burst", "all at once")):
        print(f"{label} (n = {len(s[kind])} / {len(r[kind])})")
        for q, name in ((0.5, "p50"), (0.95, "p95"), (1.0, "max")):
            a, b = nearest_rank(s[kind], q) * 1000, nearest_rank(r[kind], q) * 1000
            print(f"    {name:<36}{a:>12.1f}{b:>22.1f}{a / b:>8.2f}")
    a, b = (sum(x["burst_rate"]) / len(x["burst_rate"]) for x in (s, r))
    print(f"{'burst rate, acknowledged per s':<40}{a:>12.0f}{b:>22.0f}{a / b:>8.2f}")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f} (1 min)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
