"""The shared list of removed and sanctioned operators in the ledger (一处清退、处处关店).

- *Import*: a list file's checked rows are applied a chunk per transaction: new listings are
  added, listings delisted before are listed again, delisting rows take operators off; each
  listing and delisting leaves an event. A row that delists an operator the list does not hold
  is rejected with its reason. The same file twice is applied once (the import's SHA-256).
- *Flagging*: the operators of a chunk of new leads are looked up, set-based, against the
  active listings, by credit code and by platform and shop; a match makes the lead high
  priority and notes the listing in its referrals' reasons.
- *Digest*: each platform is told, once, of the operators newly listed that it hosts or may host
  (and of those it was told of that have since been delisted), in one `listed_digest` e-mail per
  platform and run (group `listed:<date>`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.domain.listed import (
    HOSTS,
    LIST_KINDS,
    SEVERITY,
    PlatformNames,
    identity_key,
    listing_note,
    relation,
    shop_key,
    shop_keys,
)
from wangjian.ledger.db import transaction
from wangjian.ledger.events import record_events
from wangjian.ledger.models import Import, ListedOperator, Notice, Party
from wangjian.ledger.outbox import notice_key, queue_notices

LISTED_IMPORT = "listed"
SUBJECT = "listed"
DIGEST_KIND = "listed_digest"
DELISTED_STEP = "delisted"
IN_CHUNK = 500
WHOLE_LIST = 100_000  # active listings up to this many are read whole to flag a chunk of leads
ZERO_COUNTS: dict[str, int] = {
    "rows": 0,
    "listed": 0,
    "relisted": 0,
    "delisted": 0,
    "unchanged": 0,
    "duplicates": 0,
    "rejected": 0,
}


class ListedRefused(Exception):
    """A listing or delisting the ledger cannot make, in Chinese and English."""

    def __init__(self, zh: str, en: str, *, column: str = "*") -> None:
        super().__init__(en)
        self.zh, self.en, self.column = zh, en, column


def platform_names(app: App) -> PlatformNames:
    names = app.extras.get("platform_names")
    if names is None:
        names = app.extras["platform_names"] = PlatformNames(app.config.platforms_file.platforms)
    return names  # type: ignore[no-any-return]


def _chunks(values: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), IN_CHUNK):
        yield list(values[start : start + IN_CHUNK])


# --- the import --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ListedImportState:
    id: int
    file_name: str
    as_of: datetime
    status: str
    rows_done: int
    counts: dict[str, int]
    reject_report: str | None

    @classmethod
    def of(cls, row: Import) -> ListedImportState:
        return cls(
            id=row.id,
            file_name=row.file_name,
            as_of=row.as_of,
            status=row.status,
            rows_done=row.rows_read,
            counts={**ZERO_COUNTS, **(row.counts or {})},
            reject_report=row.reject_report,
        )

    def summary(self, tz: Any = None) -> dict[str, Any]:
        """The import's result (keys of `wangjian listed import --json`)."""
        return {
            "import_id": self.id,
            "file": self.file_name,
            "as_of": (self.as_of.astimezone(tz) if tz else self.as_of).isoformat(),
            **self.counts,
            "reject_report": self.reject_report,
        }


def open_listed_import(
    *, app: App, file_name: str, sha256: str, as_of: datetime, flow_run_id: str | None = None
) -> ListedImportState:
    """The import of this list file: a new one, or the one found (finished or interrupted)."""
    with transaction(app.sessions) as session:
        row = session.scalar(
            select(Import).where(
                Import.kind == LISTED_IMPORT,
                Import.file_sha256 == sha256,
                Import.partition == "all",
            )
        )
        if row is None:
            row = Import(
                kind=LISTED_IMPORT,
                file_name=file_name[-500:],
                file_sha256=sha256,
                partition="all",
                as_of=as_of,
                status="running",
                chunks_done=0,
                rows_read=0,
                counts=dict(ZERO_COUNTS),
                flow_run_id=flow_run_id,
            )
            session.add(row)
            session.flush()
        return ListedImportState.of(row)


def finish_listed_import(
    *, app: App, import_id: int, reject_report: str | None
) -> ListedImportState:
    with transaction(app.sessions) as session:
        row = session.get(Import, import_id)
        assert row is not None, f"no import {import_id}"
        if row.status != "done":
            row.status, row.finished_at = "done", datetime.now(UTC)
            row.reject_report = reject_report
        return ListedImportState.of(row)


@dataclass
class AppliedChunk:
    """What applying a chunk did, and the rows the ledger refused (for the reject report)."""

    counts: dict[str, int]
    rejects: pd.DataFrame


REJECT_COLUMNS = ["row", "column", "value", "reason_zh", "reason_en"]


def apply_listed_chunk(
    *,
    app: App,
    import_id: int,
    valid: pd.DataFrame,
    rejected_rows: np.ndarray,
    last_row: int,
    actor: str,
) -> AppliedChunk:
    """Apply a checked chunk of a list file in one transaction (a chunk done before is skipped)."""
    with transaction(app.sessions) as session:
        imp = session.get(Import, import_id, with_for_update=True)
        assert imp is not None, f"no import {import_id}"
        done_through = imp.rows_read
        empty = pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_COLUMNS})
        if last_row <= done_through:
            return AppliedChunk(dict(ZERO_COUNTS), empty)
        rows = valid[valid["row"] > done_through]
        counts, refused = _apply(session, rows, at=imp.as_of, actor=actor, import_id=imp.id)
        counts["rejected"] = int((rejected_rows > done_through).sum()) + len(refused)
        counts["rows"] = len(rows) + int((rejected_rows > done_through).sum())
        imp.counts = {k: int((imp.counts or {}).get(k, 0)) + v for k, v in counts.items()}
        imp.rows_read, imp.chunks_done = last_row, (imp.chunks_done or 0) + 1
        rejects = pd.DataFrame(refused, columns=REJECT_COLUMNS) if refused else empty
        return AppliedChunk(counts, rejects)


def _apply(
    session: Session, rows: pd.DataFrame, *, at: datetime, actor: str, import_id: int | None
) -> tuple[dict[str, int], list[tuple[Any, ...]]]:
    counts = dict(ZERO_COUNTS)
    refused: list[tuple[Any, ...]] = []
    if rows.empty:
        return counts, refused
    # The same operator twice in a file: its last row is the one that counts.
    last = rows.drop_duplicates(["list_kind", "identity_key"], keep="last")
    counts["duplicates"] = len(rows) - len(last)
    existing = _existing(session, last["identity_key"].tolist())
    events: list[dict[str, Any]] = []
    new: list[tuple[ListedOperator, Any]] = []
    for row in last.itertuples(index=False):
        found = existing.get((row.list_kind, row.identity_key))
        if row.delisting:
            if found is None or not found.active:
                refused.append(
                    (
                        row.row,
                        "list_kind",
                        row.identity_key,
                        "名录中没有该经营者,或已移出",
                        "not on this list, or delisted already",
                    )
                )
                continue
            _delist(found, on=row.delisted_on, reason=row.reason)
            events.append(_event("listed_operator.delisted", found, at, actor, row, import_id))
            counts["delisted"] += 1
            continue
        if found is None:
            listing = ListedOperator(
                list_kind=row.list_kind,
                identity_key=row.identity_key,
                listed_on=row.listed_on,
                active=True,
                import_id=import_id,
            )
            _describe(listing, row)
            session.add(listing)
            new.append((listing, row))
            counts["listed"] += 1
        elif not found.active:
            found.active, found.listed_on = True, row.listed_on
            found.delisted_on, found.delist_reason = None, None
            _describe(found, row)
            events.append(_event("listed_operator.listed", found, at, actor, row, import_id))
            counts["relisted"] += 1
        else:
            counts["unchanged"] += 1
    session.flush()
    events += [_event("listed_operator.listed", o, at, actor, r, import_id) for o, r in new]
    record_events(session, events)
    return counts, refused


def _existing(session: Session, keys: list[str]) -> dict[tuple[str, str], ListedOperator]:
    found: dict[tuple[str, str], ListedOperator] = {}
    for chunk in _chunks(sorted(set(keys))):
        for listing in session.scalars(
            select(ListedOperator).where(ListedOperator.identity_key.in_(chunk))
        ):
            found[(listing.list_kind, listing.identity_key)] = listing
    return found


def _describe(listing: ListedOperator, row: Any) -> None:
    listing.credit_code = row.credit_code
    listing.operator_name = row.operator_name
    listing.platform = row.platform
    listing.shop_name = row.shop_name
    listing.shop_key = row.shop_key
    listing.shop_id = row.shop_id
    listing.region_code = row.region_code
    listing.reason = row.reason


def _delist(listing: ListedOperator, *, on: date, reason: str | None) -> None:
    listing.active, listing.delisted_on, listing.delist_reason = False, on, reason


def _event(
    action: str, listing: ListedOperator, at: datetime, actor: str, row: Any, import_id: int | None
) -> dict[str, Any]:
    return {
        "at": at,
        "actor": actor,
        "action": action,
        "subject_type": SUBJECT,
        "subject_id": listing.id,
        "origin": f"import {import_id}, row {row.row}" if import_id else None,
        "data": {
            "list_kind": listing.list_kind,
            "identity": listing.identity_key,
            "listed_on": listing.listed_on.isoformat(),
            "delisted_on": listing.delisted_on.isoformat() if listing.delisted_on else None,
            "reason": row.reason,
        },
    }


def delist_operator(
    *,
    session: Session,
    app: App,
    list_kind: str,
    credit_code: str | None = None,
    platform: str | None = None,
    shop_name: str | None = None,
    shop_id: str | None = None,
    reason: str | None,
    on: date,
    actor: str,
    at: datetime,
) -> ListedOperator:
    """Take one operator off a list (its flag stops at once for new leads); an event."""
    if list_kind not in LIST_KINDS:
        raise ListedRefused(
            f"未知的名录类型{list_kind!r}", f"unknown list kind {list_kind!r}", column="list_kind"
        )
    try:
        key = identity_key(
            list_kind,
            credit_code=(credit_code or "").strip().upper() or None,
            platform=platform_names(app).key(platform),
            shop_id=shop_id,
            shop=shop_key(shop_name),
        )
    except ValueError:
        raise ListedRefused(
            "须给出统一社会信用代码,或平台及店铺", "give the credit code, or the platform and shop"
        ) from None
    listing = session.scalar(
        select(ListedOperator).where(
            ListedOperator.list_kind == list_kind, ListedOperator.identity_key == key
        )
    )
    if listing is None or not listing.active:
        raise ListedRefused("名录中没有该经营者,或已移出", "not on this list, or delisted already")
    _delist(listing, on=on, reason=reason)
    row = SimpleNamespace(row=None, reason=reason)
    record_events(session, [_event("listed_operator.delisted", listing, at, actor, row, None)])
    return listing


# --- flagging new leads ------------------------------------------------------------------------


def flag_leads(session: Session, app: App, leads: pd.DataFrame) -> pd.DataFrame:
    """For each lead (by position): `priority` (high if its operator is listed), the listing's
    id (`listed_operator_id`, None if none) and the note for its referrals' reasons."""
    n = len(leads)
    out = pd.DataFrame(
        {
            "priority": np.full(n, "normal", dtype=object),
            "listed_operator_id": np.full(n, None, dtype=object),
            "listing_note": np.full(n, None, dtype=object),
        }
    )
    active = _active_count(session)
    if n == 0 or active == 0:  # nobody listed (the usual case): nothing to look up
        return out
    codes = leads["credit_code"].fillna("").to_numpy(dtype=object)
    platforms = platform_names(app).keys(_none_if_blank(leads["platform"]))
    shops = shop_keys(_none_if_blank(leads["shop_name"]))
    listings = _active_listings(
        session,
        codes=sorted({c for c in codes if c}),
        shops=sorted({s for s in shops if s}),
        whole=active <= WHOLE_LIST,
    )
    if listings.empty:
        return out
    position = np.arange(n)
    probe = pd.DataFrame({"pos": position, "credit_code": codes, "pk": platforms, "sk": shops})
    by_code = probe[probe["credit_code"] != ""].merge(
        listings[listings["credit_code"].notna()], on="credit_code"
    )
    by_shop = probe[probe["sk"].notna()].merge(
        listings[listings["shop_key"].notna()],
        left_on=["pk", "sk"],
        right_on=["platform", "shop_key"],
        suffixes=("", "_listed"),
    )
    matches = pd.concat(
        [
            by_code[["pos", "id", "list_kind", "listed_on", "platform"]],
            by_shop[["pos", "id", "list_kind", "listed_on", "platform"]],
        ]
    )
    if matches.empty:
        return out
    matches = matches.assign(severity=matches["list_kind"].map(SEVERITY))
    best = matches.sort_values(
        ["pos", "severity", "listed_on", "id"], ascending=[True, True, False, True]
    ).drop_duplicates("pos")
    names = {p.code: p.name_zh for p in app.config.platforms_file.platforms}
    at = best["pos"].to_numpy(dtype=np.int64)
    out.loc[at, "priority"] = "high"
    out.loc[at, "listed_operator_id"] = [int(i) for i in best["id"]]
    out.loc[at, "listing_note"] = [
        listing_note(
            kind,
            listed_on=listed_on,
            platform_name=names.get(platform, platform) if platform else None,
        )
        for kind, listed_on, platform in zip(
            best["list_kind"], best["listed_on"], best["platform"], strict=True
        )
    ]
    return out


def _none_if_blank(values: pd.Series) -> np.ndarray:
    out = values.to_numpy(dtype=object).copy()
    out[pd.isna(out) | (out == "")] = None
    return out


def _active_count(session: Session) -> int:
    return int(
        session.scalar(
            select(func.count()).select_from(ListedOperator).where(ListedOperator.active.is_(True))
        )
        or 0
    )


def _active_listings(
    session: Session, *, codes: list[str], shops: list[str], whole: bool
) -> pd.DataFrame:
    """The active listings with one of the credit codes or shop keys. A short list is read
    whole and matched in memory (one query instead of one per thousand keys)."""
    columns = [
        ListedOperator.id,
        ListedOperator.list_kind,
        ListedOperator.credit_code,
        ListedOperator.platform,
        ListedOperator.shop_key,
        ListedOperator.listed_on,
    ]
    if whole:
        frame = pd.DataFrame(
            session.execute(select(*columns).where(ListedOperator.active.is_(True))).all(),
            columns=[c.key for c in columns],
        )
        wanted = frame["credit_code"].isin(codes) | frame["shop_key"].isin(shops)
        return frame[wanted.to_numpy(dtype=bool)].reset_index(drop=True)
    rows: list[Any] = []
    for column, values in ((ListedOperator.credit_code, codes), (ListedOperator.shop_key, shops)):
        for chunk in _chunks(values):
            rows += session.execute(
                select(*columns).where(ListedOperator.active.is_(True), column.in_(chunk))
            ).all()
    frame = pd.DataFrame(rows, columns=[c.key for c in columns]).drop_duplicates("id")
    return frame


# --- the digest to platforms -------------------------------------------------------------------


def queue_listed_digest(*, session: Session, app: App, as_of: datetime) -> dict[str, Any]:
    """Queue, for each platform, the listings it has not been told of that it hosts or may host,
    and the delistings of those it was told of; one e-mail per platform (group `listed:<day>`)."""
    day = as_of.astimezone(app.tz).date()
    configured = {p.code: p for p in app.config.platforms_file.platforms}
    parties = [
        p
        for p in session.scalars(
            select(Party).where(Party.kind == "platform", Party.active.is_(True))
        )
        if p.code in configured
    ]
    result: dict[str, Any] = {"as_of": day.isoformat(), "platforms": {}, "notices": 0}
    if not parties:
        return result
    listings = session.execute(
        select(
            ListedOperator.id,
            ListedOperator.list_kind,
            ListedOperator.platform,
            ListedOperator.region_code,
            ListedOperator.active,
        ).where(ListedOperator.listed_on <= day)
    ).all()
    told: dict[tuple[str, str | None], set[int]] = {}
    for party_code, step, subject_id in session.execute(
        select(Notice.party, Notice.step, Notice.subject_id).where(Notice.kind == DIGEST_KIND)
    ):
        told.setdefault((party_code, step), set()).add(subject_id)
    rows: list[dict[str, Any]] = []
    group = f"listed:{day.isoformat()}"
    for party in parties:
        platform = configured[party.code]
        listed_before = told.get((party.code, None), set())
        delisted_before = told.get((party.code, DELISTED_STEP), set())
        for listing in listings:
            if listing.active:
                if listing.id in listed_before:
                    continue
                how = relation(
                    platform, listed_platform=listing.platform, region_code=listing.region_code
                )
                if how is None:
                    continue
                step = None
            elif listing.id in listed_before and listing.id not in delisted_before:
                how = HOSTS if listing.platform == party.code else "told"
                step = DELISTED_STEP
            else:
                continue
            rows.append(_digest_notice(party, listing, how=how, step=step, group=group, day=day))
    queued = queue_notices(session, rows) if rows else 0
    per_platform = Counter(r["party"] for r in rows)
    result["platforms"] = {p.code: int(per_platform.get(p.code, 0)) for p in parties}
    result["notices"] = queued
    return result


def _digest_notice(
    party: Party, listing: Any, *, how: str, step: str | None, group: str, day: date
) -> dict[str, Any]:
    return {
        "key": notice_key(
            recipient=party.contact_email,
            subject_type=SUBJECT,
            subject_id=listing.id,
            kind=DIGEST_KIND,
            step=step,
        ),
        "kind": DIGEST_KIND,
        "party": party.code,
        "audience": "contact",
        "recipient": party.contact_email,
        "cc": [party.leader_email] if party.leader_email else [],
        "subject_type": SUBJECT,
        "subject_id": listing.id,
        "deadline_id": None,
        "step": step,
        "group_key": group,
        "context": {"relation": how, "list_kind": listing.list_kind, "as_of": day.isoformat()},
        "status": "queued",
    }


# --- reading back ------------------------------------------------------------------------------


def listing_view(listing: ListedOperator, app: App) -> dict[str, Any]:
    names = {p.code: p.name_zh for p in app.config.platforms_file.platforms}
    zh, en = LIST_KINDS.get(listing.list_kind, (listing.list_kind, listing.list_kind))
    return {
        "id": listing.id,
        "list_kind": listing.list_kind,
        "list_kind_zh": zh,
        "list_kind_en": en,
        "credit_code": listing.credit_code,
        "operator_name": listing.operator_name,
        "platform": listing.platform,
        "platform_name": names.get(listing.platform or "", listing.platform),
        "shop_name": listing.shop_name,
        "shop_id": listing.shop_id,
        "region_code": listing.region_code,
        "reason": listing.reason,
        "listed_on": listing.listed_on,
        "delisted_on": listing.delisted_on,
        "active": listing.active,
    }


def list_listings(
    session: Session, app: App, *, include_delisted: bool = False, limit: int | None = None
) -> list[dict[str, Any]]:
    query = select(ListedOperator).order_by(ListedOperator.listed_on.desc(), ListedOperator.id)
    if not include_delisted:
        query = query.where(ListedOperator.active.is_(True))
    if limit:
        query = query.limit(limit)
    return [listing_view(listing, app) for listing in session.scalars(query)]


def listings_told_to(session: Session, app: App, *, platform_code: str) -> list[dict[str, Any]]:
    """The listings a platform was sent in its digests, newest first, as they stand now."""
    query = (
        select(ListedOperator, Notice.group_key, Notice.context)
        .join(
            Notice,
            and_(
                Notice.subject_type == SUBJECT,
                Notice.subject_id == ListedOperator.id,
                Notice.kind == DIGEST_KIND,
                Notice.step.is_(None),
            ),
        )
        .where(Notice.party == platform_code)
        .order_by(ListedOperator.listed_on.desc(), ListedOperator.id)
    )
    return [
        {
            **listing_view(listing, app),
            "told_on": group_key.removeprefix("listed:"),
            "relation": (context or {}).get("relation"),
        }
        for listing, group_key, context in session.execute(query).tuples()
    ]
