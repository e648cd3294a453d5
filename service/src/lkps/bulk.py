"""Batched inserts on PostgreSQL as one ``INSERT ... SELECT FROM unnest($1::type[], ...)`` statement.

SQLAlchemy's ``executemany`` compiles and type-processes every row in Python (~25 µs a row here), which on a
one-process service competes with request handling; one array per column is encoded by asyncpg in C and the
statement is the same whatever the batch size, so PostgreSQL plans it once. Strings are cut to their column's
length as :func:`lkps.models.fit` does, so one over-long value cannot fail a whole batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Boolean, CursorResult, Float, Integer, Table
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import UTCDateTime, string_lengths


def _pg_type(table: Table, name: str) -> str:
    kind = table.c[name].type
    if isinstance(kind, UTCDateTime):
        return "timestamptz"
    if isinstance(kind, Boolean):
        return "boolean"
    if isinstance(kind, Float):
        return "float8"
    if isinstance(kind, Integer):
        return "bigint"
    return "text"


@functools.cache
def insert_sql(table: Table, columns: tuple[str, ...], suffix: str) -> str:
    """``INSERT INTO table (columns) SELECT * FROM unnest(...)`` followed by ``suffix`` (ON CONFLICT...)."""
    arrays = ", ".join(f"${i}::{_pg_type(table, name)}[]" for i, name in enumerate(columns, start=1))
    # Names come from the Table metadata (``table.c[name]`` fails on any other); values are parameters.
    sql = f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) {suffix}"  # noqa: S608
    return sql.rstrip()


@functools.cache
def _lengths(table: Table, columns: tuple[str, ...]) -> tuple[int | None, ...]:
    limits = dict(string_lengths(table))  # the limits ``fit`` applies
    return tuple(limits.get(name) for name in columns)


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    suffix: str = "",
) -> CursorResult[Any]:
    """Insert ``rows`` (tuples in ``columns`` order) in one statement on ``conn`` (PostgreSQL only)."""
    arrays: list[list[Any]] = []
    for index, length in enumerate(_lengths(table, columns)):
        values = [row[index] for row in rows]
        if length is not None:
            values = [v[:length] if isinstance(v, str) and len(v) > length else v for v in values]
        arrays.append(values)
    return await conn.exec_driver_sql(insert_sql(table, columns, suffix), tuple(arrays))
