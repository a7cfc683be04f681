"""Dispatch benchmark: a million realistic leads end to end, beside the floor and the naive design.

    uv run python bench/dispatch_bench.py                    # 1,000,000 leads on SQLite
    uv run python bench/dispatch_bench.py --rows 100000      # smaller
    uv run python bench/dispatch_bench.py --postgres postgresql://postgres@127.0.0.1/postgres

In the same run, each in a process of its own (so each reports its own peak memory):
- floor: read the same file with the same reader and bulk-insert the same rows as leads, with
  no checks, routing, deduplication, referrals, clocks or notices;
- dispatch: the `dispatch-leads` flow, end to end (a Prefect test server, started beforehand);
- naive: one Prefect task per lead, on 1,000 leads;
- dispatch on PostgreSQL, when a server is given (a scratch database, dropped afterwards).

The file is generated once per size into bench/out/ (see wangjian/simulation/leadgen.py). Bar: >= 40,000
leads/s on SQLite, within 2.5x of the floor, peak RSS <= 2 GiB.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out"
sys.path[:0] = [str(ROOT), str(HERE)]

BAR_RATE = 40_000
BAR_FLOOR_RATIO = 2.5
BAR_RSS_MIB = 2048


def _settings(database_url: str, work: Path) -> Any:
    from wangjian.settings import Settings

    return Settings(
        database_url=database_url,
        config_dir=ROOT / "config",
        rejects_dir=work / "rejects",
        mailbox_dir=work / "mailbox",
        reports_dir=work / "reports",
    )


def _fresh_sqlite(work: Path, name: str, page_size: int | None = None) -> str:
    path = work / f"{name}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    if page_size:  # fixed when the file is made: before the first table and before WAL mode
        import sqlite3

        connection = sqlite3.connect(path)
        connection.execute(f"pragma page_size={int(page_size)}")
        connection.execute("pragma journal_mode=wal")
        connection.execute("create table _made (x)")
        connection.execute("drop table _made")
        connection.close()
    return f"sqlite:///{path}"


def _ledger(database_url: str, work: Path) -> Any:
    from wangjian.bootstrap import build_app
    from wangjian.ledger.setup import initialise_ledger

    app = build_app(_settings(database_url, work))
    initialise_ledger(app)
    return app


# --- the phases, each run in a child process ---------------------------------------------------


def _children_peak_mib() -> dict[str, float]:
    """Peak RSS (VmHWM) of this process's live children, by role, read from /proc (Linux).

    The dispatcher writes large files from a process of its own and the Prefect test server runs
    in another: the flow's own peak leaves both out.
    """
    peaks: dict[str, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if parent != os.getpid():
                continue
            folder = stat.parent
            command = (folder / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (folder / "status").read_text()
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read
        hwm = next((line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")), 0)
        if "resource_tracker" in command:
            continue
        role = "dispatcher" if "multiprocessing" in command else "prefect_server"
        peaks[role] = max(peaks.get(role, 0.0), int(hwm) / 1024)
    return peaks


def _warm_up() -> None:
    """Start the Prefect server and engine before the clock does (a flow that does nothing)."""
    from prefect import flow

    flow(lambda: None, name="warm-up")()


def phase_floor(path: Path, database_url: str, work: Path) -> dict[str, Any]:
    """Read the file with the same reader and insert its rows as leads, with no logic."""
    from wangjian.intake import inspect_lead_file, read_lead_chunks

    app = _ledger(database_url, work)
    start = time.perf_counter()
    info = inspect_lead_file(path)
    columns = [c for c in info.header if c != "lead_id"]
    names = ["source_lead_id", *columns, "status", "priority", "received_at"]
    marks = ", ".join(["?"] * (len(names) - 3)) + ", 'referred', 'normal', '2021-10-25 01:00:00'"
    rows = 0
    for raw in read_lead_chunks(info):
        data = [raw["lead_id"].tolist(), *(raw[c].tolist() for c in columns)]
        with app.engine.begin() as connection:
            connection.exec_driver_sql(
                f"insert into leads ({', '.join(names)}) values ({marks}) on conflict do nothing",
                list(zip(*data, strict=True)),
            )
        rows += len(raw)
    return {"rows": rows, "seconds": time.perf_counter() - start}


def phase_dispatch(path: Path, database_url: str, work: Path) -> dict[str, Any]:
    """The dispatch-leads flow on the whole file (the Prefect server is up before the clock)."""
    from prefect.testing.utilities import prefect_test_harness

    from wangjian.bootstrap import use_app

    app = _ledger(database_url, work)
    with prefect_test_harness(server_startup_timeout=180), use_app(app):
        _warm_up()
        from flows.dispatch_leads import dispatch_leads

        start = time.perf_counter()
        summary = dispatch_leads(path=str(path), as_of="2021-10-25", send=False)
        seconds = time.perf_counter() - start
        children = _children_peak_mib()
    summary.pop("terms", None)
    return {"rows": summary["rows"], "seconds": seconds, "summary": summary, "children": children}


def phase_naive(path: Path, database_url: str, work: Path, leads: int) -> dict[str, Any]:
    """One Prefect task per lead: check, route and refer it alone, in its own transaction."""
    from prefect import flow, task
    from prefect.cache_policies import NO_CACHE
    from prefect.testing.utilities import prefect_test_harness

    from wangjian.bootstrap import get_app, use_app
    from wangjian.domain.routing import RoutingTable, route_leads
    from wangjian.intake import inspect_lead_file, read_lead_chunks, validate_lead_chunk
    from wangjian.ledger.dispatch import LeadBatch, dispatch_batch, open_lead_import

    app = _ledger(database_url, work)
    table = RoutingTable.from_config(app.config)
    info = inspect_lead_file(path)
    first = next(read_lead_chunks(info, leads)).head(leads)

    @task(cache_policy=NO_CACHE)
    def refer_one(import_id: int, row: Any) -> None:
        current = get_app()
        frame = row.to_frame().T.reset_index(drop=True)
        checked = validate_lead_chunk(frame, categories=set(current.config.categories))
        routing = route_leads(table, checked.valid)
        batch = LeadBatch.assemble(
            checked.valid,
            routing,
            rejected_rows=checked.rejected_rows,
            last_row=int(row["row"]),
            rows=1,
        )
        dispatch_batch(app=current, import_id=import_id, batch=batch)

    @flow
    def naive_dispatch() -> None:
        state = open_lead_import(
            app=get_app(), file_name="naive", sha256=uuid.uuid4().hex, as_of=app.as_of("2021-10-25")
        )
        for _index, row in first.iterrows():
            refer_one(state.id, row)

    with prefect_test_harness(server_startup_timeout=180), use_app(app):
        _warm_up()
        start = time.perf_counter()
        naive_dispatch()
        seconds = time.perf_counter() - start
    return {"rows": len(first), "seconds": seconds}


PHASES = {"floor": phase_floor, "dispatch": phase_dispatch, "naive": phase_naive}


def _child(phase: str, args: list[str]) -> dict[str, Any]:
    """Run one phase in a fresh interpreter; returns its figures and its own peak RSS."""
    command = [sys.executable, __file__, "--phase", phase, *args]
    env = {**os.environ, "PREFECT_LOGGING_LEVEL": "WARNING", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"phase {phase} failed (exit {done.returncode})")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _postgres_database(admin_url: str) -> tuple[str, Any]:
    from sqlalchemy import create_engine, text

    from wangjian.ledger.db import normalise_url

    admin = create_engine(normalise_url(admin_url), isolation_level="AUTOCOMMIT")
    name = f"wangjian_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'create database "{name}"'))

    def drop() -> None:
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

    return normalise_url(admin_url).rsplit("/", 1)[0] + f"/{name}", drop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="leads in the file")
    parser.add_argument("--naive-rows", type=int, default=1_000, help="leads for the naive run")
    parser.add_argument("--postgres", metavar="URL", help="also run on this PostgreSQL server")
    parser.add_argument(
        "--page-size",
        type=int,
        metavar="BYTES",
        help="SQLite page size of the benchmark's databases (default: SQLite's, 4096)",
    )
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--database", help=argparse.SUPPRESS)
    args = parser.parse_args()
    work = OUT / "work"
    work.mkdir(parents=True, exist_ok=True)

    if args.phase:  # a child: run one phase, print its figures as the last line
        extra = (args.naive_rows,) if args.phase == "naive" else ()
        result = PHASES[args.phase](args.file, args.database, work, *extra)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result, ensure_ascii=False, default=str))
        return

    from wangjian.simulation.leadgen import generate_leads

    path = OUT / f"leads-{args.rows}.csv"
    if not path.exists():
        print(f"generating {args.rows:,} leads into {path} …", file=sys.stderr)
        generate_leads(path, args.rows)
    print(
        f"{path.name}: {path.stat().st_size / 2**20:.0f} MiB, {os.cpu_count()} CPUs",
        file=sys.stderr,
    )

    results: dict[str, dict[str, Any]] = {}
    pages = args.page_size
    runs = [
        ("floor", "floor (read + bulk insert, no logic)", _fresh_sqlite(work, "floor", pages)),
        ("dispatch", "dispatch-leads flow, SQLite", _fresh_sqlite(work, "dispatch", pages)),
        (
            "naive",
            f"naive: a task per lead ({args.naive_rows:,})",
            _fresh_sqlite(work, "naive", pages),
        ),
    ]
    drop = None
    if args.postgres:
        url, drop = _postgres_database(args.postgres)
        runs.append(("dispatch", "dispatch-leads flow, PostgreSQL", url))
    try:
        for phase, label, database in runs:
            print(f"• {label} …", file=sys.stderr)
            options = [
                "--file",
                str(path),
                "--database",
                database,
                "--naive-rows",
                str(args.naive_rows),
            ]
            results[label] = _child(phase, options)
    finally:
        if drop is not None:
            drop()

    print(f"\n{'run':44} {'leads':>10} {'seconds':>9} {'leads/s':>10} {'peak RSS':>10}")
    for label, result in results.items():
        rate = result["rows"] / result["seconds"]
        print(
            f"{label:44} {result['rows']:>10,} {result['seconds']:>9.2f} {rate:>10,.0f}"
            f" {result['peak_rss_mib']:>7,.0f} MiB"
        )
    for label, result in results.items():
        for role, mib in (result.get("children") or {}).items():
            print(f"  {label}: its {role.replace('_', ' ')} process peaked at {mib:,.0f} MiB")
    floor, full = results[runs[0][1]], results[runs[1][1]]
    # The memory bar counts what the import holds: the flow's process and its dispatcher.
    full_peak = full["peak_rss_mib"] + (full.get("children") or {}).get("dispatcher", 0.0)
    rate = full["rows"] / full["seconds"]
    ratio = full["seconds"] / floor["seconds"]
    naive = results[runs[2][1]]
    print(
        f"\ndispatch vs floor: {ratio:.2f}x the floor's time (bar {BAR_FLOOR_RATIO}x); "
        f"vs naive: {rate / (naive['rows'] / naive['seconds']):,.0f}x faster per lead"
    )
    print(
        f"bar: {rate:,.0f} leads/s {'≥' if rate >= BAR_RATE else '<'} {BAR_RATE:,} · "
        f"{ratio:.2f}x {'≤' if ratio <= BAR_FLOOR_RATIO else '>'} {BAR_FLOOR_RATIO}x · "
        f"peak {full_peak:,.0f} MiB (flow + dispatcher) {'≤' if full_peak <= BAR_RSS_MIB else '>'} "
        f"{BAR_RSS_MIB:,} MiB"
    )
    summary = full.get("summary", {})
    print(
        "dispatch result:",
        json.dumps(
            {
                k: summary.get(k)
                for k in ("imported", "duplicates", "rejected", "held", "attached", "referrals")
            },
            ensure_ascii=False,
        ),
    )


if __name__ == "__main__":
    main()
