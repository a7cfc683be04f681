"""The stack's Prefect configuration (`wangjian.stack`), against the session's Prefect server:
the pool, the SMTP limit and the automations made once however often it runs; secrets from
Secret blocks; runs whose worker stops rescheduled; a run that keeps dying stopped."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from prefect import flow
from prefect.client.orchestration import SyncPrefectClient, get_client
from prefect.states import AwaitingRetry, Running

from wangjian.stack import (
    CRASH_AUTOMATION,
    RESCHEDULE_AUTOMATION,
    SMTP_LIMIT,
    AttemptsExhausted,
    configure,
    limit_attempts,
    load_secret_blocks,
    reschedule_runs,
    secret_env_name,
)

pytestmark = pytest.mark.prefect


@flow(name="stack-setup-probe")
def probe() -> None:
    """A flow for deployments made by these tests (never run)."""


@pytest.fixture
def client(prefect_harness: None) -> Iterator[SyncPrefectClient]:
    with get_client(sync_client=True) as connected:
        yield connected


def _deployment_run(client: SyncPrefectClient, *, pid: str | None = None) -> Any:
    flow_id = client.create_flow(probe)
    deployment_id = client.create_deployment(flow_id=flow_id, name=f"d-{uuid.uuid4().hex[:8]}")
    run = client.create_flow_run_from_deployment(deployment_id)
    client.set_flow_run_state(run.id, Running(), force=True)
    if pid is not None:
        client.update_flow_run(run.id, infrastructure_pid=pid)
    return client.read_flow_run(run.id)


@pytest.mark.parametrize(
    ("block", "variable"),
    [
        ("wangjian-smtp-password", "WANGJIAN_SMTP_PASSWORD"),
        ("wangjian-database-url", "WANGJIAN_DATABASE_URL"),
        ("wangjian-portal-secret-key", "WANGJIAN_PORTAL_SECRET_KEY"),
        ("smtp-password", None),
        ("wangjian-", None),
    ],
)
def test_a_secret_block_is_named_for_its_variable(block: str, variable: str | None) -> None:
    assert secret_env_name(block) == variable


def test_secret_blocks_fill_the_environment_without_overriding_it(
    secret_blocks: Callable[[str, str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret_blocks("wangjian-smtp-username", "relay-user")
    secret_blocks("wangjian-mail-from", "from-the-block@example.org")
    secret_blocks("another-secret", "not ours")
    monkeypatch.setenv("WANGJIAN_MAIL_FROM", "office@example.org")

    assert load_secret_blocks() == {"loaded": ["WANGJIAN_SMTP_USERNAME"]}

    assert os.environ["WANGJIAN_SMTP_USERNAME"] == "relay-user"
    assert os.environ["WANGJIAN_MAIL_FROM"] == "office@example.org"
    assert "ANOTHER_SECRET" not in os.environ


def test_configure_twice_makes_one_pool_one_limit_and_two_automations(
    client: SyncPrefectClient,
) -> None:
    configure(pool="stack-setup-pool", smtp_slots=1, silence=timedelta(seconds=90))
    first = {a.name: a.id for a in client.read_automations()}
    configure(pool="stack-setup-pool", smtp_slots=2, silence=timedelta(seconds=90))
    automations = client.read_automations()
    names = [a.name for a in automations]
    assert names.count(RESCHEDULE_AUTOMATION) == 1 and names.count(CRASH_AUTOMATION) == 1
    # Unchanged automations are kept as they are: the runs they watch are not forgotten.
    assert {a.name: a.id for a in automations} == first
    assert client.read_work_pool("stack-setup-pool").type == "process"
    assert client.read_global_concurrency_limit_by_name(SMTP_LIMIT).limit == 2

    configure(pool="stack-setup-pool", smtp_slots=2, silence=timedelta(seconds=45))
    reschedule = next(a for a in client.read_automations() if a.name == RESCHEDULE_AUTOMATION)
    assert reschedule.id == first[RESCHEDULE_AUTOMATION]
    assert reschedule.trigger.within == timedelta(seconds=45)  # type: ignore[union-attr]


def test_the_automation_reschedules_only_silent_deployment_runs() -> None:
    from wangjian.stack import reschedule_automation

    automation = reschedule_automation(timedelta(seconds=60))
    trigger = automation.trigger
    # Watched from the moment the server records it started, then from each heartbeat.
    assert trigger.after == {
        "prefect.flow-run.Pending",
        "prefect.flow-run.Running",
        "prefect.flow-run.heartbeat",
    }
    assert {"prefect.flow-run.heartbeat", "prefect.flow-run.Completed"} <= trigger.expect
    assert trigger.match_related.root == {"prefect.resource.role": "deployment"}  # type: ignore[union-attr]
    assert trigger.within == timedelta(seconds=60)
    (action,) = automation.actions
    assert (action.state.value, action.name) == ("SCHEDULED", "AwaitingRetry")


@pytest.mark.parametrize(("silence", "window"), [(45, 225), (90, 270), (300, 600)])
def test_other_runs_are_crashed_only_after_prefects_own_heartbeat_period_and_more(
    silence: int, window: int
) -> None:
    from wangjian.stack import crash_automation

    trigger = crash_automation(timedelta(seconds=silence)).trigger
    assert trigger.within == timedelta(seconds=window)
    assert trigger.after == {"prefect.flow-run.heartbeat"}  # runs that never beat are left alone


def test_a_silence_a_live_run_could_keep_is_refused(prefect_harness: None) -> None:
    with pytest.raises(ValueError, match="heartbeat every 30 s"):
        configure(pool="stack-setup-pool", smtp_slots=1, silence=timedelta(seconds=40))


def test_runs_of_stopped_processes_are_rescheduled_and_others_left(
    client: SyncPrefectClient,
) -> None:
    stopped = _deployment_run(client, pid="424242")
    elsewhere = _deployment_run(client, pid="434343")

    assert reschedule_runs([424242]) == [stopped.name]

    assert client.read_flow_run(stopped.id).state.name == "AwaitingRetry"  # type: ignore[union-attr]
    assert client.read_flow_run(elsewhere.id).state.name == "Running"  # type: ignore[union-attr]


def test_a_run_started_too_often_is_failed_instead_of_started_again(
    client: SyncPrefectClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = _deployment_run(client)
    monkeypatch.setenv("PREFECT__FLOW_RUN_ID", str(run.id))
    assert limit_attempts(max_attempts=3) == {"run_count": 1}
    for _ in range(2):  # its worker dies, the automation reschedules it, another picks it up
        client.set_flow_run_state(run.id, AwaitingRetry(), force=True)
        client.set_flow_run_state(run.id, Running(), force=True)
    assert client.read_flow_run(run.id).run_count == 3

    with pytest.raises(AttemptsExhausted, match="started 3 times"):
        limit_attempts(max_attempts=3)

    state = client.read_flow_run(run.id).state
    assert state is not None and state.is_failed()
    assert "started 3 times" in (state.message or "")
