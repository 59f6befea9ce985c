"""Which store a node runs on, and what it refuses: the embedded store by default, the
memory store only when asked (and said loudly), no Redis that could lose what a node
acknowledges unless the operator says so."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

from smartcounter.config import ConfigError, from_env
from tests.harness import RedisServer, ServeProcess


def test_the_default_store_is_the_embedded_one(tmp_path):
    settings = from_env({"SMARTCOUNTER_DATA_DIR": str(tmp_path)})
    assert settings.store_kind == "sqlite"
    assert settings.store_path == tmp_path / "store.sqlite3"
    with_redis = from_env({"SMARTCOUNTER_REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert with_redis.store_kind == "redis"


@pytest.mark.parametrize("env, message", [
    ({"SMARTCOUNTER_STORE": "redis"}, "needs SMARTCOUNTER_REDIS_URL"),
    ({"SMARTCOUNTER_STORE": "memory", "SMARTCOUNTER_REDIS_URL": "redis://x"},
     "a Redis URL is set but the store is 'memory'"),
    ({"SMARTCOUNTER_STORE": "postgres"}, "must be 'sqlite', 'redis' or 'memory'"),
    ({"SMARTCOUNTER_REDIS_DURABILITY": "maybe"}, "must be 'require' or 'warn'"),
])
def test_store_settings_that_do_not_fit_are_refused(env, message):
    with pytest.raises(ConfigError, match=message):
        from_env(env)


async def test_the_memory_store_says_on_start_that_nothing_survives(tmp_path):
    server = ServeProcess(tmp_path / "data", tmp_path / "server.log", SMARTCOUNTER_STORE="memory")
    try:
        await server.start()
    finally:
        await server.stop()
    log = server.log()
    assert "IN-MEMORY STORE: NOTHING SURVIVES A RESTART" in log
    assert "THE IN-MEMORY STORE IS THROW-AWAY" in log
    assert not (tmp_path / "data" / "store.sqlite3").exists()


@pytest.mark.redis
async def test_a_node_refuses_a_redis_that_keeps_nothing_on_disk(tmp_path):
    redis = RedisServer(tmp_path / "redis", durable=False)
    redis.start()
    try:
        await redis.ready()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTCOUNTER_")}
        refused = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "smartcounter.cli", "serve", "--port", "0", "--data-dir",
            str(tmp_path / "data"), "--redis-url", redis.url,
            env={**env, "SMARTCOUNTER_MODELS_AUTO_PREPARE": "off"},
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(refused.communicate(), 120)
        stderr = err.decode()
        assert refused.returncode == 2, stderr[-2000:]
        assert "appendonly no" in stderr and "appendfsync always" in stderr
        assert "SMARTCOUNTER_REDIS_DURABILITY=warn" in stderr
        assert "Traceback" not in stderr

        server = ServeProcess(tmp_path / "data", tmp_path / "warned.log",
                              SMARTCOUNTER_REDIS_URL=redis.url,
                              SMARTCOUNTER_REDIS_DURABILITY="warn")
        try:
            await server.start()
        finally:
            await server.stop()
        assert "a crash of Redis loses writes already acknowledged" in server.log()
    finally:
        redis.stop()


async def test_a_node_starts_while_redis_is_unreachable(tmp_path):
    server = ServeProcess(tmp_path / "data", tmp_path / "server.log",
                          SMARTCOUNTER_REDIS_URL="redis://127.0.0.1:1/0")
    try:
        await server.start()  # /healthz answers: it serves once Redis is back
    finally:
        await server.stop()
    assert "its persistence was not checked" in server.log()
