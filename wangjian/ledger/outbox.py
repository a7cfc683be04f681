"""The outbox: notices are queued in the same transaction as the change they announce.

A notice's key names its recipient, the item, the kind and the ladder step (with the deadline's
version, so an extension that restarts the ladder may speak again). The key is unique in the
database: queueing the same notice twice is a no-op, whatever crashed in between.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session

from wangjian.ledger.bulk import insert_ignore
from wangjian.ledger.models import Notice

NOTICES: Table = Notice.__table__  # type: ignore[assignment]


def notice_key(
    *,
    recipient: str,
    subject_type: str,
    subject_id: int,
    kind: str,
    step: str | None = None,
    version: int | str | None = None,
) -> str:
    parts = [kind, f"{subject_type}:{subject_id}", recipient.lower()]
    if step:
        parts.append(step)
    if version is not None:
        parts.append(f"v{version}")
    return "|".join(parts)


def queue_notices(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Queue notices (dicts of Notice's columns, `key` included); returns how many were new."""
    return len(insert_ignore(session, NOTICES, rows, ["key"], returning="id"))
