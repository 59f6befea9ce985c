"""Chooses the store: Redis when a URL is configured, otherwise the in-memory store."""

from __future__ import annotations

from .memory_store import MemoryStore
from .redis_store import RedisStore
from .store import Store


def create_store(redis_url: str | None, prefix: str = "sc") -> Store:
    if redis_url:
        return RedisStore(redis_url, prefix=prefix)
    return MemoryStore()
