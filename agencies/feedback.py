"""Agencies' answers by spreadsheet (`wangjian feedback import`): CSV (UTF-8 or GB18030) or XLSX.

Columns (CONTRACT.md): `referral_id` (required), `action` (acknowledge | outcome | extend, and
`return`), `outcome`, `case_number`, `decided_on`, `note`; an optional `days` for `extend`
(without it, the most the referral's frozen policy still allows). A file that cannot be read or
has a wrong header is refused whole. Otherwise each row is applied on its own (a savepoint), bad
rows are rejected with row number, column, value and reason in Chinese and English, and the rest
go through. Row numbers are the spreadsheet's: the header is row 1.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from agencies.answers import (
    acknowledge_referral,
    report_outcome,
    request_extension,
    return_referral,
)
from agencies.errors import NotFound, Refused
from agencies.timing import extendable_by
from wangjian.bootstrap import App
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Import, Lead, Referral

COLUMNS = ("referral_id", "action", "outcome", "case_number", "decided_on", "note", "days")
ACTIONS = ("acknowledge", "outcome", "extend", "return")
MAX_ROWS = 100_000


class UnreadableFile(Exception):
    """A feedback file that cannot be used at all: nothing was written."""


@dataclass(frozen=True)
class FeedbackFile:
    name: str
    sha256: str
    rows: list[tuple[int, dict[str, str]]]  # (spreadsheet row number, values by column)


@dataclass(frozen=True)
class Reject:
    row: int
    column: str
    value: str
    reason: str
    reason_en: str


@dataclass
class FeedbackResult:
    applied: int = 0
    rejects: list[Reject] = field(default_factory=list)
    reject_report: Path | None = None
    import_id: int | None = None
    already_imported: bool = False

    def as_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "rejected": len(self.rejects),
            "reject_report": str(self.reject_report) if self.reject_report else None,
            "import_id": self.import_id,
            "already_imported": self.already_imported,
        }


# --- reading -----------------------------------------------------------------------------------


def read_feedback_file(path: Path | str) -> FeedbackFile:
    """Read a feedback file and check its header; rows are kept as text, checked when applied."""
    path = Path(path)
    if not path.is_file():
        raise UnreadableFile(f"{path}: no such file")
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".xlsx" or data[:4] == b"PK\x03\x04":
        table = _read_xlsx(path, data)
    elif suffix in (".csv", ".txt", ""):
        table = _read_csv(path, data)
    else:
        raise UnreadableFile(f"{path}: unsupported file type {suffix!r} (CSV or XLSX)")
    if not table:
        raise UnreadableFile(f"{path}: empty file (no header row)")
    header = [_header_name(h) for h in table[0]]
    while header and header[-1] == "":
        header.pop()
    _check_header(path, header)
    rows: list[tuple[int, dict[str, str]]] = []
    for number, cells in enumerate(table[1:], start=2):
        values = {
            name: (cells[i] if i < len(cells) else "").strip() for i, name in enumerate(header)
        }
        if any(cells[len(header) :]):
            values["_extra"] = "extra cells beyond the header"
        if any(values.values()):
            rows.append((number, values))
    if len(rows) > MAX_ROWS:
        raise UnreadableFile(f"{path}: {len(rows)} rows, more than {MAX_ROWS} in one file")
    return FeedbackFile(path.name, hashlib.sha256(data).hexdigest(), rows)


def _read_csv(path: Path, data: bytes) -> list[list[str]]:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = data.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes nearly any byte string
        raise UnreadableFile(f"{path}: not UTF-8 or GB18030 text")
    if "\x00" in text:
        raise UnreadableFile(f"{path}: not a text file")
    try:
        return [row for row in csv.reader(io.StringIO(text, newline="")) if row]
    except csv.Error as exc:
        raise UnreadableFile(f"{path}: not a readable CSV file ({exc})") from None


def _read_xlsx(path: Path, data: bytes) -> list[list[str]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise UnreadableFile(f"{path}: not a readable XLSX file ({type(exc).__name__})") from None
    try:
        sheet = workbook.worksheets[0]
        table = [[_cell_text(c) for c in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
    return [row for row in table if any(row)]


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return (
            value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _header_name(cell: str) -> str:
    return cell.strip().lstrip("\ufeff").strip()


def _check_header(path: Path, header: list[str]) -> None:
    unknown = [h for h in header if h not in COLUMNS]
    if unknown:
        raise UnreadableFile(
            f"{path}: wrong header: unknown column(s) {', '.join(repr(h) for h in unknown)}; "
            f"expected {', '.join(COLUMNS)}"
        )
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        raise UnreadableFile(f"{path}: wrong header: column(s) repeated: {', '.join(repeated)}")
    if "referral_id" not in header:
        raise UnreadableFile(f"{path}: wrong header: the required column 'referral_id' is missing")


# --- applying ----------------------------------------------------------------------------------


def apply_feedback(*, app: App, feedback: FeedbackFile, as_of: datetime) -> FeedbackResult:
    """Apply a read feedback file: good rows go through, bad rows go to the reject report."""
    result = FeedbackResult()
    with transaction(app.sessions) as session:
        done = session.scalar(
            select(Import).where(
                Import.kind == "feedback",
                Import.file_sha256 == feedback.sha256,
                Import.status == "done",
            )
        )
        if done is not None:
            # The same file twice is a no-op (an agency re-sending, a retried run).
            result.import_id, result.already_imported = done.id, True
            return result
        record = Import(
            kind="feedback",
            file_name=feedback.name,
            file_sha256=feedback.sha256,
            as_of=as_of,
            status="running",
            rows_read=len(feedback.rows),
        )
        session.add(record)
        session.flush()
        result.import_id = record.id
        for number, values in feedback.rows:
            reject = _apply_row(session, app, feedback.name, number, values, as_of)
            if reject is None:
                result.applied += 1
            else:
                result.rejects.append(reject)
        if result.rejects:
            result.reject_report = write_reject_report(
                app.settings.rejects_dir / f"feedback-{record.id}-{Path(feedback.name).stem}.csv",
                result.rejects,
            )
        record.status, record.finished_at = "done", as_of
        record.counts = {"applied": result.applied, "rejected": len(result.rejects)}
        record.reject_report = str(result.reject_report) if result.reject_report else None
    return result


def import_feedback_file(*, app: App, path: Path | str, as_of: datetime) -> FeedbackResult:
    """Read and apply a feedback file (the flow runs the two steps as tasks)."""
    return apply_feedback(app=app, feedback=read_feedback_file(path), as_of=as_of)


def write_reject_report(path: Path, rejects: list[Reject]) -> Path:
    """The reject report: one line per problem (row, column, value, reason 中文, reason English)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["row", "column", "value", "reason", "reason_en"])
        for r in rejects:
            writer.writerow([r.row, r.column, _defuse(r.value), r.reason, r.reason_en])
    return path


def _defuse(value: str) -> str:
    # A cell starting with = + - @ would run as a formula when the report is opened in Excel.
    return "'" + value if value[:1] in ("=", "+", "-", "@") else value


def _apply_row(
    session: Session,
    app: App,
    file_name: str,
    number: int,
    values: dict[str, str],
    as_of: datetime,
) -> Reject | None:
    def reject(column: str, zh: str, en: str) -> Reject:
        return Reject(number, column, values.get(column, ""), zh, en)

    if "_extra" in values:
        return reject("", "该行单元格多于表头列数", "the row has more cells than the header")
    raw_id = values.get("referral_id", "")
    if not raw_id:
        return reject("referral_id", "缺少移送编号", "referral_id is required")
    referral_id = _parse_int(raw_id)
    if referral_id is None or referral_id <= 0:
        return reject(
            "referral_id", "移送编号应为正整数", "referral_id must be a positive whole number"
        )
    action = values.get("action", "").lower() or ("outcome" if values.get("outcome") else "")
    if action not in ACTIONS:
        return reject(
            "action",
            f"操作应为:{'、'.join(ACTIONS)}",
            f"action must be one of {', '.join(ACTIONS)}",
        )
    if values.get("outcome") and action != "outcome":
        return reject(
            "outcome",
            "仅在action=outcome时填写办理结果",
            "outcome is only given with action=outcome",
        )
    decided_on: date | None = None
    if values.get("decided_on"):
        decided_on = parse_day(values["decided_on"])
        if decided_on is None:
            return reject(
                "decided_on", "日期格式应为2021-11-03", "decided_on must be a date like 2021-11-03"
            )
    days: int | None = None
    if values.get("days"):
        days = _parse_int(values["days"])
        if days is None:
            return reject("days", "延期天数应为整数", "days must be a whole number")
    referral = session.get(Referral, referral_id)
    if referral is None:
        return reject("referral_id", f"未找到移送编号{referral_id}", f"no referral {referral_id}")
    common: dict[str, Any] = {
        "session": session,
        "app": app,
        "referral_id": referral_id,
        "agency_code": None,
        "actor": f"agency:{referral.agency_code}",
        "at": as_of,
        "origin": f"feedback file {file_name} row {number}"[:200],
    }
    note = values.get("note") or None
    calls: dict[str, Callable[[], object]] = {
        "acknowledge": lambda: acknowledge_referral(**common),
        "outcome": lambda: report_outcome(
            **common,
            outcome=values.get("outcome", "").lower(),
            case_number=values.get("case_number") or None,
            decided_on=decided_on,
            note=note,
        ),
        "extend": lambda: request_extension(
            **common,
            days=days if days is not None else _room(session, app, referral),
            reason=note or "",
        ),
        "return": lambda: return_referral(**common, reason=note or ""),
    }
    savepoint = session.begin_nested()
    try:
        calls[action]()
    except Refused as refused:
        savepoint.rollback()
        column = "referral_id" if isinstance(refused, NotFound) else refused.column or "action"
        return reject(column, refused.zh, refused.en)
    savepoint.commit()
    return None


def _room(session: Session, app: App, referral: Referral) -> int:
    """Without a `days` column, an extension asks for all the time the policy still allows."""
    lead = session.get(Lead, referral.lead_id)
    listed = lead is not None and lead.listed_operator_id is not None
    return extendable_by(app, referral, listed_operator=listed) - referral.extension_days


_DAY = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?$")


def parse_day(text: str) -> date | None:
    """A date as agencies write it: 2021-11-03, 2021/11/3, 2021.11.3 or 2021年11月3日."""
    text = text.strip()
    if "T" in text or " " in text:
        text = re.split(r"[T ]", text, maxsplit=1)[0]
    match = _DAY.match(text)
    if not match:
        return None
    try:
        return date(*(int(g) for g in match.groups()))
    except ValueError:
        return None


def _parse_int(text: str) -> int | None:
    text = text.strip()
    if re.fullmatch(r"\d+(\.0+)?", text):
        return int(float(text)) if "." in text else int(text)
    return None
