"""Due dates in a year nobody has published yet are provisional (weekends only), and become
definite when the office adds the year to `calendar.yaml` and runs `wangjian init` again."""

from __future__ import annotations

import warnings
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from wangjian.bootstrap import App, build_app, use_app
from wangjian.domain.calendar import ProvisionalDateWarning
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.models import Obligation, Referral
from wangjian.ledger.obligations import open_obligations
from wangjian.ledger.setup import initialise_ledger
from wangjian.settings import PROJECT_ROOT

from .conftest import make_settings
from .deadline_factories import acknowledge, local, make_referral

CAMPAIGN = f"""
base: {PROJECT_ROOT / "config"}
campaign:
  code: wangjian-2026-test
  name: 2026网剑行动(测试)
  name_en: 2026 campaign running into 2027 (test)
  year: 2026
  level: district
  jurisdiction: {{name: XX区, region_codes: ["140105"]}}
  office: {{name: 联席会议办公室, host_agency: samr, email: office@wangjian-district.example.org}}
  leading_group: {{name: 领导小组, email: leading-group@wangjian-district.example.org}}
  phases:
    mobilisation: {{start: 2026-11-16, end: 2026-11-30}}
    implementation: {{start: 2026-12-01, end: 2027-02-26}}
    summary: {{start: 2027-03-01, end: 2027-03-15}}
deadlines:
  implementation_plan: {{due: 2026-11-27}}
  monthly_report: {{day_of_month: 10, before: true, if_not_working_day: previous_working_day}}
  summary_package: {{due: 2027-03-10, min_typical_cases: 3}}
"""

# An arrangement for 2027 invented for the test (the real one is not published yet).
CALENDAR_2027 = """
years:
  2027:
    source: 测试用假日安排
    holidays:
      - {name: 元旦, from: 2027-01-01, to: 2027-01-03}
      - {name: 春节, from: 2027-02-05, to: 2027-02-12}
    workdays: [2027-02-20]
"""


def _app(tmp_path: Path, database_url: str, folder: Path) -> App:
    app = build_app(make_settings(tmp_path, database_url, config_dir=folder))
    initialise_ledger(app)
    return app


def test_dates_in_an_unknown_year_are_provisional_until_the_year_is_added(
    tmp_path: Path, database_url: str
) -> None:
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
    app = _app(tmp_path, database_url, folder)
    with use_app(app), transaction(app.sessions) as session:
        with pytest.warns(ProvisionalDateWarning, match="2027"):
            # Received Mon 28 Dec 2026; 15 working days run into January 2027.
            waiting = make_referral(
                session, app, agency="customs", received=local("2026-12-28 10:00"), number=1
            )
            working = make_referral(
                session, app, agency="post", received=local("2026-12-28 10:00"), number=2
            )
            acknowledge(session, app, working, local("2026-12-29 10:00"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ProvisionalDateWarning)
            open_obligations(session=session, app=app, as_of=local("2026-11-16"))
        ids = {"waiting": waiting.id, "working": working.id}
    with app.sessions() as session:
        referral = session.get(Referral, ids["working"])
        clock = clock_of(session, subject_type="referral", subject_id=ids["working"])
        assert referral is not None and clock is not None
        # Weekends only: 29–31 Dec, then 1 Jan (a Friday, not known as a holiday) … 18 Jan.
        assert (referral.due_on, referral.provisional) == (date(2027, 1, 18), True)
        assert (clock.due_on, clock.provisional, clock.version) == (date(2027, 1, 18), True, 2)
        february = _obligation(session, "2027-02")
        assert february.due_on == date(2027, 2, 9)  # 9 Feb 2027, a Tuesday on weekends alone
        assert clock_of(session, subject_type="obligation", subject_id=february.id).provisional  # type: ignore[union-attr]
    app.dispose()

    (folder / "calendar.yaml").write_text(CALENDAR_2027, encoding="utf-8")
    app = _app(tmp_path, database_url, folder)  # `wangjian init` after adding the year
    with app.sessions() as session:
        referral = session.get(Referral, ids["working"])
        clock = clock_of(session, subject_type="referral", subject_id=ids["working"])
        assert referral is not None and clock is not None
        # New Year's Day is off now: the 15th working day is Tue 19 Jan; the ladder restarts.
        assert (referral.due_on, referral.original_due_on, referral.provisional) == (
            date(2027, 1, 19),
            date(2027, 1, 19),
            False,
        )
        assert (clock.due_on, clock.provisional, clock.version, clock.next_step) == (
            date(2027, 1, 19),
            False,
            3,
            0,
        )
        waiting = session.get(Referral, ids["waiting"])
        ack_clock = clock_of(session, subject_type="referral", subject_id=ids["waiting"])
        assert waiting is not None and ack_clock is not None
        # Still waiting for the acknowledgement (due 30 Dec 2026, a known year): its clock
        # stays as it was; the outcome date it will open with is definite now.
        assert (waiting.due_on, waiting.provisional) == (date(2027, 1, 19), False)
        assert (ack_clock.kind, ack_clock.version, ack_clock.due_on) == (
            "referral_ack",
            1,
            date(2026, 12, 30),
        )
        february = _obligation(session, "2027-02")
        january = _obligation(session, "2027-01")
        # 9 Feb falls in the Spring Festival now: the previous working day is Thu 4 Feb.
        assert february.due_on == date(2027, 2, 4)
        assert january.due_on == date(2027, 1, 8)  # Sat 9 Jan → Fri 8 Jan either way
        for obligation, version in ((february, 2), (january, 1)):
            obligation_clock = clock_of(
                session, subject_type="obligation", subject_id=obligation.id
            )
            assert obligation_clock is not None
            assert (obligation_clock.provisional, obligation_clock.version) == (False, version)
        actions = [
            e.action for e in history(session, subject_type="referral", subject_id=ids["working"])
        ]
        assert actions == ["deadline.recomputed"]

    again = initialise_ledger(app)  # nothing provisional is left: nothing moves
    assert again["provisional_dates"] == {
        "referrals": 0,
        "obligations": 0,
        "restarted": 0,
        "refreshed": 0,
        "provisional": 0,
    }
    app.dispose()


def _obligation(session, code: str) -> Obligation:  # type: ignore[no-untyped-def]
    return session.scalars(
        select(Obligation).where(Obligation.code == code, Obligation.agency_code == "samr")
    ).one()
