"""Members' obligations come from the campaign configuration, once; a complete submission closes
one at once, an incomplete one leaves its clock running; a changed configuration moves or
withdraws what is still open."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import func, select

from wangjian.bootstrap import App, build_app
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.models import Deadline, Obligation
from wangjian.ledger.obligations import ObligationError, open_obligations, record_submission
from wangjian.ledger.sweep import sweep_deadlines

from .conftest import make_settings
from .deadline_factories import CAMPAIGN_2025, campaign_app, local, notices_of, obligation_id


@pytest.fixture
def campaign(tmp_path: Path, database_url: str) -> Iterator[App]:
    with campaign_app(tmp_path, database_url) as app:
        yield app


def _open(app: App, when: str = "2025-09-01") -> dict[str, int]:
    with transaction(app.sessions) as session:
        return open_obligations(session=session, app=app, as_of=local(when))


def _sweep(app: App, when: str) -> dict[str, object]:
    with transaction(app.sessions) as session:
        return sweep_deadlines(session=session, app=app, as_of=local(when)).as_json()


def test_obligations_are_opened_once_per_member_with_their_clocks(campaign: App) -> None:
    assert _open(campaign) == {"created": 18, "moved": 0, "withdrawn": 0, "clocks": 18}
    assert _open(campaign, "2025-09-02") == {"created": 0, "moved": 0, "withdrawn": 0, "clocks": 0}
    with campaign.sessions() as session:
        clocks = session.scalars(
            select(Deadline).where(Deadline.subject_type == "obligation")
        ).all()
        assert len(clocks) == 18
        november = obligation_id(session, "monthly_report:2025-11", "post")
        clock = clock_of(session, subject_type="obligation", subject_id=november)
        assert clock is not None
        # Reminder 3 working days before Fri 21 Nov (the 22nd is a Saturday): Tue 18 Nov.
        assert (clock.kind, clock.due_on, clock.next_fire_at) == (
            "monthly_report",
            date(2025, 11, 21),
            local("2025-11-18 00:00"),
        )
        report = session.get(Obligation, november)
        assert report is not None and report.requirements["period"] == "2025-11"


def test_an_incomplete_submission_leaves_the_clock_running_until_it_is_complete(
    campaign: App,
) -> None:
    _open(campaign)
    with transaction(campaign.sessions) as session:
        plan = obligation_id(session, "implementation_plan:plan", "customs")
        record_submission(
            session=session,
            obligation_id=plan,
            actor="customs.contact",
            at=local("2025-09-18 15:00"),
            complete=False,
            problems=["缺少分工表"],
        )
    _sweep(campaign, "2025-09-19")
    _sweep(campaign, "2025-09-22")  # overdue: the plan is still incomplete
    with transaction(campaign.sessions) as session:
        record_submission(
            session=session,
            obligation_id=plan,
            agency_code="customs",
            actor="customs.contact",
            at=local("2025-09-22 11:00"),
            text="补齐分工表",
        )
    assert _sweep(campaign, "2025-09-26")["escalations"] == 2  # samr and post, not customs
    with campaign.sessions() as session:
        told = [n.step for n in notices_of(session, subject_type="obligation", subject_id=plan)]
        obligation = session.get(Obligation, plan)
        clock = clock_of(session, subject_type="obligation", subject_id=plan)
        actions = [e.action for e in history(session, subject_type="obligation", subject_id=plan)]
    assert told == ["due_today", "overdue"]
    assert obligation is not None and obligation.status == "submitted"
    assert obligation.submitted_at == local("2025-09-22 11:00")
    assert clock is not None and (clock.status, clock.met_at) == ("met", local("2025-09-22 11:00"))
    assert actions == [
        "obligation.created",
        "obligation.incomplete",
        "deadline.overdue",
        "obligation.submitted",
    ]


def test_a_submission_for_another_member_is_refused(campaign: App) -> None:
    _open(campaign)
    with (
        pytest.raises(ObligationError, match="belongs to samr"),
        transaction(campaign.sessions) as session,
    ):
        record_submission(
            session=session,
            obligation_id=obligation_id(session, "implementation_plan:plan", "samr"),
            agency_code="post",
            actor="post.contact",
            at=local("2025-09-18 15:00"),
        )


def test_a_changed_configuration_moves_and_withdraws_open_obligations(
    tmp_path: Path, database_url: str
) -> None:
    folder = tmp_path / "campaign"
    shutil.copytree(CAMPAIGN_2025, folder)
    (folder / "campaign.yaml").write_text(
        (CAMPAIGN_2025 / "campaign.yaml")
        .read_text(encoding="utf-8")
        .replace("base: ../../../config", f"base: {CAMPAIGN_2025.resolve().parents[2] / 'config'}"),
        encoding="utf-8",
    )
    with campaign_app(tmp_path, database_url, folder) as app:
        _open(app)
        with transaction(app.sessions) as session:
            record_submission(
                session=session,
                obligation_id=obligation_id(session, "summary_package:summary", "samr"),
                actor="samr.contact",
                at=local("2025-09-30 10:00"),
            )
    text = (folder / "campaign.yaml").read_text(encoding="utf-8")
    text = text.replace("due: 2025-12-10", "due: 2025-12-12")  # the package moves
    text = text[: text.index("  deliverables:")] + text[text.index("  summary_package:") :]
    (folder / "campaign.yaml").write_text(text, encoding="utf-8")
    app = build_app(make_settings(tmp_path, database_url, config_dir=folder))
    try:
        assert _open(app, "2025-10-01") == {"created": 0, "moved": 2, "withdrawn": 3, "clocks": 0}
        with app.sessions() as session:
            statuses = dict(
                session.execute(
                    select(Obligation.kind, func.count())
                    .where(Obligation.status == "withdrawn")
                    .group_by(Obligation.kind)
                ).all()
            )
            assert statuses == {"deliverable": 3}
            package = session.scalars(
                select(Obligation).where(Obligation.kind == "summary_package")
            ).all()
            due = {o.agency_code: (o.due_on, o.status) for o in package}
            # samr already sent its package: its obligation is left as it was.
            assert due["samr"] == (date(2025, 12, 10), "submitted")
            assert due["post"] == (date(2025, 12, 12), "open")
            clock = clock_of(
                session,
                subject_type="obligation",
                subject_id=next(o.id for o in package if o.agency_code == "post"),
            )
            assert clock is not None and (clock.due_on, clock.version) == (date(2025, 12, 12), 2)
            withdrawn = session.scalars(
                select(Deadline.status).where(
                    Deadline.subject_type == "obligation", Deadline.kind == "deliverable"
                )
            ).all()
            assert set(withdrawn) == {"cancelled"}
    finally:
        app.dispose()
