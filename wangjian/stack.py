"""The production stack's Prefect side: a server on PostgreSQL, the `wangjian` process work pool,
its concurrency limits, and the automation that gives a dead worker's runs to another worker.

`scripts/stack.sh` starts the processes and calls `python -m wangjian.stack configure` once the
server is up; `prefect.yaml` runs `load_secret_blocks` and `limit_attempts` as pull steps in
every deployment run. All of it is idempotent: run it again and nothing is duplicated.

How a run survives its worker (docs/operations.md, "When a worker dies"): every flow run of a
deployment sends a heartbeat event every `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds. When a
run goes silent for `silence` seconds without reaching a final state, the automation
`RESCHEDULE_AUTOMATION` puts it back to `AwaitingRetry` (a Scheduled state): the same run, with
its parameters, is picked up by whichever worker of the pool polls next. That is safe because
every Wangjian flow is idempotent (a dispatch resumes after its last committed chunk, sweep
steps and notices are keyed, mail is leased and marked once). `limit_attempts` stops a run that
keeps killing its worker from going round for ever.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

POOL = "wangjian"
# Every send batch holds a slot of this global concurrency limit (WANGJIAN_SMTP_CONCURRENCY_LIMIT
# names it): at most `limit` batches talk to the mail relay at once, whichever flow sends.
SMTP_LIMIT = "wangjian-smtp"
# Seconds between a deployment run's heartbeats: prefect.yaml gives every run this setting
# (PREFECT_FLOWS_HEARTBEAT_FREQUENCY in the pool's job variables). A run silent for longer than
# the automation's `silence` is presumed dead, so the silence must exceed it with a margin.
HEARTBEAT_SECONDS = 30
MIN_SILENCE = timedelta(seconds=HEARTBEAT_SECONDS + 15)
# Prefect's own heartbeat period (PREFECT_FLOWS_HEARTBEAT_FREQUENCY's default in 3.8), for runs
# started outside the pool.
DEFAULT_HEARTBEAT = timedelta(seconds=180)
RESCHEDULE_AUTOMATION = "wangjian: reschedule runs whose worker died"
CRASH_AUTOMATION = "wangjian: mark silent subflow runs crashed"
SECRET_PREFIX = "wangjian-"
FINAL_EVENTS = (
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Cancelling",
    "prefect.flow-run.Crashed",
)


# --- pull steps (run in each deployment run's process, before the flow is loaded) ---------------


def secret_env_name(block_name: str, prefix: str = SECRET_PREFIX) -> str | None:
    """`wangjian-smtp-password` → `WANGJIAN_SMTP_PASSWORD`; None for blocks not ours."""
    if not block_name.startswith(prefix) or block_name == prefix:
        return None
    return block_name.replace("-", "_").upper()


def load_secret_blocks(prefix: str = SECRET_PREFIX) -> dict[str, list[str]]:
    """Pull step: each Secret block named `wangjian-…` becomes the environment variable of the
    same name (`wangjian-smtp-password` → `WANGJIAN_SMTP_PASSWORD`), unless that variable is set
    already. Returns the names loaded, never the values."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    loaded: list[str] = []
    with get_client(sync_client=True) as client:
        try:
            documents = client.read_block_documents_by_type("secret", include_secrets=True)
        except ObjectNotFound:
            documents = []
    for document in documents:
        name = secret_env_name(document.name or "", prefix)
        if name is None or name in os.environ:
            continue
        value = (document.data or {}).get("value")
        if isinstance(value, str):
            os.environ[name] = value
            loaded.append(name)
    return {"loaded": sorted(loaded)}


class AttemptsExhausted(RuntimeError):
    """A deployment run started too many times: its worker died each time."""


def limit_attempts(max_attempts: int = 3) -> dict[str, int]:
    """Pull step: refuse a run that has already started `max_attempts` times (each restart
    follows a worker that died under it), so a run that kills its worker — a file too large
    for its memory, say — fails once for the office to see instead of going round for ever."""
    from prefect.client.orchestration import get_client
    from prefect.states import Failed

    run_id = os.environ.get("PREFECT__FLOW_RUN_ID")
    if not run_id:
        return {"run_count": 0}
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)  # type: ignore[arg-type]
        if run.run_count < max_attempts:
            return {"run_count": run.run_count}
        message = (
            f"started {run.run_count} times and its worker died each time; not started again "
            "(see docs/operations.md, 'When a worker dies')"
        )
        client.set_flow_run_state(run.id, Failed(message=message), force=True)
    raise AttemptsExhausted(message)


# --- the server's configuration -----------------------------------------------------------------


def reschedule_automation(silence: timedelta) -> Any:
    """Runs of deployments whose heartbeats stop (their worker or machine died) go back to
    `AwaitingRetry`, for another worker of the pool to pick up.

    The watch starts when the server records the run Pending or Running (so a process that dies
    before its first heartbeat reaches the server is caught too) and again at every heartbeat;
    the next heartbeat, the start of the run, or a final state must follow within `silence`."""
    from prefect.automations import AutomationCore
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=RESCHEDULE_AUTOMATION,
        description=(
            f"A deployment's flow run that sends no heartbeat for {silence.total_seconds():.0f} s "
            "before it ends is rescheduled (AwaitingRetry), so another worker runs it again. "
            "Wangjian's flows are idempotent; wangjian.stack.limit_attempts bounds the restarts."
        ),
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            match_related=ResourceSpecification({"prefect.resource.role": "deployment"}),
            after={
                "prefect.flow-run.Pending",
                "prefect.flow-run.Running",
                "prefect.flow-run.heartbeat",
            },
            expect={"prefect.flow-run.Running", "prefect.flow-run.heartbeat", *FINAL_EVENTS},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=silence,
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.SCHEDULED,
                name="AwaitingRetry",
                message=(
                    f"no heartbeat for {silence.total_seconds():.0f} s: its worker is presumed "
                    "dead; rescheduled for another worker"
                ),
            )
        ],
    )


def crash_window(silence: timedelta) -> timedelta:
    """How long any flow run may go without a heartbeat before it is marked Crashed: longer than
    Prefect's default heartbeat period, so that a flow run outside the pool (a script's, beating
    every `DEFAULT_HEARTBEAT` seconds) is never taken for dead while it runs."""
    return max(silence * 2, DEFAULT_HEARTBEAT + silence)


def crash_automation(silence: timedelta) -> Any:
    """Flow runs still silent after `crash_window` — subflows of a dead run, which cannot be
    rescheduled on their own — are marked Crashed, so the UI shows nothing running that is not."""
    from prefect.automations import AutomationCore
    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import EventTrigger, Posture
    from prefect.events.schemas.events import ResourceSpecification

    return AutomationCore(
        name=CRASH_AUTOMATION,
        description=(
            f"Flow runs that have sent heartbeats and then none for "
            f"{crash_window(silence).total_seconds():.0f} s are marked Crashed."
        ),
        trigger=EventTrigger(
            match=ResourceSpecification({"prefect.resource.id": "prefect.flow-run.*"}),
            after={"prefect.flow-run.heartbeat"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.AwaitingRetry", *FINAL_EVENTS},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=crash_window(silence),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message="no heartbeat: the process running it is gone",
            )
        ],
    )


def configure(*, pool: str, smtp_slots: int, silence: timedelta) -> dict[str, Any]:
    """Create or update the work pool, the SMTP limit and the automations (idempotent)."""
    if silence < MIN_SILENCE:
        raise ValueError(
            f"a silence of {silence.total_seconds():.0f} s would take live runs for dead ones: "
            f"runs send a heartbeat every {HEARTBEAT_SECONDS} s; give at least "
            f"{MIN_SILENCE.total_seconds():.0f} s"
        )
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import (
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        WorkPoolCreate,
    )
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(pool)
        except ObjectNotFound:
            client.create_work_pool(
                WorkPoolCreate(
                    name=pool,
                    type="process",
                    description="Wangjian's flows, run as processes by `prefect worker start`",
                    base_job_template=ProcessWorker.get_default_base_job_template(),
                )
            )
        try:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=SMTP_LIMIT, limit=smtp_slots)
            )
        except ObjectAlreadyExists:
            client.update_global_concurrency_limit(
                SMTP_LIMIT, GlobalConcurrencyLimitUpdate(limit=smtp_slots, active=True)
            )
        automations = [reschedule_automation(silence), crash_automation(silence)]
        for automation in automations:
            _upsert_automation(client, automation)
    return {
        "pool": pool,
        "smtp_slots": smtp_slots,
        "silence_seconds": silence.total_seconds(),
        "automations": [a.name for a in automations],
    }


def _upsert_automation(client: Any, automation: Any) -> None:
    """Create the automation, or bring the one of that name up to date. One left unchanged
    keeps the runs it is watching (recreating it would forget them)."""
    wanted = automation.model_dump(mode="json")
    existing, *extra = client.read_automations_by_name(automation.name) or [None]
    for duplicate in extra:
        client.delete_automation(duplicate.id)
    if existing is None:
        client.create_automation(automation)
    elif _canonical(existing.model_dump(mode="json", include=set(wanted))) != _canonical(wanted):
        client.update_automation(existing.id, automation)


def _canonical(value: Any) -> Any:
    """A JSON value with its lists of names sorted (event sets come back in any order)."""
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list):
        items = [_canonical(v) for v in value]
        return sorted(items) if all(isinstance(v, str) for v in items) else items
    return value


def reschedule_runs(pids: Sequence[int]) -> list[str]:
    """Put the running flow runs whose process is one of `pids` back to `AwaitingRetry`, before
    those processes are stopped (`scripts/stack.sh down`): another worker, or this one when it
    is back, runs them again. Returns the runs' names."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import AwaitingRetry

    wanted = {str(pid) for pid in pids}
    names = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(
                    type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING])
                )
            )
        )
        for run in runs:
            pid = (run.infrastructure_pid or "").rsplit(":", 1)[-1]
            if run.deployment_id and pid in wanted:
                client.set_flow_run_state(
                    run.id,
                    AwaitingRetry(message="its worker was stopped; rescheduled for a worker"),
                    force=True,
                )
                names.append(run.name)
    return names


def set_schedules(*, active: bool) -> int:
    """Switch every deployment schedule on or off (a staging stack that does nothing by itself);
    returns how many schedules were changed."""
    from prefect.client.orchestration import get_client

    changed = 0
    with get_client(sync_client=True) as client:
        for deployment in client.read_deployments():
            for schedule in deployment.schedules:
                if schedule.active != active:
                    client.update_deployment_schedule(deployment.id, schedule.id, active=active)
                    changed += 1
    return changed


# --- helpers for scripts/stack.sh ---------------------------------------------------------------


def create_databases(server_url: str, names: Sequence[str]) -> list[str]:
    """Create the databases that do not exist yet on a PostgreSQL server; returns those made."""
    import psycopg
    from psycopg import sql

    made = []
    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as connection:
        for name in names:
            found = connection.execute(
                "select 1 from pg_database where datname = %s", (name,)
            ).fetchone()
            if not found:
                connection.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
                made.append(name)
    return made


def drop_databases(server_url: str, names: Sequence[str]) -> None:
    """Drop databases (their sessions ended first)."""
    import psycopg
    from psycopg import sql

    with psycopg.connect(_admin_dsn(server_url), autocommit=True) as connection:
        for name in names:
            connection.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity "
                "where datname = %s and pid <> pg_backend_pid()",
                (name,),
            )
            connection.execute(sql.SQL("drop database if exists {}").format(sql.Identifier(name)))


def _admin_dsn(server_url: str) -> str:
    """A libpq URL for the server's `postgres` database, whatever driver the URL names."""
    from sqlalchemy.engine import make_url

    url = make_url(server_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


def wait_healthy(api_url: str, timeout: float) -> bool:
    """Wait until the Prefect API answers its health check."""
    import time
    from urllib.error import URLError
    from urllib.request import urlopen

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urlopen(f"{api_url}/health", timeout=2) as response:
                if response.status == 200:
                    return True
        except (URLError, OSError):
            pass
        time.sleep(0.5)
    return False


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wangjian.stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("configure", help="work pool, SMTP limit, automations")
    setup.add_argument("--pool", default=POOL)
    setup.add_argument("--smtp-slots", type=int, default=1)
    setup.add_argument(
        "--silence",
        type=float,
        default=90,
        help="seconds without a heartbeat after which a run's worker is presumed dead",
    )
    schedules = commands.add_parser("schedules", help="switch all deployment schedules")
    schedules.add_argument("state", choices=["on", "off"])
    databases = commands.add_parser("databases", help="create or drop PostgreSQL databases")
    databases.add_argument("action", choices=["create", "drop"])
    databases.add_argument("server", help="a URL of the PostgreSQL server (any database)")
    databases.add_argument("names", nargs="+")
    release = commands.add_parser("release", help="reschedule the runs of these processes")
    release.add_argument("pids", nargs="+", type=int)
    wait = commands.add_parser("wait", help="wait for a Prefect API to be healthy")
    wait.add_argument("api_url")
    wait.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args(argv)
    if args.command == "databases":
        if args.action == "create":
            made = create_databases(args.server, args.names)
            print(f"created: {', '.join(made)}" if made else "databases exist already")
        else:
            drop_databases(args.server, args.names)
            print(f"dropped: {', '.join(args.names)}")
    elif args.command == "release":
        names = reschedule_runs(args.pids)
        print(f"rescheduled: {', '.join(names)}" if names else "no run to reschedule")
    elif args.command == "wait":
        if not wait_healthy(args.api_url, args.timeout):
            print(f"{args.api_url} not healthy after {args.timeout:.0f} s", file=sys.stderr)
            return 1
    elif args.command == "configure":
        done = configure(
            pool=args.pool, smtp_slots=args.smtp_slots, silence=timedelta(seconds=args.silence)
        )
        print(
            f"work pool {done['pool']!r}, limit {SMTP_LIMIT!r} = {done['smtp_slots']}, "
            f"automations: {', '.join(done['automations'])}"
        )
    else:
        changed = set_schedules(active=args.state == "on")
        print(f"{changed} schedule(s) switched {args.state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
