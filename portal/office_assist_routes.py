"""Office pages for assistance requests to platforms (协查): all requests, a new request from a
referral or a lead, one request with the answer the office records for a platform, its file."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from agencies.errors import Refused
from portal.i18n import language_of
from portal.security import PortalError, client_origin, office_form, office_user, wangjian_app
from portal.uploads import DATA_FILES, MEDIA_TYPES, remove_stored, resolve_stored, store_upload
from portal.web import now_of, redirect, render
from wangjian.bootstrap import App
from wangjian.ledger.assist import (
    ANSWERED,
    ASKED,
    NO_SUCH_OPERATOR,
    STATUS,
    AlreadyRequested,
    AnswerFile,
    AssistNotFound,
    AssistRefused,
    answer_assistance,
    assist_counts,
    assist_detail,
    list_assist_requests,
    request_assistance,
)
from wangjian.ledger.db import transaction
from wangjian.ledger.listed import platform_names
from wangjian.ledger.models import AssistRequest, Lead, Referral

router = APIRouter(prefix="/office")


@router.get("/assists", response_class=HTMLResponse, name="office_assists")
def assists_page(
    request: Request, user: str = Depends(office_user), status: str = "", platform: str = ""
) -> HTMLResponse:
    """Every request, open and overdue first, filterable by status and platform."""
    app = wangjian_app(request)
    now = now_of(request)
    with app.sessions() as session:
        rows = list_assist_requests(
            session,
            app,
            now=now,
            platform_code=platform or None,
            status=status if status in (*STATUS, "overdue") else None,
        )
        counts = assist_counts(session, now=now)
    return render(
        request,
        "office/assists.html",
        {
            "user": user,
            "rows": rows,
            "counts": counts,
            "filters": {"status": status, "platform": platform},
            "platforms": list(app.config.platforms.values()),
            "STATUS": STATUS,
        },
    )


@router.get("/assists/new", response_class=HTMLResponse, name="office_assist_new")
def new_page(
    request: Request,
    user: str = Depends(office_user),
    referral_id: int | None = None,
    lead_id: int | None = None,
) -> HTMLResponse:
    return _new_page(request, user, referral_id=referral_id, lead_id=lead_id)


def _new_page(
    request: Request,
    user: str,
    *,
    referral_id: int | None,
    lead_id: int | None,
    error: AssistRefused | None = None,
) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        referral = session.get(Referral, referral_id) if referral_id else None
        lead_of = referral.lead_id if referral else lead_id
        lead = session.get(Lead, lead_of) if lead_of else None
    return render(
        request,
        "office/assist_new.html",
        {
            "user": user,
            "referral": referral,
            "lead": lead,
            "platforms": list(app.config.platforms.values()),
            "suggested": _platform_of(app, lead),
            "ASKED": ASKED,
            "basis": app.config.platforms_file.assist_basis,
            "error": error.in_language(language_of(request)) if error else None,
        },
        status=400 if error else 200,
    )


def _platform_of(app: App, lead: Lead | None) -> str | None:
    """The configured platform a lead names, to preselect it."""
    if lead is None or not lead.platform:
        return None
    key = platform_names(app).key(lead.platform)
    return key if key in app.config.platforms else None


@router.post("/assists", name="office_assist_create")
async def create(request: Request, user: str = Depends(office_form)) -> Response:
    form = await request.form()
    app = wangjian_app(request)
    referral_id = _int(form.get("referral_id"))
    lead_id = None if referral_id else _int(form.get("lead_id"))
    try:
        with transaction(app.sessions) as session:
            made = request_assistance(
                session=session,
                app=app,
                platform_code=str(form.get("platform") or ""),
                referral_id=referral_id,
                lead_id=lead_id,
                asked=[str(v) for v in form.getlist("asked")],
                detail=_text(form, "detail"),
                legal_basis=_text(form, "legal_basis"),
                actor=f"office:{user}",
                at=now_of(request),
                origin=client_origin(request),
            )
            made_id = made.id
    except AlreadyRequested as again:
        return redirect(request, f"/office/assists/{again.existing}", done="assist_exists")
    except AssistRefused as refused:
        return _new_page(request, user, referral_id=referral_id, lead_id=lead_id, error=refused)
    return redirect(request, f"/office/assists/{made_id}", done="assist_requested")


@router.get("/assists/{assist_id}", response_class=HTMLResponse, name="office_assist")
def assist_page(request: Request, assist_id: int, user: str = Depends(office_user)) -> HTMLResponse:
    return _assist_page(request, user, assist_id)


def _assist_page(
    request: Request,
    user: str,
    assist_id: int,
    *,
    error: AssistRefused | Refused | None = None,
) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        try:
            detail = assist_detail(
                session, app, assist_id=assist_id, platform_code=None, now=now_of(request)
            )
        except AssistNotFound as missing:
            raise PortalError(404, missing.zh, missing.en) from None
    return render(
        request,
        "office/assist.html",
        {
            "user": user,
            "a": detail,
            "STATUS": STATUS,
            "ASKED": ASKED,
            "error": error.in_language(language_of(request)) if error else None,
        },
        status=400 if error else 200,
    )


@router.post("/assists/{assist_id}/answer", name="office_assist_answer")
async def record_answer(
    request: Request, assist_id: int, user: str = Depends(office_form)
) -> Response:
    form = await request.form()
    return await run_in_threadpool(_record, request, user, assist_id, form)


def _record(request: Request, user: str, assist_id: int, form: FormData) -> Response:
    app = wangjian_app(request)
    at = now_of(request)
    with app.sessions() as session:
        if session.get(AssistRequest, assist_id) is None:
            raise PortalError(
                404, f"未找到协查请求{assist_id}", f"no assistance request {assist_id}"
            )
    outcome = NO_SUCH_OPERATOR if form.get("answer") == "none" else ANSWERED
    upload = form.get("data_file")
    kept = None
    try:
        if isinstance(upload, UploadFile) and upload.filename and outcome == ANSWERED:
            kept = store_upload(
                settings=app.settings.portal,
                filename=upload.filename,
                stream=upload.file,
                role="assist_answer",
                allowed=DATA_FILES,
                at=at,
            )
        with transaction(app.sessions) as session:
            answer_assistance(
                session=session,
                app=app,
                assist_id=assist_id,
                platform_code=None,
                outcome=outcome,
                file=AnswerFile(kept.path, kept.name, kept.sha256, kept.size) if kept else None,
                note=_text(form, "note"),
                actor=f"office:{user}",
                at=at,
                origin=client_origin(request),
            )
    except (AssistRefused, Refused) as refused:
        if kept is not None:
            remove_stored(app.settings.portal, [kept])
        return _assist_page(request, user, assist_id, error=refused)
    return redirect(request, f"/office/assists/{assist_id}", done="assist_recorded")


@router.get("/assists/{assist_id}/file", name="office_assist_file")
def download(request: Request, assist_id: int, user: str = Depends(office_user)) -> FileResponse:
    """The data file a platform sent, as an attachment, to the office only."""
    app = wangjian_app(request)
    with app.sessions() as session:
        found = session.get(AssistRequest, assist_id)
        stored, name = (found.answer_file, found.answer_file_name) if found else (None, None)
    path = resolve_stored(app.settings.portal, stored) if stored else None
    if path is None:
        raise PortalError(404, "未找到该文件", "no such file")
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix.lstrip(".").lower(), "application/octet-stream"),
        filename=name or path.name,
        content_disposition_type="attachment",
    )


def _int(value: object) -> int | None:
    return int(value) if isinstance(value, str) and value.strip().isdigit() else None


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value.strip() or None if isinstance(value, str) else None
