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


def test_migration_0003_hashes_existing_referrals_and_can_be_reversed(tmp_path: Path) -> None:
    """Referrals made before 0003 are found by their hashes after it; downgrading restores the
    indexes on the keys' text."""
    import sqlite3
    from contextlib import closing

    from alembic import command

    from wangjian.domain.dedup import match_hash

    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = build_app(make_settings(tmp_path, url))
    config = migrate.alembic_config(url)
    command.upgrade(config, "0002")
    with closing(sqlite3.connect(tmp_path / "old.db")) as connection, connection:
        connection.execute(
            "insert into parties (code, kind, name_zh, name_en, contact_email, active,"
            " token_version) values ('samr', 'member', '市场监管局', 'SAMR', 'a@b.cn', 1, 1)"
        )
        connection.execute(
            "insert into leads (id, source, source_lead_id, region_code, found_on,"
            " suspected_crime, status, priority, received_at) values"
            " (1, 's', 'L1', '140105', '2021-10-22', 0, 'referred', 'normal', '2021-10-25'),"
            " (2, 's', 'L2', '140105', '2021-10-22', 0, 'referred', 'normal', '2021-10-25')"
        )
        connection.execute(
            "insert into referrals (id, lead_id, agency_code, kind, category, listing_key,"
            " operator_key, status, reason, rule, received_at, ack_due_on, due_on,"
            " original_due_on, provisional, priority, extension_days, evidence_count) values"
            " (1, 1, 'samr', 'referral', 'trademark', 'shop.example.com/item/1', 'cc:X', 'open',"
            " 'r', 'category_owner', '2021-10-25 02:00:00', '2021-10-26', '2021-11-08',"
            " '2021-11-08', 0, 'normal', 0, 0),"
            " (2, 2, 'samr', 'referral', 'price', null, null, 'open', 'r', 'category_owner',"
            " '2021-10-25 02:00:00', '2021-10-26', '2021-11-08', '2021-11-08', 0, 'normal', 0, 0)"
        )
    migrate.upgrade(app.engine)
    with app.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "select id, listing_hash, operator_hash from referrals order by id"
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, match_hash("trademark", "shop.example.com/item/1"), match_hash("trademark", "cc:X")),
        (2, None, None),
    ]
    indexes = {i["name"] for i in inspect(app.engine).get_indexes("referrals")}
    assert {"ix_referrals_listing_hash", "ix_referrals_operator_hash"} <= indexes
    assert "ix_referrals_listing" not in indexes
    app.engine.dispose()
    command.downgrade(config, "0002")
    indexes = {i["name"] for i in inspect(app.engine).get_indexes("referrals")}
    columns = {c["name"] for c in inspect(app.engine).get_columns("referrals")}
    assert {"ix_referrals_listing", "ix_referrals_operator"} <= indexes
    assert "listing_hash" not in columns
    app.dispose()


def test_sqlite_shrinks_its_write_ahead_log_once_checkpointed(tmp_path: Path) -> None:
    """A large import leaves no log of its size behind (the log is reused, not shrunk)."""
    import sqlite3

    from wangjian.ledger.db import WAL_SIZE_LIMIT, create_ledger_engine

    path = tmp_path / "w.db"
    engine = create_ledger_engine(f"sqlite:///{path}")
    wal = Path(f"{path}-wal")
    with engine.begin() as connection:
        connection.exec_driver_sql("create table scratch (b blob)")
        for _ in range(WAL_SIZE_LIMIT // 2**20 + 16):
            connection.exec_driver_sql("insert into scratch values (randomblob(1048576))")
    assert wal.stat().st_size > WAL_SIZE_LIMIT
    checkpointer = sqlite3.connect(path, isolation_level=None)  # as dispatch's thread does
    busy, _frames, _copied = checkpointer.execute("pragma wal_checkpoint(PASSIVE)").fetchone()
    checkpointer.close()
    assert busy == 0
    with engine.begin() as connection:  # the next write starts the log over, and cuts it
        connection.exec_driver_sql("insert into scratch values (x'00')")
    assert wal.stat().st_size <= WAL_SIZE_LIMIT
    engine.dispose()
