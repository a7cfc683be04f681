"""Wiring, chosen in one place: settings → configuration, calendar, database, mailer.

Flows, tasks, the CLI and the portal ask `get_app()` for what they need. A process builds its
`App` once from the environment; tests and the demo build their own and install it with
`use_app()` — no module globals are patched anywhere.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from wangjian.campaign import CampaignConfig, load_config
from wangjian.domain.calendar import WorkCalendar
from wangjian.domain.clock import parse_as_of
from wangjian.ledger.db import create_ledger_engine, session_factory
from wangjian.settings import Settings, disable_prefect_analytics, load_settings


@dataclass
class App:
    """Everything a unit of work needs: settings, campaign config, calendar, database."""

    settings: Settings
    config: CampaignConfig
    engine: Engine
    sessions: sessionmaker[Session]
    extras: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def calendar(self) -> WorkCalendar:
        return WorkCalendar(self.config.calendar)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.campaign.time_zone)

    def as_of(self, value: str | datetime | None) -> datetime:
        return parse_as_of(value, self.tz)

    @cached_property
    def mailer(self) -> Any:
        from wangjian.mail import build_mailer

        return build_mailer(self.settings, self.config)

    def dispose(self) -> None:
        dispatcher = self.extras.pop("dispatcher", None)  # wangjian.ledger.dispatcher
        if dispatcher is not None:
            dispatcher.close()
        self.engine.dispose()


def build_app(settings: Settings | None = None, **overrides: Any) -> App:
    """Build an App from settings (read from the environment when not given)."""
    disable_prefect_analytics()
    settings = settings or load_settings(**overrides)
    settings.check_secrets()
    config = load_config(settings.config_dir)
    engine = create_ledger_engine(settings.database_url)
    return App(settings=settings, config=config, engine=engine, sessions=session_factory(engine))


_lock = threading.Lock()
_current: App | None = None


def get_app() -> App:
    """The process's App, built from the environment on first use."""
    global _current
    with _lock:
        if _current is None:
            _current = build_app()
        return _current


@contextmanager
def use_app(app: App) -> Iterator[App]:
    """Make `app` the process's App for the duration (tests, the demo, the CLI)."""
    global _current
    with _lock:
        previous, _current = _current, app
    try:
        yield app
    finally:
        with _lock:
            _current = previous
