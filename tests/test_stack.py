"""The production stack, for real: `scripts/stack.sh up` on this machine's PostgreSQL (throwaway
databases), a Prefect server on PostgreSQL, two process workers, every deployment; mail to a
real SMTP server (aiosmtpd). Dispatch, sweep and report run as deployment runs on the workers;
then a worker is killed in the middle of a large import and the run is picked up again by the
other one, with nothing lost and nothing doubled.

Runs in about three minutes, a quarter of it the wait for the dead worker's silence.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from sqlalchemy import Engine, create_engine, text

from wangjian.settings import PROJECT_ROOT
from wangjian.stack import HEARTBEAT_SECONDS, drop_databases

from .conftest import POSTGRES_ADMIN_URL
from .lead_factory import lead
from .smtp_server import SmtpServer, free_port

pytestmark = [pytest.mark.stack, pytest.mark.postgres, pytest.mark.smtp, pytest.mark.slow]

SCRIPT = PROJECT_ROOT / "scripts" / "stack.sh"
SILENCE = 45  # the shortest the stack accepts: one heartbeat (30 s) and a margin
# Categories of the shipped configuration and the agency each goes to (CONTRACT.md).
CATEGORIES = {
    "trademark": "samr",
    "false_advertising": "samr",
    "food_drug": "samr",
    "counterfeit_import": "customs",
    "prohibited_parcel": "post",
    "fraud": "police",
    "patent_counterfeit": "ip",
    "piracy": "copyright",
    "illegal_site": "telecom",
    "prepaid_card": "commerce",
}
ELSEWHERE = "310115"  # outside the default campaign's jurisdiction: transferred out


@dataclass
class Stack:
    api_url: str
    ledger: Engine
    smtp: SmtpServer
    work: Path

    def pid(self, name: str) -> int:
        return int((self.work / "stack" / f"{name}.pid").read_text())

    def sql(self, statement: str, **params: Any) -> list[Any]:
        with self.ledger.connect() as connection:
            return list(connection.execute(text(statement), params))

    def one(self, statement: str, **params: Any) -> Any:
        return self.sql(statement, **params)[0][0]


def _postgres_or_skip() -> None:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL)
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        engine.dispose()
    except Exception as exc:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL}: {str(exc).splitlines()[0]}")


def _stack_sh(command: str, env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(
        [str(SCRIPT), command],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"stack.sh {command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stderr


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    _postgres_or_skip()
    work = tmp_path_factory.mktemp("stack")
    tag = uuid.uuid4().hex[:8]
    ledger_db, prefect_db = f"wangjian_stack_{tag}", f"wangjian_stack_{tag}_prefect"
    server = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql+psycopg", "postgresql")
    port = free_port()
    smtp = SmtpServer()
    smtp.up()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "WANGJIAN_"))},
        "WANGJIAN_STACK_PYTHON": sys.executable,
        "WANGJIAN_STACK_DIR": str(work / "stack"),
        "WANGJIAN_STACK_PG": server,
        "WANGJIAN_STACK_LEDGER_DB": ledger_db,
        "WANGJIAN_STACK_PREFECT_DB": prefect_db,
        "WANGJIAN_STACK_PORT": str(port),
        "WANGJIAN_STACK_WORKERS": "2",
        # Two runs at once each: the partitioned dispatch waits in one slot for its partitions.
        "WANGJIAN_STACK_WORKER_LIMIT": "2",
        "WANGJIAN_STACK_POLL": "1",
        "WANGJIAN_STACK_SILENCE": str(SILENCE),
        "WANGJIAN_STACK_SCHEDULES": "off",  # nothing runs but what the test asks for
        "WANGJIAN_STACK_GRACE": "2",
        "WANGJIAN_SMTP_HOST": "127.0.0.1",
        "WANGJIAN_SMTP_PORT": str(smtp.port),
        "WANGJIAN_SMTP_TIMEOUT_SECONDS": "10",
        # One digest per agency and dispatch, whatever its size: few messages, each a lot.
        "WANGJIAN_MAIL_DIGEST_CAP": "20000",
        "WANGJIAN_REPORTS_DIR": str(work / "reports"),
        "WANGJIAN_REJECTS_DIR": str(work / "rejects"),
        "WANGJIAN_MAILBOX_DIR": str(work / "mailbox"),
    }
    ledger = create_engine(f"{server}/{ledger_db}".replace("postgresql", "postgresql+psycopg", 1))
    try:
        _stack_sh("up", env, timeout=300)
        yield Stack(f"http://127.0.0.1:{port}/api", ledger, smtp, work)
    finally:
        ledger.dispose()
        try:
            _stack_sh("down", env, timeout=120)  # its logs stay in the test's folder
        finally:
            smtp.down()
            drop_databases(server, [ledger_db, prefect_db])


@pytest.fixture
def prefect(stack: Stack) -> Iterator[Any]:
    """A Prefect client of the stack's server (whatever server the session's harness runs)."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.api_url}), get_client(sync_client=True) as c:
        yield c


def _write_leads(path: Path, first: int, count: int) -> tuple[Path, int]:
    """A lead file of `count` distinct leads, each category in turn, one in ten a suspected
    crime and one in fifteen out of the jurisdiction; returns it and the referrals it asks for."""
    names = list(CATEGORIES)
    referrals = 0
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer: Any = None
        for n in range(first, first + count):
            category = names[n % len(names)]
            elsewhere = n % 15 == 0
            crime = n % 10 == 3 and not elsewhere
            row = lead(
                n,
                lead_id=f"S-{n:07d}",
                category=category,
                region_code=ELSEWHERE if elsewhere else "140105",
                suspected_crime="true" if crime else "false",
            )
            if writer is None:
                writer = csv.DictWriter(handle, fieldnames=list(row))
                writer.writeheader()
            writer.writerow(row)
            referrals += 1 + (crime and CATEGORIES[category] != "police")
    return path, referrals


def _run(stack: Stack, name: str, **parameters: Any) -> Any:
    """Ask for a run of a deployment (a worker picks it up); returns the flow run."""
    from prefect.deployments import run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: stack.api_url}):
        run = run_deployment(name, parameters=parameters, timeout=0)
    return run


def _wait(prefect: Any, run_id: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = prefect.read_flow_run(run_id)
        if run.state is not None and run.state.is_final():
            return run
        time.sleep(0.5)
    raise AssertionError(f"run {run_id} not finished after {timeout:.0f} s: {run.state}")


def _events(stack: Stack, run_id: Any) -> list[tuple[str, str]]:
    """(time, name) of the events about a flow run, for a failure's message."""
    import httpx

    body = {
        "filter": {
            "any_resource": {"id": [f"prefect.flow-run.{run_id}"]},
            "occurred": {"since": "2000-01-01T00:00:00Z"},
        },
        "limit": 100,
    }
    events = httpx.post(f"{stack.api_url}/events/filter", json=body).json()["events"]
    return sorted((e["occurred"][11:19], e["event"]) for e in events)


def _import(stack: Stack, file: Path) -> Any:
    """The file's own import (partition `all`), or None before it is opened."""
    import hashlib

    sha = hashlib.sha256(file.read_bytes()).hexdigest()
    rows = stack.sql(
        "select id, status, chunks_done from imports where file_sha256 = :s and partition = 'all'",
        s=sha,
    )
    return rows[0] if rows else None


def _assert_mail_exactly_once(stack: Stack) -> None:
    """Every message the ledger marked sent arrived once; nothing arrived that it did not send."""
    sent = {
        row[0].strip()
        for row in stack.sql("select message_id_header from messages where status = 'sent'")
    }
    arrived = stack.smtp.message_ids()
    assert arrived, "no mail arrived"
    assert max(arrived.values()) == 1, [m for m, n in arrived.items() if n > 1]
    assert set(arrived) == sent


def test_dispatch_sweep_and_report_run_on_the_workers(stack: Stack, prefect: Any) -> None:
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterKey,
        FlowRunFilter,
        FlowRunFilterParentFlowRunId,
    )

    # A file dispatched in two partitions: three deployment runs, taken by the workers.
    file, referrals = _write_leads(stack.work / "leads-small.csv", 1, 300)
    dispatch = _run(
        stack,
        "dispatch-partitioned/dispatch-partitioned",
        path=str(file),
        as_of="2021-10-25",
        partitions=2,
        chunk_rows=50,
    )
    dispatch = _wait(prefect, dispatch.id, 150)
    assert dispatch.state.is_completed(), dispatch.state
    assert dispatch.work_pool_name == "wangjian"
    children = prefect.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[dispatch.id])
        )
    )
    partitions = [run for run in children if run.deployment_id is not None]
    assert len(partitions) == 2 and all(run.state.is_completed() for run in partitions)

    imported = _import(stack, file)
    assert imported.status == "done"
    parts = [
        row[0]
        for row in stack.sql("select id from imports where partition like :p", p=f"{imported.id}/%")
    ]
    assert len(parts) == 2
    assert stack.one("select count(*) from leads where import_id = any(:i)", i=parts) == 300
    made = stack.one("select count(*) from referrals where import_id = any(:i)", i=parts)
    assert made == referrals
    told = stack.one(
        "select count(*) from notices n join referrals r on r.id = n.subject_id "
        "where n.kind = 'referral' and n.subject_type = 'referral' and r.import_id = any(:i)",
        i=parts,
    )
    assert told == referrals
    # One digest per agency for the whole file, whichever partition referred its leads.
    digests = stack.sql(
        "select party, status from messages where group_key = :g", g=f"dispatch:{imported.id}"
    )
    parties = [party for party, _status in digests]
    assert len(parties) == len(set(parties)) >= len(set(CATEGORIES.values()))
    assert {status for _party, status in digests} == {"sent"}
    _assert_mail_exactly_once(stack)

    # The day's deadline pass and the report, at once, one on each worker.
    sweep = _run(stack, "deadline-sweep/deadline-sweep", as_of="2021-11-22")
    report = _run(stack, "campaign-report/campaign-report", as_of="2021-11-22")
    sweep, report = _wait(prefect, sweep.id, 120), _wait(prefect, report.id, 120)
    assert sweep.state.is_completed() and report.state.is_completed()

    # Acknowledgements were due on 15 Nov: every referral is overdue, told once.
    overdue = stack.one(
        "select count(*) from notices n join referrals r on r.id = n.subject_id "
        "where n.subject_type = 'referral' and n.step = 'overdue' and r.import_id = any(:i)",
        i=parts,
    )
    assert overdue == referrals
    assert stack.one("select count(*) from messages where group_key = 'sweep:2021-11-22'") > 0
    assert stack.one("select count(*) from messages where status <> 'sent'") == 0
    _assert_mail_exactly_once(stack)
    files = stack.work / "reports" / "2021-11-22"
    assert {p.name for p in files.iterdir()} >= {"statistics.xlsx", "report.html", "summary.md"}
    tables = prefect.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["campaign-statistics-table-1"]))
    )
    assert [a.flow_run_id for a in tables] == [report.id]


def test_a_run_whose_worker_dies_is_picked_up_by_the_other_with_nothing_lost_or_doubled(
    stack: Stack, prefect: Any
) -> None:
    file, referrals = _write_leads(stack.work / "leads-large.csv", 100_001, 8_000)
    run = _run(
        stack,
        "dispatch-leads/dispatch-leads",
        path=str(file),
        as_of="2021-10-26",
        chunk_rows=400,
    )

    # Wait until a few chunks are in the ledger, then kill the worker running the import and
    # everything it started, as a machine that dies would.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        imported = _import(stack, file)
        if imported is not None and imported.chunks_done >= 1:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the import did not start")
    pid = int(prefect.read_flow_run(run.id).infrastructure_pid)
    workers = {name: stack.pid(name) for name in ("worker-1", "worker-2")}
    victim = next(
        name
        for name, worker in workers.items()
        if pid in {p.pid for p in psutil.Process(worker).children(recursive=True)}
    )
    doomed = psutil.Process(workers[victim])
    for process in [doomed, *doomed.children(recursive=True)]:
        process.kill()
    killed_at = time.monotonic()
    interrupted = _import(stack, file)
    assert interrupted.status == "running", "the import ended before its worker was killed"
    assert prefect.read_flow_run(run.id).state.is_running()

    try:
        finished = _wait(prefect, run.id, SILENCE + 120)
    except AssertionError as late:
        raise AssertionError(f"{late}; its events: {_events(stack, run.id)}") from None
    assert finished.state.is_completed(), finished.state
    assert finished.run_count == 2
    assert time.monotonic() - killed_at >= SILENCE - HEARTBEAT_SECONDS  # no sooner than the silence
    history = [s.name for s in prefect.read_flow_run_states(run.id)]
    assert "AwaitingRetry" in history
    rescheduled = next(s for s in prefect.read_flow_run_states(run.id) if s.name == "AwaitingRetry")
    assert "no heartbeat" in (rescheduled.message or "")

    # Nothing lost, nothing doubled: every lead once, its referrals once, one notice each, and
    # every message once at the mail server.
    done = _import(stack, file)
    assert done.status == "done" and done.id == interrupted.id
    assert stack.one("select count(*) from leads where import_id = :i", i=done.id) == 8_000
    assert (
        stack.one(
            "select count(distinct source_lead_id) from leads where import_id = :i", i=done.id
        )
        == 8_000
    )
    assert stack.one("select count(*) from referrals where import_id = :i", i=done.id) == referrals
    assert (
        stack.one(
            "select count(*) from notices n join referrals r on r.id = n.subject_id "
            "where n.kind = 'referral' and n.subject_type = 'referral' and r.import_id = :i",
            i=done.id,
        )
        == referrals
    )
    assert (
        stack.one(
            "select count(*) from (select subject_id from notices where kind = 'referral' "
            "group by subject_id having count(*) > 1) twice"
        )
        == 0
    )
    assert stack.one("select count(*) from messages where status <> 'sent'") == 0
    _assert_mail_exactly_once(stack)
