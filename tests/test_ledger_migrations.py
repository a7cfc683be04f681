"""The ledger schema: migrations build it on SQLite and PostgreSQL, again safely, matching the models."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, select

from wangjian.bootstrap import build_app
from wangjian.ledger import migrate
from wangjian.ledger.models import Base, Meta, Party
from wangjian.ledger.setup import initialise_ledger

from .conftest import make_settings


def test_init_builds_the_schema_and_is_safe_to_run_again(tmp_path: Path, database_url: str) -> None:
    app = build_app(make_settings(tmp_path, database_url))
    first = initialise_ledger(app)
    second = initialise_ledger(app)
    assert first["schema"] == second["schema"] == migrate.head_revision()
    assert second["parties"] == {"added": 0, "updated": 0, "retired": 0}
    tables = set(inspect(app.engine).get_table_names())
    assert {t.name for t in Base.metadata.sorted_tables} <= tables
    with app.sessions() as session:
        members = session.scalars(select(Party).where(Party.kind == "member")).all()
        assert len(members) == 15
        meta = {m.key: m.value for m in session.scalars(select(Meta))}
    assert meta["campaign_code"] == "wangjian-2021-district"
    app.dispose()


def test_migrations_match_the_models(tmp_path: Path, database_url: str) -> None:
    app = build_app(make_settings(tmp_path, database_url))
    initialise_ledger(app)
    with app.engine.connect() as connection:
        diff = compare_metadata(
            MigrationContext.configure(connection, opts={"compare_type": False}), Base.metadata
        )
    assert diff == [], f"models changed without a migration: {diff}"
    app.dispose()


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    app = build_app(make_settings(tmp_path, f"sqlite:///{tmp_path / 'w.db'}"))
    initialise_ledger(app)
    with app.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    app.dispose()
