"""How far the Prefect UI lags behind a flow of 1,000 tasks: default server vs our tuning.

Starts a local Prefect server twice (default task-run recorder settings, then
`wangjian.orchestration.SERVER_TUNING`), runs the same flow of N mapped tasks against each, and
prints the flow's wall time and how long after it finished the server had recorded every task
run as Completed (what the office sees in the UI).

    uv run python bench/prefect_recorder_bench.py [--tasks 1000] [--postgres URL]

With `--postgres` (a server URL, e.g. postgresql://postgres@127.0.0.1:5432) each server runs on a
throwaway PostgreSQL database, as in production (scripts/stack.sh), instead of SQLite.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wangjian.orchestration import SERVER_TUNING, free_port, start_server, stop_server

CHILD = textwrap.dedent(
    """
    import json, os, sys, time, urllib.request
    from prefect import flow, task

    @task
    def touch(i: int) -> int:
        return i

    @flow
    def many(n: int) -> int:
        return len(touch.map(range(n)).result())

    def recorded(flow_run_id) -> int:
        body = {"flow_runs": {"id": {"any_": [str(flow_run_id)]}},
                "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}}}
        request = urllib.request.Request(
            os.environ["PREFECT_API_URL"] + "/task_runs/count", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request) as response:
            return int(response.read())

    n = int(sys.argv[1])
    start = time.perf_counter()
    state = many(n, return_state=True)
    finished = time.perf_counter()
    flow_run_id = state.state_details.flow_run_id
    while recorded(flow_run_id) < n and time.perf_counter() - finished < 180:
        time.sleep(0.25)
    lag = time.perf_counter() - finished
    print(json.dumps({"flow_s": finished - start, "lag_s": lag,
                      "recorded": recorded(flow_run_id)}))
    """
)


DEFAULTS = {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


@contextmanager
def server_database(postgres: str | None) -> Iterator[dict[str, str]]:
    """Settings for a server on a throwaway PostgreSQL database (dropped after), or on SQLite."""
    if not postgres:
        yield {}
        return
    from sqlalchemy.engine import make_url

    from wangjian.stack import create_databases, drop_databases

    name = f"wangjian_bench_prefect_{uuid.uuid4().hex[:8]}"
    create_databases(postgres, [name])
    url = make_url(postgres).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield {"PREFECT_API_DATABASE_CONNECTION_URL": url.render_as_string(hide_password=False)}
    finally:
        drop_databases(postgres, [name])


def measure(tasks: int, tuning: dict[str, str], postgres: str | None = None) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as home, server_database(postgres) as database:
        server = start_server(Path(home), port=free_port(), tuning={**tuning, **database})
        try:
            child = subprocess.run(
                [sys.executable, "-c", CHILD, str(tasks)],
                env={
                    **os.environ,
                    "PREFECT_API_URL": server.api_url,
                    "PREFECT_LOGGING_LEVEL": "WARNING",
                },
                capture_output=True,
                text=True,
            )
            if child.returncode:
                raise SystemExit(child.stderr[-3000:])
            return json.loads(child.stdout.strip().splitlines()[-1])
        finally:
            stop_server(Path(home))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--postgres", help="run the servers on PostgreSQL (a server URL)")
    args = parser.parse_args()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"Prefect UI lag after a flow of {args.tasks} mapped tasks "
        f"(local server on {backend}, this machine)"
    )
    for label, tuning in (("defaults (batch 1)", DEFAULTS), ("wangjian tuning", SERVER_TUNING)):
        started = time.perf_counter()
        result = measure(args.tasks, tuning, args.postgres)
        print(
            f"  {label:22} flow {result['flow_s']:6.1f} s   UI lag {result['lag_s']:6.1f} s   "
            f"recorded {int(result['recorded'])}/{args.tasks}   (bench {time.perf_counter() - started:.0f} s)"
        )


if __name__ == "__main__":
    main()
