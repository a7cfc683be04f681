"""Scale-out: one large lead file dispatched in partitions by two workers, then by one, on
PostgreSQL — the same file, the same stack, the same run of this script.

    uv run python bench/scaleout_bench.py [--rows 60000] [--partitions 2] [--chunk-rows 5000]
                                          [--postgres postgresql://postgres@127.0.0.1:5432]

Starts the production stack (scripts/stack.sh: a Prefect server on PostgreSQL, two process
workers taking one run at a time each) on throwaway databases, then for each round empties the
ledger and runs the `dispatch-partitioned` flow from this process: it starts one
`dispatch-partition` deployment run per partition, which the workers take, and waits for them.
Two workers go first, so the one-worker round, not the one this bench is about, gets the warm
caches. Prints wall time, leads per second and the speed-up; checks both rounds left the same
counts. The file is generated once per size into bench/out/ (wangjian/simulation/leadgen.py). Everything is
stopped and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
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

AS_OF = "2021-10-25"


def stack_sh(command: str, env: dict[str, str]) -> None:
    done = subprocess.run([str(ROOT / "scripts" / "stack.sh"), command], env=env, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"scripts/stack.sh {command} failed")


def stop_worker(stack_dir: Path, name: str) -> None:
    """Stop one worker of the stack (idle between rounds): its process group."""
    pid = int((stack_dir / f"{name}.pid").read_text())
    os.killpg(pid, signal.SIGKILL)
    (stack_dir / f"{name}.pid").unlink()


def reset_ledger() -> None:
    """Empty the ledger and load the configuration again, as a fresh `wangjian init` would."""
    from sqlalchemy import text

    from wangjian.bootstrap import get_app
    from wangjian.ledger.models import Base
    from wangjian.ledger.setup import initialise_ledger

    app = get_app()
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with app.engine.begin() as connection:
        connection.execute(text(f"truncate {tables} restart identity cascade"))
    initialise_ledger(app)


def workers_online(expected: int, timeout: float = 60) -> None:
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            workers = client.read_workers_for_work_pool("wangjian")
            if sum(1 for w in workers if w.status == "ONLINE") >= expected:
                return
            time.sleep(1)
    raise SystemExit(f"{expected} worker(s) not online after {timeout:.0f} s")


def dispatch_round(path: Path, partitions: int, chunk_rows: int) -> dict[str, Any]:
    from flows.dispatch_partitioned import dispatch_partitioned

    reset_ledger()
    start = time.perf_counter()
    summary = dispatch_partitioned(
        path=str(path), as_of=AS_OF, partitions=partitions, chunk_rows=chunk_rows, send=False
    )
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "summary": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--partitions", type=int, default=2)
    parser.add_argument("--chunk-rows", type=int, default=5_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432")
    args = parser.parse_args()

    from wangjian.simulation.leadgen import generate_leads

    path = OUT / f"leads-{args.rows}.csv"
    if not path.exists():
        generate_leads(path, args.rows)
    tag = uuid.uuid4().hex[:8]
    stack_dir = OUT / f"stack-{tag}"
    from wangjian.orchestration import free_port

    port = free_port()
    ledger_db = f"wangjian_scaleout_{tag}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANGJIAN_"))},
        "WANGJIAN_STACK_PYTHON": sys.executable,
        "WANGJIAN_STACK_DIR": str(stack_dir),
        "WANGJIAN_STACK_PG": args.postgres,
        "WANGJIAN_STACK_LEDGER_DB": ledger_db,
        "WANGJIAN_STACK_PREFECT_DB": f"{ledger_db}_prefect",
        "WANGJIAN_STACK_PORT": str(port),
        "WANGJIAN_STACK_WORKERS": "2",
        "WANGJIAN_STACK_WORKER_LIMIT": "1",
        "WANGJIAN_STACK_POLL": "1",
        "WANGJIAN_STACK_SCHEDULES": "off",
        "WANGJIAN_REJECTS_DIR": str(stack_dir / "rejects"),
        "WANGJIAN_REPORTS_DIR": str(stack_dir / "reports"),
        "WANGJIAN_MAILBOX_DIR": str(stack_dir / "mailbox"),
    }
    print(
        f"Scale-out: {args.rows:,} leads in {args.partitions} partitions of "
        f"{args.chunk_rows:,}-row chunks, dispatch-partition runs on process workers, "
        f"PostgreSQL ({os.cpu_count()} CPUs on this machine)",
        flush=True,
    )
    rounds: dict[int, dict[str, Any]] = {}
    try:
        stack_sh("up", env)
        os.environ.update(
            {
                k: v
                for k, v in env.items()
                if not k.startswith("WANGJIAN_STACK_") and k.startswith("WANGJIAN_")
            }
        )
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
        os.environ["WANGJIAN_DATABASE_URL"] = f"{args.postgres.rstrip('/')}/{ledger_db}"
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        for workers in (2, 1):
            if workers == 1:
                stop_worker(stack_dir, "worker-2")
            workers_online(workers)
            rounds[workers] = result = dispatch_round(path, args.partitions, args.chunk_rows)
            print(
                f"  {workers} worker(s): {result['seconds']:6.1f} s   "
                f"{args.rows / result['seconds']:8,.0f} leads/s",
                flush=True,
            )
    finally:
        stack_sh("down", env)
        from wangjian.stack import drop_databases

        drop_databases(args.postgres, [ledger_db, f"{ledger_db}_prefect"])
    shutil.rmtree(stack_dir)  # its logs are kept when a round failed
    one, two = rounds[1], rounds[2]
    # What cannot depend on which partition commits first: the leads (each lead id once), the
    # duplicates and the rejects. (Referrals can, a little: when a file repeats a lead id with
    # other details, the row committed first is kept — docs/operations.md.)
    keys = ("rows", "imported", "duplicates", "rejected")
    same = all(one["summary"][k] == two["summary"][k] for k in keys)
    referrals = [sum(r["summary"]["referrals"].values()) for r in (two, one)]
    print(
        f"  speed-up with 2 workers: {one['seconds'] / two['seconds']:.2f}x   "
        f"same leads both rounds: {'yes' if same else 'NO'} "
        f"({two['summary']['imported']:,} imported, {two['summary']['duplicates']:,} duplicates, "
        f"{two['summary']['rejected']:,} rejected; referrals {referrals[0]:,} / {referrals[1]:,})"
    )
    if not same:
        differ = {k: (one["summary"][k], two["summary"][k]) for k in keys}
        raise SystemExit(f"the two rounds disagree: {differ}")


if __name__ == "__main__":
    main()
