"""The campaign's statistics tables (情况统计表), computed with pandas from the ledger frames.

Counting rules (documented because a report is only as good as its definitions):
- a referral replaced by a reassignment is not counted (its successor is);
- a transfer to another region's regulator counts as the outcome `transferred_out` (移送外地):
  for this campaign the lead's disposition is the transfer itself;
- acknowledged / decided *on time* means by the end of the due day, in the campaign's time zone;
  a rate's denominator is what had fallen due by the as-of, or was answered before;
- escalations count clocks that reached the leader step (提级催办) or were listed for supervision
  (挂牌督办), from the notices of sweeps up to the as-of day;
- an assistance request's answer time runs from the request to the platform's answer (data or
  "no such operator"), in hours; the share answered within 24 hours counts the requests answered
  and those whose 24 hours had passed unanswered by the as-of; median and 90th percentile are of
  the answered ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time
from zoneinfo import ZoneInfo

import pandas as pd

from wangjian.campaign import CampaignConfig
from wangjian.reporting.frames import LedgerFrames

OUTCOMES = [
    "case_filed",
    "ordered_to_correct",
    "transferred_to_police",
    "transferred_out",
    "info_removed",
    "no_violation",
]
OUTCOME_ZH = {
    "case_filed": "立案",
    "ordered_to_correct": "责令改正",
    "transferred_to_police": "移送公安",
    "transferred_out": "移送外地",
    "info_removed": "督促平台清理信息",
    "no_violation": "不予立案",
    "pending": "办理中",
}
OBLIGATION_ZH = {
    "implementation_plan": "实施方案",
    "monthly_report": "月度报告",
    "deliverable": "阶段材料",
    "summary_package": "总结材料",
}


@dataclass
class CampaignStatistics:
    """The tables (Chinese headers, ready for XLSX/HTML) and the headline figures (for JSON)."""

    as_of: datetime
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    leads: int = 0
    referrals: int = 0
    duplicates: int = 0
    held: int = 0
    by_agency: dict[str, int] = field(default_factory=dict)
    by_outcome: dict[str, int] = field(default_factory=dict)
    on_time_rate: float | None = None
    on_time_rates: dict[str, object] = field(default_factory=dict)
    overdue: int = 0
    escalated: int = 0
    listed_for_supervision: int = 0
    transfers_out: int = 0
    assist: dict[str, object] = field(default_factory=dict)

    def headline(self) -> dict[str, object]:
        return {
            "as_of": self.as_of.isoformat(),
            "leads": self.leads,
            "referrals": self.referrals,
            "duplicates": self.duplicates,
            "held": self.held,
            "by_agency": self.by_agency,
            "by_outcome": self.by_outcome,
            "on_time_rate": self.on_time_rate,
            "on_time_rates": self.on_time_rates,
            "overdue": self.overdue,
            "escalated": self.escalated,
            "listed_for_supervision": self.listed_for_supervision,
            "transfers_out": self.transfers_out,
            "assist": self.assist,
        }


def _end_of_day(days: pd.Series, tz: ZoneInfo) -> pd.Series:
    """End of each local due day, as UTC timestamps."""
    stamps = pd.to_datetime(days.astype("string"), errors="coerce") + pd.Timedelta(
        hours=23, minutes=59, seconds=59
    )
    return stamps.dt.tz_localize(tz).dt.tz_convert("UTC")


def disposition(referrals: pd.DataFrame) -> pd.Series:
    """Each referral's outcome as the campaign counts it (a transfer out is its own outcome)."""
    out = referrals["outcome"].where(referrals["outcome"].notna(), "pending")
    return out.mask(referrals["kind"] == "transfer_out", "transferred_out")


def annotate(referrals: pd.DataFrame, *, as_of: datetime, tz: ZoneInfo) -> pd.DataFrame:
    """Add the derived columns every table needs: disposition, on-time flags, overdue flags."""
    frame = referrals[referrals["status"] != "reassigned"].copy()
    for column in ("acknowledged_at", "outcome_at", "received_at"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    cutoff = pd.Timestamp(as_of).tz_convert("UTC")
    ack_end = _end_of_day(frame["ack_due_on"], tz)
    due_end = _end_of_day(frame["due_on"], tz)
    # Reporting an outcome without acknowledging first still answers the referral.
    answered_at = frame["acknowledged_at"].fillna(frame["outcome_at"])
    frame["disposition"] = disposition(frame)
    frame["acknowledged"] = answered_at.notna()
    frame["ack_counted"] = frame["acknowledged"] | (ack_end < cutoff)
    frame["ack_on_time"] = frame["acknowledged"] & (answered_at <= ack_end)
    frame["decided"] = frame["outcome_at"].notna()
    tracked = frame["kind"] != "transfer_out"
    frame["outcome_counted"] = tracked & (frame["decided"] | (due_end < cutoff))
    frame["outcome_on_time"] = tracked & frame["decided"] & (frame["outcome_at"] <= due_end)
    frame["overdue_ack"] = ~frame["acknowledged"] & ~frame["decided"] & (ack_end < cutoff)
    frame["overdue_outcome"] = tracked & ~frame["decided"] & (due_end < cutoff)
    frame["overdue"] = frame["overdue_ack"] | frame["overdue_outcome"]
    frame["month"] = frame["received_at"].dt.tz_convert(tz).dt.strftime("%Y-%m")
    return frame


def _rate(numerator: pd.Series, denominator: pd.Series) -> float | None:
    total = int(denominator.sum())
    return round(float(numerator.sum()) / total, 4) if total else None


def _outcome_columns(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    counts = (
        pd.crosstab(frame[by], frame["disposition"])
        if not frame.empty
        else pd.DataFrame(index=pd.Index([], name=by))
    )
    for code in [*OUTCOMES, "pending"]:
        if code not in counts.columns:
            counts[code] = 0
    return counts[[*OUTCOMES, "pending"]].rename(columns=OUTCOME_ZH)


def compute_statistics(frames: LedgerFrames, config: CampaignConfig) -> CampaignStatistics:
    """All tables of the statistics workbook and the headline figures."""
    tz = ZoneInfo(config.campaign.time_zone)
    referrals = annotate(frames.referrals, as_of=frames.as_of, tz=tz)
    leads = frames.leads.copy()
    leads["month"] = leads["received_at"].dt.tz_convert(tz).dt.strftime("%Y-%m")
    names = dict(zip(frames.parties["code"], frames.parties["name_zh"], strict=True))
    category_names = {c.code: c.name_zh for c in config.categories_file.categories}
    # Assistance requests' escalations go to platforms' compliance leads: table 9 counts them.
    escalations = frames.escalations[frames.escalations["subject_type"] != "assist"]
    escalated_keys = escalations[escalations["step"] == "leader"]
    listed_keys = escalations[escalations["step"] == "supervision"]
    referral_escalated = set(
        escalated_keys.loc[escalated_keys["subject_type"] == "referral", "subject_id"]
    )
    referral_listed = set(listed_keys.loc[listed_keys["subject_type"] == "referral", "subject_id"])
    referrals["escalated"] = referrals["id"].isin(referral_escalated)
    referrals["listed"] = referrals["id"].isin(referral_listed)

    stats = CampaignStatistics(as_of=frames.as_of)
    stats.leads = len(leads)
    stats.referrals = len(referrals)
    stats.duplicates = frames.duplicates
    stats.held = int((leads["status"] == "held").sum())
    stats.by_agency = {
        str(k): int(v) for k, v in referrals["agency_code"].value_counts().sort_index().items()
    }
    dispositions = referrals["disposition"].value_counts()
    stats.by_outcome = {code: int(dispositions.get(code, 0)) for code in [*OUTCOMES, "pending"]}
    stats.on_time_rate = _rate(referrals["outcome_on_time"], referrals["outcome_counted"])
    stats.on_time_rates = {
        "acknowledgement": _rate(referrals["ack_on_time"], referrals["ack_counted"]),
        "outcome": stats.on_time_rate,
    }
    stats.overdue = int(referrals["overdue"].sum())
    stats.escalated = len(escalated_keys)
    stats.listed_for_supervision = len(listed_keys)
    transfers = referrals[referrals["kind"] == "transfer_out"]
    stats.transfers_out = len(transfers)

    stats.tables["表1 总体情况"] = _overview(stats, leads)
    members = [a.code for a in config.agencies_file.agencies]
    stats.tables["表2 成员单位办理情况"] = _by_agency(referrals, names, members)
    stats.tables["表3 违法类别"] = _by_category(leads, referrals, category_names)
    stats.tables["表4 月度情况"] = _by_month(leads, referrals)
    stats.tables["表5 线索来源"] = _by_source(leads, referrals)
    stats.tables["表6 办理结果"] = _outcomes(stats)
    stats.tables["表7 异地移送"] = _transfers(transfers, frames.parties)
    stats.tables["表8 成员单位报送情况"] = _submissions(frames, config, names)
    assists = frames.assists if frames.assists is not None else pd.DataFrame()
    told = frames.escalations
    escalated = set(
        told.loc[(told["subject_type"] == "assist") & (told["step"] == "leader"), "subject_id"]
    )
    if not assists.empty:
        assists = assists.assign(escalated=assists["id"].isin(escalated))
    stats.assist, stats.tables["表9 平台协查"] = assist_statistics(assists, config, frames.as_of)
    return stats


def _overview(stats: CampaignStatistics, leads: pd.DataFrame) -> pd.DataFrame:
    rates = stats.on_time_rates
    rows = [
        ("收到线索(条)", stats.leads),
        ("重复线索(条,未重复移送)", stats.duplicates),
        ("并案补充证据(条)", int((leads["status"] == "attached").sum())),
        ("待办公室分类或指派(条)", stats.held),
        ("移送件数(件)", stats.referrals),
        ("其中:异地移送(件)", stats.transfers_out),
        *[(f"办理结果:{OUTCOME_ZH[k]}(件)", v) for k, v in stats.by_outcome.items()],
        ("按期签收率", _percent(rates["acknowledgement"])),
        ("按期办结率", _percent(rates["outcome"])),
        ("逾期未办(件)", stats.overdue),
        ("提级催办(件次)", stats.escalated),
        ("挂牌督办(件次)", stats.listed_for_supervision),
    ]
    return pd.DataFrame(rows, columns=["项目", "数值"])


def _percent(value: object) -> str:
    return "—" if value is None else f"{float(value) * 100:.1f}%"  # type: ignore[arg-type]


def _by_agency(referrals: pd.DataFrame, names: dict[str, str], members: list[str]) -> pd.DataFrame:
    """One row per member agency (all of them, in config order), with a total row."""
    local = referrals[referrals["agency_code"].isin(members)]
    grouped = local.groupby("agency_code")
    counts = {
        "接收移送(件)": grouped.size(),
        "已签收(件)": grouped["acknowledged"].sum(),
        "按期签收": grouped["ack_on_time"].sum(),
        "应签收": grouped["ack_counted"].sum(),
        "已办结(件)": grouped["decided"].sum(),
        "按期办结": grouped["outcome_on_time"].sum(),
        "应办结": grouped["outcome_counted"].sum(),
        "逾期未办(件)": grouped["overdue"].sum(),
        "提级催办(件)": grouped["escalated"].sum(),
        "挂牌督办(件)": grouped["listed"].sum(),
    }
    table = pd.DataFrame(counts).reindex(members).fillna(0).astype(int)
    table["按期签收率"] = (table["按期签收"] / table["应签收"].where(table["应签收"] > 0)).map(
        _percent_or_dash
    )
    table["按期办结率"] = (table["按期办结"] / table["应办结"].where(table["应办结"] > 0)).map(
        _percent_or_dash
    )
    table = table.join(_outcome_columns(local, "agency_code")).fillna(0)
    table = table.drop(columns=["按期签收", "应签收", "按期办结", "应办结"])
    table.insert(0, "成员单位", [names.get(code, code) for code in table.index])
    table = table.reset_index(names="代码")
    return _with_total(table, label_column="成员单位", skip=("代码", "按期签收率", "按期办结率"))


def _percent_or_dash(value: float) -> str:
    return "—" if pd.isna(value) else f"{value * 100:.1f}%"


def _with_total(
    table: pd.DataFrame, *, label_column: str, skip: tuple[str, ...] = ()
) -> pd.DataFrame:
    numeric = [c for c in table.columns if c not in skip and c != label_column]
    total: dict[str, object] = {c: int(table[c].sum()) for c in numeric}
    total[label_column] = "合计"
    for column in skip:
        total[column] = ""
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True)


def _by_category(
    leads: pd.DataFrame, referrals: pd.DataFrame, names: dict[str, str]
) -> pd.DataFrame:
    lead_counts = leads["category"].fillna("(未分类)").value_counts().rename("线索(条)")
    referral_counts = referrals["category"].fillna("(未分类)").value_counts().rename("移送(件)")
    table = pd.concat([lead_counts, referral_counts], axis=1).fillna(0).astype(int)
    if not referrals.empty:
        outcome = _outcome_columns(
            referrals.assign(category=referrals["category"].fillna("(未分类)")), "category"
        )
        table = table.join(outcome).fillna(0)
    table.insert(0, "违法类别", [names.get(code, code) for code in table.index])
    table = table.reset_index(names="代码").sort_values("线索(条)", ascending=False)
    return _with_total(table, label_column="违法类别", skip=("代码",))


def _by_month(leads: pd.DataFrame, referrals: pd.DataFrame) -> pd.DataFrame:
    table = (
        pd.concat(
            [
                leads.groupby("month").size().rename("收到线索(条)"),
                referrals.groupby("month").size().rename("移送(件)"),
                referrals[referrals["decided"]].groupby("month").size().rename("其中已办结(件)"),
                referrals[referrals["overdue"]].groupby("month").size().rename("其中逾期未办(件)"),
            ],
            axis=1,
        )
        .fillna(0)
        .astype(int)
    )
    table = table.sort_index().reset_index(names="月份")
    return _with_total(table, label_column="月份")


def _by_source(leads: pd.DataFrame, referrals: pd.DataFrame) -> pd.DataFrame:
    source_of = leads.set_index("id")["source"]
    with_source = referrals.assign(source=referrals["lead_id"].map(source_of).fillna("unknown"))
    table = (
        pd.concat(
            [
                leads["source"].value_counts().rename("线索(条)"),
                with_source["source"].value_counts().rename("移送(件)"),
            ],
            axis=1,
        )
        .fillna(0)
        .astype(int)
    )
    if not with_source.empty:
        table = table.join(_outcome_columns(with_source, "source")).fillna(0)
    table = table.reset_index(names="线索来源").sort_values("线索(条)", ascending=False)
    return _with_total(table, label_column="线索来源")


def _outcomes(stats: CampaignStatistics) -> pd.DataFrame:
    total = sum(stats.by_outcome.values())
    rows = [
        (OUTCOME_ZH[code], code, count, _percent(count / total if total else None))
        for code, count in stats.by_outcome.items()
    ]
    table = pd.DataFrame(rows, columns=["办理结果", "代码", "件数", "占比"])
    return _with_total(table, label_column="办理结果", skip=("代码", "占比"))


def _transfers(transfers: pd.DataFrame, parties: pd.DataFrame) -> pd.DataFrame:
    if transfers.empty:
        return pd.DataFrame(
            columns=["接收单位", "地区代码", "移送(件)", "已签收(件)", "逾期未签收(件)"]
        )
    info = parties.set_index("code")
    grouped = transfers.groupby("agency_code")
    table = pd.DataFrame(
        {
            "移送(件)": grouped.size(),
            "已签收(件)": grouped["acknowledged"].sum(),
            "逾期未签收(件)": grouped["overdue_ack"].sum(),
        }
    )
    table.insert(0, "地区代码", [info["region_code"].get(code, "") for code in table.index])
    table.insert(0, "接收单位", [info["name_zh"].get(code, code) for code in table.index])
    table = table.reset_index(drop=True).sort_values("移送(件)", ascending=False)
    return _with_total(table, label_column="接收单位", skip=("地区代码",))


def _submissions(
    frames: LedgerFrames, config: CampaignConfig, names: dict[str, str]
) -> pd.DataFrame:
    obligations = frames.obligations
    members = [a.code for a in config.agencies_file.agencies]
    if obligations.empty:
        return pd.DataFrame({"成员单位": [names.get(c, c) for c in members]})
    due = obligations[obligations["due_on"] <= frames.as_of_date]
    late = due.assign(state=due["submitted_at"].notna().map({True: "已报送", False: "未报送"}))
    on_time_cut = late["due_on"].map(lambda d: pd.Timestamp(datetime.combine(d, time(23, 59, 59))))
    submitted_local = (
        late["submitted_at"].dt.tz_convert(config.campaign.time_zone).dt.tz_localize(None)
    )
    late.loc[late["submitted_at"].notna() & (submitted_local > on_time_cut), "state"] = "逾期报送"
    late["column"] = late["kind"].map(OBLIGATION_ZH).fillna(late["kind"]) + " " + late["code"]
    table = late.pivot_table(index="agency_code", columns="column", values="state", aggfunc="first")
    table = table.reindex(members).fillna("—")
    cases = frames.typical_cases
    valid = cases[cases["penalty_decision_file"].notna()] if not cases.empty else cases
    table["典型案例(附处罚决定书,件)"] = [
        int((valid["agency_code"] == code).sum()) if not valid.empty else 0 for code in table.index
    ]
    table.insert(0, "成员单位", [names.get(c, c) for c in table.index])
    return table.reset_index(names="代码")


WITHIN_HOURS = 24  # Zhejiang's benchmark: from six months on average to 24 hours


def assist_statistics(
    assists: pd.DataFrame, config: CampaignConfig, as_of: datetime
) -> tuple[dict[str, object], pd.DataFrame]:
    """Assistance requests per platform: how many, answered, answer time (median, 90th
    percentile, hours) and the share answered within 24 hours — the headline and table 9."""
    columns = [
        "平台",
        "协查请求(件)",
        "已答复(件)",
        "其中查无此经营者(件)",
        "待答复(件)",
        "逾期未答复(件)",
        "告知合规负责人(件)",
        "答复用时中位数(小时)",
        "答复用时90%分位(小时)",
        "24小时内答复率",
    ]
    platforms = [(p.code, p.name_zh) for p in config.platforms_file.platforms]
    if assists.empty:
        frame = pd.DataFrame(
            {
                "platform_code": pd.Series(dtype=object),
                "status": pd.Series(dtype=object),
                "hours": pd.Series(dtype=float),
                "answered": pd.Series(dtype=bool),
                "overdue": pd.Series(dtype=bool),
                "escalated": pd.Series(dtype=bool),
                "counted": pd.Series(dtype=bool),
                "within": pd.Series(dtype=bool),
            }
        )
    else:
        cutoff = pd.Timestamp(as_of).tz_convert("UTC")
        frame = assists.copy()
        frame["answered"] = frame["answered_at"].notna()
        frame["hours"] = (frame["answered_at"] - frame["requested_at"]).dt.total_seconds() / 3600
        window = frame["requested_at"] + pd.Timedelta(hours=WITHIN_HOURS)
        frame["within"] = frame["answered"] & (frame["hours"] <= WITHIN_HOURS)
        frame["counted"] = frame["answered"] | (window < cutoff)
        frame["overdue"] = ~frame["answered"] & (frame["due_at"] < cutoff)
        if "escalated" not in frame:
            frame["escalated"] = False

    def figures(part: pd.DataFrame) -> dict[str, object]:
        hours = part.loc[part["answered"], "hours"]
        counted = int(part["counted"].sum())
        return {
            "requests": len(part),
            "answered": int(part["answered"].sum()),
            "no_such_operator": int((part["status"] == "no_such_operator").sum()),
            "open": int((~part["answered"]).sum()),
            "overdue": int(part["overdue"].sum()),
            "escalated": int(part["escalated"].sum()),
            "median_answer_hours": round(float(hours.median()), 1) if len(hours) else None,
            "p90_answer_hours": round(float(hours.quantile(0.9)), 1) if len(hours) else None,
            "within_24h_share": round(int(part["within"].sum()) / counted, 4) if counted else None,
        }

    known = [code for code, _ in platforms]
    others = sorted(set(frame["platform_code"]) - set(known))
    by_platform = {
        code: figures(frame[frame["platform_code"] == code]) for code in [*known, *others]
    }
    total = figures(frame)
    names = dict(platforms)
    rows = [
        [names.get(code, code), *_assist_cells(f)]
        for code, f in [*by_platform.items(), ("合计", total)]
    ]
    table = pd.DataFrame(rows, columns=columns)
    return {**total, "by_platform": by_platform}, table


def _assist_cells(f: dict[str, object]) -> list[object]:
    def hours(value: object) -> object:
        return "—" if value is None else value

    share = f["within_24h_share"]
    return [
        f["requests"],
        f["answered"],
        f["no_such_operator"],
        f["open"],
        f["overdue"],
        f["escalated"],
        hours(f["median_answer_hours"]),
        hours(f["p90_answer_hours"]),
        _percent(share),
    ]
