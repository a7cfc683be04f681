"""The append-only event trail: who changed what, when, and from where."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from wangjian.ledger.models import Event


def record_event(
    session: Session,
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: int | None,
    at: datetime,
    data: dict[str, Any] | None = None,
    origin: str | None = None,
) -> None:
    """Append one event in the caller's transaction (so it lands with the change or not at all)."""
    session.add(
        Event(
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            at=at,
            data=data or {},
            origin=origin,
        )
    )


def record_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Append many events at once (bulk paths): each row has Event's columns."""
    if rows:
        session.execute(insert(Event), rows)


def history(session: Session, *, subject_type: str, subject_id: int) -> list[Event]:
    """The events of one subject, oldest first."""
    return list(
        session.scalars(
            select(Event)
            .where(Event.subject_type == subject_type, Event.subject_id == subject_id)
            .order_by(Event.at, Event.id)
        )
    )
