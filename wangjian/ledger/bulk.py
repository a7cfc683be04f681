"""Set-based writes that work on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import operator
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Table, TypeDecorator
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.sql import sqltypes
from sqlalchemy.types import TypeEngine


def insert_ignore(
    session: Session,
    table: Table,
    rows: Sequence[dict[str, Any]],
    conflict: Iterable[str],
    *,
    returning: str | None = None,
) -> list[Any]:
    """Insert rows, skipping those that collide on the unique `conflict` columns.

    Returns the `returning` column of the rows actually inserted (when asked).
    """
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table).on_conflict_do_nothing(index_elements=list(conflict))
    if returning is None:
        session.execute(statement, list(rows))
        return []
    returning_statement = statement.returning(table.c[returning])
    out: list[Any] = []
    # RETURNING with executemany needs "insertmanyvalues" (SQLAlchemy 2), chunked to stay fast.
    for start in range(0, len(rows), 5000):
        result = session.execute(returning_statement, list(rows[start : start + 5000]))
        out.extend(result.scalars().all())
    return out


# --- the driver's fast lane --------------------------------------------------------------------
# Hot set-based paths (the daily sweep over a hundred thousand due clocks) hand whole columns to
# the driver: one executemany on SQLite; on PostgreSQL a COPY into a temporary table and one
# set-based statement from it.
# SQLAlchemy's per-row parameter processing would cost more than the database work, so values
# are converted column by column here, as the column types would convert them.

Columns = Mapping[str, Sequence[Any]]


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _cached(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Convert each distinct value once: sweeps repeat a few instants and days many times."""
    cache: dict[Any, Any] = {}

    def cached(value: Any) -> Any:
        try:
            return cache[value]
        except KeyError:
            out = cache[value] = convert(value)
            return out

    return cached


def _sqlite_datetime(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: the ledger stores zone-aware times only")
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _converter(dialect: str, column_type: TypeEngine[Any]) -> Callable[[Any], Any] | None:
    """How one column's Python values become what the driver takes (None: as they are)."""
    if isinstance(column_type, sqltypes.JSON):
        return _json
    if dialect != "sqlite":
        return None  # psycopg adapts aware datetimes, dates and booleans itself
    if isinstance(column_type, TypeDecorator) and isinstance(column_type.impl, sqltypes.DateTime):
        return _cached(_sqlite_datetime)
    if isinstance(column_type, sqltypes.Date):
        return _cached(date.isoformat)
    if isinstance(column_type, sqltypes.Boolean):
        return int
    return None


def _driver_columns(
    session: Session, table: Table, data: Columns, serialised: Iterable[str]
) -> dict[str, Sequence[Any]]:
    """Each column's values in driver form (JSON columns in `serialised` hold JSON text)."""
    dialect = session.get_bind().dialect.name
    ready = set(serialised)
    out: dict[str, Sequence[Any]] = {}
    for name, values in data.items():
        convert = None if name in ready else _converter(dialect, table.c[name].type)
        out[name] = (
            values if convert is None else [None if v is None else convert(v) for v in values]
        )
    return out


def _pg_stage(session: Session, table: Table, columns: Sequence[str], values: Columns) -> str:
    """COPY the columns into a temporary table (dropped at commit); returns its name."""
    dialect = session.get_bind().dialect
    quote = dialect.identifier_preparer.quote
    stage = f"stage_{table.name}_{uuid.uuid4().hex[:8]}"
    definition = ", ".join(
        f"{quote(c)} {table.c[c].type.compile(dialect=dialect)}" for c in columns
    )
    raw: Any = session.connection().connection.driver_connection
    with raw.cursor() as cursor:
        cursor.execute(f"CREATE TEMPORARY TABLE {stage} ({definition}) ON COMMIT DROP")
        names = ", ".join(quote(c) for c in columns)
        with cursor.copy(f"COPY {stage} ({names}) FROM STDIN") as copy:
            for row in zip(*(values[c] for c in columns), strict=True):
                copy.write_row(row)
    return stage


def fast_insert(
    session: Session,
    table: Table,
    data: Columns,
    *,
    serialised: Iterable[str] = (),
    ignore_conflicts_on: Sequence[str] | None = None,
) -> int:
    """INSERT column-wise data in one round; returns how many rows were inserted."""
    columns = list(data)
    if not columns or not data[columns[0]]:
        return 0
    values = _driver_columns(session, table, data, serialised)
    quote = session.get_bind().dialect.identifier_preparer.quote
    names = ", ".join(quote(c) for c in columns)
    target = f"INSERT INTO {quote(table.name)} ({names}) "
    conflict = (
        f" ON CONFLICT ({', '.join(quote(c) for c in ignore_conflicts_on)}) DO NOTHING"
        if ignore_conflicts_on
        else ""
    )
    connection = session.connection()
    if session.get_bind().dialect.name == "postgresql":
        stage = _pg_stage(session, table, columns, values)
        result = connection.exec_driver_sql(f"{target}SELECT {names} FROM {stage}{conflict}")
    else:
        sql = f"{target}VALUES ({', '.join(['?'] * len(columns))}){conflict}"
        rows = list(zip(*(values[c] for c in columns), strict=True))
        result = connection.exec_driver_sql(sql, rows)
    return int(result.rowcount)


def fast_update(
    session: Session,
    table: Table,
    data: Columns,
    *,
    keys: Sequence[str],
    where_sql: str = "",
) -> int:
    """UPDATE rows matched on `keys` from column-wise data in one round; returns rows changed."""
    columns = [c for c in data if c not in keys]
    if not data[keys[0]]:
        return 0
    values = _driver_columns(session, table, data, ())
    quote = session.get_bind().dialect.identifier_preparer.quote
    name = quote(table.name)
    extra = f" AND {name}.{where_sql}" if where_sql else ""
    connection = session.connection()
    if session.get_bind().dialect.name == "postgresql":
        stage = _pg_stage(session, table, [*columns, *keys], values)
        sql = (
            f"UPDATE {name} SET {', '.join(f'{quote(c)} = u.{quote(c)}' for c in columns)} "
            f"FROM {stage} AS u "
            f"WHERE {' AND '.join(f'{name}.{quote(k)} = u.{quote(k)}' for k in keys)}{extra}"
        )
        result = connection.exec_driver_sql(sql)
    else:
        sql = (
            f"UPDATE {name} SET {', '.join(f'{quote(c)} = ?' for c in columns)} "
            f"WHERE {' AND '.join(f'{name}.{quote(k)} = ?' for k in keys)}{extra}"
        )
        rows = list(zip(*(values[c] for c in [*columns, *keys]), strict=True))
        rows.sort(key=operator.itemgetter(len(columns)))  # in key order: neighbouring pages
        result = connection.exec_driver_sql(sql, rows)
    return int(result.rowcount)
