"""The daily sweep over a million open referral clocks: its time follows what is due, not what is open.

    uv run python bench/sweep_bench.py [--postgres URL] [--keep DIR]

Three ledgers, built with set-based inserts (a recursive CTE on SQLite, generate_series on
PostgreSQL; the due clocks through one executemany):

    A   100,000 open,  10,000 due
    B 1,000,000 open,  10,000 due     same due as A, ten times the open clocks
    C 1,000,000 open, 100,000 due     10% due or overdue: the bar is ≤ 5 s on SQLite

Due clocks are in the state a daily sweep leaves them the day before (their due dates spread
over the past three weeks and the next few days, so every step of the ladder is represented);
the others fall due weeks later. Each sweep runs as the flow runs it, in one transaction, and
is timed with its commit; a second sweep the same day shows the idempotent case.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import create_engine, func, insert, select, text

from wangjian.bootstrap import App, build_app
from wangjian.campaign import load_config
from wangjian.domain.deadlines import end_of_day
from wangjian.domain.ladder import bulk_step_times, bulk_steps_to_send
from wangjian.ledger.bulletin import select_overdue_items
from wangjian.ledger.db import normalise_url, transaction
from wangjian.ledger.models import Deadline, Notice
from wangjian.ledger.setup import initialise_ledger
from wangjian.ledger.sweep import sweep_deadlines
from wangjian.settings import PROJECT_ROOT, Settings

AS_OF_DAY = date(2025, 11, 20)
LADDER = "referral_outcome"
SCENARIOS = [("A", 100_000, 10_000), ("B", 1_000_000, 10_000), ("C", 1_000_000, 100_000)]


@dataclass
class Figures:
    name: str
    open: int
    due: int
    build_s: float
    sweep_s: float
    sweep_cpu_s: float
    notices: int
    second_s: float
    office_s: float
    overdue: int


def _utc_naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def due_rows(app: App, count: int, first_id: int) -> list[dict[str, Any]]:
    """`count` clocks as an earlier sweep left them, each with a step due by today 09:00."""
    tz, steps = app.tz, app.config.ladder(LADDER)
    rng = np.random.default_rng(20251120)
    morning = datetime.combine(AS_OF_DAY, datetime.min.time(), tz) + timedelta(hours=9)
    as_of64 = np.datetime64(_utc_naive(morning), "ns")
    kept: list[pd.DataFrame] = []
    found = 0
    while found < count:
        # Due days from four weeks ago to three days ahead, so every step comes up; most
        # clocks were swept yesterday, some last week (a gap the sweep catches up on).
        n = 4 * count
        days = [AS_OF_DAY + timedelta(days=int(o)) for o in rng.integers(-28, 4, size=n)]
        due_on = pd.Series(days)
        due_at = pd.Series([end_of_day(d, tz) for d in days])
        due_at64 = pd.to_datetime(due_at, utc=True).dt.tz_localize(None).to_numpy("<M8[ns]")
        fire = bulk_step_times(steps, due_on, due_at, app.calendar, tz)
        gap = rng.choice([1, 1, 1, 1, 1, 2, 3, 7], size=n)
        nxt = np.zeros(n, dtype=np.int64)
        for days_ago in np.unique(gap):
            rows = np.flatnonzero(gap == days_ago)
            last = np.datetime64(_utc_naive(morning - timedelta(days=int(days_ago))), "ns")
            _sent, nxt[rows] = bulk_steps_to_send(
                steps, fire[rows], np.zeros(rows.size, np.int64), last, due_at64[rows]
            )
        pending = nxt < len(steps)
        next_fire = np.where(pending, fire[np.arange(n), np.minimum(nxt, len(steps) - 1)], as_of64)
        ready = np.flatnonzero(pending & (next_fire <= as_of64))[: count - found]
        found += ready.size
        kept.append(
            pd.DataFrame(
                {
                    "due_on": due_on.iloc[ready].to_numpy(),
                    "due_at": due_at.iloc[ready].to_numpy(),
                    "next_step": nxt[ready],
                    "next_fire_at": pd.to_datetime(next_fire[ready]).tz_localize("UTC"),
                }
            )
        )
    frame = pd.concat(kept, ignore_index=True)
    names = [s.step for s in steps]
    return [
        {
            "subject_type": "referral",
            "subject_id": first_id + i,
            "kind": LADDER,
            "party": PARTIES[i % len(PARTIES)],
            "ladder": LADDER,
            "due_on": row.due_on,
            "due_at": row.due_at,
            "provisional": False,
            "status": "open",
            "next_step": int(row.next_step),
            "next_fire_at": row.next_fire_at.to_pydatetime(),
            "last_step": names[int(row.next_step) - 1] if row.next_step else None,
            "version": 2,
        }
        for i, row in enumerate(frame.itertuples(index=False))
    ]


PARTIES: list[str] = []


def fill_not_due(app: App, count: int) -> None:
    """`count` open clocks falling due weeks from now, in one INSERT … SELECT."""
    if count <= 0:
        return
    parties = ", ".join(f"'{p}'" for p in PARTIES)
    base = AS_OF_DAY + timedelta(days=14)
    with app.engine.begin() as connection:
        if app.engine.dialect.name == "sqlite":
            connection.exec_driver_sql(
                f"""
                WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < {count}),
                     p(code, n) AS (SELECT value, key FROM json_each('{json.dumps(PARTIES)}'))
                INSERT INTO deadlines (subject_type, subject_id, kind, party, ladder, due_on, due_at,
                    provisional, status, next_step, next_fire_at, version)
                SELECT 'referral', i, '{LADDER}', (SELECT code FROM p WHERE n = i % {len(PARTIES)}),
                    '{LADDER}', date('{base}', '+' || (i % 60) || ' days'),
                    datetime('{base}', '+' || (i % 60) || ' days', '+15 hours', '+59 minutes',
                             '+59 seconds') || '.000000',
                    0, 'open', 0,
                    datetime('{base}', '+' || (i % 60) || ' days', '-4 days', '-8 hours') || '.000000',
                    2
                FROM seq
                """
            )
        else:
            connection.execute(
                text(
                    f"""
                    INSERT INTO deadlines (subject_type, subject_id, kind, party, ladder, due_on,
                        due_at, provisional, status, next_step, next_fire_at, version)
                    SELECT 'referral', i, '{LADDER}', (ARRAY[{parties}])[1 + i % {len(PARTIES)}],
                        '{LADDER}', DATE '{base}' + (i % 60),
                        (DATE '{base}' + (i % 60) + TIME '23:59:59') AT TIME ZONE 'Asia/Shanghai',
                        false, 'open', 0,
                        (DATE '{base}' + (i % 60) - 4) AT TIME ZONE 'Asia/Shanghai', 2
                    FROM generate_series(1, {count}) AS i
                    """
                )
            )


def build(app: App, open_count: int, due_count: int) -> float:
    started = time.perf_counter()
    initialise_ledger(app)
    fill_not_due(app, open_count - due_count)
    rows = due_rows(app, due_count, first_id=10_000_000)
    with transaction(app.sessions) as session:
        session.execute(insert(Deadline), rows)
    with app.engine.begin() as connection:
        connection.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def measure(app: App, name: str, open_count: int, due_count: int) -> Figures:
    build_s = build(app, open_count, due_count)
    as_of = datetime.combine(AS_OF_DAY, datetime.min.time(), app.tz) + timedelta(hours=9)
    with app.sessions() as session:
        counted = session.scalar(
            select(func.count()).select_from(Deadline).where(Deadline.status == "open")
        )
    assert counted == open_count, (counted, open_count)
    started, cpu = time.perf_counter(), time.process_time()
    with transaction(app.sessions) as session:
        result = sweep_deadlines(session=session, app=app, as_of=as_of)
    sweep_s, sweep_cpu_s = time.perf_counter() - started, time.process_time() - cpu
    assert result.clocks_due == due_count, (result.clocks_due, due_count)
    started = time.perf_counter()
    with transaction(app.sessions) as session:
        again = sweep_deadlines(session=session, app=app, as_of=as_of)
    second_s = time.perf_counter() - started
    assert again.notices_queued == 0
    with app.sessions() as session:
        started = time.perf_counter()
        overdue = len(select_overdue_items(session, app=app, as_of=as_of))
        office_s = time.perf_counter() - started
        notices = session.scalar(select(func.count()).select_from(Notice)) or 0
    return Figures(
        name,
        open_count,
        due_count,
        build_s,
        sweep_s,
        sweep_cpu_s,
        notices,
        second_s,
        office_s,
        overdue,
    )


def sqlite_app(folder: Path, name: str) -> App:
    path = folder / f"sweep-{name}.db"
    path.unlink(missing_ok=True)
    return build_app(Settings(database_url=f"sqlite:///{path}", config_dir=PROJECT_ROOT / "config"))


def postgres_app(url: str, name: str) -> tuple[App, str]:
    url = normalise_url(url)  # a plain postgresql:// URL means psycopg 3
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    database = f"wangjian_bench_{name.lower()}_{uuid.uuid4().hex[:6]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{database}"'))
    admin.dispose()
    target = url.rsplit("/", 1)[0] + f"/{database}"
    return build_app(Settings(database_url=target, config_dir=PROJECT_ROOT / "config")), database


def drop_postgres(url: str, database: str) -> None:
    admin = create_engine(normalise_url(url), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
    admin.dispose()


def report(engine: str, figures: list[Figures]) -> None:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{engine}: sweep at {AS_OF_DAY} 09:00 Asia/Shanghai, ladder {LADDER} (load {load})")
    print(
        f"{'':2} {'open':>10} {'due':>8} {'build s':>8} {'sweep s':>8} {'cpu s':>6} {'µs/due':>7} "
        f"{'notices':>8} {'again s':>8} {'overdue':>8} {'office s':>8}"
    )
    for f in figures:
        print(
            f"{f.name:2} {f.open:>10,} {f.due:>8,} {f.build_s:>8.1f} {f.sweep_s:>8.2f} "
            f"{f.sweep_cpu_s:>6.2f} "
            f"{f.sweep_s / f.due * 1e6:>7.1f} {f.notices:>8,} {f.second_s:>8.3f} "
            f"{f.overdue:>8,} {f.office_s:>8.2f}"
        )
    by = {f.name: f for f in figures}
    if {"A", "B", "C"} <= set(by):
        print(
            f"same due, 10× open (B/A): {by['B'].sweep_s / by['A'].sweep_s:.2f}×;  "
            f"10× due, same open (C/B): {by['C'].sweep_s / by['B'].sweep_s:.2f}×"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument("--keep", type=Path, help="keep the SQLite files in this folder")
    parser.add_argument("--only", nargs="*", default=None, help="scenarios to run (A B C)")
    args = parser.parse_args()
    PARTIES[:] = list(load_config(PROJECT_ROOT / "config").agencies)
    scenarios = [s for s in SCENARIOS if args.only is None or s[0] in args.only]

    folder = args.keep or Path(tempfile.mkdtemp(prefix="wangjian-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    figures = []
    for name, open_count, due_count in scenarios:
        app = sqlite_app(folder, name)
        figures.append(measure(app, name, open_count, due_count))
        app.dispose()
        if not args.keep:
            for path in folder.glob(f"sweep-{name}.db*"):
                path.unlink()
    report("SQLite", figures)
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)

    if args.postgres:
        figures = []
        for name, open_count, due_count in scenarios:
            app, database = postgres_app(args.postgres, name)
            try:
                figures.append(measure(app, name, open_count, due_count))
            finally:
                app.dispose()
                drop_postgres(args.postgres, database)
        report("PostgreSQL", figures)


if __name__ == "__main__":
    main()
