"""Row checks for a list of removed and sanctioned operators, with the lead files' rules.

The same readers (CSV in UTF-8 or GB18030, XLSX, JSON Lines), the same checks of lengths, credit
codes (shape and check character), region codes and dates, and the same reject report; then the
list's own rules: a known list kind and action, and who the row is about — a credit code for the
abnormal-operation and serious-violation lists, a platform and a shop (id or name) or a credit
code for a removal by a platform.
"""

from __future__ import annotations

import unicodedata
from datetime import date

import numpy as np
import pandas as pd

from wangjian.domain.credit_code import check_credit_codes
from wangjian.domain.listed import (
    ACTION_WORDS,
    DELIST,
    KIND_WORDS,
    REMOVED,
    PlatformNames,
    identity_key,
    shop_keys,
)
from wangjian.intake.columns import LISTED_COLUMNS
from wangjian.intake.readers import PROBLEM, PROBLEMS, ROW
from wangjian.intake.validate import (
    CheckedChunk,
    _each,
    _Findings,
    _lengths,
    _parse_dates,
    _six_digits,
)

_NORMALISED = ("list_kind", "action", "credit_code", "region_code", "listed_on", "delisted_on")


def validate_listed_chunk(
    raw: pd.DataFrame, *, platforms: PlatformNames, today: date
) -> CheckedChunk:
    """Check every row of a chunk of a list file; the valid rows come back typed, with the
    platform and shop keys and the identity each row is about."""
    columns = {c.name: raw[c.name].to_numpy(dtype=object) for c in LISTED_COLUMNS}
    lengths = {name: _lengths(values) for name, values in columns.items()}
    problem = raw[PROBLEM].to_numpy(dtype=object)
    blank = (sum(lengths.values()) == 0) & (problem == "")
    rows = raw[ROW].to_numpy(dtype=np.int64)
    if blank.any():
        keep = ~blank
        columns = {name: values[keep] for name, values in columns.items()}
        lengths = {name: values[keep] for name, values in lengths.items()}
        problem, rows = problem[keep], rows[keep]
    findings = _Findings(rows, columns)
    for code, (zh, en) in PROBLEMS.items():
        findings.add(problem == code, "*", zh, en)
    for column in LISTED_COLUMNS:
        too_long = lengths[column.name] > column.max_length
        findings.add(
            too_long,
            column.name,
            f"超过{column.max_length}个字符",
            f"longer than {column.max_length} characters",
        )
        values = columns[column.name].copy()
        values[too_long] = ""
        columns[column.name] = _each(str.strip, values)
    for name in _NORMALISED:
        columns[name] = _each(lambda v: unicodedata.normalize("NFKC", v).strip(), columns[name])
    findings.columns = columns
    unreadable = problem != ""

    kind_text = _each(str.lower, columns["list_kind"])
    kind = np.array([KIND_WORDS.get(v, "") for v in kind_text], dtype=object)
    empty_kind = kind_text == ""
    findings.add(empty_kind & ~unreadable, "list_kind", "名录类型为必填项", "required")
    findings.add(
        ~empty_kind & (kind == ""),
        "list_kind",
        "未知的名录类型(应为 removed_by_platform 平台清退、abnormal_operation 经营异常名录、"
        "serious_violation 严重违法失信名单)",
        "unknown list kind (removed_by_platform, abnormal_operation or serious_violation)",
    )
    action_text = _each(str.lower, columns["action"])
    action = np.array([ACTION_WORDS.get(v, "") for v in action_text], dtype=object)
    findings.add(action == "", "action", "操作应为 list(列入)或 delist(移出)", "not list or delist")

    credit = _each(str.upper, columns["credit_code"])
    columns["credit_code"] = credit
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
    region = columns["region_code"]
    findings.add(
        (region != "") & ~_six_digits(region),
        "region_code",
        "应为6位数字的行政区划代码",
        "not a 6-digit region code",
    )
    dates = {}
    for name in ("listed_on", "delisted_on"):
        parsed = _parse_dates(columns[name])
        findings.add(
            (columns[name] != "") & np.isnat(parsed),
            name,
            "不是有效日期(应为 YYYY-MM-DD)",
            "not a valid date (YYYY-MM-DD)",
        )
        dates[name] = parsed
    future = np.datetime64(today, "D")
    for name in ("listed_on", "delisted_on"):
        findings.add(
            dates[name] > future,
            name,
            "日期晚于导入日期",
            "a date after the day of the import",
        )

    platform_key = platforms.keys(_none_if_blank(columns["platform"]))
    shop = shop_keys(_none_if_blank(columns["shop_name"]))
    has_shop = (columns["shop_id"] != "") | pd.notna(shop)
    has_platform = pd.notna(platform_key)
    known_kind = kind != ""
    sanction = known_kind & (kind != REMOVED)
    findings.add(
        sanction & ~given & ~unreadable,
        "credit_code",
        "经营异常名录、严重违法失信名单须填写统一社会信用代码",
        "the abnormal-operation and serious-violation lists need the credit code",
    )
    removal = kind == REMOVED
    findings.add(
        removal & ~has_platform & ~unreadable,
        "platform",
        "平台清退须填写清退的平台",
        "a removal needs the platform that removed the operator",
    )
    findings.add(
        removal & has_platform & ~given & ~has_shop & ~unreadable,
        "shop_name",
        "须填写统一社会信用代码,或店铺名称、店铺编号",
        "give the credit code, or the shop's name or id",
    )

    keep = ~findings.bad
    valid = pd.DataFrame(
        {
            ROW: rows[keep],
            "list_kind": kind[keep],
            "action": action[keep],
            "credit_code": _none_if_blank(credit[keep]),
            "operator_name": _none_if_blank(columns["operator_name"][keep]),
            "platform": platform_key[keep],
            "platform_text": _none_if_blank(columns["platform"][keep]),
            "shop_name": _none_if_blank(columns["shop_name"][keep]),
            "shop_key": shop[keep],
            "shop_id": _none_if_blank(columns["shop_id"][keep]),
            "region_code": _none_if_blank(region[keep]),
            "reason": _none_if_blank(columns["reason"][keep]),
            "listed_on": _days(dates["listed_on"][keep], today),
            "delisted_on": _days(dates["delisted_on"][keep], today),
        }
    )
    valid["identity_key"] = [
        identity_key(
            r.list_kind,
            credit_code=r.credit_code,
            platform=r.platform,
            shop_id=r.shop_id,
            shop=r.shop_key,
        )
        for r in valid.itertuples(index=False)
    ]
    valid["delisting"] = valid["action"] == DELIST
    return CheckedChunk(valid=valid, rejects=findings.rejects(), rows=len(rows))


def _none_if_blank(values: np.ndarray) -> np.ndarray:
    out = values.astype(object).copy()
    out[out == ""] = None
    return out


def _days(values: np.ndarray, default: date) -> list[date]:
    """Dates as `date`s; a date not given is the day of the import."""
    return [default if np.isnat(v) else v.astype(object) for v in values]
