"""Batched writes on PostgreSQL: a whole batch as one JSON parameter of one statement.

SQLAlchemy's ``executemany`` compiles and type-processes every row in Python (~25 µs a row here), which on a
one-process service competes with request handling; binding one array per column costs asyncpg's encoder two
``isinstance`` checks against abstract base classes per element, and its binary ``COPY`` still encodes every
value in Python-level calls (and cannot say ``ON CONFLICT``). orjson writes a whole batch in one C call, and
PostgreSQL unpacks it (:func:`recordset` for arrays of objects, :func:`array_rows` for arrays of arrays).
Strings are cut to their column's length as :func:`lkps.models.fit` does (:func:`as_json_rows` in Python,
:func:`array_rows` in SQL), so one over-long value cannot fail a whole batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Boolean, Table

from .models import UTCDateTime, string_lengths


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
    """(name, SQL type) of ``columns`` for :func:`recordset` and :func:`array_rows`, from the table: times are
    ``timestamptz``, flags ``boolean``, everything else the service batches is ``text``."""
    return [(name, _sql_type(table, name)) for name in columns]


def _sql_type(table: Table, name: str) -> str:
    column_type = table.c[name].type
    if isinstance(column_type, UTCDateTime):
        return "timestamptz"
    return "boolean" if isinstance(column_type, Boolean) else "text"


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


def array_rows(
    parameter: int, table: Table, columns: Sequence[str], extra: Sequence[tuple[str, str]] = ()
) -> str:
    """``SELECT`` text for rows passed as ``$parameter``, one JSON array of arrays (``orjson.dumps`` of
    tuples, ``default=tuple`` for named tuples): first ``table``'s ``columns`` (typed as
    :func:`typed_columns` types them, strings cut to the column's length as :func:`lkps.models.fit` cuts
    them), then the ``extra`` (name, SQL type) values, in the tuples' order; a last column ``ord`` numbers the
    rows from 1 in batch order. Cheaper for the service than :func:`as_json_rows`: no dict per row, no cut
    in Python. ``jsonb``, because ``->>`` on ``json`` parses the element again for every field."""
    limits = dict(string_lengths(table))
    fields = []
    for i, (name, sql_type) in enumerate([*typed_columns(table, columns), *extra]):
        value = f"(e->>{i})::{sql_type}"
        if i < len(columns) and name in limits:
            value = f"left({value}, {limits[name]})"
        fields.append(f"{value} AS {name}")
    rows = f"jsonb_array_elements(${parameter}::jsonb) WITH ORDINALITY AS rows(e, ord)"
    return f"SELECT {', '.join(fields)}, ord FROM {rows}"  # noqa: S608 - names only, values are ${parameter}
