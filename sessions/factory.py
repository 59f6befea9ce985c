"""Chooses the store: SQLite under the data dir (one node, the default), Redis (many
nodes), or memory (throw-away: nothing survives a restart)."""

from __future__ import annotations

from pathlib import Path

from .memory_store import MemoryStore
from .redis_store import RedisStore
from .sqlite_store import SQLiteStore, take_lock
from .store import Store

KINDS = ("sqlite", "redis", "memory")


def create_store(
    kind: str, *, path: Path | None = None, redis_url: str | None = None, prefix: str = "sc",
    exclusive: bool = True,
) -> Store:
    """``exclusive``: a server's store, or a command's that must not run beside one
    (the embedded store's lock); without it, a reader beside a running server."""
    if kind == "sqlite":
        assert path is not None, "the SQLite store needs a file"
        return SQLiteStore(path, exclusive=exclusive)
    if kind == "redis":
        assert redis_url, "the Redis store needs a URL"
        return RedisStore(redis_url, prefix=prefix)
    if kind == "memory":  # still one server per data dir: they would share its files
        return MemoryStore(take_lock(path) if path is not None else None)
    raise ValueError(f"no store {kind!r}: one of {', '.join(KINDS)}")
