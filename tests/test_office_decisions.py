"""The office's decisions: routing held leads, reassigning, extensions, revoking links."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from agencies.answers import request_extension, return_referral
from agencies.errors import Refused
from agencies.office import decide_extension, reassign_referral, revoke_links, route_held_lead
from wangjian.bootstrap import App
from wangjian.domain.dedup import listing_key, match_hash
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Event, Extension, Lead, Notice, Party, Referral

from .factories import AT, make_lead, make_referral

LATER = AT + timedelta(days=1)
OFFICE = {"actor": "office:office", "origin": "portal 127.0.0.1"}


def test_routing_a_held_lead_refers_it_with_clock_and_notice(app: App) -> None:
    with transaction(app.sessions) as session:
        lead_id = make_lead(
            session, category=None, status="held", hold_reason="无法自动分类", suspected_crime=True
        ).id
    with transaction(app.sessions) as session:
        referrals = route_held_lead(
            session=session,
            app=app,
            lead_id=lead_id,
            category="counterfeit_import",
            at=LATER,
            **OFFICE,
        )
        ids = [r.id for r in referrals]
    with app.sessions() as session:
        lead = session.get(Lead, lead_id)
        assert lead is not None
        assert (lead.status, lead.category, lead.category_origin) == (
            "referred",
            "counterfeit_import",
            "office",
        )
        made = [session.get(Referral, i) for i in ids]
        assert [(r.agency_code, r.kind) for r in made if r] == [
            ("customs", "referral"),
            ("police", "crime"),
        ]
        customs = made[0]
        assert customs is not None
        assert customs.policy["outcome"]["count"] == 15 and customs.rule == "office"
        assert customs.ack_due_on == app.calendar.shift_working_days(LATER.date(), 2)
        clock = clock_of(session, subject_type="referral", subject_id=customs.id)
        assert clock is not None and (clock.kind, clock.status) == ("referral_ack", "open")
        notices = session.scalars(select(Notice).order_by(Notice.id)).all()
        assert [(n.kind, n.party, n.subject_id) for n in notices] == [
            ("referral", "customs", ids[0]),
            ("referral", "police", ids[1]),
        ]
    with transaction(app.sessions) as session, pytest.raises(Refused, match="not waiting"):
        route_held_lead(
            session=session, app=app, lead_id=lead_id, category="trademark", at=LATER, **OFFICE
        )


def test_a_lead_outside_the_jurisdiction_goes_to_that_regions_regulator(sqlite_app: App) -> None:
    app = sqlite_app
    regulator = app.config.regions.regulators[0]
    with transaction(app.sessions) as session:
        lead = make_lead(session, category=None, status="held", region_code=regulator.region_code)
        [referral] = route_held_lead(
            session=session, app=app, lead_id=lead.id, category="trademark", at=LATER, **OFFICE
        )
        assert (referral.agency_code, referral.kind) == (regulator.code, "transfer_out")


def test_reassigning_a_returned_referral_opens_a_new_one(app: App) -> None:
    with transaction(app.sessions) as session:
        old_id = make_referral(session, app, agency="samr").id
    with transaction(app.sessions) as session:
        return_referral(
            session=session,
            app=app,
            referral_id=old_id,
            agency_code="samr",
            reason="涉及专利,非本单位职责",
            actor="agency:samr",
            at=LATER,
        )
    with transaction(app.sessions) as session:
        new_id = reassign_referral(
            session=session,
            app=app,
            referral_id=old_id,
            agency_code="ip",
            reason="退回理由成立",
            at=LATER,
            **OFFICE,
        ).id
    with app.sessions() as session:
        old, new = session.get(Referral, old_id), session.get(Referral, new_id)
        assert old is not None and new is not None
        assert (old.status, old.replaced_by) == ("reassigned", new_id)
        assert (new.status, new.agency_code, new.lead_id) == ("open", "ip", old.lead_id)
        lead = session.get(Lead, new.lead_id)
        assert lead is not None and lead.url  # found again by later leads about it:
        assert new.listing_key == listing_key(lead.url)
        assert new.listing_hash == match_hash(new.category, new.listing_key) is not None
        assert new.operator_hash == match_hash(new.category, new.operator_key) is not None
        old_clock = clock_of(session, subject_type="referral", subject_id=old_id)
        new_clock = clock_of(session, subject_type="referral", subject_id=new_id)
        assert old_clock is not None and old_clock.status == "cancelled"
        assert new_clock is not None and new_clock.status == "open"
        assert session.scalar(select(Notice).where(Notice.subject_id == new_id)) is not None
    with transaction(app.sessions) as session, pytest.raises(Refused, match="reassigned"):
        reassign_referral(
            session=session,
            app=app,
            referral_id=old_id,
            agency_code="post",
            reason="x",
            at=LATER,
            **OFFICE,
        )


def test_reassigning_to_an_agency_that_already_has_the_lead_is_refused(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        first = make_referral(session, app, agency="samr")
        lead = session.get(Lead, first.lead_id)
        make_referral(session, app, agency="police", lead=lead, kind="crime")
        with pytest.raises(Refused, match="already referred"):
            reassign_referral(
                session=session,
                app=app,
                referral_id=first.id,
                agency_code="police",
                reason="x",
                at=LATER,
                **OFFICE,
            )


def test_an_approved_extension_moves_the_due_date_and_restarts_the_ladder(app: App) -> None:
    with transaction(app.sessions) as session:
        referral = make_referral(session, app, status="acknowledged")
        referral_id, due_before = referral.id, referral.due_on
        extension_id = request_extension(
            session=session,
            app=app,
            referral_id=referral_id,
            agency_code="samr",
            days=15,
            reason="需调取平台交易数据",
            actor="agency:samr",
            at=LATER,
        ).id
    with transaction(app.sessions) as session:
        decide_extension(
            session=session,
            app=app,
            extension_id=extension_id,
            approve=True,
            at=LATER,
            actor="office:office",
            note="同意",
        )
    with app.sessions() as session:
        referral = session.get(Referral, referral_id)
        extension = session.get(Extension, extension_id)
        assert referral is not None and extension is not None
        assert extension.status == "approved" and referral.extension_days == 15
        assert referral.due_on == app.calendar.shift_working_days(due_before, 15)
        clock = clock_of(session, subject_type="referral", subject_id=referral_id)
        assert clock is not None and clock.due_on == referral.due_on and clock.version == 2
    with transaction(app.sessions) as session, pytest.raises(Refused, match="already decided"):
        decide_extension(
            session=session,
            app=app,
            extension_id=extension_id,
            approve=False,
            at=LATER,
            actor="office:office",
        )


def test_a_refused_extension_leaves_the_due_date(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referral = make_referral(session, app, status="acknowledged")
        extension = request_extension(
            session=session,
            app=app,
            referral_id=referral.id,
            agency_code="samr",
            days=5,
            reason="人手不足",
            actor="agency:samr",
            at=LATER,
        )
        due = referral.due_on
        decide_extension(
            session=session,
            app=app,
            extension_id=extension.id,
            approve=False,
            at=LATER,
            actor="office:office",
            note="理由不充分",
        )
        assert extension.status == "refused" and referral.due_on == due


def test_revoking_links_bumps_the_token_version(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        assert revoke_links(session=session, party_code="post", at=LATER, **OFFICE) == 2
    with app.sessions() as session:
        party = session.get(Party, "post")
        assert party is not None and party.token_version == 2
        assert session.scalar(select(Event.action)) == "party.links_revoked"
