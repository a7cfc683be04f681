"""Row checks for a chunk of leads, set-based: each rule is one vectorised test over the chunk.

A row that breaks a rule is rejected with its row number, the column, the value and the reason
in Chinese and English; every broken rule of a row is reported, the row is rejected once.
Columns are handled as numpy arrays of str: pandas' `.str` methods cost several times more per
value, and a chunk is 50,000 rows of thirteen columns.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

from wangjian.domain.credit_code import check_credit_codes
from wangjian.intake.columns import LEAD_COLUMNS
from wangjian.intake.readers import PROBLEM, PROBLEMS, ROW

REJECT_COLUMNS = ["row", "column", "value", "reason_zh", "reason_en"]
VALUE_SHOWN = 200  # characters of a rejected value shown in the report

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "是", "真"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "否", "假", ""})

# 2021-10-25, 2021/10/25, 2021.10.25, 20211025, 2021年10月25日, optionally with a time of day.
_DATE = re.compile(
    r"(?P<y>[0-9]{4})(?:[-/.年](?P<m>[0-9]{1,2})[-/.月](?P<d>[0-9]{1,2})日?|(?P<m2>[0-9]{2})(?P<d2>[0-9]{2}))"
    r"(?:[ T][0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_AMOUNT = re.compile(r"[0-9]{1,14}(?:\.[0-9]{1,2})?")  # fits Numeric(16, 2)
_AMOUNT_NOISE = re.compile(r"[,，¥￥元\s]")
_CODE_COLUMNS = (
    "category",
    "credit_code",
    "region_code",
    "found_on",
    "suspected_crime",
    "amount_yuan",
)


@dataclass
class CheckedChunk:
    """A validated chunk: rows fit to import (typed) and the rejections found."""

    valid: pd.DataFrame
    rejects: pd.DataFrame
    rows: int  # rows read, valid or not (blank rows are not counted)

    @property
    def rejected_rows(self) -> np.ndarray:
        return np.unique(self.rejects["row"].to_numpy(dtype=np.int64))


def _each(fn: Callable[[str], object], values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = [fn(v) for v in values]
    return out


def _lengths(values: np.ndarray) -> np.ndarray:
    return np.fromiter(map(len, values), dtype=np.int64, count=len(values))


def _all(test: Callable[[str], bool], values: np.ndarray) -> bool:
    """Whether `test` holds for the joined column (one C call instead of one per value)."""
    return bool(test("".join(values.tolist())))


class _Findings:
    """Collects (mask, column, reason) findings and turns them into reject rows."""

    def __init__(self, rows: np.ndarray, columns: dict[str, np.ndarray]) -> None:
        self.rows = rows
        self.columns = columns
        self.bad = np.zeros(len(rows), dtype=bool)
        self.parts: list[pd.DataFrame] = []

    def add(
        self,
        mask: np.ndarray,
        column: str,
        zh: str | np.ndarray,
        en: str | np.ndarray,
        values: np.ndarray | None = None,
    ) -> None:
        if not mask.any():
            return
        self.bad |= mask
        shown = values if values is not None else self.columns.get(column)
        self.parts.append(
            pd.DataFrame(
                {
                    "row": self.rows[mask],
                    "column": column,
                    "value": shown[mask] if shown is not None else "",
                    "reason_zh": zh[mask] if isinstance(zh, np.ndarray) else zh,
                    "reason_en": en[mask] if isinstance(en, np.ndarray) else en,
                }
            )
        )

    def rejects(self) -> pd.DataFrame:
        if not self.parts:
            return pd.DataFrame({c: pd.Series(dtype=object) for c in REJECT_COLUMNS})
        out = pd.concat(self.parts, ignore_index=True)
        out["value"] = [_shorten(str(v)) for v in out["value"]]
        return out.sort_values("row", kind="stable", ignore_index=True)


def _shorten(value: str) -> str:
    if len(value) <= VALUE_SHOWN:
        return value
    return f"{value[:VALUE_SHOWN]}…(共{len(value)}字符)"


def validate_lead_chunk(raw: pd.DataFrame, *, categories: Collection[str]) -> CheckedChunk:
    """Check every row of a chunk; return the valid rows, typed, and the reject rows."""
    columns = {c.name: raw[c.name].to_numpy(dtype=object) for c in LEAD_COLUMNS}
    lengths = {name: _lengths(values) for name, values in columns.items()}
    problem = raw[PROBLEM].to_numpy(dtype=object)
    # Rows with nothing in them are a spreadsheet's trailing rows, not leads nor errors.
    blank = (sum(lengths.values()) == 0) & (problem == "")
    rows = raw[ROW].to_numpy(dtype=np.int64)
    if blank.any():
        keep = ~blank
        columns = {name: values[keep] for name, values in columns.items()}
        lengths = {name: values[keep] for name, values in lengths.items()}
        problem, rows = problem[keep], rows[keep]
    findings = _Findings(rows, columns)

    unreadable = problem != ""
    for code, (zh, en) in PROBLEMS.items():
        findings.add(problem == code, "*", zh, en)

    for column in LEAD_COLUMNS:
        name = column.name
        too_long = lengths[name] > column.max_length
        if too_long.any():
            counts = lengths[name].astype(str)
            findings.add(
                too_long,
                name,
                np.char.add(np.char.add(f"超过{column.max_length}个字符(共", counts), "字符)"),
                np.char.add(
                    np.char.add(f"longer than {column.max_length} characters (", counts), ")"
                ),
            )
            # Blank the huge cell, so that no later check spends time on it.
            columns[name] = columns[name].copy()
            columns[name][too_long] = ""
        columns[name] = _each(str.strip, columns[name])
    for name in _CODE_COLUMNS:  # full-width digits and letters, as spreadsheets hold them
        if not _all(str.isascii, columns[name]):
            columns[name] = _each(lambda v: unicodedata.normalize("NFKC", v).strip(), columns[name])
    findings.columns = columns

    unchecked = findings.bad | unreadable  # required-ness is moot for a row already rejected
    empty = {
        name: columns[name] == ""
        for name in ("lead_id", "region_code", "found_on", "category", "summary")
    }
    for column in LEAD_COLUMNS:
        if column.required:
            findings.add(
                empty[column.name] & ~unchecked,
                column.name,
                f"{column.label_zh}为必填项",
                "required",
            )

    category = columns["category"]
    if not _all(lambda v: v == v.lower(), category):
        category = columns["category"] = _each(str.lower, category)
    known = np.isin(category, np.array(sorted(categories), dtype=object))
    findings.add(~empty["category"] & ~known, "category", "未知的类别代码", "unknown category code")
    findings.add(
        empty["category"] & empty["summary"] & ~unchecked,
        "category",
        "类别与摘要至少填写一项",
        "give a category or a summary",
    )

    findings.add(
        ~empty["region_code"] & ~_six_digits(columns["region_code"]),
        "region_code",
        "应为6位数字的行政区划代码",
        "not a 6-digit region code",
    )

    found_on = _parse_dates(columns["found_on"])
    findings.add(
        ~empty["found_on"] & np.isnat(found_on),
        "found_on",
        "不是有效日期(应为 YYYY-MM-DD)",
        "not a valid date (YYYY-MM-DD)",
    )

    crime_text = columns["suspected_crime"]
    if not _all(lambda v: v == v.lower(), crime_text):
        crime_text = _each(str.lower, crime_text)
    crime = np.isin(crime_text, np.array(sorted(TRUE_WORDS), dtype=object))
    false = np.isin(crime_text, np.array(sorted(FALSE_WORDS), dtype=object))
    findings.add(~crime & ~false, "suspected_crime", "应为 true 或 false", "not true or false")

    amount, bad_amount = _parse_amounts(columns["amount_yuan"])
    findings.add(
        bad_amount,
        "amount_yuan",
        "应为不小于0的金额(元,最多两位小数)",
        "not an amount in yuan (≥ 0, at most 2 decimals)",
    )

    credit = columns["credit_code"]
    if not _all(lambda v: v == v.upper(), credit):
        credit = columns["credit_code"] = _each(str.upper, credit)
    given = credit != ""
    shaped, valid_check = check_credit_codes(credit)
    findings.add(
        given & ~shaped,
        "credit_code",
        "统一社会信用代码格式不符(18位,不含 I、O、S、V、Z)",
        "not a unified social credit code (18 characters, no I, O, S, V or Z)",
    )
    findings.add(
        given & shaped & ~valid_check,
        "credit_code",
        "统一社会信用代码校验码错误",
        "the credit code's check character is wrong",
    )

    keep = ~findings.bad
    data: dict[str, object] = {name: values[keep] for name, values in columns.items()}
    data["found_on"] = found_on[keep]
    data["suspected_crime"] = crime[keep]
    data["amount_yuan"] = amount[keep]
    data[ROW] = rows[keep]
    return CheckedChunk(valid=pd.DataFrame(data), rejects=findings.rejects(), rows=len(rows))


def _six_digits(values: np.ndarray) -> np.ndarray:
    """Which values are six ASCII digits (checked on a byte matrix, not value by value)."""
    out = np.zeros(len(values), dtype=bool)
    six = _lengths(values) == 6
    candidates = six & np.fromiter(map(str.isascii, values), dtype=bool, count=len(values))
    if candidates.any():
        packed = "".join(values[candidates].tolist()).encode("ascii")
        matrix = np.frombuffer(packed, dtype=np.uint8).reshape(-1, 6)
        out[candidates] = ((matrix >= ord("0")) & (matrix <= ord("9"))).all(axis=1)
    return out


def _parse_dates(values: np.ndarray) -> np.ndarray:
    """Dates in the usual spellings → datetime64[D] (NaT when empty or not a date)."""
    series = pd.Series(values, dtype=object)
    parsed = pd.to_datetime(series, format="%Y-%m-%d", errors="coerce")
    out = parsed.to_numpy(dtype="datetime64[D]")
    retry = np.isnat(out) & (values != "")
    if retry.any():
        out[retry] = [_parse_date(v) for v in values[retry]]
    too_early = out < np.datetime64("1990-01-01")
    out[too_early] = np.datetime64("NaT")
    return out


def _parse_date(text: str) -> np.datetime64:
    match = _DATE.fullmatch(text)
    if not match:
        return np.datetime64("NaT")
    month, day = match["m"] or match["m2"], match["d"] or match["d2"]
    try:
        return np.datetime64(date(int(match["y"]), int(month), int(day)), "D")
    except ValueError:
        return np.datetime64("NaT")


def _parse_amounts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Amounts like 1,234.5 or ¥1234.50 → '1234.5' (None when empty), and which failed.

    Kept as text: a float would round the cents of Numeric(16, 2)'s larger sums.
    """
    cleaned = values
    if not _all(lambda v: _AMOUNT_NOISE.search(v) is None, values):
        cleaned = _each(lambda v: _AMOUNT_NOISE.sub("", v), values)
    given = cleaned != ""
    shaped = np.zeros(len(values), dtype=bool)
    shaped[given] = [_AMOUNT.fullmatch(v) is not None for v in cleaned[given]]
    bad = given & ~shaped
    out = cleaned.copy()
    out[~(given & shaped)] = None
    return out, bad
