"""Package completeness: a case without its penalty decision is not counted."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from wangjian.bootstrap import App
from wangjian.ledger.models import Obligation, Submission, TypicalCase
from wangjian.ledger.packages import check_packages

TZ = ZoneInfo("Asia/Shanghai")
AT = datetime(2021, 12, 8, 15, 0, tzinfo=TZ)
FULL = [
    {"role": "summary_report", "name": "总结.docx", "path": "x", "size": 1},
    {"role": "statistics_table", "name": "统计表.xlsx", "path": "y", "size": 1},
    {"role": "joint_enforcement", "name": "联合执法.pdf", "path": "z", "size": 1},
]


def _package(app: App, agency: str, *, files: list[dict[str, object]], cases: list[bool]) -> None:
    with app.sessions.begin() as session:
        obligation = Obligation(
            kind="summary_package",
            code="summary",
            agency_code=agency,
            title="总结材料",
            due_on=date(2021, 12, 9),
            requirements={},
        )
        session.add(obligation)
        session.flush()
        submission = Submission(
            obligation_id=obligation.id,
            agency_code=agency,
            submitted_at=AT,
            actor="contact",
            text=None,
            files=files,
        )
        session.add(submission)
        session.flush()
        for i, has_decision in enumerate(cases):
            session.add(
                TypicalCase(
                    submission_id=submission.id,
                    agency_code=agency,
                    title=f"案例{i}",
                    penalty_decision_file="d.pdf" if has_decision else None,
                )
            )


def test_package_completeness(app: App) -> None:
    _package(app, "samr", files=FULL, cases=[True] * 5)
    _package(app, "customs", files=FULL, cases=[True] * 4 + [False])
    _package(app, "post", files=FULL[1:], cases=[True] * 6)
    checks = {c.agency_code: c for c in check_packages_at(app)}
    assert checks["samr"].complete
    assert not checks["customs"].complete
    assert checks["customs"].valid_cases == 4 and checks["customs"].cases_without_decision == 1
    assert "未附行政处罚决定书不计入" in checks["customs"].describe()
    assert checks["post"].missing == ["缺总结报告"]
    assert checks["police"].describe() == "未报送"


def test_a_submission_after_the_as_of_does_not_count(app: App) -> None:
    _package(app, "samr", files=FULL, cases=[True] * 5)
    with app.sessions() as session:
        early = check_packages(session, app.config, as_of=datetime(2021, 12, 1, tzinfo=TZ))
    assert not {c.agency_code: c for c in early}["samr"].submitted


def check_packages_at(app: App):  # type: ignore[no-untyped-def]
    with app.sessions() as session:
        return check_packages(session, app.config, as_of=AT)
