"""The campaign ledger: SQLAlchemy 2 typed models.

Uniqueness that matters is a database constraint: one lead per (source, lead id), one referral
per (lead, agency), one live clock per subject, one notice per key, one message per key.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from wangjian.domain.dedup import match_hash

# Integer primary keys: BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware datetimes, stored as UTC on every engine (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the ledger stores zone-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: Json, list[Any]: Json}


def utcnow() -> datetime:
    return datetime.now(UTC)


class Meta(Base):
    """Key/value facts about this ledger (campaign code, config digest)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(60), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Party(Base):
    """Who can be told something: member agencies, other regions' regulators, platforms."""

    __tablename__ = "parties"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))  # member | regulator | platform
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str | None] = mapped_column(String(100))
    contact_email: Mapped[str] = mapped_column(String(254))
    leader_name: Mapped[str | None] = mapped_column(String(100))
    leader_email: Mapped[str | None] = mapped_column(String(254))
    region_code: Mapped[str | None] = mapped_column(String(6))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    token_version: Mapped[int] = mapped_column(Integer, default=1)


class Import(Base):
    """One intake of a file (leads, feedback or listed operators), resumable after a crash."""

    __tablename__ = "imports"
    __table_args__ = (UniqueConstraint("kind", "file_sha256", "partition"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str] = mapped_column(String(500))
    file_sha256: Mapped[str] = mapped_column(String(64))
    partition: Mapped[str] = mapped_column(String(40), default="all")
    as_of: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="running")  # running | done | failed
    chunks_done: Mapped[int] = mapped_column(Integer, default=0)
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    counts: Mapped[dict[str, Any]] = mapped_column(default=dict)
    reject_report: Mapped[str | None] = mapped_column(String(500))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    flow_run_id: Mapped[str | None] = mapped_column(String(40))


class Lead(Base):
    """A suspected violation, as received."""

    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("source", "source_lead_id"),
        Index("ix_leads_status", "status"),
        Index("ix_leads_credit_code", "credit_code"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(40))
    source_lead_id: Mapped[str] = mapped_column(String(100))
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    row_number: Mapped[int | None] = mapped_column(Integer)
    category: Mapped[str | None] = mapped_column(String(40))
    category_origin: Mapped[str | None] = mapped_column(String(20))  # given | keywords | office
    summary: Mapped[str | None] = mapped_column(Text)
    platform: Mapped[str | None] = mapped_column(String(100))
    shop_name: Mapped[str | None] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(2000))
    operator_name: Mapped[str | None] = mapped_column(String(200))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    region_code: Mapped[str] = mapped_column(String(6))
    found_on: Mapped[date] = mapped_column(Date)
    suspected_crime: Mapped[bool] = mapped_column(Boolean, default=False)
    amount_yuan: Mapped[Decimal | None] = mapped_column(Numeric(16, 2))
    status: Mapped[str] = mapped_column(String(20))  # referred | held | attached | closed
    hold_reason: Mapped[str | None] = mapped_column(Text)
    attached_to: Mapped[int | None] = mapped_column(BigId)  # the open referral it adds to
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    listed_operator_id: Mapped[int | None] = mapped_column(ForeignKey("listed_operators.id"))
    received_at: Mapped[datetime]


class FrozenPolicy(Base):
    """An SLA policy as it stood when referrals were made under it, kept once for all of them
    (a policy with its legal basis is a kilobyte or two; a campaign makes a million referrals).
    Rows are never changed: a different policy is a new row."""

    __tablename__ = "frozen_policies"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64), index=True)  # SHA-256 of `text_of(body)`
    body: Mapped[dict[str, Any]]

    @staticmethod
    def text_of(body: dict[str, Any]) -> str:
        """The canonical JSON text of a policy (what its digest is taken of)."""
        return json.dumps(body, ensure_ascii=False, sort_keys=True, separators=(",", ":"))

    @classmethod
    def digest_of(cls, body: dict[str, Any]) -> str:
        return hashlib.sha256(cls.text_of(body).encode("utf-8")).hexdigest()

    @classmethod
    def of(cls, body: dict[str, Any]) -> FrozenPolicy:
        return cls(digest=cls.digest_of(body), body=dict(body))


class Referral(Base):
    """A lead handed to one agency (or another region's regulator), with its frozen SLA."""

    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("lead_id", "agency_code"),
        Index("ix_referrals_agency_status", "agency_code", "status"),
        Index("ix_referrals_listing_hash", "listing_hash"),
        Index("ix_referrals_operator_hash", "operator_hash"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    lead_id: Mapped[int] = mapped_column(ForeignKey("leads.id"))
    agency_code: Mapped[str] = mapped_column(ForeignKey("parties.code"))
    kind: Mapped[str] = mapped_column(String(20))  # referral | crime | transfer_out
    category: Mapped[str | None] = mapped_column(String(40))
    listing_key: Mapped[str | None] = mapped_column(String(300))
    operator_key: Mapped[str | None] = mapped_column(String(300))
    # match_hash(category, key) of each: what an open referral is looked up by (set on flush).
    listing_hash: Mapped[int | None] = mapped_column(BigInteger)
    operator_hash: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default="open")
    # open | acknowledged | closed | returned | reassigned
    reason: Mapped[str] = mapped_column(Text)  # why it went here, in words
    rule: Mapped[str] = mapped_column(String(40))  # which routing rule decided it
    # The SLA policy frozen at referral time (None: the configured one applies).
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("frozen_policies.id"))
    # Loaded with the referral in one extra query for a whole result (a handful of rows).
    frozen_policy: Mapped[FrozenPolicy | None] = relationship(lazy="selectin")
    received_at: Mapped[datetime]
    ack_due_on: Mapped[date] = mapped_column(Date)
    due_on: Mapped[date] = mapped_column(Date)
    original_due_on: Mapped[date] = mapped_column(Date)
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    priority: Mapped[str] = mapped_column(String(10), default="normal")
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    acknowledged_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(30))
    case_number: Mapped[str | None] = mapped_column(String(100))
    decided_on: Mapped[date | None] = mapped_column(Date)
    outcome_note: Mapped[str | None] = mapped_column(Text)
    outcome_at: Mapped[datetime | None]
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    extension_reason: Mapped[str | None] = mapped_column(Text)
    returned_reason: Mapped[str | None] = mapped_column(Text)
    replaced_by: Mapped[int | None] = mapped_column(BigId)
    evidence_count: Mapped[int] = mapped_column(Integer, default=0)
    closed_at: Mapped[datetime | None]

    @property
    def policy(self) -> dict[str, Any]:
        """The frozen SLA policy as a dict ({} if none was frozen)."""
        return dict(self.frozen_policy.body) if self.frozen_policy is not None else {}

    @policy.setter
    def policy(self, body: dict[str, Any]) -> None:
        self.frozen_policy = FrozenPolicy.of(body) if body else None


@event.listens_for(Referral, "before_insert")
@event.listens_for(Referral, "before_update")
def _match_hashes(_mapper: Any, _connection: Any, referral: Referral) -> None:
    """A referral written through the ORM gets the hashes that dispatch writes in bulk."""
    referral.listing_hash = match_hash(referral.category, referral.listing_key)
    referral.operator_hash = match_hash(referral.category, referral.operator_key)


class Deadline(Base):
    """A live clock on one subject (a referral, an obligation, an assistance request).

    The sweep reads only rows whose next ladder step has come (`status`, `next_fire_at`), so
    its work grows with what is due, not with everything open.
    """

    __tablename__ = "deadlines"
    __table_args__ = (
        UniqueConstraint("subject_type", "subject_id"),
        Index("ix_deadlines_due", "status", "next_fire_at"),
        # The office's overdue tables read only what is past due, not everything open.
        Index("ix_deadlines_overdue", "status", "due_at"),
        Index("ix_deadlines_party", "party", "status"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject_type: Mapped[str] = mapped_column(String(20))  # referral | obligation | assist
    subject_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(30))
    # referral_ack | referral_outcome | implementation_plan | monthly_report | deliverable
    # | summary_package | assist_response
    party: Mapped[str] = mapped_column(String(40))
    ladder: Mapped[str] = mapped_column(String(40))
    due_on: Mapped[date] = mapped_column(Date)
    due_at: Mapped[datetime]
    provisional: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | met | cancelled
    met_at: Mapped[datetime | None]
    last_step: Mapped[str | None] = mapped_column(String(20))
    next_step: Mapped[int] = mapped_column(Integer, default=0)  # index into the ladder
    next_fire_at: Mapped[datetime | None]
    listed_at: Mapped[datetime | None]  # listed for supervision (挂牌督办)
    escalated_at: Mapped[datetime | None]
    overdue_since: Mapped[date | None] = mapped_column(Date)
    version: Mapped[int] = mapped_column(Integer, default=1)  # bumped on extension: ladder restarts


class Notice(Base):
    """One thing to tell one recipient, queued in the outbox; grouped into messages to send."""

    __tablename__ = "notices"
    __table_args__ = (
        Index("ix_notices_pending", "status", "group_key"),
        Index("ix_notices_message", "message_id"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(300), unique=True)
    kind: Mapped[str] = mapped_column(String(40))
    party: Mapped[str] = mapped_column(String(40))
    audience: Mapped[str] = mapped_column(String(20))  # contact | leader | office | leading_group
    recipient: Mapped[str] = mapped_column(String(254))
    cc: Mapped[list[Any]] = mapped_column(default=list)
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int] = mapped_column(BigId)
    deadline_id: Mapped[int | None] = mapped_column(BigId)
    step: Mapped[str | None] = mapped_column(String(20))
    group_key: Mapped[str] = mapped_column(String(120))
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(
        String(20), default="queued"
    )  # queued | grouped | sent | failed | withdrawn (its item resolved before it went out)
    message_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """An e-mail built from one or more notices; sent exactly once, keyed and leased."""

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_ready", "status", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(120), unique=True)
    message_id_header: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(40))
    party: Mapped[str] = mapped_column(String(40))
    recipient: Mapped[str] = mapped_column(String(254))
    cc: Mapped[list[Any]] = mapped_column(default=list)
    group_key: Mapped[str] = mapped_column(String(120), default="")
    part: Mapped[int] = mapped_column(
        Integer, default=1
    )  # a digest split by the cap: part of parts
    parts: Mapped[int] = mapped_column(Integer, default=1)
    locale: Mapped[str] = mapped_column(String(5), default="zh")
    notice_count: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default="ready")
    # ready | sending | sent | retry | failed | cancelled (nothing left to say)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(80))
    lease_until: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class Obligation(Base):
    """Something a member owes the office: a plan, a monthly report, a deliverable, the package."""

    __tablename__ = "obligations"
    __table_args__ = (UniqueConstraint("kind", "code", "agency_code"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(30))
    code: Mapped[str] = mapped_column(String(40))  # period ("2021-11") or deliverable code
    agency_code: Mapped[str] = mapped_column(ForeignKey("parties.code"))
    title: Mapped[str] = mapped_column(String(200))
    due_on: Mapped[date] = mapped_column(Date)
    requirements: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="open")  # open | submitted | incomplete
    submitted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Submission(Base):
    """A member's answer to an obligation (report text, files, typical cases)."""

    __tablename__ = "submissions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    obligation_id: Mapped[int] = mapped_column(ForeignKey("obligations.id"))
    agency_code: Mapped[str] = mapped_column(ForeignKey("parties.code"))
    submitted_at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    text: Mapped[str | None] = mapped_column(Text)
    files: Mapped[list[Any]] = mapped_column(default=list)  # [{"role", "name", "path", "size"}]
    complete: Mapped[bool] = mapped_column(Boolean, default=True)
    problems: Mapped[list[Any]] = mapped_column(default=list)


class TypicalCase(Base):
    """A typical case in a member's package; counted only with its penalty decision attached."""

    __tablename__ = "typical_cases"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    submission_id: Mapped[int] = mapped_column(ForeignKey("submissions.id"))
    agency_code: Mapped[str] = mapped_column(ForeignKey("parties.code"))
    title: Mapped[str] = mapped_column(String(300))
    case_number: Mapped[str | None] = mapped_column(String(100))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))
    penalty_decision_file: Mapped[str | None] = mapped_column(String(500))


class Extension(Base):
    """An agency's request for more time, and the office's decision."""

    __tablename__ = "extensions"
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referrals.id"))
    agency_code: Mapped[str] = mapped_column(ForeignKey("parties.code"))
    days: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime]
    requested_by: Mapped[str] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(
        String(20), default="requested"
    )  # requested|approved|refused
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decision_note: Mapped[str | None] = mapped_column(Text)


class Event(Base):
    """The append-only trail of every change: who, when, what, from where."""

    __tablename__ = "events"
    __table_args__ = (Index("ix_events_subject", "subject_type", "subject_id"),)
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(60))
    subject_type: Mapped[str] = mapped_column(String(20))
    subject_id: Mapped[int | None] = mapped_column(BigId)
    origin: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AssistRequest(Base):
    """A request to a platform for data about a shop (协查), on an hour clock.

    One open request per platform, subject (referral or lead) and data asked: a second click
    or a rerun finds the first (`subject_key`, unique among open requests).
    """

    __tablename__ = "assist_requests"
    __table_args__ = (
        Index("ix_assist_requests_platform_status", "platform_code", "status"),
        Index(
            "uq_assist_requests_open_subject",
            "subject_key",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    platform_code: Mapped[str] = mapped_column(ForeignKey("parties.code"))
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referrals.id"))
    lead_id: Mapped[int | None] = mapped_column(ForeignKey("leads.id"))
    asked: Mapped[list[Any]] = mapped_column(default=list)  # identity | sales | listings | ...
    detail: Mapped[str | None] = mapped_column(Text)
    legal_basis: Mapped[str] = mapped_column(Text)
    subject_key: Mapped[str] = mapped_column(String(200))  # platform|subject|asked
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime]
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(20), default="open")
    # open | answered | no_such_operator | cancelled
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(100))
    answer_file: Mapped[str | None] = mapped_column(String(500))  # under the upload folder
    answer_file_name: Mapped[str | None] = mapped_column(String(200))  # as the uploader named it
    answer_file_sha256: Mapped[str | None] = mapped_column(String(64))
    answer_note: Mapped[str | None] = mapped_column(Text)


class ListedOperator(Base):
    """An operator removed by a platform or on a sanction list (一处清退、处处关店)."""

    __tablename__ = "listed_operators"
    __table_args__ = (
        Index("ix_listed_credit", "credit_code"),
        Index("ix_listed_shop", "platform", "shop_key"),
        UniqueConstraint("list_kind", "identity_key"),
    )
    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    list_kind: Mapped[str] = mapped_column(String(30))
    # removed_by_platform | abnormal_operation | serious_violation
    identity_key: Mapped[str] = mapped_column(String(300))
    credit_code: Mapped[str | None] = mapped_column(String(18))
    platform: Mapped[str | None] = mapped_column(String(100))
    shop_name: Mapped[str | None] = mapped_column(String(200))
    shop_key: Mapped[str | None] = mapped_column(String(200))  # the name, normalised for matching
    shop_id: Mapped[str | None] = mapped_column(String(100))
    operator_name: Mapped[str | None] = mapped_column(String(200))
    region_code: Mapped[str | None] = mapped_column(String(6))
    reason: Mapped[str | None] = mapped_column(Text)
    listed_on: Mapped[date] = mapped_column(Date)
    delisted_on: Mapped[date | None] = mapped_column(Date)
    delist_reason: Mapped[str | None] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    import_id: Mapped[int | None] = mapped_column(ForeignKey("imports.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
