"""The office pages: queue of held leads, reassignment, extensions, revoking links, the board."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select

from agencies.answers import request_extension, return_referral
from wangjian.bootstrap import App
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.models import Extension, Lead, Obligation, Referral

from .factories import make_lead, make_obligation, make_referral, token_for
from .portal_helpers import NOW, portal_client, sign_in_office


def test_the_office_routes_a_held_lead_from_its_queue(app: App) -> None:
    with transaction(app.sessions) as session:
        lead_id = make_lead(
            session,
            status="held",
            category=None,
            summary="出售野生动物制品",
            hold_reason="未识别类别",
        ).id
    client = portal_client(app)
    csrf = sign_in_office(client, app)
    queue = client.get("/office/leads").text
    assert "出售野生动物制品" in queue and "未识别类别" in queue
    unknown = client.post(
        f"/office/leads/{lead_id}/route", data={"csrf_token": csrf, "category": "nonsense"}
    )
    assert unknown.status_code == 400 and "类别“nonsense”不存在" in unknown.text
    routed = client.post(
        f"/office/leads/{lead_id}/route", data={"csrf_token": csrf, "category": "wildlife"}
    )
    assert routed.status_code == 303
    with app.sessions() as session:
        lead = session.get(Lead, lead_id)
        referral = session.scalar(select(Referral).where(Referral.lead_id == lead_id))
        assert lead is not None and lead.status == "referred"
        assert referral is not None and referral.agency_code == "forestry"
        [created] = history(session, subject_type="referral", subject_id=referral.id)
        assert created.actor == "office:office" and created.origin == "portal testclient"
    assert "出售野生动物制品" not in client.get("/office/leads").text


def test_the_office_reassigns_a_returned_referral_listed_first(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        make_referral(session, app, agency="samr", lead=make_lead(session, summary="普通线索"))
        returned = make_referral(
            session, app, agency="samr", lead=make_lead(session, summary="退回的线索")
        )
        return_referral(
            session=session,
            app=app,
            referral_id=returned.id,
            agency_code="samr",
            reason="属专利问题",
            actor="agency:samr",
            at=NOW,
        )
        returned_id = returned.id
    client = portal_client(app)
    csrf = sign_in_office(client, app)
    queue = client.get("/office/reassign").text
    assert queue.index("退回的线索") < queue.index("普通线索")
    detail = client.get(f"/office/referrals/{returned_id}").text
    assert "属专利问题" in detail
    moved = client.post(
        f"/office/referrals/{returned_id}/reassign",
        data={"csrf_token": csrf, "agency": "ip", "reason": "退回理由成立"},
    )
    assert moved.status_code == 303
    with app.sessions() as session:
        old = session.get(Referral, returned_id)
        assert old is not None and old.status == "reassigned" and old.replaced_by
        new = session.get(Referral, old.replaced_by)
        assert new is not None and new.agency_code == "ip" and new.status == "open"


def test_the_office_decides_extension_requests(app: App) -> None:
    with transaction(app.sessions) as session:
        referral = make_referral(session, app, agency="post", status="acknowledged")
        due_before = referral.due_on
        extension_id = request_extension(
            session=session,
            app=app,
            referral_id=referral.id,
            agency_code="post",
            days=5,
            reason="需协调快递企业调取面单",
            actor="agency:post",
            at=NOW,
        ).id
    client = portal_client(app)
    csrf = sign_in_office(client, app)
    page = client.get("/office/extensions").text
    assert "需协调快递企业调取面单" in page
    bad = client.post(f"/office/extensions/{extension_id}/decide", data={"csrf_token": csrf})
    assert bad.status_code == 400
    decided = client.post(
        f"/office/extensions/{extension_id}/decide",
        data={"csrf_token": csrf, "decision": "approve", "note": "同意"},
    )
    assert decided.status_code == 303
    with app.sessions() as session:
        extension = session.get(Extension, extension_id)
        moved = session.get(Referral, referral.id)
        assert extension is not None and extension.status == "approved"
        assert moved is not None and moved.due_on == app.calendar.shift_working_days(due_before, 5)
    assert "需协调快递企业调取面单" not in client.get("/office/extensions").text


def test_revoking_an_agencys_links_from_its_page(sqlite_app: App) -> None:
    app = sqlite_app
    with app.sessions() as session:
        token = token_for(app, session, "cac")
    client = portal_client(app)
    assert client.get(f"/a/{token}/").status_code == 200
    csrf = sign_in_office(client, app)
    page = client.get("/office/agencies/cac").text
    assert "/a/" in page  # the current link, for the office to pass on
    assert client.post("/office/agencies/cac/revoke", data={"csrf_token": csrf}).status_code == 303
    assert client.get(f"/a/{token}/").status_code == 403
    with app.sessions() as session:
        fresh = token_for(app, session, "cac")
    assert client.get(f"/a/{fresh}/").status_code == 200


def test_the_board_shows_who_submitted_what_and_who_is_overdue(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        make_obligation(session, app, agency="samr", code="2021-10", due_on=date(2021, 10, 22))
        late = make_obligation(
            session, app, agency="post", code="2021-10", due_on=date(2021, 10, 22)
        )
        late.status, late.submitted_at = "submitted", NOW
    client = portal_client(app)
    sign_in_office(client, app)
    board = client.get("/office/reports").text
    assert "逾期未报" in board and "逾期报送" in board
    overview = client.get("/office/").text
    assert "区市场监督管理局" in overview
    with app.sessions() as session:
        assert (
            session.scalar(select(Obligation).where(Obligation.agency_code == "samr")) is not None
        )


def test_signing_out_ends_the_office_session(sqlite_app: App) -> None:
    app = sqlite_app
    client = portal_client(app)
    csrf = sign_in_office(client, app)
    assert client.post("/office/logout", data={"csrf_token": csrf}).status_code == 303
    assert client.get("/office/").status_code == 303
