"""Test data for the deadline engine: referrals made directly in the ledger (dispatch is written
elsewhere), the agency's acknowledgement and outcome as the portal will record them, and apps on
the 2025 test campaign."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from wangjian.bootstrap import App, build_app, use_app
from wangjian.domain.deadlines import compute_due
from wangjian.ledger.clocks import meet_clock, open_clock
from wangjian.ledger.db import transaction
from wangjian.ledger.extensions import is_listed_operator, outcome_due
from wangjian.ledger.models import Lead, ListedOperator, Notice, Obligation, Referral
from wangjian.ledger.obligations import open_obligations
from wangjian.ledger.setup import initialise_ledger
from wangjian.ledger.sweep import SweepResult, sweep_deadlines

from .conftest import make_settings

CAMPAIGN_2025 = Path(__file__).parent / "data" / "campaign-2025"
TZ = ZoneInfo("Asia/Shanghai")


@contextmanager
def campaign_app(
    tmp_path: Path, database_url: str, config_dir: Path = CAMPAIGN_2025
) -> Iterator[App]:
    """An initialised App on a campaign folder (the 2025 test campaign by default), installed."""
    built = build_app(make_settings(tmp_path, database_url, config_dir=config_dir))
    initialise_ledger(built)
    with use_app(built):
        yield built
    built.dispose()


def local(text: str) -> datetime:
    """A local campaign time; a bare date means the 09:00 sweep."""
    if len(text) == 10:
        text += " 09:00"
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def make_referral(
    session: Session,
    app: App,
    *,
    agency: str,
    received: datetime,
    number: int,
    kind: str = "referral",
    category: str = "trademark",
    shop: str | None = None,
    listed_operator: bool = False,
) -> Referral:
    """A lead referred to `agency` at `received`, its acknowledgement clock running (a lead
    about an operator on the removed-merchants list gets the faster outcome limit)."""
    listed = None
    if listed_operator:
        listed = ListedOperator(
            list_kind="removed_by_platform",
            identity_key=f"shop:{number}",
            shop_name=shop or f"测试店铺{number}",
            listed_on=received.date(),
        )
        session.add(listed)
        session.flush()
    lead = Lead(
        listed_operator_id=listed.id if listed else None,
        source="test",
        source_lead_id=f"L{number}",
        category=category,
        summary=f"测试线索{number}",
        platform="某电商平台",
        shop_name=shop or f"测试店铺{number}",
        region_code="140105",
        found_on=received.date(),
        status="referred",
        received_at=received,
    )
    session.add(lead)
    session.flush()
    policy = app.config.policy(kind)
    ack = compute_due(app.calendar, received, policy.acknowledge, tz=app.tz)
    limit = policy.listed_operator_outcome if listed_operator else policy.outcome
    assert limit is not None
    outcome = compute_due(app.calendar, received, limit, tz=app.tz)
    referral = Referral(
        lead_id=lead.id,
        agency_code=agency,
        kind=kind,
        category=category,
        reason="测试",
        rule="test",
        policy=policy.model_dump(mode="json"),
        received_at=received,
        ack_due_on=ack.due_on,
        due_on=outcome.due_on,
        original_due_on=outcome.due_on,
        provisional=ack.provisional or outcome.provisional,
        status="open",
    )
    session.add(referral)
    session.flush()
    open_clock(
        session,
        app,
        subject_type="referral",
        subject_id=referral.id,
        kind="referral_ack",
        party=agency,
        ladder=policy.ack_ladder,
        due=ack,
    )
    return referral


def acknowledge(session: Session, app: App, referral: Referral, at: datetime) -> None:
    """What the portal does when an agency acknowledges: the outcome clock takes over."""
    referral.status, referral.acknowledged_at = "acknowledged", at
    open_clock(
        session,
        app,
        subject_type="referral",
        subject_id=referral.id,
        kind="referral_outcome",
        party=referral.agency_code,
        ladder=app.config.policy(referral.kind).outcome_ladder,
        due=outcome_due(app, referral, listed_operator=is_listed_operator(session, referral)),
    )


def close(session: Session, referral: Referral, at: datetime, outcome: str = "case_filed") -> None:
    """What the portal does when an agency reports the outcome: the clock stops."""
    referral.status, referral.outcome, referral.outcome_at, referral.closed_at = (
        "closed",
        outcome,
        at,
        at,
    )
    meet_clock(session, subject_type="referral", subject_id=referral.id, at=at)


def run_sweep(app: App, as_of: datetime) -> SweepResult:
    """What the flow does, without Prefect: obligations, then the sweep, in one transaction."""
    with transaction(app.sessions) as session:
        open_obligations(session=session, app=app, as_of=as_of)
        return sweep_deadlines(session=session, app=app, as_of=as_of)


def obligation_id(session: Session, kind_code: str, agency: str) -> int:
    kind, code = kind_code.split(":")
    return int(
        session.scalars(
            select(Obligation.id).where(
                Obligation.kind == kind, Obligation.code == code, Obligation.agency_code == agency
            )
        ).one()
    )


def notices_of(session: Session, **where: Any) -> list[Notice]:
    statement = select(Notice).order_by(Notice.id)
    for column, value in where.items():
        statement = statement.where(getattr(Notice, column) == value)
    return list(session.scalars(statement))
