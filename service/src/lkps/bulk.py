"""Batched inserts on PostgreSQL: binary ``COPY`` into a staging table, then one ``INSERT ... SELECT``.

SQLAlchemy's ``executemany`` compiles and type-processes every row in Python (~25 µs a row here), which on a
one-process service competes with request handling. asyncpg's ``copy_records_to_table`` encodes whole rows in
C (about half the cost of binding one array per column, whose encoder type-checks every element); COPY cannot
say ``ON CONFLICT``, so rows land in a per-session temporary table (created once a session, emptied at commit)
and one statement moves them, with the caller's ``ON CONFLICT``/``RETURNING`` suffix. Strings are cut to their
column's length as :func:`lkps.models.fit` does, so one over-long value cannot fail a whole batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import CursorResult, Table
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from .models import UTCDateTime, string_lengths

_UNDEFINED_TABLE = "42P01"  # SQLSTATE undefined_table (asyncpg.UndefinedTableError)


def _translated(exc: Exception, staging: str, created: set[str]) -> Exception:
    """The COPY's error as SQLAlchemy would raise it, so callers handle refused rows alike (asyncpg's own
    exceptions reach here unwrapped)."""
    state = str(getattr(exc, "sqlstate", "") or "")
    if state == _UNDEFINED_TABLE:
        # Created in a transaction that rolled back: the caller's retry creates it again.
        created.discard(staging)
    statement = f"COPY {staging}"
    if state.startswith("22") or isinstance(exc, ValueError):  # data exceptions; values asyncpg cannot encode
        return DataError(statement, None, exc)
    if state.startswith("23"):
        return IntegrityError(statement, None, exc)
    return exc


@functools.cache
def _statements(table: Table, columns: tuple[str, ...], suffix: str) -> tuple[str, str, str]:
    """The staging table's name, the statement that creates it, and the ``INSERT ... SELECT``."""
    # Names come from the Table metadata (``table.c[name]`` fails on any other); values never enter SQL.
    names = ", ".join(table.c[name].name for name in columns)
    staging = f"lkps_staging_{table.name}"
    create = f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {table.name}) ON COMMIT DELETE ROWS"
    insert = f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {staging} {suffix}"  # noqa: S608
    return staging, create, insert.rstrip()


@functools.cache
def _lengths(table: Table, columns: tuple[str, ...]) -> tuple[tuple[int, int], ...]:
    """(position, limit) of each string column with a length limit: the limits ``fit`` applies."""
    limits = dict(string_lengths(table))
    return tuple((i, limits[name]) for i, name in enumerate(columns) if name in limits)


def _fitted(rows: Sequence[Sequence[Any]], lengths: tuple[tuple[int, int], ...]) -> Sequence[Sequence[Any]]:
    """``rows`` with over-long strings cut; the check runs per column in C (map/filter), since rows almost
    never need it."""
    over = [
        (i, limit)
        for i, limit in lengths
        if max(map(len, filter(None, map(itemgetter(i), rows))), default=0) > limit
    ]
    if not over:
        return rows
    out: list[Sequence[Any]] = []
    for row in rows:
        cut = list(row)
        for i, limit in over:
            if isinstance(cut[i], str):
                cut[i] = cut[i][:limit]
        out.append(cut)
    return out


def as_json_rows(table: Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]) -> str:
    """``rows`` (tuples in ``columns`` order) as one JSON array of objects, for ``json_to_recordset``: a whole
    batch in one statement and one text parameter. (One array parameter per column costs asyncpg's encoder
    two ``isinstance`` checks against abstract base classes per element: most of a webhook batch's time.)
    Times must be timezone-aware; orjson writes them in RFC 3339, which PostgreSQL reads back exactly."""
    fitted = _fitted(rows, _lengths(table, columns)) if rows else rows
    return orjson.dumps([dict(zip(columns, row, strict=True)) for row in fitted]).decode()


def typed_columns(table: Table, columns: Sequence[str]) -> list[tuple[str, str]]:
    """(name, SQL type) of ``columns`` for :func:`recordset`, from the table: times are ``timestamptz``,
    everything else the service batches is ``text``."""
    return [
        (name, "timestamptz" if isinstance(table.c[name].type, UTCDateTime) else "text") for name in columns
    ]


def recordset(
    parameter: int, columns: Sequence[tuple[str, str]], alias: str, *, ordinality: bool = False
) -> str:
    """``FROM`` text for the rows of :func:`as_json_rows` passed as ``$parameter``: ``columns`` are (name,
    SQL type) pairs (:func:`typed_columns`); with ``ordinality``, a last column ``ord`` numbers the rows from
    1 in batch order."""
    typed = ", ".join(f"{name} {sql_type}" for name, sql_type in columns)
    if not ordinality:
        return f"json_to_recordset(${parameter}::json) AS {alias}({typed})"
    names = ", ".join(name for name, _ in columns)
    rows = f"ROWS FROM (json_to_recordset(${parameter}::json) AS ({typed}))"
    return f"{rows} WITH ORDINALITY AS {alias}({names}, ord)"


async def insert_rows(
    conn: AsyncConnection,
    table: Table,
    columns: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    suffix: str = "",
) -> CursorResult[Any]:
    """Insert ``rows`` (tuples in ``columns`` order) on ``conn`` (PostgreSQL, inside a transaction)."""
    staging, create, insert = _statements(table, columns, suffix)
    driver = (await conn.get_raw_connection()).driver_connection  # the asyncpg connection
    if driver is None:
        raise RuntimeError("the database connection is closed")
    # conn.info lives as long as the database session (SQLAlchemy clears it on reconnect), like the table.
    # The COPY goes around SQLAlchemy, which starts its transaction with its first statement: if none ran
    # yet, this CREATE is that statement (else the COPY would commit alone, and ON COMMIT empty the table).
    created: set[str] = conn.info.setdefault("lkps_staging_tables", set())
    if staging not in created or not driver.is_in_transaction():
        await conn.exec_driver_sql(create)
        created.add(staging)
    try:
        await driver.copy_records_to_table(
            staging, records=_fitted(rows, _lengths(table, columns)), columns=list(columns)
        )
    except Exception as exc:
        translated = _translated(exc, staging, created)
        if translated is exc:
            raise
        raise translated from exc
    return await conn.exec_driver_sql(insert)
