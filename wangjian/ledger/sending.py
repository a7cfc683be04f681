"""Draining the outbox: notices become messages, messages are claimed, sent and marked once.

1. *Compose*: queued notices are grouped by (recipient, group key) — one e-mail per recipient
   per dispatch or per sweep day — and split by the digest cap. A message's key is a hash of its
   sorted notice keys, and its Message-ID a hash of that key, fixed when the row is written.
2. *Claim*: a sender leases ready messages (and retries that are due, and sends interrupted by a
   crash once their lease has run out). PostgreSQL skips rows another sender has locked; SQLite
   serialises writers, and the UPDATE only takes rows whose lease is still free.
3. *Mark*: a message is `sent` only after the server's 250. A transient failure goes back to
   `retry` with exponential backoff and jitter, a permanent one to `failed` with the server's
   reply. The state lives in the row, so it survives restarts. A reminder whose item was resolved
   while it waited is withdrawn; a message left with nothing to say is `cancelled`.

A crash between the server's 250 and the mark leaves a `sending` row; when its lease expires it
is sent again with the same Message-ID, so the recipient's mail system sees one message.

What the sender reads from a notice (`wangjian.ledger.outbox`): `recipient` and `cc` (addresses),
`audience` (contact | leader | office | leading_group: the mail says why they receive it),
`party` (whose signed answer link it carries), `subject_type`/`subject_id` (referral,
obligation or assist), `kind` and `step`, `deadline_id` for ladder notices, `group_key` (one mail
per recipient per group), and optionally in `context`: `due_on` (the due date as announced) and
`version` (the clock version the notice was queued for; an older one is withdrawn).
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import os
import random
import socket
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, bindparam, func, or_, select, text, update
from sqlalchemy.orm import Session

from wangjian.ledger.bulk import insert_ignore
from wangjian.ledger.db import transaction
from wangjian.ledger.events import record_events
from wangjian.ledger.models import Message, Notice, utcnow
from wangjian.mail.content import MessageBuilder
from wangjian.mail.envelope import message_id_for, sender_address
from wangjian.mail.transport import Delivery, Mailer
from wangjian.settings import SmtpSettings

if TYPE_CHECKING:
    from wangjian.bootstrap import App

MESSAGES: Table = Message.__table__  # type: ignore[assignment]
NOTICES: Table = Notice.__table__  # type: ignore[assignment]

# Serialises composers on PostgreSQL (SQLite's BEGIN IMMEDIATE already does): two composers
# reading the same queued notices could otherwise chunk them differently.
COMPOSE_LOCK = 0x57414E474A49414E & 0x7FFFFFFFFFFFFFFF
IN_CHUNK = 5000
STATUSES = ("ready", "sending", "retry", "sent", "failed", "cancelled")


def message_key(notice_keys: Sequence[str]) -> str:
    """A message's key: the same notices always make the same message."""
    return "m:" + hashlib.sha256("\n".join(sorted(notice_keys)).encode("utf-8")).hexdigest()


def _chunked(values: Sequence[Any], size: int = IN_CHUNK) -> list[Sequence[Any]]:
    return [values[i : i + size] for i in range(0, len(values), size)]


# --- 1. compose --------------------------------------------------------------------------------


def compose_messages(
    *, session: Session, as_of: datetime, cap: int, locale: str, domain: str
) -> int:
    """Group queued notices into messages and link them; returns how many messages were made."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(:key)"), {"key": COMPOSE_LOCK})
    rows = session.execute(
        select(
            Notice.id,
            Notice.key,
            Notice.kind,
            Notice.party,
            Notice.recipient,
            Notice.cc,
            Notice.group_key,
        ).where(Notice.status == "queued", Notice.message_id.is_(None))
    ).all()
    groups: dict[tuple[str, str], list[Any]] = defaultdict(list)
    for row in rows:
        groups[(row.recipient.lower(), row.group_key)].append(row)
    messages: list[dict[str, Any]] = []
    members: dict[str, list[int]] = {}
    for (recipient, group_key), notices in sorted(groups.items()):
        notices.sort(key=lambda n: n.key)
        chunks = _chunked(notices, cap)
        for part, chunk in enumerate(chunks, start=1):
            key = message_key([n.key for n in chunk])
            kinds = {n.kind for n in chunk}
            kind = kinds.pop() if len(kinds) == 1 else "mixed"
            parties = {n.party for n in chunk}
            cc = sorted({c.lower() for n in chunk for c in (n.cc or [])} - {recipient})
            messages.append(
                {
                    "key": key,
                    "message_id_header": message_id_for(key, domain),
                    "kind": "digest" if kind == "referral" and len(chunk) > 1 else kind,
                    "party": parties.pop() if len(parties) == 1 else "*",
                    "recipient": chunk[0].recipient,
                    "cc": cc,
                    "group_key": group_key,
                    "part": part,
                    "parts": len(chunks),
                    "locale": locale,
                    "notice_count": len(chunk),
                    "status": "ready",
                    "attempts": 0,
                    "next_attempt_at": as_of,
                    "created_at": utcnow(),
                }
            )
            members[key] = [n.id for n in chunk]
    if not messages:
        return 0
    created = insert_ignore(session, MESSAGES, messages, ["key"], returning="id")
    ids: dict[str, int] = {}
    for keys in _chunked(list(members)):
        query = select(Message.key, Message.id).where(Message.key.in_(keys))
        ids.update(session.execute(query).tuples().all())
    link = (
        update(NOTICES)
        .where(NOTICES.c.id == bindparam("nid"), NOTICES.c.message_id.is_(None))
        .values(message_id=bindparam("mid"), status="grouped")
    )
    session.execute(
        link, [{"nid": nid, "mid": ids[key]} for key, nids in members.items() for nid in nids]
    )
    return len(created)


# --- 2. claim ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    """Messages one sender holds until `lease_until`."""

    owner: str
    lease_until: datetime
    attempts: dict[int, int]  # message id → attempts, this one included
    resumed: frozenset[int]  # were mid-send when their previous sender stopped


def new_owner() -> str:
    """A lease owner name unique to this claim (host, process, random part)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def lease_for(batch_size: int, smtp: SmtpSettings) -> float:
    """Long enough for a whole batch to time out message by message on the pool, plus rendering."""
    return math.ceil(batch_size / smtp.pool_size) * smtp.timeout_seconds + 120.0


def _claimable(as_of: datetime, now: datetime) -> Any:
    lease_free = or_(Message.lease_until.is_(None), Message.lease_until < now)
    return or_(
        and_(Message.status.in_(("ready", "retry")), Message.next_attempt_at <= as_of, lease_free),
        and_(Message.status == "sending", Message.lease_until < now),
    )


def claim_messages(
    *,
    session: Session,
    as_of: datetime,
    now: datetime,
    owner: str,
    limit: int,
    lease_seconds: float,
) -> Claim:
    """Lease up to `limit` messages that are due and free; two senders never hold the same one."""
    until = now + timedelta(seconds=lease_seconds)
    candidates = session.execute(
        select(Message.id, Message.status)
        .where(_claimable(as_of, now))
        .order_by(Message.next_attempt_at, Message.id)
        .limit(limit)
        .with_for_update(skip_locked=True)  # PostgreSQL; SQLite's writers are serialised
    ).all()
    if not candidates:
        return Claim(owner, until, {}, frozenset())
    # Conditional: a row whose lease was taken since the SELECT is left alone.
    session.execute(
        update(Message)
        .where(Message.id.in_([c.id for c in candidates]), _claimable(as_of, now))
        .values(
            status="sending",
            lease_owner=owner,
            lease_until=until,
            attempts=Message.attempts + 1,
        )
        .execution_options(synchronize_session=False)
    )
    held = dict(
        session.execute(
            select(Message.id, Message.attempts).where(
                Message.lease_owner == owner, Message.status == "sending"
            )
        )
        .tuples()
        .all()
    )
    resumed = frozenset(c.id for c in candidates if c.status == "sending" and c.id in held)
    return Claim(owner, until, held, resumed)


# --- 3. mark -----------------------------------------------------------------------------------


def retry_delay(attempt: int, *, initial: float, cap: float, rng: random.Random) -> timedelta:
    """Exponential backoff with jitter: initial·2^(attempt−1), at most `cap`, plus up to `initial`."""
    base = min(cap, initial * 2 ** min(attempt - 1, 30))
    return timedelta(seconds=base + rng.uniform(0, initial))


@dataclass
class BatchReport:
    """What one batch did; `failures` lists the messages that failed for good."""

    claimed: int = 0
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    cancelled: int = 0
    resent: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)

    def add(self, other: BatchReport) -> None:
        for name in ("claimed", "sent", "retrying", "failed", "cancelled", "resent"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.failures.extend(other.failures)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Result:
    """What became of one claimed message."""

    delivery: Delivery | None  # None: every notice was withdrawn, so nothing was sent
    subject: str | None = None
    withdrawn: tuple[int, ...] = ()  # notices no longer due, left out of the mail


def record_deliveries(
    *,
    session: Session,
    claim: Claim,
    results: dict[int, Result],
    as_of: datetime,
    smtp: SmtpSettings,
    rng: random.Random,
) -> BatchReport:
    """Mark each claimed message sent, to retry later, failed or cancelled; an event each."""
    report = BatchReport(claimed=len(claim.attempts), resent=len(claim.resumed))
    # Only rows still leased to this claim: a sender that overran its lease must not overwrite
    # what the sender that took over has recorded.
    held = {
        row.id: row
        for row in session.execute(
            select(Message.id, Message.recipient, Message.kind)
            .where(Message.id.in_(list(results)), Message.lease_owner == claim.owner)
            .with_for_update()
        )
    }
    rows: dict[str, list[dict[str, Any]]] = {"sent": [], "retry": [], "ended": []}
    events: list[dict[str, Any]] = []
    withdrawn: list[int] = []
    for message_id, result in sorted(results.items()):
        if message_id not in held:
            continue
        withdrawn += result.withdrawn
        attempts = claim.attempts.get(message_id, 1)
        if result.delivery is None:
            status, reply = "cancelled", "every item was resolved before the mail went out"
        else:
            status, reply = result.delivery.status, result.delivery.reply
        if status == "retry" and attempts >= smtp.max_attempts:
            status, reply = "failed", f"gave up after {attempts} attempts: {reply}"
        row = {"mid": message_id, "subj": result.subject and result.subject[:500], "note": reply}
        if status == "sent":
            # The reply is kept only when the server refused some of the copies.
            rows["sent"].append({**row, "note": reply if "(refused:" in reply else None})
        elif status == "retry":
            wait = retry_delay(
                attempts, initial=smtp.retry_initial_seconds, cap=smtp.retry_max_seconds, rng=rng
            )
            rows["retry"].append({**row, "due": as_of + wait})
        else:
            rows["ended"].append({**row, "st": status})
        if status == "failed":
            report.failures.append(
                {
                    "message": message_id,
                    "recipient": held[message_id].recipient,
                    "kind": held[message_id].kind,
                    "subject": result.subject,
                    "attempts": attempts,
                    "reply": reply,
                }
            )
        events.append(
            {
                "at": as_of,
                "actor": "sender",
                "action": EVENT_OF[status],
                "subject_type": "message",
                "subject_id": message_id,
                "origin": claim.owner,
                "data": {
                    "recipient": held[message_id].recipient,
                    "attempt": attempts,
                    "reply": reply[:1000],
                    "resent": message_id in claim.resumed,
                },
            }
        )
    _write_outcomes(session, rows, as_of=as_of, withdrawn=withdrawn)
    record_events(session, events)
    report.sent, report.retrying = len(rows["sent"]), len(rows["retry"])
    report.failed = sum(r["st"] == "failed" for r in rows["ended"])
    report.cancelled = sum(r["st"] == "cancelled" for r in rows["ended"])
    return report


EVENT_OF = {
    "sent": "message_sent",
    "retry": "message_deferred",
    "failed": "message_failed",
    "cancelled": "message_cancelled",
}


def _write_outcomes(
    session: Session,
    rows: dict[str, list[dict[str, Any]]],
    *,
    as_of: datetime,
    withdrawn: list[int],
) -> None:
    """The messages' new states and their notices', in a few executemany statements."""
    mine = MESSAGES.c.id == bindparam("mid")
    common: dict[str, Any] = {
        "subject": bindparam("subj"),
        "last_error": bindparam("note"),
        "lease_owner": None,
        "lease_until": None,
    }
    statements = {
        "sent": update(MESSAGES).where(mine).values(status="sent", sent_at=as_of, **common),
        "retry": update(MESSAGES)
        .where(mine)
        .values(status="retry", next_attempt_at=bindparam("due"), **common),
        "ended": update(MESSAGES).where(mine).values(status=bindparam("st"), **common),
    }
    for name, statement in statements.items():
        if rows[name]:
            session.execute(statement, rows[name])
    notice_status = [("sent", [r["mid"] for r in rows["sent"]])]
    notice_status += [
        (status, [r["mid"] for r in rows["ended"] if r["st"] == status])
        for status in ("failed", "cancelled")
    ]
    for status, message_ids in notice_status:
        for ids in _chunked(message_ids):
            session.execute(
                update(NOTICES)
                .where(NOTICES.c.message_id.in_(ids))
                .values(status="withdrawn" if status == "cancelled" else status)
            )
    for ids in _chunked(withdrawn):
        session.execute(update(NOTICES).where(NOTICES.c.id.in_(ids)).values(status="withdrawn"))


# --- the whole round ---------------------------------------------------------------------------


def compose_outbox_messages(*, app: App, as_of: datetime) -> int:
    """Compose with the App's settings (digest cap, locale, the sender's domain)."""
    domain = sender_address(app.settings, app.config).domain
    with transaction(app.sessions) as session:
        return compose_messages(
            session=session,
            as_of=as_of,
            cap=app.settings.mail_digest_cap,
            locale=app.settings.locale,
            domain=domain,
        )


def send_batch(
    *,
    app: App,
    mailer: Mailer,
    as_of: datetime,
    limit: int,
    now: datetime | None = None,
    owner: str | None = None,
    lease_seconds: float | None = None,
    rng: random.Random | None = None,
) -> BatchReport:
    """Claim up to `limit` due messages, render them, hand them to the mailer, mark the results."""
    now = now or utcnow()
    smtp = app.settings.smtp
    with transaction(app.sessions) as session:
        claim = claim_messages(
            session=session,
            as_of=as_of,
            now=now,
            owner=owner or new_owner(),
            limit=limit,
            lease_seconds=lease_seconds or lease_for(limit, smtp),
        )
    if not claim.attempts:
        return BatchReport()
    drafts = render_claimed(app=app, ids=list(claim.attempts), as_of=as_of)
    ready = [d for d in drafts if d.mail is not None]
    deliveries = asyncio.run(mailer.deliver([d.mail for d in ready if d.mail is not None]))
    sent = {d.message_id: delivery for d, delivery in zip(ready, deliveries, strict=True)}
    results = {}
    for draft in drafts:
        delivery = sent.get(draft.message_id)
        if draft.error:
            # A message that cannot be rendered will not render better later: fail it visibly.
            delivery = Delivery("failed", draft.error)
        results[draft.message_id] = Result(delivery, draft.subject, tuple(draft.withdrawn))
    with transaction(app.sessions) as session:
        return record_deliveries(
            session=session,
            claim=claim,
            results=results,
            as_of=as_of,
            smtp=smtp,
            rng=rng or random.Random(),
        )


def render_claimed(*, app: App, ids: Sequence[int], as_of: datetime) -> list[Any]:
    """Drafts (e-mails or reasons) for the given messages; the read is short, rendering after."""
    builder = MessageBuilder(app, as_of=as_of)
    with app.sessions() as session:
        messages = list(session.scalars(select(Message).where(Message.id.in_(list(ids)))))
        batch = builder.load(session, messages)
    return builder.render(batch)


def drain_outbox(
    *, app: App, mailer: Mailer, as_of: datetime, batch_size: int | None = None
) -> BatchReport:
    """Compose, then send batch after batch until nothing due is left (scripts and tests)."""
    size = batch_size or app.settings.mail_batch_size
    compose_outbox_messages(app=app, as_of=as_of)
    total = BatchReport()
    while True:
        report = send_batch(app=app, mailer=mailer, as_of=as_of, limit=size)
        total.add(report)
        if report.claimed < size:
            return total


# --- for the office ----------------------------------------------------------------------------


def outbox_counts(*, session: Session) -> dict[str, int]:
    """Messages per status (every status present, zero included)."""
    query = select(Message.status, func.count()).group_by(Message.status)
    counts = Counter(dict(session.execute(query).tuples().all()))
    return {status: int(counts.get(status, 0)) for status in STATUSES}


def list_messages(
    *, session: Session, statuses: Sequence[str] = (), limit: int = 200
) -> list[dict[str, Any]]:
    """Messages for the office, newest first: who, what, how it went, the server's last reply."""
    query = select(Message).order_by(Message.id.desc()).limit(limit)
    if statuses:
        query = query.where(Message.status.in_(list(statuses)))
    return [
        {
            "id": m.id,
            "status": m.status,
            "kind": m.kind,
            "party": m.party,
            "recipient": m.recipient,
            "cc": list(m.cc or []),
            "notices": m.notice_count,
            "part": f"{m.part}/{m.parts}",
            "attempts": m.attempts,
            "next_attempt_at": m.next_attempt_at,
            "sent_at": m.sent_at,
            "subject": m.subject,
            "message_id": m.message_id_header,
            "last_error": m.last_error,
        }
        for m in session.scalars(query)
    ]


def requeue_messages(*, session: Session, ids: Sequence[int], as_of: datetime) -> int:
    """Give failed messages another go (after the office fixed an address or a template)."""
    result = session.execute(
        update(Message)
        .where(Message.id.in_(list(ids)), Message.status == "failed")
        .values(status="retry", next_attempt_at=as_of, attempts=0)
        .execution_options(synchronize_session=False)
    )
    for ids_chunk in _chunked(list(ids)):
        session.execute(
            update(NOTICES)
            .where(NOTICES.c.message_id.in_(ids_chunk), NOTICES.c.status == "failed")
            .values(status="grouped")
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
