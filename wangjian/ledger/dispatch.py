"""Dispatch into the ledger: a chunk of routed leads, its referrals, clocks and notices, at once.

Each chunk is one transaction: the leads, their referrals (with the SLA policy frozen on them
and their due dates), one clock per referral, one `referral` notice per referral in the outbox,
an event, and the import's progress. A crash loses at most the chunk in flight; running the
same file again finds its import by SHA-256 and resumes after the last committed row, so no
lead is referred twice and no notice queued twice.

Writers serialise on the ledger (SQLite's `BEGIN IMMEDIATE`, PostgreSQL's advisory lock) so
that ids can be handed out ahead and duplicates and open referrals looked up safely. The rows
go in as sets: plain `executemany` of tuples on SQLite, `COPY` on PostgreSQL; clocks and notices
are derived from the new referrals by `INSERT … SELECT` inside the database.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Date,
    Integer,
    String,
    Table,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    select,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.domain.deadlines import DueDate, compute_due
from wangjian.domain.dedup import (
    listing_keys,
    match_hashes,
    operator_keys,
    repeated_in_chunk,
    resolve_attachments,
)
from wangjian.domain.routing import KIND_TRANSFER, Routing
from wangjian.ledger.clocks import first_fire
from wangjian.ledger.db import transaction
from wangjian.ledger.events import record_events
from wangjian.ledger.models import (
    Deadline,
    FrozenPolicy,
    Import,
    Lead,
    Notice,
    Party,
    Referral,
    UTCDateTime,
)

LEADS: Table = Lead.__table__  # type: ignore[assignment]
POLICIES: Table = FrozenPolicy.__table__  # type: ignore[assignment]
NOTICES: Table = Notice.__table__  # type: ignore[assignment]
REFERRALS: Table = Referral.__table__  # type: ignore[assignment]
LEAD_IMPORT = "leads"
OPEN_STATUSES = ("open", "acknowledged")
ACTOR = "system:dispatch"
ADVISORY_LOCK = 0x77616E676A69  # "wangji": one dispatcher writes at a time on PostgreSQL
REFERRAL_KINDS = ("referral", "crime", "transfer_out")
HASHES = {"listing_key": "listing_hash", "operator_key": "operator_hash"}  # key -> its column
ZERO_COUNTS: dict[str, Any] = {
    "rows": 0,
    "imported": 0,
    "duplicates": 0,
    "rejected": 0,
    "held": 0,
    "attached": 0,
    "evidence": 0,
    "referrals": {},
}


# --- the import --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportState:
    """Where an import of a lead file stands."""

    id: int
    file_name: str
    sha256: str
    as_of: datetime
    status: str  # running | done
    rows_done: int  # the last row whose fate is committed
    chunks_done: int
    counts: dict[str, Any]
    reject_report: str | None

    @classmethod
    def of(cls, row: Import) -> ImportState:
        return cls(
            id=row.id,
            file_name=row.file_name,
            sha256=row.file_sha256,
            as_of=row.as_of,
            status=row.status,
            rows_done=row.rows_read,
            chunks_done=row.chunks_done,
            counts={**ZERO_COUNTS, **(row.counts or {})},
            reject_report=row.reject_report,
        )


def open_lead_import(
    *,
    app: App,
    file_name: str,
    sha256: str,
    as_of: datetime,
    flow_run_id: str | None = None,
    partition: str = "all",
) -> ImportState:
    """The import of this file (or of one partition of it, wangjian.ledger.partitions): a new
    one, or the one a crash left (its as-of stands)."""
    with transaction(app.sessions) as session:
        _lock(session)
        row = session.scalar(
            select(Import).where(
                Import.kind == LEAD_IMPORT,
                Import.file_sha256 == sha256,
                Import.partition == partition,
            )
        )
        if row is None:
            row = Import(
                kind=LEAD_IMPORT,
                file_name=file_name[-500:],
                file_sha256=sha256,
                partition=partition,
                as_of=as_of,
                status="running",
                chunks_done=0,
                rows_read=0,
                counts=dict(ZERO_COUNTS),
                flow_run_id=flow_run_id,
            )
            session.add(row)
            session.flush()
            record_events(
                session,
                [
                    _event(
                        "import_started",
                        row.id,
                        as_of,
                        {"file": file_name, "sha256": sha256, "as_of": as_of.isoformat()},
                    )
                ],
            )
        elif row.status != "done" and flow_run_id:
            row.flow_run_id = flow_run_id
        return ImportState.of(row)


def finish_lead_import(*, app: App, import_id: int, reject_report: str | None) -> ImportState:
    """Mark an import done, with the path of its reject report (None if nothing was rejected)."""
    with transaction(app.sessions) as session:
        row = session.get(Import, import_id)
        assert row is not None, f"no import {import_id}"
        if row.status != "done":
            row.status = "done"
            row.finished_at = datetime.now(UTC)
            row.reject_report = reject_report
            record_events(
                session,
                [_event("import_finished", row.id, row.as_of, {"counts": row.counts or {}})],
            )
        return ImportState.of(row)


def import_summary(state: ImportState, tz: tzinfo | None = None) -> dict[str, Any]:
    """The import's result in CONTRACT.md's terms (keys of `wangjian leads import --json`);
    the as-of in the campaign's time zone when given."""
    counts = state.counts
    return {
        "import_id": state.id,
        "file": state.file_name,
        "as_of": state.as_of.astimezone(tz).isoformat() if tz else state.as_of.isoformat(),
        "imported": counts["imported"],
        "duplicates": counts["duplicates"],
        "rejected": counts["rejected"],
        "held": counts["held"],
        "attached": counts["attached"],
        "referrals": dict(counts["referrals"]),
        "reject_report": state.reject_report,
        "rows": counts["rows"],
        "terms": counts.get("terms", {}),
    }


# --- the terms of a referral: frozen policy and due dates --------------------------------------


@dataclass(frozen=True)
class Terms:
    """What a referral of one kind gets when made at one as-of: the same for the whole import."""

    kind: str
    policy: dict[str, Any]  # the SLA policy, frozen (kept once: FrozenPolicy)
    acknowledge: DueDate
    outcome: DueDate
    ack_ladder: str
    first_fire: datetime | None
    listed_outcome: DueDate | None = None  # for leads about listed operators, when shorter

    def explain(self) -> dict[str, Any]:
        return {
            "acknowledge": {
                "due_on": self.acknowledge.due_on.isoformat(),
                "explanation": self.acknowledge.explain(),
            },
            "outcome": {
                "due_on": self.outcome.due_on.isoformat(),
                "explanation": self.outcome.explain(),
            },
            "provisional": self.acknowledge.provisional or self.outcome.provisional,
        }


def referral_terms(app: App, as_of: datetime) -> dict[str, Terms]:
    """Policy and due dates of each referral kind for referrals made at `as_of` (once per kind)."""
    terms = {}
    for kind in REFERRAL_KINDS:
        policy = app.config.policy(kind)
        ack = compute_due(app.calendar, as_of, policy.acknowledge, tz=app.tz)
        outcome = compute_due(app.calendar, as_of, policy.outcome, tz=app.tz)
        terms[kind] = Terms(
            kind=kind,
            policy=policy.model_dump(mode="json"),
            acknowledge=ack,
            outcome=outcome,
            ack_ladder=policy.ack_ladder,
            first_fire=first_fire(app, policy.ack_ladder, ack.due_on, ack.due_at),
            listed_outcome=compute_due(
                app.calendar, as_of, policy.listed_operator_outcome, tz=app.tz
            )
            if policy.listed_operator_outcome
            else None,
        )
    return terms


# --- a chunk -----------------------------------------------------------------------------------


@dataclass
class LeadBatch:
    """A checked and routed chunk, ready to go into the ledger.

    `leads` holds the valid rows (the lead file's columns, typed, with `row`), the routing
    outcome (`category`, `category_origin`, `held`, `hold_reason`) and identity keys
    (`listing_key`, `operator_key`); `referrals` the referrals routing asks for (`lead` =
    position in `leads`, `agency`, `kind`, `rule`, `reason`, `category`); `rejected_rows` the
    row numbers rejected; `last_row` the chunk's last row and `rows` how many it had.
    """

    leads: pd.DataFrame
    referrals: pd.DataFrame
    rejected_rows: np.ndarray
    last_row: int
    rows: int

    @classmethod
    def assemble(
        cls,
        valid: pd.DataFrame,
        routing: Routing,
        *,
        rejected_rows: np.ndarray,
        last_row: int,
        rows: int,
    ) -> LeadBatch:
        """Join checked rows, their routing and their identity keys into a batch; each
        referral gets the match hashes of its category and its lead's keys (computed here, in
        the checking stage, not in the writer's)."""
        leads = valid.assign(
            category=routing.category,
            category_origin=routing.category_origin,
            held=routing.held,
            hold_reason=routing.hold_reason,
            listing_key=listing_keys(valid["url"].to_numpy(dtype=object)),
            operator_key=operator_keys(
                valid["credit_code"].to_numpy(dtype=object),
                valid["operator_name"].to_numpy(dtype=object),
                valid["region_code"].to_numpy(dtype=object),
            ),
        )
        referrals = routing.referrals
        position = referrals["lead"].to_numpy(dtype=np.int64)
        categories = referrals["category"].to_numpy(dtype=object)
        referrals = referrals.assign(
            **{
                HASHES[key]: match_hashes(categories, leads[key].to_numpy(dtype=object)[position])
                for key in HASHES
            }
        )
        return cls(leads, referrals, rejected_rows, last_row, rows)


def warm_up(app: App) -> None:
    """Do now what the first chunk would otherwise wait for: a connection to the ledger and, on
    SQLite, the open-keys bitmap built from the referrals open there (read without the write
    lock; each chunk catches it up under the lock with what was made since)."""
    with app.engine.connect() as connection:
        if app.engine.dialect.name == "sqlite":
            _open_keys(app.engine).catch_up(connection)


def dispatch_batch(*, app: App, import_id: int, batch: LeadBatch) -> dict[str, Any]:
    """Write one chunk in one transaction; returns its counts (empty if it was done before)."""
    with _dispatch_transaction(app) as session:
        imp = session.get(Import, import_id, with_for_update=True)
        assert imp is not None, f"no import {import_id}"
        done_through = imp.rows_read
        if batch.last_row <= done_through:
            return {}  # committed before a crash (or by a retried task): nothing to redo
        leads, referrals = _after(batch, done_through)
        writer = _writer(session)
        counts = _write(writer, app, imp, leads, referrals)
        rows = np.concatenate([leads["row"].to_numpy(dtype=np.int64), batch.rejected_rows])
        counts["rows"] = int((rows > done_through).sum())
        counts["rejected"] = int((batch.rejected_rows > done_through).sum())
        imp.counts = _merge(imp.counts or {}, counts)
        if "terms" not in imp.counts:
            terms = referral_terms(app, imp.as_of)
            imp.counts = {**imp.counts, "terms": {k: t.explain() for k, t in terms.items()}}
        imp.rows_read = batch.last_row
        imp.chunks_done = (imp.chunks_done or 0) + 1
        data = {"chunk": imp.chunks_done, "last_row": batch.last_row, **counts}
        record_events(session, [_event("leads_dispatched", imp.id, imp.as_of, data)])
    for hook in writer.after_commit:
        hook()
    return counts


@contextmanager
def _dispatch_transaction(app: App) -> Iterator[Session]:
    """One dispatcher at a time. On SQLite the commit leaves the copying of the write-ahead log
    into the database (the checkpoint, as much I/O again as the chunk) to a thread of its own,
    so the next chunk is written meanwhile."""
    if app.engine.dialect.name != "sqlite":
        with transaction(app.sessions) as session:
            _lock(session)
            yield session
        return
    with app.engine.connect() as connection:
        raw = connection.connection.dbapi_connection
        assert raw is not None
        # A setting of the connection, read at commit: set before BEGIN, restored after COMMIT.
        previous = int(raw.execute("pragma wal_autocheckpoint").fetchone()[0])
        raw.execute("pragma wal_autocheckpoint=0")
        try:
            with connection.begin(), Session(bind=connection) as session:
                yield session
                session.flush()
        finally:
            raw.execute(f"pragma wal_autocheckpoint={previous}")
    _checkpointer(app.engine).request()


class _Checkpointer:
    """Checkpoints a SQLite database's write-ahead log when asked, in a thread of its own.

    A PASSIVE checkpoint never blocks the writer; one that fails (busy) is simply left to the
    next request or to the next commit that checkpoints by itself. Nothing depends on it but
    the size of the log. The thread ends when it has not been asked for a minute.
    """

    IDLE_SECONDS = 60.0

    def __init__(self, path: str) -> None:
        self.path = path
        self.wanted = threading.Event()
        self.alive = True
        threading.Thread(target=self._run, name=f"wal-checkpoint:{path}", daemon=True).start()

    def request(self) -> None:
        self.wanted.set()

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        try:
            while self.wanted.wait(self.IDLE_SECONDS):
                self.wanted.clear()
                with suppress(sqlite3.Error):
                    connection.execute("pragma wal_checkpoint(PASSIVE)")
        finally:
            with _CHECKPOINTERS_LOCK:
                self.alive = False
                _CHECKPOINTERS.pop(self.path, None)
            connection.close()


_CHECKPOINTERS: dict[str, _Checkpointer] = {}
_CHECKPOINTERS_LOCK = threading.Lock()


def _checkpointer(engine: Engine) -> _Checkpointer:
    path = str(engine.url.database)
    with _CHECKPOINTERS_LOCK:
        current = _CHECKPOINTERS.get(path)
        if current is None or not current.alive:
            current = _CHECKPOINTERS[path] = _Checkpointer(path)
        return current


def _after(batch: LeadBatch, done_through: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The part of a chunk after the last committed row (all of it, unless resuming)."""
    if batch.leads.empty or batch.leads["row"].min() > done_through:
        return batch.leads, batch.referrals
    keep = batch.leads["row"].to_numpy() > done_through
    positions = np.cumsum(keep) - 1
    lead = batch.referrals["lead"].to_numpy(dtype=np.int64)
    referrals = batch.referrals[keep[lead]].copy()
    referrals["lead"] = positions[referrals["lead"].to_numpy(dtype=np.int64)]
    return batch.leads[keep].reset_index(drop=True), referrals.reset_index(drop=True)


def _write(
    writer: _Writer, app: App, imp: Import, leads: pd.DataFrame, referrals: pd.DataFrame
) -> dict[str, Any]:
    counts: dict[str, Any] = {**ZERO_COUNTS, "referrals": {}}
    if leads.empty:
        return counts
    ids, inserted = _insert_leads(writer, imp, leads)
    held = leads["held"].to_numpy(dtype=bool)
    counts["imported"] = int(inserted.sum())
    counts["duplicates"] = int(len(leads) - inserted.sum())
    counts["held"] = int((inserted & held).sum())

    # Only new leads are referred; each referral either is made or joins one open already.
    candidates = referrals[inserted[referrals["lead"].to_numpy(dtype=np.int64)]]
    if candidates.empty:
        return counts
    position = candidates["lead"].to_numpy(dtype=np.int64)
    candidates = candidates.assign(
        listing_key=leads["listing_key"].to_numpy(dtype=object)[position],
        operator_key=leads["operator_key"].to_numpy(dtype=object)[position],
    ).reset_index(drop=True)
    made, target = resolve_attachments(candidates, _open_matches(writer, candidates))
    referral_ids = np.zeros(len(candidates), dtype=np.int64)
    referral_ids[made] = writer.reserve_ids("referrals", int(made.sum()))
    # target < 0 names the candidate whose new referral it joins; target >= 0 is a ledger id.
    joined = np.where(target < 0, referral_ids[np.maximum(-target - 1, 0)], target)
    evidence = Counter(joined[~made].tolist())

    terms = referral_terms(app, imp.as_of)
    _insert_referrals(writer, imp, candidates[made], referral_ids[made], ids, terms, evidence)
    if writer.open_keys is not None and made.any():
        new_keys, through = _key_hashes(candidates[made]), int(referral_ids[made].max())
        writer.after_commit.append(lambda: writer.open_keys.add(new_keys, through))
    _open_clocks_and_queue_notices(writer, imp, terms, referral_ids[made])
    new = set(referral_ids[made].tolist())
    _add_evidence(writer, {r: n for r, n in evidence.items() if r not in new})
    counts["attached"] = _mark_attached(writer, ids, position, made, joined)
    counts["evidence"] = int((~made).sum())
    kinds = candidates["kind"].to_numpy(dtype=object)[made]
    agencies = candidates["agency"].to_numpy(dtype=object)[made]
    counts["referrals"] = dict(
        Counter(
            "transfer_out" if k == KIND_TRANSFER else a
            for k, a in zip(kinds, agencies, strict=True)
        )
    )
    return counts


def _insert_leads(
    writer: _Writer, imp: Import, leads: pd.DataFrame
) -> tuple[np.ndarray, np.ndarray]:
    """Insert the leads not seen before: their ids, and which rows were new."""
    n = len(leads)
    repeated = repeated_in_chunk(
        leads["source"].to_numpy(dtype=object), leads["lead_id"].to_numpy(dtype=object)
    )
    fresh = np.flatnonzero(~repeated)
    ids = np.zeros(n, dtype=np.int64)
    ids[fresh] = writer.reserve_ids("leads", len(fresh))
    take = leads.iloc[fresh]

    def text(name: str) -> list[Any]:  # empty text is NULL
        values = take[name].to_numpy(dtype=object).copy()
        values[values == ""] = None
        return values.tolist()

    found_on = np.datetime_as_string(take["found_on"].to_numpy(dtype="datetime64[D]"), unit="D")
    rows = _Rows(
        {
            "id": ids[fresh].tolist(),
            "source": take["source"].tolist(),
            "source_lead_id": take["lead_id"].tolist(),
            "row_number": take["row"].to_numpy(dtype=np.int64).tolist(),
            "category": take["category"].tolist(),
            "category_origin": take["category_origin"].tolist(),
            "summary": text("summary"),
            "platform": text("platform"),
            "shop_name": text("shop_name"),
            "url": text("url"),
            "operator_name": text("operator_name"),
            "credit_code": text("credit_code"),
            "region_code": take["region_code"].tolist(),
            "found_on": found_on.tolist(),
            "suspected_crime": take["suspected_crime"].to_numpy(dtype=np.int64).tolist(),
            "amount_yuan": take["amount_yuan"].tolist(),
            "status": np.where(take["held"].to_numpy(dtype=bool), "held", "referred").tolist(),
            "hold_reason": take["hold_reason"].tolist(),
        },
        constants={"import_id": imp.id, "priority": "normal", "received_at": imp.as_of},
    )
    if "priority" in take:  # flagged by tasks.listed.flag_listed_operators
        del rows.constants["priority"]
        rows.data["priority"] = take["priority"].tolist()
        rows.data["listed_operator_id"] = take["listed_operator_id"].tolist()
    inserted = np.zeros(n, dtype=bool)
    inserted[fresh] = np.isin(ids[fresh], writer.insert_leads(rows))
    return ids, inserted


def _insert_referrals(
    writer: _Writer,
    imp: Import,
    made: pd.DataFrame,
    referral_ids: np.ndarray,
    lead_ids: np.ndarray,
    terms: dict[str, Terms],
    evidence: Counter[int],
) -> None:
    """Insert the referrals to make, a kind at a time (its policy and due dates are shared)."""
    kinds = made["kind"].to_numpy(dtype=object)
    for kind in pd.unique(kinds):
        mask = kinds == kind
        part = made[mask]
        ids = referral_ids[mask].tolist()
        t = terms[kind]
        rows = _Rows(
            {
                "id": ids,
                "lead_id": lead_ids[part["lead"].to_numpy(dtype=np.int64)].tolist(),
                "agency_code": part["agency"].tolist(),
                "category": part["category"].tolist(),
                "listing_key": part["listing_key"].tolist(),
                "operator_key": part["operator_key"].tolist(),
                "listing_hash": part["listing_hash"].tolist(),
                "operator_hash": part["operator_hash"].tolist(),
                "reason": part["reason"].tolist(),
                "rule": part["rule"].tolist(),
                "evidence_count": [evidence.get(i, 0) for i in ids] if evidence else [0] * len(ids),
            },
            constants={
                "kind": kind,
                "status": "open",
                "policy_id": writer.policy_id(t.policy),
                "received_at": imp.as_of,
                "ack_due_on": t.acknowledge.due_on,
                "due_on": t.outcome.due_on,
                "original_due_on": t.outcome.due_on,
                "provisional": int(t.acknowledge.provisional or t.outcome.provisional),
                "priority": "normal",
                "import_id": imp.id,
                "extension_days": 0,
            },
        )
        if "priority" in part:  # leads about listed operators: high priority, shorter limit
            del rows.constants["priority"]
            rows.data["priority"] = part["priority"].tolist()
            listed = part["listed_operator_id"].notna().to_numpy()
            if t.listed_outcome is not None and listed.any():
                days = (t.outcome.due_on.isoformat(), t.listed_outcome.due_on.isoformat())
                for name in ("due_on", "original_due_on"):
                    del rows.constants[name]
                    rows.data[name] = [days[flag] for flag in listed.tolist()]
        writer.insert_referrals(rows)


def _add_evidence(writer: _Writer, evidence: dict[int, int]) -> None:
    """Count the leads that joined referrals made before this chunk."""
    if evidence:
        m = writer.mark
        writer.connection.exec_driver_sql(
            f"update referrals set evidence_count = evidence_count + {m} where id = {m}",
            [(n, rid) for rid, n in evidence.items()],
        )


def _mark_attached(
    writer: _Writer, ids: np.ndarray, position: np.ndarray, made: np.ndarray, joined: np.ndarray
) -> int:
    """Leads whose every referral joined another are evidence (`attached`); returns how many."""
    per_lead = pd.DataFrame({"lead": position, "covered": ~made, "joined": joined})
    covered = per_lead[per_lead["covered"]]
    if covered.empty:
        return 0
    whole = per_lead.groupby("lead", sort=False)["covered"].all()
    first = covered.groupby("lead", sort=False)["joined"].first()
    leads = first.index.to_numpy(dtype=np.int64)
    attached = whole.reindex(first.index).to_numpy(dtype=bool)
    changes = [
        ("attached" if whole_ else "referred", int(to), int(ids[lead]))
        for lead, whole_, to in zip(leads, attached, first.to_numpy(), strict=True)
    ]
    m = writer.mark
    writer.connection.exec_driver_sql(
        f"update leads set status = {m}, attached_to = {m} where id = {m}", changes
    )
    return int(attached.sum())


def notice_group(imp: Import) -> int:
    """The import whose referral notices go out together: this one, or for a partition of a
    file (`<import>/<chunks>`, wangjian.ledger.partitions) the file's import, so that an agency
    gets one digest per file however many workers dispatched it."""
    head, _, _rest = imp.partition.partition("/")
    return int(head) if head.isdigit() else imp.id


def _merge(total: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    out = {**ZERO_COUNTS, **total}
    for key, value in part.items():
        if key == "referrals":
            merged = Counter(out.get("referrals") or {})
            merged.update(value)
            out["referrals"] = dict(sorted(merged.items()))
        elif isinstance(value, int):
            out[key] = int(out.get(key) or 0) + value
    return out


def _event(action: str, import_id: int, at: datetime, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "at": at,
        "actor": ACTOR,
        "action": action,
        "subject_type": "import",
        "subject_id": import_id,
        "origin": None,
        "data": data,
    }


def _lock(session: Session) -> None:
    """Serialise dispatchers (SQLite already holds its write lock from BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("select pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})


@dataclass
class _Rows:
    """Rows for a bulk insert: columns that vary by row, and columns equal for all of them."""

    data: dict[str, list[Any]]
    constants: dict[str, Any]

    def __len__(self) -> int:
        return len(next(iter(self.data.values())))


# --- lookups -----------------------------------------------------------------------------------


def _open_matches(writer: _Writer, candidates: pd.DataFrame) -> np.ndarray:
    """For each candidate, the id of an open referral to the same agency about the same
    listing or operator and category (-1 if none)."""
    known = np.full(len(candidates), -1, dtype=np.int64)
    for key, hashed in HASHES.items():
        frame = candidates[["agency", "category", key, hashed]].dropna()
        if writer.open_keys is not None and not frame.empty:
            # Only keys that may be open are looked up; the others certainly are not.
            hashes = _OpenKeys.hashes(frame["agency"], frame["category"], frame[key])
            frame = frame[writer.open_keys.may_contain(hashes)]
        if frame.empty:
            continue
        values = pd.unique(frame[hashed].to_numpy(dtype=np.int64)).tolist()
        # Found by hash, matched below on the key itself (a collision joins nothing).
        found = writer.open_referrals(key, values)
        if not found:
            continue
        frame = frame.drop(columns=hashed)
        matches = (
            pd.DataFrame(found, columns=["id", "agency", "category", key])
            .groupby(["agency", "category", key], sort=False)["id"]
            .min()
            .rename("match")
        )
        joined = frame.join(matches, on=["agency", "category", key])["match"]
        hit = joined.notna().to_numpy()
        rows = joined.index.to_numpy()[hit]
        ids = joined.to_numpy()[hit].astype(np.int64)
        current = known[rows]
        known[rows] = np.where((current < 0) | (ids < current), ids, current)
    return known


class _OpenKeys:
    """(agency, category, key) that may belong to an open referral: a bitmap of their hashes.

    A bit not set means no open referral has that key, so the ledger need not be asked; a bit
    set (a true or a false positive, about 1.5% of them with a million referrals open) is
    checked in the ledger. The bitmap never misses a referral: it is built from the ledger
    once per database and process, caught up under the write lock before each chunk with the
    referrals made since (on SQLite ids only grow), and takes a chunk's own referrals once
    that chunk has committed. Closed referrals stay in it; that costs a lookup, nothing more.
    """

    BITS = 27  # 2**27 bits: 16 MiB

    def __init__(self) -> None:
        self.bitmap = np.zeros(1 << (self.BITS - 3), dtype=np.uint8)
        self.watermark = 0  # every referral up to this id has been added (if it was open)
        self.lock = threading.Lock()

    @staticmethod
    def hashes(agency: Any, category: Any, key: Any) -> np.ndarray:
        frame = pd.DataFrame({"agency": agency, "category": category, "key": key})
        return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)

    def _slots(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slot = hashes >> np.uint64(64 - self.BITS)
        return (slot >> np.uint64(3)).astype(np.int64), np.left_shift(
            1, (slot & np.uint64(7)).astype(np.uint8)
        ).astype(np.uint8)

    def add(self, hashes: np.ndarray, through: int) -> None:
        byte, bit = self._slots(hashes)
        with self.lock:
            np.bitwise_or.at(self.bitmap, byte, bit)
            self.watermark = max(self.watermark, through)

    def may_contain(self, hashes: np.ndarray) -> np.ndarray:
        byte, bit = self._slots(hashes)
        return (self.bitmap[byte] & bit) != 0

    def catch_up(self, connection: Any) -> None:
        """Add the open referrals made since the last time (all of them, the first time)."""
        since = self.watermark
        top = connection.exec_driver_sql("select coalesce(max(id), 0) from referrals").scalar()
        if not top or top <= since:
            return
        rows = connection.exec_driver_sql(
            "select agency_code, category, listing_key, operator_key from referrals "
            "where id > ? and status in ('open', 'acknowledged')",
            (since,),
        ).cursor.fetchall()
        frame = pd.DataFrame(rows, columns=["agency", "category", "listing_key", "operator_key"])
        self.add(_key_hashes(frame), int(top))


def _key_hashes(referrals: pd.DataFrame) -> np.ndarray:
    """Hashes of the (agency, category, listing key) and (…, operator key) that referrals have."""
    parts = []
    for key in ("listing_key", "operator_key"):
        has = referrals[key].notna().to_numpy()
        if has.any():
            rows = referrals[has]
            parts.append(_OpenKeys.hashes(rows["agency"], rows["category"], rows[key]))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)


_OPEN_KEYS: OrderedDict[str, _OpenKeys] = OrderedDict()
_OPEN_KEYS_LOCK = threading.Lock()


def _open_keys(engine: Engine) -> _OpenKeys:
    """The open-keys bitmap of a SQLite database, for this process (the last few databases)."""
    path = str(engine.url.database)
    with _OPEN_KEYS_LOCK:
        keys = _OPEN_KEYS.pop(path, None) or _OpenKeys()
        _OPEN_KEYS[path] = keys
        while len(_OPEN_KEYS) > 2:
            _OPEN_KEYS.popitem(last=False)
        return keys


# --- clocks and notices, derived in the database ------------------------------------------------


def _open_clocks_and_queue_notices(
    writer: _Writer, imp: Import, terms: dict[str, Terms], ids: np.ndarray
) -> None:
    """One acknowledgement clock and one `referral` notice per new referral (`INSERT … SELECT`).

    The clocks are what `open_clocks_bulk` would open (kind `referral_ack`, the policy's ack
    ladder, its first step's time), computed once per referral kind since the whole import
    shares one as-of.
    """
    if len(ids) == 0:
        return
    new = writer.new_referrals(ids)

    def by_kind(value: Any, type_: Any) -> Any:
        return case(
            {kind: literal(value(t), type_) for kind, t in terms.items()}, value=Referral.kind
        )

    clocks = select(
        literal("referral"),
        Referral.id,
        literal("referral_ack"),
        Referral.agency_code,
        by_kind(lambda t: t.ack_ladder, String()),
        by_kind(lambda t: t.acknowledge.due_on, Date()),
        by_kind(lambda t: t.acknowledge.due_at, UTCDateTime()),
        by_kind(lambda t: int(t.acknowledge.provisional), Integer()) == 1,
        literal("open"),
        literal(0),
        by_kind(lambda t: t.first_fire, UTCDateTime()),
        literal(1),
    ).where(new)
    writer.connection.execute(
        insert(Deadline).from_select(
            [
                "subject_type",
                "subject_id",
                "kind",
                "party",
                "ladder",
                "due_on",
                "due_at",
                "provisional",
                "status",
                "next_step",
                "next_fire_at",
                "version",
            ],
            clocks,
        )
    )
    # The same text as notice_key(recipient=…, subject_type="referral", subject_id=…,
    # kind="referral"), built in SQL.
    key = (
        literal("referral|referral:")
        + cast(Referral.id, String)
        + literal("|")
        + func.lower(Party.contact_email)
    )
    notices = (
        select(
            key,
            literal("referral"),
            Referral.agency_code,
            literal("contact"),
            Party.contact_email,
            literal([], NOTICES.c.cc.type),
            literal("referral"),
            Referral.id,
            Deadline.id,
            literal(f"dispatch:{notice_group(imp)}"),
            literal({"import_id": imp.id}, NOTICES.c.context.type),
            literal("queued"),
            literal(datetime.now(UTC), UTCDateTime()),
        )
        .select_from(Referral)
        .join(Party, Party.code == Referral.agency_code)
        .join(
            Deadline,
            and_(Deadline.subject_type == "referral", Deadline.subject_id == Referral.id),
        )
        .where(new)
    )
    dialect = postgresql if writer.dialect == "postgresql" else sqlite
    writer.connection.execute(
        dialect.insert(Notice)
        .from_select(
            [
                "key",
                "kind",
                "party",
                "audience",
                "recipient",
                "cc",
                "subject_type",
                "subject_id",
                "deadline_id",
                "group_key",
                "context",
                "status",
                "created_at",
            ],
            notices,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )


# --- the engines' fast paths -------------------------------------------------------------------


class _Writer:
    dialect = ""
    mark = "?"  # the driver's parameter marker
    open_keys: _OpenKeys | None = None

    def __init__(self, session: Session) -> None:
        self.connection = session.connection()
        self.after_commit: list[Any] = []  # what to do once the chunk is in
        self._policies: dict[str, int] = {}

    def policy_id(self, body: dict[str, Any]) -> int:
        """The id of the frozen policy with this body, kept once however many referrals share
        it (the dispatch lock is held, so two dispatchers never add the same one)."""
        digest = FrozenPolicy.digest_of(body)
        if digest not in self._policies:
            found = self.connection.execute(
                select(POLICIES.c.id)
                .where(POLICIES.c.digest == digest)
                .order_by(POLICIES.c.id)
                .limit(1)
            ).scalar()
            if found is None:
                found = self.connection.execute(
                    insert(POLICIES).values(digest=digest, body=body).returning(POLICIES.c.id)
                ).scalar_one()
            self._policies[digest] = int(found)
        return self._policies[digest]

    @property
    def dbapi(self) -> Any:
        return self.connection.connection.dbapi_connection

    def reserve_ids(self, table: str, n: int) -> np.ndarray:
        """Ids for n new rows, handed out ahead (the dispatch lock is held)."""
        raise NotImplementedError

    def insert_leads(self, rows: _Rows) -> np.ndarray:
        """Insert leads, skipping known (source, lead_id); returns the ids inserted."""
        raise NotImplementedError

    def insert_referrals(self, rows: _Rows) -> None:
        raise NotImplementedError

    def new_referrals(self, ids: np.ndarray) -> Any:
        """A WHERE clause selecting the referrals just inserted."""
        raise NotImplementedError

    def open_referrals(self, key: str, hashes: list[int]) -> list[Any]:
        """(id, agency, category, key) of open referrals whose hash of (category, key) is one
        of these (`HASHES[key]`)."""
        raise NotImplementedError


def _writer(session: Session) -> _Writer:
    name = session.get_bind().dialect.name
    return _PostgresWriter(session) if name == "postgresql" else _SqliteWriter(session)


def _sqlite_literal(value: Any) -> str:
    """A constant as SQLite text, stored as SQLAlchemy's SQLite dialect would bind it."""
    if value is None:
        return "null"
    if isinstance(value, bool | int):
        return str(int(value))
    if isinstance(value, datetime):
        # UTCDateTime on SQLite: UTC, without a zone.
        value = value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    elif isinstance(value, date):
        value = value.isoformat()
    return "'" + str(value).replace("'", "''") + "'"


class _SqliteWriter(_Writer):
    """executemany of plain tuples, the sqlite3 module's fastest path; constants go in the SQL
    text so they are not bound again for every row (a frozen policy is a kilobyte)."""

    dialect = "sqlite"

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        # Ids only grow on SQLite and writers take turns, so the bitmap can be kept exact.
        self.open_keys = _open_keys(self.connection.engine)
        self.open_keys.catch_up(self.connection)

    def reserve_ids(self, table: str, n: int) -> np.ndarray:
        # BEGIN IMMEDIATE holds the write lock: nobody else can take these ids meanwhile.
        top = self.connection.exec_driver_sql(f"select coalesce(max(id), 0) from {table}").scalar()
        first = int(top or 0) + 1
        return np.arange(first, first + n, dtype=np.int64)

    def _insert(self, table: str, rows: _Rows, suffix: str = "") -> None:
        names = [*rows.data, *rows.constants]
        values = ["?"] * len(rows.data) + [_sqlite_literal(v) for v in rows.constants.values()]
        sql = f"insert into {table} ({', '.join(names)}) values ({', '.join(values)}){suffix}"
        self.connection.exec_driver_sql(sql, list(zip(*rows.data.values(), strict=True)))

    def insert_leads(self, rows: _Rows) -> np.ndarray:
        if not len(rows):
            return np.zeros(0, dtype=np.int64)
        self._insert("leads", rows, " on conflict do nothing")
        # Rows skipped as duplicates left their reserved ids unused: the ids present were inserted.
        ids = rows.data["id"]
        span = (min(ids), max(ids))
        run = self.connection.exec_driver_sql
        if run("select count(*) from leads where id between ? and ?", span).scalar() == len(ids):
            return np.asarray(ids, dtype=np.int64)
        found = run("select id from leads where id between ? and ?", span).cursor.fetchall()
        return np.fromiter((r[0] for r in found), dtype=np.int64)

    def insert_referrals(self, rows: _Rows) -> None:
        if len(rows):
            self._insert("referrals", rows)

    def new_referrals(self, ids: np.ndarray) -> Any:
        # Contiguous: handed out under the write lock.
        return Referral.id.between(int(ids.min()), int(ids.max()))

    def open_referrals(self, key: str, hashes: list[int]) -> list[Any]:
        # One JSON parameter instead of thousands of bound ones; the index does the probing.
        result = self.connection.exec_driver_sql(
            f"select id, agency_code, category, {key} from referrals "
            f"where {HASHES[key]} in (select value from json_each(?)) "
            "and status in ('open', 'acknowledged')",
            (json.dumps(hashes),),
        )
        return list(result.cursor.fetchall())


class _PostgresWriter(_Writer):
    """COPY into the tables (through a staging table where known leads must be skipped)."""

    dialect = "postgresql"
    mark = "%s"

    def reserve_ids(self, table: str, n: int) -> np.ndarray:
        if n == 0:
            return np.zeros(0, dtype=np.int64)
        rows = self.connection.exec_driver_sql(
            f"select nextval(pg_get_serial_sequence('{table}', 'id')) "
            "from generate_series(1, %(n)s)",
            {"n": n},
        ).cursor.fetchall()  # the driver's tuples: SQLAlchemy rows cost a second per 200,000
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)

    def _copy(self, table: str, rows: _Rows) -> None:
        import psycopg

        names = [*rows.data, *rows.constants]
        constants = tuple(rows.constants.values())
        statement = f"copy {table} ({', '.join(names)}) from stdin"
        try:
            with self.dbapi.cursor() as cursor, cursor.copy(statement) as copy:
                for row in zip(*rows.data.values(), strict=True):
                    copy.write_row(row + constants)
        except psycopg.Error as error:  # as SQLAlchemy would raise it (IntegrityError, …)
            raise DBAPIError.instance(statement, None, error, psycopg.Error) from error

    def insert_leads(self, rows: _Rows) -> np.ndarray:
        if not len(rows):
            return np.zeros(0, dtype=np.int64)
        self.connection.exec_driver_sql(
            "create temp table if not exists stage_leads (like leads) on commit delete rows"
        )
        self._copy("stage_leads", rows)
        names = ", ".join([*rows.data, *rows.constants])
        inserted = (
            self.connection.exec_driver_sql(
                f"insert into leads ({names}) select {names} from stage_leads "
                "on conflict (source, source_lead_id) do nothing returning id"
            )
            .scalars()
            .all()
        )
        self.connection.exec_driver_sql("truncate stage_leads")
        return np.asarray(inserted, dtype=np.int64)

    def insert_referrals(self, rows: _Rows) -> None:
        if len(rows):
            self._copy("referrals", rows)

    def new_referrals(self, ids: np.ndarray) -> Any:
        # The sequence hands each id out once: if ours are contiguous, the range is ours alone.
        low, high = int(ids.min()), int(ids.max())
        if high - low + 1 == len(ids):
            return Referral.id.between(low, high)
        # One array parameter, not an IN list of tens of thousands of bound ones.
        return Referral.id == any_(bindparam("new_ids", ids.tolist(), type_=ARRAY(BigInteger)))

    def open_referrals(self, key: str, hashes: list[int]) -> list[Any]:
        result = self.connection.exec_driver_sql(
            f"select id, agency_code, category, {key} from referrals "
            f"where {HASHES[key]} = any(%s) and status in ('open', 'acknowledged')",
            (hashes,),
        )
        return list(result.cursor.fetchall())


# --- reading back ------------------------------------------------------------------------------


def list_referrals(
    session: Session,
    *,
    agency: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Referrals with their lead's own id, agency, kind, status and due date, oldest first."""
    query = (
        select(
            Referral.id,
            Lead.source_lead_id,
            Lead.source,
            Referral.agency_code,
            Referral.kind,
            Referral.status,
            Referral.due_on,
            Referral.ack_due_on,
            Referral.category,
            Referral.rule,
            Referral.reason,
            Referral.evidence_count,
        )
        .join(Lead, Lead.id == Referral.lead_id)
        .order_by(Referral.id)
    )
    if agency:
        query = query.where(Referral.agency_code == agency)
    if status:
        query = query.where(Referral.status == status)
    if limit:
        query = query.limit(limit)
    return [
        {
            "id": r.id,
            "lead_id": r.source_lead_id,
            "source": r.source,
            "agency": r.agency_code,
            "kind": r.kind,
            "status": r.status,
            "due_on": r.due_on.isoformat(),
            "ack_due_on": r.ack_due_on.isoformat(),
            "category": r.category,
            "rule": r.rule,
            "reason": r.reason,
            "evidence_count": r.evidence_count,
        }
        for r in session.execute(query)
    ]
