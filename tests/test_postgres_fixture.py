"""The session PostgreSQL cluster is real, reachable over loopback TCP, and survives a stop/start."""

from __future__ import annotations

import asyncpg
import pytest

from tests.support.postgres import PostgresCluster


async def test_cluster_is_a_real_postgresql_15_server(postgres: PostgresCluster) -> None:
    conn = await asyncpg.connect(postgres.dsn)
    try:
        version = await conn.fetchval("SHOW server_version_num")
        fsync = await conn.fetchval("SHOW fsync")
        listen = await conn.fetchval("SHOW listen_addresses")
    finally:
        await conn.close()
    assert int(version) // 10000 == 15
    assert fsync == "off"
    assert listen == "127.0.0.1"


async def test_cluster_comes_back_on_the_same_port_after_stop(postgres: PostgresCluster) -> None:
    url = postgres.create_database("restart_probe")
    dsn = url.replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)")
    await conn.close()

    postgres.stop()
    with pytest.raises((OSError, asyncpg.PostgresError)):
        await asyncpg.connect(dsn, timeout=2)
    postgres.start()

    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT v FROM kept") == 42
    finally:
        await conn.close()
