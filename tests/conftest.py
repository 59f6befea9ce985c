from __future__ import annotations

import os
import uuid

import pytest
import redis.asyncio as aioredis

from sessions.memory_store import MemoryStore
from sessions.redis_store import RedisStore

REDIS_URL = os.environ.get("SMARTCOUNTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


async def _drop_prefix(prefix: str) -> None:
    client = aioredis.from_url(REDIS_URL)
    try:
        keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_prefix():
    """A fresh key prefix on the real Redis server, removed afterwards."""
    prefix = f"sctest-{uuid.uuid4().hex[:12]}"
    yield prefix
    await _drop_prefix(prefix)


@pytest.fixture(params=["memory", "redis"])
async def store(request, redis_prefix):
    if request.param == "memory":
        s = MemoryStore()
    else:
        s = RedisStore(REDIS_URL, prefix=redis_prefix)
        await s.ping()
    yield s
    await s.close()
