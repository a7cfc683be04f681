"""Set-based writes that work on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session


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
