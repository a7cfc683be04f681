"""Dispatch into the ledger (SQLite and PostgreSQL): referrals with frozen terms, one clock and
one notice each, duplicates, evidence for open referrals, and crash-safe reruns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from tasks.dispatch import refer_leads, route_leads
from tasks.intake import check_leads, open_import, read_leads
from wangjian.bootstrap import App
from wangjian.domain.deadlines import compute_due
from wangjian.ledger.clocks import first_fire
from wangjian.ledger.dispatch import list_referrals
from wangjian.ledger.models import Deadline, Event, Import, Lead, Notice, Party, Referral
from wangjian.ledger.outbox import notice_key
from wangjian.settings import PROJECT_ROOT

from .dispatch_driver import Interrupted, run_import
from .lead_factory import credit_code, lead, write_csv

AS_OF = "2021-10-25"


def mixed_leads() -> list[dict[str, object]]:
    return [
        lead(1, category="trademark"),
        lead(2, category="counterfeit_goods", suspected_crime="true"),  # samr + police
        lead(3, category="fraud", suspected_crime="true"),  # police, crime
        lead(4, category="", summary="跨境代购假冒化妆品"),  # customs, by keyword
        lead(5, category="price", region_code="110105"),  # transfer to Beijing
        lead(6, category="", summary="网店客服态度差"),  # held: no keyword
        lead(7, category="piracy", region_code="710000"),  # held: no regulator
        lead(8, region_code="bad"),  # rejected
        lead(9, category="prepaid_card", credit_code=credit_code()),
    ]


def counts(app: App) -> dict[str, int]:
    with app.sessions() as s:
        return {
            "leads": s.scalar(select(func.count(Lead.id))) or 0,
            "referrals": s.scalar(select(func.count(Referral.id))) or 0,
            "clocks": s.scalar(select(func.count(Deadline.id))) or 0,
            "notices": s.scalar(select(func.count(Notice.id))) or 0,
        }


def assert_one_of_everything(app: App) -> None:
    """Each lead referred at most once per agency; each referral one clock and one notice."""
    with app.sessions() as s:
        pairs = s.execute(select(Referral.lead_id, Referral.agency_code)).all()
        assert len(pairs) == len(set(pairs))
        referral_ids = set(s.scalars(select(Referral.id)))
        clocks = Counter(
            s.scalars(select(Deadline.subject_id).where(Deadline.subject_type == "referral"))
        )
        notices = Counter(s.scalars(select(Notice.subject_id).where(Notice.kind == "referral")))
        assert set(clocks) == set(notices) == referral_ids
        assert set(clocks.values()) | set(notices.values()) <= {1}
        leads_by_key = Counter(s.execute(select(Lead.source, Lead.source_lead_id)).all())
        assert set(leads_by_key.values()) <= {1}


def test_a_file_is_checked_routed_and_referred(app: App, tmp_path: Path) -> None:
    summary = run_import(write_csv(tmp_path / "mixed.csv", mixed_leads()))
    assert {k: summary[k] for k in ("imported", "duplicates", "rejected", "held", "attached")} == {
        "imported": 8,
        "duplicates": 0,
        "rejected": 1,
        "held": 2,
        "attached": 0,
    }
    assert summary["referrals"] == {
        "samr": 2,
        "police": 2,
        "customs": 1,
        "commerce": 1,
        "transfer_out": 1,
    }
    assert summary["reject_report"] and Path(summary["reject_report"]).exists()
    assert counts(app) == {"leads": 8, "referrals": 7, "clocks": 7, "notices": 7}
    assert_one_of_everything(app)
    with app.sessions() as s:
        by_lead = {
            (lead_id, agency): (kind, rule)
            for lead_id, agency, kind, rule in s.execute(
                select(
                    Lead.source_lead_id, Referral.agency_code, Referral.kind, Referral.rule
                ).join(Lead, Lead.id == Referral.lead_id)
            )
        }
        statuses = dict(s.execute(select(Lead.source_lead_id, Lead.status)).all())
        origin = s.scalar(select(Lead.category_origin).where(Lead.source_lead_id == "L-00004"))
    assert by_lead == {
        ("L-00001", "samr"): ("referral", "category_owner"),
        ("L-00002", "samr"): ("referral", "category_owner"),
        ("L-00002", "police"): ("crime", "crime_coreferral"),
        ("L-00003", "police"): ("crime", "crime_category_owner"),
        ("L-00004", "customs"): ("referral", "category_owner"),
        ("L-00005", "reg-110000"): ("transfer_out", "transfer_out"),
        ("L-00009", "commerce"): ("referral", "category_owner"),
    }
    assert statuses["L-00006"] == statuses["L-00007"] == "held"
    assert statuses["L-00001"] == "referred" and origin == "keywords"


def test_referral_ids_with_gaps_still_get_one_clock_and_one_notice_each(
    app: App, tmp_path: Path
) -> None:
    """PostgreSQL's sequence need not hand a chunk contiguous ids (other sessions draw from it
    too); the clocks and notices are then derived from the ids themselves, not their range."""
    if app.engine.dialect.name != "postgresql":
        pytest.skip("SQLite hands out ids under the write lock: always contiguous")

    def increment(step: int) -> None:  # the sequence outlives the test's truncated tables
        with app.engine.begin() as connection:
            connection.exec_driver_sql(f"alter sequence referrals_id_seq increment by {step}")

    increment(3)  # gaps between a chunk's ids
    try:
        run_import(write_csv(tmp_path / "mixed.csv", mixed_leads()))
    finally:
        increment(1)
    with app.sessions() as s:
        ids = sorted(s.scalars(select(Referral.id)))
    assert len(ids) == 7 and ids[-1] - ids[0] + 1 > len(ids)
    assert counts(app) == {"leads": 8, "referrals": 7, "clocks": 7, "notices": 7}
    assert_one_of_everything(app)


def test_referrals_carry_frozen_terms_and_get_a_clock_and_a_notice(
    app: App, tmp_path: Path
) -> None:
    summary = run_import(write_csv(tmp_path / "mixed.csv", mixed_leads()))
    as_of = app.as_of(AS_OF)
    with app.sessions() as s:
        referrals = s.scalars(select(Referral)).all()
        clocks = {c.subject_id: c for c in s.scalars(select(Deadline))}
        notices = {n.subject_id: n for n in s.scalars(select(Notice))}
        emails = dict(s.execute(select(Party.code, Party.contact_email)).all())
        lead_received = set(s.scalars(select(Lead.received_at)))
        events = s.scalars(select(Event.action).where(Event.subject_type == "import")).all()
    assert lead_received == {as_of}
    assert {"import_started", "leads_dispatched", "import_finished"} <= set(events)
    for referral in referrals:
        policy = app.config.policy(referral.kind)
        ack = compute_due(app.calendar, as_of, policy.acknowledge, tz=app.tz)
        outcome = compute_due(app.calendar, as_of, policy.outcome, tz=app.tz)
        assert referral.policy == policy.model_dump(mode="json")
        assert (referral.ack_due_on, referral.due_on, referral.original_due_on) == (
            ack.due_on,
            outcome.due_on,
            outcome.due_on,
        )
        assert referral.received_at == as_of and referral.status == "open"
        assert referral.reason and referral.rule and referral.import_id == summary["import_id"]
        clock = clocks[referral.id]
        assert (clock.kind, clock.party, clock.ladder, clock.status) == (
            "referral_ack",
            referral.agency_code,
            policy.ack_ladder,
            "open",
        )
        assert (clock.due_on, clock.due_at) == (ack.due_on, ack.due_at)
        assert clock.next_fire_at == first_fire(app, policy.ack_ladder, ack.due_on, ack.due_at)
        assert (clock.next_step, clock.version) == (0, 1)
        notice = notices[referral.id]
        recipient = emails[referral.agency_code]
        assert notice.key == notice_key(
            recipient=recipient, subject_type="referral", subject_id=referral.id, kind="referral"
        )
        assert (notice.recipient, notice.party, notice.audience) == (
            recipient,
            referral.agency_code,
            "contact",
        )
        assert notice.group_key == f"dispatch:{summary['import_id']}"
        assert notice.deadline_id == clock.id and notice.status == "queued"
    assert summary["terms"]["crime"]["outcome"]["due_on"] == "2021-10-28"
    assert "起算" in summary["terms"]["referral"]["outcome"]["explanation"]


def test_duplicates_within_and_across_files_are_counted_not_referred(
    app: App, tmp_path: Path
) -> None:
    first = run_import(write_csv(tmp_path / "a.csv", [lead(1), lead(2), lead(1), lead(3)]))
    assert (first["imported"], first["duplicates"]) == (3, 1)
    second = run_import(
        write_csv(
            tmp_path / "b.csv",
            [lead(2), lead(3), lead(4), lead(2, source="12315", url="https://x.example.com/2")],
        )
    )
    assert (second["imported"], second["duplicates"]) == (2, 2)
    assert counts(app)["leads"] == 5
    assert_one_of_everything(app)


def test_a_lead_about_an_open_listing_or_operator_is_evidence(app: App, tmp_path: Path) -> None:
    code = credit_code()
    run_import(write_csv(tmp_path / "a.csv", [lead(1, credit_code=code)]))
    with app.sessions() as s:
        first = s.scalars(select(Referral)).one()
    second = run_import(
        write_csv(
            tmp_path / "b.csv",
            [
                lead(2, url="http://www.item.taobao.example.com/item/1.html?spm=x"),  # same listing
                lead(3, url="", credit_code=code),  # same operator
                lead(4, url="https://item.taobao.example.com/item/1.html", category="price"),
                lead(5, url="https://item.taobao.example.com/item/1.html", suspected_crime="1"),
                lead(6, url="https://item.taobao.example.com/item/1.html"),  # same chunk, again
            ],
        )
    )
    assert second["imported"] == 5 and second["attached"] == 3
    assert second["referrals"] == {"samr": 1, "police": 1}  # price: samr; lead 5's crime
    with app.sessions() as s:
        status = dict(s.execute(select(Lead.source_lead_id, Lead.status)).all())
        attached = dict(s.execute(select(Lead.source_lead_id, Lead.attached_to)).all())
        evidence = s.scalar(select(Referral.evidence_count).where(Referral.id == first.id))
    assert [status[f"L-0000{i}"] for i in (2, 3, 4, 5, 6)] == [
        "attached",
        "attached",
        "referred",
        "referred",
        "attached",
    ]
    assert attached["L-00002"] == attached["L-00003"] == attached["L-00005"] == first.id
    assert evidence == 4  # leads 2, 3, 5 and 6 add to it
    assert_one_of_everything(app)

    with app.sessions.begin() as s:  # once the referral is closed, the listing is new again
        s.execute(update(Referral).where(Referral.id == first.id).values(status="closed"))
    third = run_import(
        write_csv(tmp_path / "c.csv", [lead(7, url="https://item.taobao.example.com/item/1.html")])
    )
    assert third["referrals"] == {"samr": 1} and third["attached"] == 0


def test_a_rerun_after_an_interruption_resumes_and_refers_each_lead_once(
    app: App, tmp_path: Path
) -> None:
    rows = [
        lead(i, category="counterfeit_goods", suspected_crime=str(i % 3 == 0))
        for i in range(1, 301)
    ]
    rows += [lead(5), lead(400, region_code="x")]  # a duplicate and a rejected row at the end
    path = write_csv(tmp_path / "big.csv", rows)
    with pytest.raises(Interrupted):
        run_import(path, chunk_rows=64, stop_after=2)
    assert counts(app)["leads"] == 128
    summary = run_import(path, "2021-11-30", chunk_rows=50)  # another chunk size, another as-of
    assert (summary["imported"], summary["duplicates"], summary["rejected"]) == (300, 1, 1)
    assert summary["as_of"] == app.as_of(AS_OF).isoformat()  # the import's own as-of stands
    assert summary["referrals"] == {"samr": 300, "police": 100}
    assert counts(app) == {"leads": 300, "referrals": 400, "clocks": 400, "notices": 400}
    assert_one_of_everything(app)
    again = run_import(path)
    assert again["already_imported"] and again["imported"] == 300
    assert counts(app)["notices"] == 400


def test_a_chunk_that_fails_half_way_leaves_nothing_behind(app: App, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "f.csv", [lead(i) for i in range(1, 21)])
    plan = open_import.fn(str(path), AS_OF)
    (raw,) = list(read_leads(plan.file, 50_000))
    batch = route_leads.fn(check_leads.fn(raw, plan.report), last_row=int(raw["row"].max()))
    broken = batch.referrals.copy()
    broken.loc[10, "agency"] = "no-such-agency"  # fails on the referrals, after the leads went in
    with pytest.raises(IntegrityError):
        refer_leads.fn(
            plan.state.id,
            type(batch)(batch.leads, broken, batch.rejected_rows, batch.last_row, batch.rows),
        )
    assert counts(app) == {"leads": 0, "referrals": 0, "clocks": 0, "notices": 0}
    assert refer_leads.fn(plan.state.id, batch)["imported"] == 20
    assert refer_leads.fn(plan.state.id, batch) == {}  # a retried task finds the chunk done
    assert counts(app) == {"leads": 20, "referrals": 20, "clocks": 20, "notices": 20}


def test_killed_mid_import_then_rerun(sqlite_app: App, tmp_path: Path) -> None:
    rows = [lead(i, suspected_crime=str(i % 4 == 0)) for i in range(1, 601)]
    path = write_csv(tmp_path / "k.csv", rows)
    settings = sqlite_app.settings
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.dispatch_driver",
            settings.database_url,
            str(settings.config_dir),
            str(settings.rejects_dir),
            str(path),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    deadline = time.monotonic() + 60
    chunks = 0
    while chunks < 3 and time.monotonic() < deadline and child.poll() is None:
        time.sleep(0.01)
        with sqlite_app.sessions() as s:
            chunks = s.scalar(select(func.max(Import.chunks_done))) or 0
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert 0 < counts(sqlite_app)["leads"] < 600, "the child should die half-way"
    summary = run_import(path)
    assert summary["imported"] == 600 and summary["referrals"] == {"samr": 600, "police": 150}
    assert counts(sqlite_app) == {"leads": 600, "referrals": 750, "clocks": 750, "notices": 750}
    assert_one_of_everything(sqlite_app)


def test_referrals_are_listed_with_the_sources_lead_id(app: App, tmp_path: Path) -> None:
    run_import(write_csv(tmp_path / "mixed.csv", mixed_leads()))
    with app.sessions() as s:
        everything = list_referrals(s)
        police = list_referrals(s, agency="police", status="open")
        none = list_referrals(s, status="closed")
    assert len(everything) == 7 and none == []
    assert [(r["lead_id"], r["kind"]) for r in police] == [
        ("L-00002", "crime"),
        ("L-00003", "crime"),
    ]
    assert set(everything[0]) >= {"id", "lead_id", "agency", "kind", "status", "due_on"}
    assert np.all(np.diff([r["id"] for r in everything]) > 0)


def test_a_referral_made_elsewhere_meanwhile_is_still_found_open(app: App, tmp_path: Path) -> None:
    run_import(write_csv(tmp_path / "a.csv", [lead(1)]))  # the import's lookups are now warm
    with app.sessions.begin() as s:  # e.g. the office reassigns a lead by hand
        original = s.scalars(select(Referral)).one()
        s.add(
            Referral(
                lead_id=original.lead_id,
                agency_code="customs",
                kind="referral",
                category="counterfeit_import",
                listing_key="shop.example.com/item/77",
                status="open",
                reason="办公室改派",
                rule="office",
                policy={},
                received_at=original.received_at,
                ack_due_on=original.ack_due_on,
                due_on=original.due_on,
                original_due_on=original.due_on,
            )
        )
    second = run_import(
        write_csv(
            tmp_path / "b.csv",
            [lead(2, category="counterfeit_import", url="https://shop.example.com/item/77")],
        )
    )
    assert second["attached"] == 1 and second["referrals"] == {}
