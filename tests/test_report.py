"""The campaign report: Shanghai's reported half-year reproduced exactly; files that open back."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pandas as pd
import pytest
from sqlalchemy import insert

from wangjian.bootstrap import App
from wangjian.ledger.models import Lead, Notice, Referral
from wangjian.reporting.build import build_report
from wangjian.reporting.statistics import annotate, disposition

TZ = ZoneInfo("Asia/Shanghai")
# Shanghai, first half of 2020: 1,255 leads → 27 cases filed, 443 ordered to correct,
# 89 transferred to other provinces, 696 listings removed (DOMAIN.md).
SHANGHAI = {"case_filed": 27, "ordered_to_correct": 443, "transferred_out": 89, "info_removed": 696}
OTHER_REGIONS = ["310000", "330000", "440000", "320000", "110000"]


def _seed_shanghai(app: App) -> datetime:
    received = datetime(2021, 10, 22, 9, 0, tzinfo=TZ)
    outcomes = ["case_filed"] * 27 + ["ordered_to_correct"] * 443 + ["info_removed"] * 696
    leads, referrals = [], []
    for i in range(1255):
        transfer = i >= len(outcomes)
        region = OTHER_REGIONS[i % len(OTHER_REGIONS)] if transfer else "140105"
        leads.append(
            {
                "id": i + 1,
                "source": "monitoring" if i % 3 else "complaint",
                "source_lead_id": f"SH-{i:05d}",
                "category": "false_advertising",
                "region_code": region,
                "found_on": date(2021, 10, 20),
                "status": "referred",
                "received_at": received + timedelta(days=i % 30),
                "priority": "normal",
                "suspected_crime": False,
            }
        )
        referrals.append(
            {
                "id": i + 1,
                "lead_id": i + 1,
                "agency_code": f"reg-{region}" if transfer else "samr",
                "kind": "transfer_out" if transfer else "referral",
                "category": "false_advertising",
                "status": "open" if transfer else "closed",
                "reason": "测试",
                "rule": "category",
                "received_at": received + timedelta(days=i % 30),
                "ack_due_on": date(2021, 11, 30),
                "due_on": date(2021, 12, 31),
                "original_due_on": date(2021, 12, 31),
                "provisional": False,
                "priority": "normal",
                "acknowledged_at": None if transfer else received + timedelta(days=i % 30, hours=2),
                "outcome": None if transfer else outcomes[i],
                "outcome_at": None if transfer else received + timedelta(days=i % 30 + 3),
                "extension_days": 0,
                "evidence_count": 0,
            }
        )
    with app.sessions.begin() as session:
        session.execute(insert(Lead), leads)
        session.execute(insert(Referral), referrals)
    return datetime(2021, 12, 31, 18, 0, tzinfo=TZ)


def test_shanghai_half_year_is_reproduced_exactly(app: App, tmp_path: Path) -> None:
    as_of = _seed_shanghai(app)
    report = build_report(app, as_of=as_of, out_dir=tmp_path / "report")
    stats = report.stats
    assert stats.leads == 1255
    assert stats.referrals == 1255
    assert {k: v for k, v in stats.by_outcome.items() if v} == SHANGHAI
    assert stats.by_outcome["pending"] == 0
    assert stats.transfers_out == 89
    outcomes = stats.tables["表6 办理结果"].set_index("代码")["件数"]
    assert outcomes["case_filed"] == 27 and outcomes["ordered_to_correct"] == 443
    assert outcomes["transferred_out"] == 89 and outcomes["info_removed"] == 696
    transfers = stats.tables["表7 异地移送"]
    assert int(transfers.loc[transfers["接收单位"] == "合计", "移送(件)"].iloc[0]) == 89
    assert set(transfers["地区代码"]) >= set(OTHER_REGIONS)


def test_statistics_workbook_opens_back_with_the_same_figures(app: App, tmp_path: Path) -> None:
    as_of = _seed_shanghai(app)
    report = build_report(app, as_of=as_of, out_dir=tmp_path / "report")
    workbook = openpyxl.load_workbook(report.files["xlsx"], read_only=True)
    assert "表6 办理结果" in workbook.sheetnames
    rows = list(workbook["表6 办理结果"].iter_rows(values_only=True))
    assert "截至2021年12月31日" in rows[0][0]
    assert rows[1][:3] == ("办理结果", "代码", "件数")
    counts = {row[1]: row[2] for row in rows[2:] if row[1]}
    assert counts == {
        **{k: 0 for k in ("transferred_to_police", "no_violation", "pending")},
        **SHANGHAI,
    }
    html = report.files["html"].read_text(encoding="utf-8")
    assert "<svg" in html and "办理结果" in html and "1255" in html
    markdown = report.files["markdown"].read_text(encoding="utf-8")
    assert "## 一、基本情况" in markdown and "立案27件" in markdown and "移送外地89件" in markdown


def test_answers_after_the_as_of_do_not_count(app: App, tmp_path: Path) -> None:
    _seed_shanghai(app)
    early = build_report(
        app, as_of=datetime(2021, 10, 23, 10, 0, tzinfo=TZ), out_dir=tmp_path / "r"
    )
    assert early.stats.leads == len([i for i in range(1255) if i % 30 <= 1])
    assert early.stats.by_outcome["case_filed"] == 0  # decisions came three days later


def test_escalations_and_listings_are_counted_from_sweep_notices(app: App, tmp_path: Path) -> None:
    as_of = _seed_shanghai(app)
    with app.sessions.begin() as session:
        session.execute(
            insert(Notice),
            [
                {
                    "key": f"k{i}-{step}",
                    "kind": step,
                    "party": "samr",
                    "audience": "leader",
                    "recipient": "x@example.org",
                    "cc": [],
                    "subject_type": "referral",
                    "subject_id": i,
                    "step": step,
                    "group_key": f"sweep:{day}",
                    "context": {},
                    "status": "queued",
                    "created_at": datetime.now(UTC),
                }
                for i, step, day in [
                    (1, "leader", "2021-11-20"),
                    (1, "supervision", "2021-11-27"),
                    (2, "leader", "2022-01-05"),
                ]
            ],
        )
    report = build_report(app, as_of=as_of, out_dir=tmp_path / "r")
    assert (report.stats.escalated, report.stats.listed_for_supervision) == (1, 1)
    assert len(report.listed) == 1 and "移送件#1" in report.listed[0]


# --- small pandas cases for the counting rules -------------------------------------------------


def _frame(**columns: list[object]) -> pd.DataFrame:
    return pd.DataFrame(columns)


@pytest.mark.parametrize(
    ("kind", "outcome", "expected"),
    [
        ("referral", None, "pending"),
        ("referral", "case_filed", "case_filed"),
        ("transfer_out", None, "transferred_out"),
        ("crime", "transferred_to_police", "transferred_to_police"),
    ],
)
def test_disposition(kind: str, outcome: str | None, expected: str) -> None:
    assert disposition(_frame(kind=[kind], outcome=[outcome])).iloc[0] == expected


@pytest.mark.parametrize(
    ("acknowledged", "decided", "as_of", "expected"),
    [
        ("2021-11-02 10:00", "2021-11-10 10:00", "2021-11-30 09:00", (True, True, False)),
        ("2021-11-03 10:00", "2021-11-12 10:00", "2021-11-30 09:00", (False, False, False)),
        (None, None, "2021-11-02 09:00", (False, False, False)),
        (None, None, "2021-11-03 09:00", (False, False, True)),
    ],
)
def test_on_time_and_overdue_use_the_end_of_the_local_due_day(
    acknowledged: str | None, decided: str | None, as_of: str, expected: tuple[bool, bool, bool]
) -> None:
    def stamp(text: str | None) -> pd.Timestamp:
        return pd.NaT if text is None else pd.Timestamp(text, tz=TZ).tz_convert("UTC")

    frame = _frame(
        id=[1],
        kind=["referral"],
        status=["open"],
        outcome=["case_filed" if decided else None],
        ack_due_on=[date(2021, 11, 2)],
        due_on=[date(2021, 11, 11)],
        acknowledged_at=[stamp(acknowledged)],
        outcome_at=[stamp(decided)],
        received_at=[stamp("2021-10-29 09:00")],
    )
    row = annotate(frame, as_of=datetime.fromisoformat(as_of).replace(tzinfo=TZ), tz=TZ).iloc[0]
    assert (
        bool(row["ack_on_time"]),
        bool(row["outcome_on_time"]),
        bool(row["overdue_ack"]),
    ) == expected


def test_an_empty_ledger_still_reports_every_member(app: App, tmp_path: Path) -> None:
    report = build_report(
        app, as_of=datetime(2021, 10, 21, 9, 0, tzinfo=TZ), out_dir=tmp_path / "r"
    )
    assert report.stats.leads == 0 and report.stats.on_time_rate is None
    table = report.stats.tables["表2 成员单位办理情况"]
    assert len(table) == len(app.config.agencies) + 1  # every member and the total
    assert set(table["按期办结率"]) == {"—", ""}
    assert all(path.exists() for path in report.files.values())
