"""Shared fixtures: a fresh ledger per test on SQLite and on PostgreSQL, the campaign config,
and one Prefect test harness for the whole session."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from wangjian.bootstrap import App, build_app, use_app
from wangjian.campaign import CampaignConfig, load_config
from wangjian.ledger.models import Base
from wangjian.ledger.setup import initialise_ledger
from wangjian.settings import PROJECT_ROOT, Settings

from .smtp_server import SmtpServer

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

CONFIG_DIR = PROJECT_ROOT / "config"
POSTGRES_ADMIN_URL = os.environ.get(
    "WANGJIAN_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def default_config() -> CampaignConfig:
    return load_config(CONFIG_DIR)


# --- databases ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run, dropped afterwards."""
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {str(exc).splitlines()[0]}")
    name = f"wangjian_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(
                text(
                    "select pg_terminate_backend(pid) from pg_stat_activity "
                    "where datname = :name and pid <> pg_backend_pid()"
                ),
                {"name": name},
            )
            connection.execute(text(f'drop database if exists "{name}"'))
        admin.dispose()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite ledger, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "ledger.db"
    app = build_app(Settings(database_url=f"sqlite:///{path}", config_dir=CONFIG_DIR))
    initialise_ledger(app)
    app.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path
) -> Iterator[str]:
    """Each test gets an empty, migrated ledger: a fresh SQLite file or a truncated PostgreSQL."""
    if request.param == "sqlite":
        target = tmp_path / "ledger.db"
        shutil.copy(sqlite_template, target)
        yield f"sqlite:///{target}"
        return
    url = request.getfixturevalue("postgres_url")
    engine = create_engine(url)
    if not _has_schema(engine):
        app = build_app(Settings(database_url=url, config_dir=CONFIG_DIR))
        initialise_ledger(app)
        app.dispose()
    with engine.begin() as connection:
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        connection.execute(text(f"truncate {tables} restart identity cascade"))
    engine.dispose()
    yield url


def _has_schema(engine) -> bool:  # type: ignore[no-untyped-def]
    from sqlalchemy import inspect

    return "alembic_version" in inspect(engine).get_table_names()


def make_settings(tmp_path: Path, database_url: str, **overrides: object) -> Settings:
    """Settings for a test: its own database, mailbox, reports and uploads under tmp_path."""
    values: dict[str, object] = {
        "database_url": database_url,
        "config_dir": CONFIG_DIR,
        "mailbox_dir": tmp_path / "mailbox",
        "reports_dir": tmp_path / "reports",
        "rejects_dir": tmp_path / "rejects",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def app(tmp_path: Path, database_url: str) -> Iterator[App]:
    """An initialised App on a fresh ledger (SQLite and PostgreSQL), installed for the test."""
    built = build_app(make_settings(tmp_path, database_url))
    initialise_ledger(built)
    with use_app(built):
        yield built
    built.dispose()


@pytest.fixture
def sqlite_app(tmp_path: Path, sqlite_template: Path) -> Iterator[App]:
    """An initialised App on SQLite only, for tests about logic rather than the database."""
    target = tmp_path / "ledger.db"
    shutil.copy(sqlite_template, target)
    built = build_app(make_settings(tmp_path, f"sqlite:///{target}"))
    initialise_ledger(built)
    with use_app(built):
        yield built
    built.dispose()


# --- Prefect -----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test harness (a temporary server) for the whole session: it takes ~15 s."""
    from prefect.testing.utilities import prefect_test_harness

    from wangjian.orchestration import in_process_runs

    with prefect_test_harness(server_startup_timeout=120), in_process_runs():
        yield


@pytest.fixture
def secret_blocks(
    prefect_harness: None, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str, str], None]]:
    """`save(name, value)`: a Prefect Secret block for this test only; the environment variable
    a pull step would make of it (wangjian.stack.load_secret_blocks) is restored afterwards."""
    from prefect.blocks.system import Secret

    from wangjian.stack import secret_env_name

    saved: list[str] = []

    def save(name: str, value: str) -> None:
        variable = secret_env_name(name)
        if variable:  # monkeypatch remembers the variable's value now, and restores it
            monkeypatch.setenv(variable, "")
            monkeypatch.delenv(variable)
        Secret(value=value).save(name, overwrite=True)
        saved.append(name)

    yield save
    for name in saved:
        Secret.delete(name)


# --- SMTP --------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on a free localhost port, recording what it receives."""
    with SmtpServer() as server:
        yield server
