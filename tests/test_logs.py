"""Structured logs: one JSON object a line, naming the node and the session."""

from __future__ import annotations

import asyncio
import json
import logging
import sys

from sessions.log_context import bind_session
from smartcounter.logs import JsonFormatter


def test_json_lines_carry_node_session_and_exception():
    formatter = JsonFormatter("node-a")

    async def in_a_task() -> str:
        bind_session("s-123")
        try:
            raise ValueError("boom")
        except ValueError:
            record = logging.getLogger("x").makeRecord(
                "x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info()
            )
        return formatter.format(record)

    line = asyncio.run(in_a_task())
    entry = json.loads(line)
    assert entry["message"] == "failed here" and entry["level"] == "error"
    assert entry["node"] == "node-a" and entry["session_id"] == "s-123"
    assert "ValueError: boom" in entry["exception"]
    plain = json.loads(formatter.format(logging.makeLogRecord({"msg": "hi"})))
    assert "session_id" not in plain and plain["time"].endswith("Z")
