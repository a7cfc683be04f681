"""Read the ledger into pandas frames, as it stood at an as-of instant (so replays reproduce)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd
from sqlalchemy import Engine, select

from wangjian.ledger.models import (
    AssistRequest,
    Import,
    Lead,
    Notice,
    Obligation,
    Party,
    Referral,
    Submission,
    TypicalCase,
)


@dataclass(frozen=True)
class LedgerFrames:
    """The facts the statistics are computed from, filtered to what was known at `as_of`."""

    as_of: datetime
    as_of_date: date
    leads: pd.DataFrame
    referrals: pd.DataFrame
    escalations: pd.DataFrame
    obligations: pd.DataFrame
    typical_cases: pd.DataFrame
    parties: pd.DataFrame
    duplicates: int
    assists: pd.DataFrame | None = None  # assistance requests to platforms (协查)


def _read(engine: Engine, statement: Any, *, utc: tuple[str, ...] = ()) -> pd.DataFrame:
    with engine.connect() as connection:
        frame = pd.read_sql(statement, connection)
    for column in utc:
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def load_frames(engine: Engine, *, as_of: datetime, as_of_date: date) -> LedgerFrames:
    """Everything received up to `as_of`; answers given after it count as not yet given."""
    cutoff = pd.Timestamp(as_of).tz_convert("UTC")
    leads = _read(
        engine,
        select(
            Lead.id,
            Lead.source,
            Lead.category,
            Lead.region_code,
            Lead.status,
            Lead.received_at,
            Lead.found_on,
            Lead.priority,
        ).where(Lead.received_at <= as_of),
        utc=("received_at",),
    )
    referrals = _read(
        engine,
        select(
            Referral.id,
            Referral.lead_id,
            Referral.agency_code,
            Referral.kind,
            Referral.status,
            Referral.category,
            Referral.received_at,
            Referral.ack_due_on,
            Referral.due_on,
            Referral.acknowledged_at,
            Referral.outcome,
            Referral.outcome_at,
            Referral.case_number,
            Referral.extension_days,
        ).where(Referral.received_at <= as_of),
        utc=("received_at", "acknowledged_at", "outcome_at"),
    )
    # An answer given after the as-of did not exist yet.
    late_ack = referrals["acknowledged_at"] > cutoff
    referrals.loc[late_ack, "acknowledged_at"] = pd.NaT
    late_outcome = referrals["outcome_at"] > cutoff
    referrals.loc[late_outcome, "outcome"] = None
    referrals.loc[late_outcome, "outcome_at"] = pd.NaT
    escalations = _read(
        engine,
        select(Notice.subject_type, Notice.subject_id, Notice.party, Notice.step, Notice.group_key)
        .where(Notice.step.in_(["leader", "supervision"]))
        .distinct(),
    )
    if not escalations.empty:
        swept = escalations["group_key"].str.extract(r"^sweep:(\d{4}-\d{2}-\d{2})$")[0]
        escalations = escalations[swept.notna() & (swept <= as_of_date.isoformat())]
        escalations = escalations.drop(columns="group_key").drop_duplicates()
    obligations = _read(
        engine,
        select(
            Obligation.id,
            Obligation.kind,
            Obligation.code,
            Obligation.agency_code,
            Obligation.title,
            Obligation.due_on,
            Obligation.status,
            Obligation.submitted_at,
        ),
        utc=("submitted_at",),
    )
    late_submission = obligations["submitted_at"] > cutoff
    obligations.loc[late_submission, "status"] = "open"
    obligations.loc[late_submission, "submitted_at"] = pd.NaT
    typical_cases = _read(
        engine,
        select(
            TypicalCase.id,
            TypicalCase.agency_code,
            TypicalCase.title,
            TypicalCase.penalty_decision_file,
            Submission.obligation_id,
            Submission.submitted_at,
        )
        .join(Submission, Submission.id == TypicalCase.submission_id)
        .where(Submission.submitted_at <= as_of),
        utc=("submitted_at",),
    )
    parties = _read(
        engine, select(Party.code, Party.kind, Party.name_zh, Party.name_en, Party.region_code)
    )
    assists = _read(
        engine,
        select(
            AssistRequest.id,
            AssistRequest.platform_code,
            AssistRequest.status,
            AssistRequest.requested_at,
            AssistRequest.due_at,
            AssistRequest.answered_at,
        ).where(AssistRequest.requested_at <= as_of, AssistRequest.status != "cancelled"),
        utc=("requested_at", "due_at", "answered_at"),
    )
    # An answer given after the as-of did not exist yet.
    late_answer = assists["answered_at"] > cutoff
    assists.loc[late_answer, "answered_at"] = pd.NaT
    assists.loc[late_answer, "status"] = "open"
    imports = _read(
        engine,
        select(Import.counts, Import.started_at).where(Import.kind == "leads"),
        utc=("started_at",),
    )
    duplicates = 0
    if not imports.empty:
        mask = imports["started_at"] <= cutoff
        duplicates = int(
            sum(int((c or {}).get("duplicates", 0)) for c in imports.loc[mask, "counts"])
        )
    for frame, columns in (
        (referrals, ("ack_due_on", "due_on")),
        (leads, ("found_on",)),
        (obligations, ("due_on",)),
    ):
        for column in columns:
            frame[column] = pd.to_datetime(frame[column]).dt.date
    return LedgerFrames(
        as_of=as_of,
        as_of_date=as_of_date,
        leads=leads,
        referrals=referrals,
        escalations=escalations,
        obligations=obligations,
        typical_cases=typical_cases,
        parties=parties,
        duplicates=duplicates,
        assists=assists,
    )
