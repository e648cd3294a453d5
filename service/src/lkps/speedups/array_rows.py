"""Part of speedup ``bulk``: a whole batch as one JSON parameter of one PostgreSQL statement.

SQLAlchemy's ``executemany`` compiles and type-processes every row in Python (~25 µs a row here), which on a
one-process service competes with request handling; binding one array per column costs asyncpg's encoder two
``isinstance`` checks against abstract base classes per element, and its binary ``COPY`` still encodes every
value in Python-level calls (and cannot say ``ON CONFLICT``). orjson writes a whole batch, tuples as JSON
arrays, in one C call, and PostgreSQL unpacks it (:func:`array_rows`), cutting strings to their column's
length as :func:`lkps.storage.schema.fit` does, so one over-long value cannot fail a whole batch.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Boolean, Table

from ..storage.schema import UTCDateTime, string_lengths


def typed_columns(table: Table, columns: Sequence[str]) -> list[tuple[str, str]]:
    """(name, SQL type) of ``columns`` for :func:`array_rows`, from the table: times are ``timestamptz``,
    flags ``boolean``, everything else the service batches is ``text``."""
    return [(name, _sql_type(table, name)) for name in columns]


def _sql_type(table: Table, name: str) -> str:
    column_type = table.c[name].type
    if isinstance(column_type, UTCDateTime):
        return "timestamptz"
    return "boolean" if isinstance(column_type, Boolean) else "text"


def array_rows(
    parameter: int, table: Table, columns: Sequence[str], extra: Sequence[tuple[str, str]] = ()
) -> str:
    """``SELECT`` text for rows passed as ``$parameter``, one JSON array of arrays (``orjson.dumps`` of
    tuples, ``default=tuple`` for named tuples): first ``table``'s ``columns`` (typed as
    :func:`typed_columns` types them, strings cut to the column's length as
    :func:`lkps.storage.schema.fit` cuts them), then the ``extra`` (name, SQL type) values, in the tuples'
    order; a last column ``ord`` numbers the rows from 1 in batch order. Cheaper for the service than objects
    would be: no dict per row, no cut in Python. ``jsonb``, because ``->>`` on ``json`` parses the element
    again for every field."""
    limits = dict(string_lengths(table))
    fields = []
    for i, (name, sql_type) in enumerate([*typed_columns(table, columns), *extra]):
        value = f"(e->>{i})::{sql_type}"
        if i < len(columns) and name in limits:
            value = f"left({value}, {limits[name]})"
        fields.append(f"{value} AS {name}")
    rows = f"jsonb_array_elements(${parameter}::jsonb) WITH ORDINALITY AS rows(e, ord)"
    return f"SELECT {', '.join(fields)}, ord FROM {rows}"  # noqa: S608 - names only, values are ${parameter}
