"""Office pages (`/office/…`): sign-in with the office's credential, then the whole campaign."""

from __future__ import annotations

import hmac
import secrets

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from agencies import office, queries
from agencies.errors import NotFound, Refused
from portal.agency_routes import send_submission_file
from portal.i18n import language_of
from portal.security import (
    PortalError,
    check_csrf,
    client_origin,
    office_form,
    office_user,
    wangjian_app,
)
from portal.web import now_of, redirect, render, today_of
from wangjian.access import portal_link
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Party

router = APIRouter(prefix="/office")


@router.get("/login", response_class=HTMLResponse, name="office_login")
def login_page(request: Request) -> HTMLResponse:
    return render(request, "office/login.html", {})


@router.post("/login", name="office_login_submit")
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf_token: str = Form(""),
) -> Response:
    check_csrf(request, "login", csrf_token)
    portal = wangjian_app(request).settings.portal
    user_ok = hmac.compare_digest(username.encode(), portal.office_user.encode())
    password_ok = hmac.compare_digest(
        password.encode(), portal.office_password.get_secret_value().encode()
    )
    if not (user_ok and password_ok):
        return render(
            request,
            "office/login.html",
            {
                "error": "用户名或密码错误"
                if language_of(request) == "zh"
                else "wrong user or password"
            },
            status=401,
        )
    # A fresh session on sign-in, so a nonce planted before it cannot be reused (fixation).
    request.session.clear()
    request.session.update({"office": username, "nonce": secrets.token_hex(16)})
    return redirect(request, "/office/")


@router.post("/logout", name="office_logout")
def logout(request: Request, user: str = Depends(office_form)) -> Response:
    request.session.clear()
    return redirect(request, "/office/login")


@router.get("/", response_class=HTMLResponse, name="office_home")
def home(request: Request, user: str = Depends(office_user)) -> HTMLResponse:
    """All agencies with their referrals by status, overdue items and reports overdue."""
    app = wangjian_app(request)
    with app.sessions() as session:
        overview = queries.agencies_overview(session, today=today_of(request))
        held = len(queries.held_leads(session))
        extensions = len(queries.pending_extensions(session))
    return render(
        request,
        "office/home.html",
        {"user": user, "overview": overview, "held": held, "extensions": extensions},
    )


@router.get("/agencies/{code}", response_class=HTMLResponse, name="office_agency")
def agency_page(
    request: Request,
    code: str,
    user: str = Depends(office_user),
    status: str = "",
    page: int = 1,
) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        party = session.get(Party, code)
        if party is None:
            raise PortalError(404, "未找到该单位", "no such agency")
        listing = queries.list_referrals(
            session, agency_code=code, today=today_of(request), status=status or None, page=page
        )
        obligations = queries.list_obligations(session, agency_code=code, today=today_of(request))
        portal = app.settings.portal
        link = portal_link(
            portal.base_url,
            portal.secret_key.get_secret_value(),
            party=party.code,
            version=party.token_version,
        )
    return render(
        request,
        "office/agency.html",
        {
            "user": user,
            "party": party,
            "listing": listing,
            "obligations": obligations,
            "link": link,
            "filters": {"status": status},
        },
    )


@router.post("/agencies/{code}/revoke", name="office_revoke")
def revoke(request: Request, code: str, user: str = Depends(office_form)) -> Response:
    app = wangjian_app(request)
    try:
        with transaction(app.sessions) as session:
            office.revoke_links(
                session=session,
                party_code=code,
                actor=f"office:{user}",
                at=now_of(request),
                origin=client_origin(request),
            )
    except Refused as refused:
        raise PortalError(404, refused.zh, refused.en) from None
    return redirect(request, f"/office/agencies/{code}", done="revoked")


@router.get("/referrals/{referral_id}", response_class=HTMLResponse, name="office_referral")
def referral_page(
    request: Request, referral_id: int, user: str = Depends(office_user)
) -> HTMLResponse:
    return _referral_page(request, user, referral_id)


def _referral_page(
    request: Request, user: str, referral_id: int, *, error: Refused | None = None
) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        try:
            detail = queries.referral_detail(
                session, app, referral_id=referral_id, agency_code=None
            )
        except NotFound as missing:
            raise PortalError(404, missing.zh, missing.en) from None
        return render(
            request,
            "office/referral.html",
            {
                "user": user,
                "d": detail,
                "parties": queries.party_choices(session),
                "error": error.in_language(language_of(request)) if error else None,
            },
            status=400 if error else 200,
        )


@router.post("/referrals/{referral_id}/reassign", name="office_reassign")
def reassign(
    request: Request,
    referral_id: int,
    user: str = Depends(office_form),
    agency: str = Form(""),
    reason: str = Form(""),
) -> Response:
    app = wangjian_app(request)
    try:
        with transaction(app.sessions) as session:
            new = office.reassign_referral(
                session=session,
                app=app,
                referral_id=referral_id,
                agency_code=agency,
                reason=reason,
                actor=f"office:{user}",
                at=now_of(request),
                origin=client_origin(request),
            )
            new_id = new.id
    except NotFound as missing:
        raise PortalError(404, missing.zh, missing.en) from None
    except Refused as refused:
        return _referral_page(request, user, referral_id, error=refused)
    return redirect(request, f"/office/referrals/{new_id}", done="reassigned")


@router.get("/reassign", response_class=HTMLResponse, name="office_reassign_queue")
def reassign_queue(request: Request, user: str = Depends(office_user)) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        listing = queries.reassign_queue(session, today=today_of(request))
    return render(request, "office/reassign.html", {"user": user, "listing": listing})


@router.get("/leads", response_class=HTMLResponse, name="office_leads")
def leads_page(request: Request, user: str = Depends(office_user)) -> HTMLResponse:
    return _leads_page(request, user)


def _leads_page(request: Request, user: str, *, error: Refused | None = None) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        leads = queries.held_leads(session)
        parties = queries.party_choices(session)
    return render(
        request,
        "office/leads.html",
        {
            "user": user,
            "leads": leads,
            "parties": parties,
            "categories": list(app.config.categories.values()),
            "owners": app.config.category_owner,
            "error": error.in_language(language_of(request)) if error else None,
        },
        status=400 if error else 200,
    )


@router.post("/leads/{lead_id}/route", name="office_route_lead")
def route_lead(
    request: Request,
    lead_id: int,
    user: str = Depends(office_form),
    category: str = Form(""),
    agency: str = Form(""),
) -> Response:
    app = wangjian_app(request)
    try:
        with transaction(app.sessions) as session:
            office.route_held_lead(
                session=session,
                app=app,
                lead_id=lead_id,
                category=category,
                agency_code=agency or None,
                actor=f"office:{user}",
                at=now_of(request),
                origin=client_origin(request),
            )
    except NotFound as missing:
        raise PortalError(404, missing.zh, missing.en) from None
    except Refused as refused:
        return _leads_page(request, user, error=refused)
    return redirect(request, "/office/leads", done="routed")


@router.get("/extensions", response_class=HTMLResponse, name="office_extensions")
def extensions_page(request: Request, user: str = Depends(office_user)) -> HTMLResponse:
    return _extensions_page(request, user)


def _extensions_page(request: Request, user: str, *, error: Refused | None = None) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        rows = queries.pending_extensions(session)
    return render(
        request,
        "office/extensions.html",
        {
            "user": user,
            "rows": rows,
            "error": error.in_language(language_of(request)) if error else None,
        },
        status=400 if error else 200,
    )


@router.post("/extensions/{extension_id}/decide", name="office_decide_extension")
def decide_extension(
    request: Request,
    extension_id: int,
    user: str = Depends(office_form),
    decision: str = Form(""),
    note: str = Form(""),
) -> Response:
    if decision not in ("approve", "refuse"):
        return _extensions_page(
            request, user, error=Refused("请选择同意或不同意", "choose approve or refuse")
        )
    app = wangjian_app(request)
    try:
        with transaction(app.sessions) as session:
            office.decide_extension(
                session=session,
                app=app,
                extension_id=extension_id,
                approve=decision == "approve",
                actor=f"office:{user}",
                at=now_of(request),
                note=note,
            )
    except NotFound as missing:
        raise PortalError(404, missing.zh, missing.en) from None
    except Refused as refused:
        return _extensions_page(request, user, error=refused)
    return redirect(request, "/office/extensions", done="decided")


@router.get("/reports", response_class=HTMLResponse, name="office_reports")
def reports_board(request: Request, user: str = Depends(office_user)) -> HTMLResponse:
    """Members' report status board: each member against each report owed."""
    app = wangjian_app(request)
    with app.sessions() as session:
        columns, rows = queries.report_board(session, today=today_of(request), tz=app.tz)
    return render(request, "office/reports.html", {"user": user, "columns": columns, "rows": rows})


@router.get("/reports/{obligation_id}", response_class=HTMLResponse, name="office_report")
def report_page(
    request: Request, obligation_id: int, user: str = Depends(office_user)
) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        try:
            row = queries.obligation_detail(
                session, obligation_id=obligation_id, agency_code=None, today=today_of(request)
            )
        except NotFound as missing:
            raise PortalError(404, missing.zh, missing.en) from None
        cases = {s.id: queries.typical_cases_of(session, s.id) for s in row.submissions}
        party = session.get(Party, row.obligation.agency_code)
    return render(
        request,
        "office/report.html",
        {"user": user, "row": row, "cases": cases, "party": party},
    )


@router.get("/files/{submission_id}/{index}", name="office_file")
def download(
    request: Request, submission_id: int, index: int, user: str = Depends(office_user)
) -> FileResponse:
    return send_submission_file(request, submission_id, index, agency_code=None)
