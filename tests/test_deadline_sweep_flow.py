"""The `deadline-sweep` flow, its artifacts, `wangjian sweep --json`, and its deployment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from prefect.artifacts import Artifact
from sqlalchemy import func, select
from typer.testing import CliRunner

from flows.deadline_sweep import deadline_sweep
from wangjian.bootstrap import App
from wangjian.cli import app as cli
from wangjian.ledger.models import Message
from wangjian.settings import PROJECT_ROOT

from .deadline_factories import campaign_app

CONTRACT_KEYS = {
    "as_of",
    "reminders",
    "overdue_notices",
    "escalations",
    "listed_for_supervision",
    "notifications_sent",
}


@pytest.fixture
def campaign(tmp_path: Path) -> Iterator[App]:
    with campaign_app(tmp_path, f"sqlite:///{tmp_path / 'ledger.db'}") as app:
        yield app


@pytest.mark.prefect
def test_the_flow_sweeps_and_publishes_the_office_artifacts(
    prefect_harness: None, campaign: App
) -> None:
    # 16 Sep 2025: the implementation plans of all three members are due in 3 working days.
    result = deadline_sweep(as_of="2025-09-16")
    assert set(result) >= CONTRACT_KEYS
    assert result["as_of"] == "2025-09-16T09:00:00+08:00"
    assert (result["reminders"], result["overdue_notices"], result["escalations"]) == (3, 0, 0)
    assert result["obligations"]["created"] == 18
    with campaign.sessions() as session:
        sent = session.scalar(
            select(func.count()).select_from(Message).where(Message.status == "sent")
        )
    # One digest to each of the three contacts, through the sender when it is installed.
    assert result["notifications_sent"] == 3 == sent
    bulletin = Artifact.get("draft-bulletin")
    assert bulletin is not None and "2025年9月16日" in str(bulletin.data)
    board = Artifact.get("report-status-board")
    assert board is not None
    rows = json.loads(str(board.data))
    assert {row["单位"]: row["实施方案"] for row in rows} == {
        "区市场监督管理局": "待报 (截止09-19)",
        "XX海关": "待报 (截止09-19)",
        "区邮政管理局": "待报 (截止09-19)",
    }
    path = Path(result["office"]["bulletin"])
    assert path.name == "2025-09-16.md" and path.read_text(encoding="utf-8").startswith("# 关于")

    # Again the same day: nothing new (the flow is idempotent, like the sweep under it).
    again = deadline_sweep(as_of="2025-09-16")
    assert (again["reminders"], again["clocks_due"], again["obligations"]["created"]) == (0, 0, 0)


@pytest.mark.prefect
def test_wangjian_sweep_json_prints_one_object_with_the_contract_keys(
    prefect_harness: None, campaign: App
) -> None:
    runner = CliRunner()
    done = runner.invoke(cli, ["sweep", "--as-of", "2025-09-22", "--json"])
    assert done.exit_code == 0, done.stderr
    payload = json.loads(done.stdout)  # nothing else on stdout
    assert set(payload) >= CONTRACT_KEYS
    # 22 Sep: plans overdue for all three (their reminders were never sent: only the latest
    # step matters once overdue), September reports due today.
    assert (payload["reminders"], payload["overdue_notices"]) == (3, 3)

    wrong = runner.invoke(cli, ["sweep", "--as-of", "22/09/2025"])
    assert wrong.exit_code == 1 and "not an ISO date" in wrong.stderr


def test_the_deployment_runs_daily_at_nine_in_shanghai_one_at_a_time() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    document = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    model = PrefectYamlModel.model_validate(document)
    deployment = next(d for d in model.deployments if d.name == "deadline-sweep")
    assert deployment.entrypoint == "flows/deadline_sweep.py:deadline_sweep"
    assert deployment.enforce_parameter_schema is True
    assert deployment.schedules is not None
    schedule = deployment.schedules[0]
    assert (schedule.cron, schedule.timezone) == ("0 9 * * *", "Asia/Shanghai")
    limit = deployment.concurrency_limit
    assert limit is not None and not isinstance(limit, int)
    assert (limit.limit, limit.collision_strategy) == (1, "ENQUEUE")
    module, name = deployment.entrypoint.split(":")
    assert name == "deadline_sweep" and (PROJECT_ROOT / module).exists()
