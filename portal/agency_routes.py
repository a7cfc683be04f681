"""Agency pages, reached from the links in notices (`/a/<token>/…`): each sees only its own items."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from agencies import answers, queries
from agencies.errors import NotFound, Refused
from agencies.feedback import parse_day
from portal.i18n import language_of
from portal.security import (
    AgencyAccess,
    PortalError,
    agency_access,
    agency_form,
    client_origin,
    wangjian_app,
)
from portal.uploads import (
    DOCUMENTS,
    MEDIA_TYPES,
    SPREADSHEETS,
    remove_stored,
    resolve_stored,
    store_upload,
)
from portal.web import now_of, redirect, render, today_of
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Obligation

router = APIRouter(prefix="/a/{token}")


@router.get("/", response_class=HTMLResponse, name="agency_referrals")
def referrals_page(
    request: Request,
    access: AgencyAccess = Depends(agency_access),
    status: str = "",
    due_from: str = "",
    due_to: str = "",
    page: int = 1,
) -> HTMLResponse:
    """The agency's referrals, overdue first, filterable by status and due date (a platform's
    link opens its assistance requests instead)."""
    if access.kind == "platform":
        from portal.platform_routes import requests_page

        return requests_page(request, access, status)
    app = wangjian_app(request)
    filters = {"status": status, "due_from": due_from, "due_to": due_to}
    with app.sessions() as session:
        listing = queries.list_referrals(
            session,
            agency_code=access.code,
            today=today_of(request),
            status=status or None,
            due_from=parse_day(due_from) if due_from else None,
            due_to=parse_day(due_to) if due_to else None,
            page=page,
        )
        obligations = queries.list_obligations(
            session, agency_code=access.code, today=today_of(request)
        )
    return render(
        request,
        "agency/referrals.html",
        {"access": access, "listing": listing, "filters": filters, "obligations": obligations},
    )


@router.get("/referrals/{referral_id}", response_class=HTMLResponse, name="agency_referral")
def referral_page(
    request: Request, referral_id: int, access: AgencyAccess = Depends(agency_access)
) -> HTMLResponse:
    return _referral_page(request, access, referral_id)


def _referral_page(
    request: Request,
    access: AgencyAccess,
    referral_id: int,
    *,
    error: Refused | None = None,
) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        try:
            detail = queries.referral_detail(
                session, app, referral_id=referral_id, agency_code=access.code
            )
        except NotFound as missing:
            raise PortalError(404, missing.zh, missing.en) from None
        return render(
            request,
            "agency/referral.html",
            {
                "access": access,
                "d": detail,
                "error": error.in_language(language_of(request)) if error else None,
            },
            status=400 if error else 200,
        )


@router.post("/referrals/{referral_id}/acknowledge", name="agency_acknowledge")
def acknowledge(
    request: Request, referral_id: int, access: AgencyAccess = Depends(agency_form)
) -> Response:
    return _answer(request, access, referral_id, "acknowledged", answers.acknowledge_referral, {})


@router.post("/referrals/{referral_id}/outcome", name="agency_outcome")
def outcome(
    request: Request,
    referral_id: int,
    access: AgencyAccess = Depends(agency_form),
    outcome: str = Form(""),
    case_number: str = Form(""),
    decided_on: str = Form(""),
    note: str = Form(""),
) -> Response:
    day = parse_day(decided_on) if decided_on else None
    if decided_on and day is None:
        return _referral_page(
            request,
            access,
            referral_id,
            error=Refused(
                "决定日期格式应为2021-11-03", "the decision date must be like 2021-11-03"
            ),
        )
    return _answer(
        request,
        access,
        referral_id,
        "outcome",
        answers.report_outcome,
        {"outcome": outcome, "case_number": case_number, "decided_on": day, "note": note},
    )


@router.post("/referrals/{referral_id}/return", name="agency_return")
def return_(
    request: Request,
    referral_id: int,
    access: AgencyAccess = Depends(agency_form),
    reason: str = Form(""),
) -> Response:
    return _answer(
        request, access, referral_id, "returned", answers.return_referral, {"reason": reason}
    )


@router.post("/referrals/{referral_id}/extension", name="agency_extension")
def extension(
    request: Request,
    referral_id: int,
    access: AgencyAccess = Depends(agency_form),
    days: str = Form(""),
    reason: str = Form(""),
) -> Response:
    count = int(days) if days.strip().isdigit() else 0
    return _answer(
        request,
        access,
        referral_id,
        "extension",
        answers.request_extension,
        {"days": count, "reason": reason},
    )


def _answer(
    request: Request,
    access: AgencyAccess,
    referral_id: int,
    done: str,
    service: Any,
    values: dict[str, Any],
) -> Response:
    app = wangjian_app(request)
    try:
        with transaction(app.sessions) as session:
            service(
                session=session,
                app=app,
                referral_id=referral_id,
                agency_code=access.code,
                actor=access.actor,
                at=now_of(request),
                origin=client_origin(request),
                **values,
            )
    except NotFound as missing:
        raise PortalError(404, missing.zh, missing.en) from None
    except Refused as refused:
        return _referral_page(request, access, referral_id, error=refused)
    return redirect(request, f"/a/{access.token}/referrals/{referral_id}", done=done)


# --- reports -----------------------------------------------------------------------------------


@router.get("/reports", response_class=HTMLResponse, name="agency_reports")
def reports_page(request: Request, access: AgencyAccess = Depends(agency_access)) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        rows = queries.list_obligations(session, agency_code=access.code, today=today_of(request))
    return render(request, "agency/reports.html", {"access": access, "rows": rows})


@router.get("/reports/{obligation_id}", response_class=HTMLResponse, name="agency_report")
def report_page(
    request: Request, obligation_id: int, access: AgencyAccess = Depends(agency_access)
) -> HTMLResponse:
    return _report_page(request, access, obligation_id)


def _report_page(
    request: Request, access: AgencyAccess, obligation_id: int, *, error: Refused | None = None
) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        try:
            row = queries.obligation_detail(
                session,
                obligation_id=obligation_id,
                agency_code=access.code,
                today=today_of(request),
            )
        except NotFound as missing:
            raise PortalError(404, missing.zh, missing.en) from None
        rules = (
            answers.package_rules(app, row.obligation)
            if row.obligation.kind in answers.PACKAGE_KINDS
            else None
        )
        cases = {s.id: queries.typical_cases_of(session, s.id) for s in row.submissions}
    return render(
        request,
        "agency/report.html",
        {
            "access": access,
            "row": row,
            "rules": rules,
            "cases": cases,
            "case_slots": max(rules.min_typical_cases + 2, 3) if rules else 0,
            "max_mb": app.settings.portal.max_upload_mb,
            "error": error.in_language(language_of(request)) if error else None,
        },
        status=400 if error else 200,
    )


@router.post("/reports/{obligation_id}/monthly", name="agency_submit_monthly")
async def submit_monthly(
    request: Request, obligation_id: int, access: AgencyAccess = Depends(agency_form)
) -> Response:
    form = await request.form()
    return await run_in_threadpool(_submit_monthly, request, access, obligation_id, form)


def _submit_monthly(
    request: Request, access: AgencyAccess, obligation_id: int, form: FormData
) -> Response:
    app = wangjian_app(request)
    at = now_of(request)
    _check_owner(request, access, obligation_id)
    stored: list[answers.StoredFile] = []
    try:
        for upload in _files(form, "attachments"):
            kept = store_upload(
                settings=app.settings.portal,
                filename=upload.filename,
                stream=upload.file,
                role="attachment",
                allowed=DOCUMENTS | SPREADSHEETS,
                at=at,
            )
            if kept:
                stored.append(kept)
        with transaction(app.sessions) as session:
            answers.submit_monthly_report(
                session=session,
                app=app,
                obligation_id=obligation_id,
                agency_code=access.code,
                text=_text(form, "text"),
                attachments=stored,
                actor=access.actor,
                at=at,
                origin=client_origin(request),
            )
    except Refused as refused:
        remove_stored(app.settings.portal, stored)
        if isinstance(refused, NotFound):
            raise PortalError(404, refused.zh, refused.en) from None
        return _report_page(request, access, obligation_id, error=refused)
    return redirect(request, f"/a/{access.token}/reports/{obligation_id}", done="submitted")


@router.post("/reports/{obligation_id}/package", name="agency_submit_package")
async def submit_package(
    request: Request, obligation_id: int, access: AgencyAccess = Depends(agency_form)
) -> Response:
    form = await request.form()
    return await run_in_threadpool(_submit_package, request, access, obligation_id, form)


def _submit_package(
    request: Request, access: AgencyAccess, obligation_id: int, form: FormData
) -> Response:
    app = wangjian_app(request)
    at = now_of(request)
    settings = app.settings.portal
    _check_owner(request, access, obligation_id)
    stored: list[answers.StoredFile] = []

    def keep(
        upload: UploadFile | None, role: str, allowed: frozenset[str]
    ) -> answers.StoredFile | None:
        if upload is None:
            return None
        kept = store_upload(
            settings=settings,
            filename=upload.filename,
            stream=upload.file,
            role=role,
            allowed=allowed,
            at=at,
        )
        if kept:
            stored.append(kept)
        return kept

    try:
        summary = keep(_file(form, "summary_report"), "summary_report", DOCUMENTS)
        table = keep(_file(form, "statistics_table"), "statistics_table", SPREADSHEETS)
        joint = [
            f
            for f in (
                keep(u, "joint_enforcement", DOCUMENTS) for u in _files(form, "joint_enforcement")
            )
            if f
        ]
        cases = []
        for i in range(50):
            title = _text(form, f"case_title_{i}")
            decision = keep(_file(form, f"case_decision_{i}"), "penalty_decision", DOCUMENTS)
            if not title and decision is None:
                continue
            referral = _text(form, f"case_referral_{i}")
            cases.append(
                answers.TypicalCaseInput(
                    title=title or "",
                    case_number=_text(form, f"case_number_{i}"),
                    referral_id=int(referral) if referral and referral.isdigit() else None,
                    penalty_decision=decision,
                )
            )
        with transaction(app.sessions) as session:
            submission = answers.submit_summary_package(
                session=session,
                app=app,
                obligation_id=obligation_id,
                agency_code=access.code,
                summary_report=summary,
                statistics_table=table,
                typical_cases=cases,
                joint_enforcement=joint,
                text=_text(form, "text"),
                actor=access.actor,
                at=at,
                origin=client_origin(request),
            )
            complete = submission.complete
    except Refused as refused:
        remove_stored(settings, stored)
        if isinstance(refused, NotFound):
            raise PortalError(404, refused.zh, refused.en) from None
        return _report_page(request, access, obligation_id, error=refused)
    return redirect(
        request,
        f"/a/{access.token}/reports/{obligation_id}",
        done="submitted" if complete else "incomplete",
    )


@router.get("/files/{submission_id}/{index}", name="agency_file")
def download(
    request: Request,
    submission_id: int,
    index: int,
    access: AgencyAccess = Depends(agency_access),
) -> FileResponse:
    return send_submission_file(request, submission_id, index, agency_code=access.code)


def send_submission_file(
    request: Request, submission_id: int, index: int, *, agency_code: str | None
) -> FileResponse:
    """A file of a submission, as an attachment, only to its agency or the office."""
    app = wangjian_app(request)
    with app.sessions() as session:
        try:
            submission = queries.submission_for(
                session, submission_id=submission_id, agency_code=agency_code
            )
        except NotFound as missing:
            raise PortalError(404, missing.zh, missing.en) from None
        files = list(submission.files or [])
    if not 0 <= index < len(files):
        raise PortalError(404, "未找到该文件", "no such file")
    entry = files[index]
    path = resolve_stored(app.settings.portal, str(entry.get("path", "")))
    if path is None:
        raise PortalError(404, "未找到该文件", "no such file")
    ext = path.suffix.lstrip(".").lower()
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(ext, "application/octet-stream"),
        filename=str(entry.get("name") or path.name),
        content_disposition_type="attachment",
    )


# --- helpers -----------------------------------------------------------------------------------


def _check_owner(request: Request, access: AgencyAccess, obligation_id: int) -> None:
    # Refuse before any upload is written: another agency's item must cost no disk at all.
    with wangjian_app(request).sessions() as session:
        owner = session.scalar(select(Obligation.agency_code).where(Obligation.id == obligation_id))
    if owner != access.code:
        raise PortalError(404, f"未找到报送事项{obligation_id}", f"no report item {obligation_id}")


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None


def _file(form: FormData, name: str) -> UploadFile | None:
    value = form.get(name)
    return value if isinstance(value, UploadFile) and value.filename else None


def _files(form: FormData, name: str) -> list[UploadFile]:
    return [v for v in form.getlist(name) if isinstance(v, UploadFile) and v.filename]
