"""`prefect.yaml`: every flow deployed, every entrypoint loads, schemas build and are enforced,
schedules in Asia/Shanghai, tags per phase, the sender and the sweep limited."""

from __future__ import annotations

import re
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from prefect.cli.deploy._models import DeploymentConfig, PrefectYamlModel
from prefect.client.schemas.schedules import CronSchedule, RRuleSchedule
from prefect.flows import Flow, load_flow_from_entrypoint
from prefect.utilities.callables import parameter_schema, parameter_schema_from_entrypoint
from prefect.utilities.importtools import import_object
from prefect.utilities.schema_tools.validation import validate

from wangjian.campaign import CampaignConfig
from wangjian.settings import PROJECT_ROOT
from wangjian.stack import HEARTBEAT_SECONDS

PHASES = {"mobilisation", "implementation", "summary", "all-phases"}
ENTRYPOINT = re.compile(r"^flows/(?P<file>[a-z_]+)\.py:(?P<flow>[a-z_]+)$")
KEBAB = re.compile(r"^[a-z]+(-[a-z]+)*$")


def _document() -> dict[str, Any]:
    return yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))


def _deployments() -> list[DeploymentConfig]:
    return PrefectYamlModel.model_validate(_document()).deployments


def _by_name(name: str) -> DeploymentConfig:
    return next(d for d in _deployments() if d.name == name)


def _flow(deployment: DeploymentConfig) -> Flow[Any, Any]:
    assert deployment.entrypoint
    return load_flow_from_entrypoint(
        str(PROJECT_ROOT / deployment.entrypoint), use_placeholder_flow=False
    )


DEPLOYMENTS = [pytest.param(d, id=d.name) for d in _deployments()]


def test_every_flow_in_flows_has_a_deployment() -> None:
    deployed = {d.entrypoint for d in _deployments()}
    defined = set()
    for path in sorted((PROJECT_ROOT / "flows").glob("*.py")):
        for match in re.finditer(r"^@flow\(.*?\)\ndef (\w+)\(", path.read_text(), re.M | re.S):
            defined.add(f"flows/{path.name}:{match.group(1)}")
    assert defined, "no flow found under flows/"
    assert defined <= deployed, f"flows without a deployment: {sorted(defined - deployed)}"
    assert len(deployed) == len(_deployments()), "two deployments of one entrypoint"


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_the_entrypoint_loads_the_flow_the_deployment_is_named_for(
    deployment: DeploymentConfig,
) -> None:
    assert deployment.name and KEBAB.match(deployment.name), deployment.name
    assert deployment.entrypoint and ENTRYPOINT.match(deployment.entrypoint)
    flow = _flow(deployment)
    assert isinstance(flow, Flow)
    assert flow.name == deployment.name  # the UI shows the same name for both


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_parameters_are_enforced_and_the_given_ones_fit_the_schema(
    deployment: DeploymentConfig,
) -> None:
    assert deployment.enforce_parameter_schema is True
    flow = _flow(deployment)
    assert deployment.entrypoint
    # What `prefect deploy` builds (read statically from the file) is what the function takes.
    static = parameter_schema_from_entrypoint(str(PROJECT_ROOT / deployment.entrypoint))
    loaded = parameter_schema(flow.fn)
    assert set(static.properties) == set(loaded.properties)
    assert set(static.required or []) == set(loaded.required or [])
    schema = loaded.model_dump_for_openapi()
    given = [deployment.parameters or {}]
    given += [getattr(s, "parameters", None) or {} for s in deployment.schedules or []]
    for parameters in given:
        assert validate(parameters, schema, ignore_required=True) == [], parameters
    # Every parameter the schedule leaves out has a default or is given by the deployment.
    for schedule in deployment.schedules or []:
        supplied = {**(deployment.parameters or {}), **(getattr(schedule, "parameters", {}) or {})}
        missing = set(loaded.required or []) - set(supplied)
        assert not missing, f"a scheduled run would lack {missing}"


def test_a_wrong_parameter_is_refused_by_the_schema() -> None:
    schema = parameter_schema(_flow(_by_name("deadline-sweep")).fn).model_dump_for_openapi()
    assert validate({"as_of": 20211115}, schema) != []
    assert validate({"as_of": "2021-11-15"}, schema) == []


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_tags_name_the_phase_and_the_pool_is_the_process_pool(
    deployment: DeploymentConfig,
) -> None:
    tags = set(deployment.tags or [])
    assert "wangjian" in tags
    assert tags & PHASES, f"{deployment.name}: no phase tag in {sorted(tags)}"
    assert deployment.work_pool is not None
    assert deployment.work_pool.name == "wangjian"
    # Every run beats as often as the automation that watches for dead workers expects.
    env = deployment.work_pool.job_variables["env"]
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == str(HEARTBEAT_SECONDS)


@pytest.mark.parametrize("deployment", DEPLOYMENTS)
def test_schedules_are_in_shanghai_time_and_parse(deployment: DeploymentConfig) -> None:
    for schedule in deployment.schedules or []:
        assert getattr(schedule, "timezone", None) == "Asia/Shanghai"
        cron = getattr(schedule, "cron", None)
        if cron:  # as the server will read it (a bad expression raises)
            CronSchedule(cron=cron, timezone="Asia/Shanghai")


def test_the_daily_runs_and_the_sender_are_scheduled() -> None:
    def crons(name: str) -> list[str | None]:
        return [getattr(s, "cron", None) for s in _by_name(name).schedules or []]

    assert crons("campaign") == ["30 8 * * *"]
    assert crons("deadline-sweep") == ["0 9 * * *"]
    assert crons("send-notifications") == ["*/10 * * * *"]
    assert crons("campaign-report") == ["0 10 23 * *"]


@pytest.mark.parametrize("phase", ["mobilisation", "implementation", "summary"])
def test_each_phase_starts_on_the_campaign_s_date_when_switched_on(
    phase: str, default_config: CampaignConfig
) -> None:
    deployment = _by_name(phase)
    (schedule,) = deployment.schedules or []
    rrule = RRuleSchedule(rrule=schedule.rrule, timezone=schedule.timezone).to_rrule()  # type: ignore[union-attr]
    start = getattr(default_config.campaign.phases, phase).start
    assert list(rrule) == [datetime.combine(start, time(9), tzinfo=ZoneInfo("Asia/Shanghai"))]
    assert schedule.active is False  # type: ignore[union-attr]  # the daily `campaign` run enters it
    assert phase in (deployment.tags or [])


@pytest.mark.parametrize(
    ("name", "strategy"),
    [
        ("campaign", "ENQUEUE"),
        ("mobilisation", "ENQUEUE"),
        ("implementation", "ENQUEUE"),
        ("summary", "ENQUEUE"),
        ("deadline-sweep", "ENQUEUE"),
        ("send-notifications", "CANCEL_NEW"),
        ("campaign-report", "ENQUEUE"),
    ],
)
def test_one_run_at_a_time(name: str, strategy: str) -> None:
    limit = _by_name(name).concurrency_limit
    assert limit is not None and not isinstance(limit, int)
    assert (limit.limit, limit.collision_strategy) == (1, strategy)


def test_pull_steps_import_and_the_working_directory_comes_from_the_environment() -> None:
    steps = PrefectYamlModel.model_validate(_document()).pull or []
    names = [next(iter(step)) for step in steps]
    for name in names:
        assert callable(import_object(name)), name
    assert names[-1] == "prefect.deployments.steps.set_working_directory"
    assert steps[-1][names[-1]]["directory"] == "{{ $WANGJIAN_HOME }}"


def test_the_shared_settings_are_anchors_under_definitions() -> None:
    text = (PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8")
    body = text.split("\ndeployments:", 1)[1]
    assert "definitions" in _document()
    # Deployments refer to the shared pool and schedules; none spells them out again.
    assert "work_pool: *process_pool" in body
    assert "timezone:" not in body and "\n      name: wangjian" not in body
