"""The campaign end to end: the phase flows and a shortened demo, as real Prefect runs."""

from __future__ import annotations

import email
from datetime import date
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from wangjian.ledger.models import Lead, Notice, Obligation, Referral
from wangjian.simulation.demo import run_demo

pytestmark = [pytest.mark.prefect, pytest.mark.usefixtures("prefect_harness")]


def test_a_shortened_demo_runs_mobilisation_and_implementation(tmp_path: Path) -> None:
    lines: list[str] = []
    result = run_demo(tmp_path / "demo", leads=400, until=date(2021, 10, 28), say=lines.append)
    assert result.lead_files == 6 and result.leads_sent > 0
    assert any("动员部署" in line for line in lines) and any("组织实施" in line for line in lines)
    from wangjian.bootstrap import build_app
    from wangjian.simulation.demo import demo_settings

    app = build_app(demo_settings(tmp_path / "demo"))
    with app.sessions() as session:
        leads = session.scalar(select(func.count()).select_from(Lead))
        referrals = session.scalar(select(func.count()).select_from(Referral))
        acknowledged = session.scalar(
            select(func.count()).select_from(Referral).where(Referral.acknowledged_at.is_not(None))
        )
        plans = session.scalar(
            select(func.count()).select_from(Notice).where(Notice.kind == "plan_issued")
        )
        submitted = session.scalar(
            select(func.count())
            .select_from(Obligation)
            .where(Obligation.kind == "implementation_plan", Obligation.status == "submitted")
        )
    app.dispose()
    assert leads and referrals and acknowledged
    assert plans == len(app.config.agencies)  # the plan went to every member, once
    assert submitted >= len(app.config.agencies) - 3  # most members sent their plans
    mails = list((tmp_path / "demo" / "mailbox").glob("*.eml"))
    assert result.mails == len(mails) > len(app.config.agencies)
    subjects = [
        str(email.message_from_bytes(p.read_bytes(), policy=policy.default)["Subject"])
        for p in mails
    ]
    assert any("实施方案及任务分工" in s for s in subjects)
    assert set(result.final["files"]) == {"xlsx", "html", "markdown"}
    assert all(Path(p).exists() for p in result.final["files"].values())


def test_the_summary_flow_chases_an_incomplete_package_and_compiles_the_report(
    app,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from flows.summary import summary
    from tests.test_packages import FULL, _package
    from wangjian.ledger.db import transaction
    from wangjian.ledger.obligations import open_obligations

    with transaction(app.sessions) as session:
        open_obligations(session=session, app=app, as_of=app.as_of("2021-10-08"))
    with transaction(app.sessions) as session:
        session.query(Obligation).filter(Obligation.kind == "summary_package").delete()
    _package(app, "samr", files=FULL, cases=[True] * 5)
    _package(app, "customs", files=FULL, cases=[True] * 4 + [False])
    result = summary(as_of="2021-12-09T09:00:00+08:00")
    assert result["packages_complete"] == 1 and result["chased"] == 1
    assert result["report"] and Path(result["report"]["files"]["xlsx"]).exists()
    with app.sessions() as session:
        chase = session.scalars(select(Notice).where(Notice.kind == "package_incomplete")).one()
    assert chase.party == "customs"
    assert any("未附行政处罚决定书" in m for m in chase.context["missing"])
    again = summary(as_of="2021-12-09T10:00:00+08:00", compile_report=False)
    assert again["chased"] == 0  # the same finding is not chased twice
