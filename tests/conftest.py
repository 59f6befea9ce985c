from __future__ import annotations

import os
import uuid

import pytest

from sessions.memory_store import MemoryStore
from sessions.redis_store import RedisStore
from sessions.sqlite_store import SQLiteStore
from tests.harness import drop_redis_prefix

REDIS_URL = os.environ.get("SMARTCOUNTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
async def redis_prefix():
    """A fresh key prefix on the real Redis server, removed afterwards."""
    prefix = f"sctest-{uuid.uuid4().hex[:12]}"
    yield prefix
    await drop_redis_prefix(REDIS_URL, prefix)


@pytest.fixture(params=["sqlite", "redis", "memory"])
async def store(request, redis_prefix, tmp_path):
    if request.param == "memory":
        s = MemoryStore()
    elif request.param == "sqlite":
        s = SQLiteStore(tmp_path / "store.sqlite3")
    else:
        s = RedisStore(REDIS_URL, prefix=redis_prefix)
        await s.ping()
    yield s
    await s.close()
