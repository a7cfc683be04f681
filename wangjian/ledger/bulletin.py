"""What the office sees after each sweep: overdue items per agency, today's escalations, the
members' report status board, and a draft bulletin (通报) naming the items listed for supervision
and the members who did well.

Everything reads past-due clocks through the `status, due_at` index and the members' obligations
(a few dozen rows), so it costs what is overdue, not what is open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Table, func, select
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.domain.obligations import (
    DELIVERABLE,
    IMPLEMENTATION_PLAN,
    MONTHLY_REPORT,
    SUMMARY_PACKAGE,
)
from wangjian.ledger.models import Deadline, Lead, Obligation, Party, Referral

DEADLINES: Table = Deadline.__table__  # type: ignore[assignment]

KIND_ZH = {
    "referral_ack": "线索签收",
    "referral_outcome": "线索核查处置",
    IMPLEMENTATION_PLAN: "实施方案",
    MONTHLY_REPORT: "月度进展",
    DELIVERABLE: "阶段性材料",
    SUMMARY_PACKAGE: "总结材料",
    "assist_response": "协查回复",
}
STEP_ZH = {"leader": "告知分管领导", "supervision": "挂牌督办"}
REPORT_KINDS = (IMPLEMENTATION_PLAN, MONTHLY_REPORT, DELIVERABLE, SUMMARY_PACKAGE)


@dataclass
class OfficeDigest:
    """The office's view of one sweep day, as tables and a Markdown draft."""

    as_of: datetime
    overdue_by_agency: pd.DataFrame
    escalations_today: pd.DataFrame
    report_board: pd.DataFrame
    listed: pd.DataFrame
    did_well: pd.DataFrame
    bulletin: str
    figures: dict[str, Any] = field(default_factory=dict)


def _local_day(app: App, as_of: datetime) -> date:
    return as_of.astimezone(app.tz).date()


def select_overdue_items(session: Session, *, app: App, as_of: datetime) -> pd.DataFrame:
    """Open clocks past their due instant, with the party's name and how late they are."""
    d = DEADLINES.c
    rows = session.execute(
        select(
            d.id,
            d.subject_type,
            d.subject_id,
            d.kind,
            d.party,
            Party.name_zh,
            d.due_on,
            d.last_step,
            d.escalated_at,
            d.listed_at,
            d.provisional,
        )
        .select_from(DEADLINES.outerjoin(Party, Party.code == d.party))
        .where(d.status == "open", d.due_at < as_of)
        .order_by(d.due_at, d.id)
    ).all()
    columns = [
        "deadline_id",
        "subject_type",
        "subject_id",
        "kind",
        "party",
        "party_name",
        "due_on",
        "last_step",
        "escalated_at",
        "listed_at",
        "provisional",
    ]
    frame = pd.DataFrame(rows, columns=columns)
    today = _local_day(app, as_of).toordinal()
    ordinals = np.fromiter((d.toordinal() for d in frame["due_on"]), np.int64, len(frame))
    frame["late_working_days"] = app.calendar.working_days_between_bulk(
        ordinals, np.full(len(frame), today, dtype=np.int64)
    )
    frame["party_name"] = frame["party_name"].fillna(frame["party"])
    return frame


def label_items(session: Session, items: pd.DataFrame, *, app: App) -> list[str]:
    """A short Chinese label for each item (referral: category and shop; report: its title)."""
    referral_ids = items.loc[items["subject_type"] == "referral", "subject_id"].tolist()
    obligation_ids = items.loc[items["subject_type"] == "obligation", "subject_id"].tolist()
    referrals = {
        r.id: r
        for r in session.execute(
            select(
                Referral.id,
                Referral.category,
                Lead.shop_name,
                Lead.operator_name,
                Lead.platform,
                Lead.summary,
            )
            .join(Lead, Lead.id == Referral.lead_id)
            .where(Referral.id.in_(referral_ids))
        )
    }
    titles: dict[int, str] = {
        row.id: row.title
        for row in session.execute(
            select(Obligation.id, Obligation.title).where(Obligation.id.in_(obligation_ids))
        )
    }
    labels = []
    for subject_type, subject_id, kind in zip(
        items["subject_type"], items["subject_id"], items["kind"], strict=True
    ):
        if subject_type == "referral" and subject_id in referrals:
            r = referrals[subject_id]
            who = " · ".join(x for x in (r.platform, r.shop_name or r.operator_name) if x)
            text = who or (r.summary or "")[:40]
            category = app.config.categories.get(r.category or "")
            what = category.name_zh if category else (r.category or "")
            labels.append(f"移送#{subject_id}({KIND_ZH.get(kind, kind)}){what} {text}".strip())
        elif subject_type == "obligation":
            labels.append(str(titles.get(subject_id, f"报送事项#{subject_id}")))
        else:
            labels.append(f"{KIND_ZH.get(kind, kind)}#{subject_id}")
    return labels


def overdue_by_agency(items: pd.DataFrame) -> pd.DataFrame:
    """Per agency: overdue acknowledgements, outcomes, reports and assists; listed; the oldest."""
    columns = [
        "代码",
        "单位",
        "签收逾期",
        "核查处置逾期",
        "报送逾期",
        "协查逾期",
        "挂牌督办",
        "最长逾期(工作日)",
    ]
    if items.empty:
        return pd.DataFrame(columns=columns)
    group = items.assign(
        ack=items["kind"] == "referral_ack",
        outcome=items["kind"] == "referral_outcome",
        report=items["kind"].isin(REPORT_KINDS),
        assist=items["subject_type"] == "assist",
        listed=items["listed_at"].notna(),
    ).groupby(["party", "party_name"], sort=True)
    table = group.agg(
        ack=("ack", "sum"),
        outcome=("outcome", "sum"),
        report=("report", "sum"),
        assist=("assist", "sum"),
        listed=("listed", "sum"),
        late=("late_working_days", "max"),
    ).reset_index()
    table.columns = pd.Index(columns)
    return table.sort_values(["挂牌督办", "最长逾期(工作日)"], ascending=False, kind="stable")


def escalations_today(
    session: Session, items: pd.DataFrame, *, app: App, as_of: datetime
) -> pd.DataFrame:
    """Items told to a leader or listed for supervision on the sweep's day."""
    start = datetime.combine(_local_day(app, as_of), time(0), tzinfo=app.tz)
    end = start + timedelta(days=1)
    rows = []
    for column, step in (("escalated_at", "leader"), ("listed_at", "supervision")):
        stamps = pd.to_datetime(items[column], utc=True)
        today = items[(stamps >= start) & (stamps < end)]
        if not today.empty:
            rows.append(today.assign(step=STEP_ZH[step], at=stamps[today.index]))
    columns = ["单位", "事项", "期限", "逾期(工作日)", "升级"]
    if not rows:
        return pd.DataFrame(columns=columns)
    today_items = pd.concat(rows, ignore_index=True)
    return pd.DataFrame(
        {
            "单位": today_items["party_name"],
            "事项": label_items(session, today_items, app=app),
            "期限": [d.isoformat() for d in today_items["due_on"]],
            "逾期(工作日)": today_items["late_working_days"],
            "升级": today_items["step"],
        }
    )


def listed_items(session: Session, items: pd.DataFrame, *, app: App) -> pd.DataFrame:
    """Open items listed for supervision (挂牌督办), oldest first."""
    listed = items[items["listed_at"].notna()].reset_index(drop=True)
    return pd.DataFrame(
        {
            "单位": listed["party_name"],
            "事项": label_items(session, listed, app=app) if not listed.empty else [],
            "期限": [d.isoformat() for d in listed["due_on"]],
            "逾期(工作日)": listed["late_working_days"],
            "挂牌日期": [
                pd.Timestamp(t).tz_convert(app.tz).date().isoformat() for t in listed["listed_at"]
            ],
        }
    )


def select_member_obligations(session: Session) -> pd.DataFrame:
    """Every member's obligations with their standing (a few dozen rows per campaign)."""
    rows = session.execute(
        select(
            Obligation.id,
            Obligation.kind,
            Obligation.code,
            Obligation.title,
            Obligation.agency_code,
            Party.name_zh,
            Obligation.due_on,
            Obligation.status,
            Obligation.submitted_at,
        )
        .join(Party, Party.code == Obligation.agency_code)
        .where(Obligation.status != "withdrawn")
        .order_by(Obligation.due_on, Obligation.kind, Obligation.code, Obligation.agency_code)
    ).all()
    return pd.DataFrame(
        rows,
        columns=[
            "id",
            "kind",
            "code",
            "title",
            "agency",
            "agency_name",
            "due_on",
            "status",
            "submitted_at",
        ],
    )


def _submitted_on(app: App, moment: Any) -> date | None:
    if moment is None or pd.isna(moment):
        return None
    return pd.Timestamp(moment).to_pydatetime().astimezone(app.tz).date()


def _column_name(kind: str, code: str) -> str:
    if kind == MONTHLY_REPORT:
        return f"{code}月报"
    if kind == DELIVERABLE:
        return code
    return KIND_ZH.get(kind, kind)


def report_status_board(obligations: pd.DataFrame, *, app: App, as_of: datetime) -> pd.DataFrame:
    """Members × obligations: submitted (on time or late), overdue, or still to come."""
    today = _local_day(app, as_of)
    if obligations.empty:
        return pd.DataFrame(columns=["单位"])
    cells = []
    for row in obligations.itertuples(index=False):
        submitted = _submitted_on(app, row.submitted_at)
        due_on: date = row.due_on  # type: ignore[assignment]
        if row.status == "submitted" and submitted is not None:
            text = f"✓ {submitted:%m-%d}" + ("" if submitted <= due_on else " 迟报")
        elif due_on < today:
            late = app.calendar.working_days_between(due_on, today)
            text = f"✗ 逾期{late}个工作日" + (" (材料不全)" if row.status == "incomplete" else "")
        elif row.status == "incomplete":
            text = f"△ 材料不全 (截止{due_on:%m-%d})"
        else:
            text = f"待报 (截止{due_on:%m-%d})"
        cells.append(text)
    frame = obligations.assign(
        column=[
            _column_name(k, c)
            for k, c in zip(obligations["kind"], obligations["code"], strict=True)
        ],
        cell=cells,
    )
    order = list(dict.fromkeys(frame["column"]))
    board = frame.pivot_table(
        index="agency_name", columns="column", values="cell", aggfunc="first", sort=False
    )
    board = board.reindex(columns=order).reset_index().rename(columns={"agency_name": "单位"})
    board.columns.name = None
    return board.fillna("—")


def members_who_did_well(
    session: Session, obligations: pd.DataFrame, items: pd.DataFrame, *, app: App, as_of: datetime
) -> pd.DataFrame:
    """Members with nothing overdue and every report due so far in on time (at least one)."""
    today = _local_day(app, as_of)
    columns = ["代码", "单位", "按时报送", "按期办结线索"]
    if obligations.empty:
        return pd.DataFrame(columns=columns)
    submitted = [_submitted_on(app, t) for t in obligations["submitted_at"]]
    frame = obligations.assign(
        due_by_now=[d < today for d in obligations["due_on"]],
        on_time=[
            s is not None and s <= d for s, d in zip(submitted, obligations["due_on"], strict=True)
        ],
    )
    late_members = set(items["party"])
    d = DEADLINES.c
    closed_on_time: dict[str, int] = dict(
        session.execute(  # type: ignore[arg-type]
            select(d.party, func.count())
            .where(
                d.status == "met",
                d.subject_type == "referral",
                d.kind == "referral_outcome",
                d.met_at <= d.due_at,
            )
            .group_by(d.party)
        ).all()
    )
    rows = []
    for (code, name), group in frame.groupby(["agency", "agency_name"], sort=True):
        owed = group[group["due_by_now"] | group["on_time"]]
        if code in late_members or owed.empty or not owed["on_time"].all():
            continue
        rows.append((code, name, int(owed["on_time"].sum()), int(closed_on_time.get(str(code), 0))))
    return pd.DataFrame(rows, columns=columns).sort_values(
        ["按时报送", "按期办结线索"], ascending=False, kind="stable"
    )


def _markdown_table(frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    body = [
        "| " + " | ".join(str(v).replace("|", "/") for v in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *body])


def current_report_period(obligations: pd.DataFrame, today: date) -> pd.DataFrame:
    """The monthly report most recently due (or the first one, before any is due)."""
    monthly = obligations[obligations["kind"] == MONTHLY_REPORT]
    if monthly.empty:
        return monthly
    due = monthly[[d <= today for d in monthly["due_on"]]]
    code = (due if not due.empty else monthly)["code"].iloc[-1 if not due.empty else 0]
    return monthly[monthly["code"] == code]


def draft_bulletin(
    *,
    app: App,
    as_of: datetime,
    items: pd.DataFrame,
    listed: pd.DataFrame,
    did_well: pd.DataFrame,
    obligations: pd.DataFrame,
) -> str:
    """The office's draft bulletin (通报) in Markdown, for a person to edit and sign."""
    campaign = app.config.campaign
    today = _local_day(app, as_of)
    lines = [
        f"# 关于{campaign.name}工作进展情况的通报(草稿)",
        "",
        f"{campaign.office.name} · {today.year}年{today.month}月{today.day}日",
        "",
        "各成员单位:",
        "",
        f"截至{today.year}年{today.month}月{today.day}日,尚有{len(items)}项事项超过期限未办结"
        f"(涉及{items['party'].nunique()}个单位),其中{len(listed)}项已由{campaign.leading_group.name}"
        "挂牌督办。现将有关情况通报如下。",
        "",
        "## 一、挂牌督办事项",
        "",
    ]
    if listed.empty:
        lines.append("本期无挂牌督办事项。")
    else:
        lines += [
            "以下事项逾期未办结,经领导小组研究予以挂牌督办。请相关单位分管领导督促落实,"
            "尽快办结并向联席会议办公室反馈:",
            "",
            _markdown_table(listed),
        ]
    lines += ["", "## 二、月度工作进展报送情况", ""]
    period = current_report_period(obligations, today)
    if period.empty:
        lines.append("本次行动未安排月度报送。")
    else:
        due_on = period["due_on"].iloc[0]
        on_time = period[
            [
                s == "submitted"
                and _submitted_on(app, t) is not None
                and _submitted_on(app, t) <= due_on  # type: ignore[operator]
                for s, t in zip(period["status"], period["submitted_at"], strict=True)
            ]
        ]
        late = period[(period["status"] != "submitted") & (due_on < today)]
        year, month = (int(x) for x in str(period["code"].iloc[0]).split("-"))
        lines.append(
            f"{year}年{month}月工作进展应于{due_on.month}月{due_on.day}日(含)前报送。"
            f"按时报送:{'、'.join(on_time['agency_name']) or '无'}。"
            + (f"逾期未报送:{'、'.join(late['agency_name'])}。" if not late.empty else "")
        )
    lines += ["", "## 三、表现突出的成员单位", ""]
    if did_well.empty:
        lines.append("本期暂无。")
    else:
        named = "、".join(
            f"{row.单位}(按时报送{row.按时报送}项、按期办结线索{row.按期办结线索}件)"
            for row in did_well.itertuples(index=False)
        )
        lines.append(f"{named}按时报送材料、无逾期事项,予以通报表扬。")
    lines += [
        "",
        "## 四、下一步工作要求",
        "",
        "请各成员单位对照本通报,逐项核查逾期事项,按期签收移送线索、反馈核查处置结果,"
        "按时报送月度工作进展。挂牌督办事项办结前,联席会议办公室将持续跟踪。",
        "",
    ]
    return "\n".join(lines)


def build_office_digest(*, session: Session, app: App, as_of: datetime) -> OfficeDigest:
    """All of the office's tables and the draft bulletin for one sweep day."""
    items = select_overdue_items(session, app=app, as_of=as_of)
    obligations = select_member_obligations(session)
    listed = listed_items(session, items, app=app)
    did_well = members_who_did_well(session, obligations, items, app=app, as_of=as_of)
    return OfficeDigest(
        as_of=as_of,
        overdue_by_agency=overdue_by_agency(items),
        escalations_today=escalations_today(session, items, app=app, as_of=as_of),
        report_board=report_status_board(obligations, app=app, as_of=as_of),
        listed=listed,
        did_well=did_well,
        bulletin=draft_bulletin(
            app=app,
            as_of=as_of,
            items=items,
            listed=listed,
            did_well=did_well,
            obligations=obligations,
        ),
        figures={"overdue": len(items), "listed": len(listed), "did_well": len(did_well)},
    )
