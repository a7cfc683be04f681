"""Engines and sessions for SQLite (the embedded default, in WAL mode) and PostgreSQL."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


class DatabaseUnavailable(Exception):
    """The ledger database cannot be reached or opened."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs given without a driver."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def create_ledger_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the ledger; SQLite gets WAL, foreign keys and a busy timeout."""
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 60}, **kwargs)

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, decide when transactions begin (BEGIN IMMEDIATE
            # below), so concurrent writers queue instead of failing half-way.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=60000")
            cursor.execute("PRAGMA cache_size=-200000")
            # The log is reused, not shrunk, once checkpointed: a million-lead import would
            # leave gigabytes of it on disk for as long as the ledger stays open.
            cursor.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin(conn: Any) -> None:
            # A reader (see `reading`) takes no write lock: in WAL mode it reads the last commit
            # while a writer works, instead of queueing behind it.
            reader = conn.get_execution_options().get(READ_ONLY)
            conn.exec_driver_sql("BEGIN" if reader else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


WAL_SIZE_LIMIT = 64 * 2**20  # bytes of write-ahead log SQLite keeps once it has been checkpointed
READ_ONLY = "wangjian_read_only"  # execution option of connections that only read


@contextmanager
def reading(engine: Engine) -> Iterator[Session]:
    """A session that only reads. On SQLite it does not wait for the write lock, so a stage that
    looks things up runs beside a dispatcher writing the chunk before. Only for reading."""
    with (
        engine.connect().execution_options(**{READ_ONLY: True}) as connection,
        Session(bind=connection) as session,
    ):
        yield session


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work commits together or not at all."""
    with factory() as session, session.begin():
        yield session


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


def serialise(session: Session, name: str) -> None:
    """Make the writers named `name` take turns, each until its transaction ends: PostgreSQL's
    transaction-scoped advisory lock. (On SQLite, BEGIN IMMEDIATE serialises every writer.)"""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("select pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(name.encode())}
        )
