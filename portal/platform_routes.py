"""Platform pages, reached from the links in assistance requests and digests (`/a/<token>/…`):
a platform sees only its own requests, answers them with its data file or "no such operator",
and sees the shared list of removed operators it was sent."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from agencies.errors import Refused
from portal.i18n import language_of
from portal.security import (
    AgencyAccess,
    PortalError,
    agency_access,
    agency_form,
    client_origin,
    wangjian_app,
)
from portal.uploads import DATA_FILES, remove_stored, store_upload
from portal.web import now_of, redirect, render
from wangjian.ledger.assist import (
    ANSWERED,
    ASKED,
    NO_SUCH_OPERATOR,
    STATUS,
    AnswerFile,
    AssistNotFound,
    AssistRefused,
    answer_assistance,
    assist_detail,
    list_assist_requests,
)
from wangjian.ledger.db import transaction
from wangjian.ledger.listed import listings_told_to
from wangjian.ledger.models import AssistRequest

router = APIRouter(prefix="/a/{token}")


def requests_page(request: Request, access: AgencyAccess, status: str = "") -> HTMLResponse:
    """A platform's assistance requests, open and overdue first (its home page)."""
    app = wangjian_app(request)
    with app.sessions() as session:
        rows = list_assist_requests(
            session,
            app,
            now=now_of(request),
            platform_code=access.code,
            status=status if status in (*STATUS, "overdue") else None,
        )
    return render(
        request,
        "platform/assists.html",
        {"access": access, "rows": rows, "status": status, "STATUS": STATUS, "ASKED": ASKED},
    )


@router.get("/assists", response_class=HTMLResponse, name="platform_assists")
def assists_page(
    request: Request, access: AgencyAccess = Depends(agency_access), status: str = ""
) -> HTMLResponse:
    return requests_page(request, access, status)


@router.get("/assists/{assist_id}", response_class=HTMLResponse, name="platform_assist")
def assist_page(
    request: Request, assist_id: int, access: AgencyAccess = Depends(agency_access)
) -> HTMLResponse:
    return _assist_page(request, access, assist_id)


def _assist_page(
    request: Request,
    access: AgencyAccess,
    assist_id: int,
    *,
    error: AssistRefused | Refused | None = None,
) -> HTMLResponse:
    app = wangjian_app(request)
    with app.sessions() as session:
        try:
            detail = assist_detail(
                session, app, assist_id=assist_id, platform_code=access.code, now=now_of(request)
            )
        except AssistNotFound as missing:
            raise PortalError(404, missing.zh, missing.en) from None
    return render(
        request,
        "platform/assist.html",
        {
            "access": access,
            "a": detail,
            "STATUS": STATUS,
            "ASKED": ASKED,
            "max_mb": app.settings.portal.max_upload_mb,
            "error": error.in_language(language_of(request)) if error else None,
        },
        status=400 if error else 200,
    )


@router.post("/assists/{assist_id}/answer", name="platform_answer")
async def answer(
    request: Request, assist_id: int, access: AgencyAccess = Depends(agency_form)
) -> Response:
    form = await request.form()
    return await run_in_threadpool(_answer, request, access, assist_id, form)


def _answer(request: Request, access: AgencyAccess, assist_id: int, form: FormData) -> Response:
    app = wangjian_app(request)
    at = now_of(request)
    # Another platform's request must cost no disk at all: refuse before storing anything.
    with app.sessions() as session:
        owner = session.scalar(
            select(AssistRequest.platform_code).where(AssistRequest.id == assist_id)
        )
    if owner != access.code:
        raise PortalError(404, f"未找到协查请求{assist_id}", f"no assistance request {assist_id}")
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
        note = form.get("note")
        with transaction(app.sessions) as session:
            answer_assistance(
                session=session,
                app=app,
                assist_id=assist_id,
                platform_code=access.code,
                outcome=outcome,
                file=AnswerFile(kept.path, kept.name, kept.sha256, kept.size) if kept else None,
                note=note if isinstance(note, str) else None,
                actor=f"platform:{access.code}",
                at=at,
                origin=client_origin(request),
            )
    except AssistNotFound as missing:
        raise PortalError(404, missing.zh, missing.en) from None
    except (AssistRefused, Refused) as refused:
        if kept is not None:
            remove_stored(app.settings.portal, [kept])
        return _assist_page(request, access, assist_id, error=refused)
    return redirect(request, f"/a/{access.token}/assists/{assist_id}", done="assist_answered")


@router.get("/listed", response_class=HTMLResponse, name="platform_listed")
def listed_page(request: Request, access: AgencyAccess = Depends(agency_access)) -> HTMLResponse:
    """The shared list of removed operators as sent to this platform, and where each stands."""
    app = wangjian_app(request)
    with app.sessions() as session:
        rows = listings_told_to(session, app, platform_code=access.code)
    return render(request, "platform/listed.html", {"access": access, "rows": rows})
