"""Stages of the phase flows: issue the plan, check the members' packages, chase what is missing."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from wangjian.bootstrap import get_app
from wangjian.ledger.db import transaction
from wangjian.ledger.packages import PART_ZH, PackageCheck, check_packages
from wangjian.ledger.phases import chase_packages, issue_plan
from wangjian.reporting.build import PHASE_ZH


@task(name="issue-campaign-plan", cache_policy=NO_CACHE)
def issue_campaign_plan(as_of: datetime) -> int:
    """Queue the plan and its task split to every member (once, whatever reruns)."""
    app = get_app()
    with transaction(app.sessions) as session:
        return issue_plan(session=session, app=app, as_of=as_of)


@task(name="check-member-packages", cache_policy=NO_CACHE)
def check_member_packages(as_of: datetime) -> list[dict[str, Any]]:
    """Each member's summary package: submitted? complete? what is missing?"""
    app = get_app()
    with app.sessions() as session:
        checks = check_packages(session, app.config, as_of=as_of)
    names = {code: agency.name_zh for code, agency in app.config.agencies.items()}
    create_table_artifact(
        key="summary-package-board",
        table=[
            {
                "成员单位": names.get(c.agency_code, c.agency_code),
                "状态": c.describe(),
                "有效典型案例": c.valid_cases,
                "未附处罚决定书": c.cases_without_decision,
            }
            for c in checks
        ],
        description=f"总结材料报送核对(截至{as_of:%Y-%m-%d}):需{'、'.join(PART_ZH[p] for p in app.config.deadlines.summary_package.requires)}",
    )
    return [{**asdict(c), "complete": c.complete} for c in checks]


@task(name="chase-incomplete-packages", cache_policy=NO_CACHE)
def chase_incomplete_packages(as_of: datetime, checks: list[dict[str, Any]]) -> int:
    """Queue a notice to each member whose package lacks something (once per finding)."""
    app = get_app()
    found = [PackageCheck(**{k: v for k, v in c.items() if k != "complete"}) for c in checks]
    with transaction(app.sessions) as session:
        return chase_packages(session=session, app=app, as_of=as_of, checks=found)


@task(name="publish-campaign-status", cache_policy=NO_CACHE)
def publish_campaign_status(as_of: datetime, phase: str, steps: dict[str, Any]) -> str:
    """Where the campaign stands today, for the office in the Prefect UI."""
    app = get_app()
    phases = app.config.campaign.phases
    lines = [
        f"# {app.config.campaign.name}",
        "",
        f"**{as_of:%Y-%m-%d}** 当前阶段:**{PHASE_ZH[phase]}**",
        "",
    ]
    for name in ("mobilisation", "implementation", "summary"):
        window = getattr(phases, name)
        mark = "▶" if name == phase else ("✓" if window.end < as_of.date() else "·")
        lines.append(f"- {mark} {PHASE_ZH[name]}:{window.start} – {window.end}")
    lines += ["", "| 事项 | 结果 |", "|---|---|"] + [f"| {k} | {v} |" for k, v in steps.items()]
    return str(
        create_markdown_artifact(
            key="campaign-status", markdown="\n".join(lines), description="网剑行动进度"
        )
    )
