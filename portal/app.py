"""The portal's FastAPI application: `create_app(app)` for `wangjian serve`, tests and the demo."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.sessions import SessionMiddleware

from portal import agency_routes, office_assist_routes, office_routes, platform_routes
from portal.i18n import language_of, pick
from portal.security import (
    SESSION_COOKIE,
    BodyLimit,
    PortalError,
    SecurityHeaders,
    SignInRequired,
    session_secret,
)
from portal.web import build_environment, redirect, render
from wangjian.bootstrap import App

STATIC = Path(__file__).parent / "static"
OFFICE_SESSION_SECONDS = 8 * 3600

HTTP_MESSAGES = {
    404: ("未找到该页面", "page not found"),
    405: ("不支持该操作", "method not allowed"),
    413: ("提交的内容过大", "the upload is too large"),
}


def create_app(app: App, *, now: Callable[[], datetime] | None = None) -> FastAPI:
    """The portal for one campaign ledger; `now` lets the demo run it in simulated time."""
    portal = app.settings.portal
    web = FastAPI(
        title="网剑 Wangjian portal",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # no machine-readable map of the routes for strangers
    )
    web.state.wangjian = app
    web.state.now = now or (lambda: datetime.now(app.tz))
    web.state.templates = build_environment()
    web.include_router(agency_routes.router)
    web.include_router(platform_routes.router)
    web.include_router(office_routes.router)
    web.include_router(office_assist_routes.router)
    web.mount("/static", StaticFiles(directory=STATIC), name="static")

    @web.get("/", response_class=HTMLResponse, name="home")
    def home(request: Request) -> HTMLResponse:
        return render(request, "home.html", {})

    @web.get("/healthz", name="health")
    def health() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @web.exception_handler(PortalError)
    async def portal_error(request: Request, exc: PortalError) -> Response:
        return _error_page(request, exc.status, (exc.zh, exc.en))

    @web.exception_handler(SignInRequired)
    async def sign_in(request: Request, exc: SignInRequired) -> Response:
        return redirect(request, "/office/login")

    @web.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        message = HTTP_MESSAGES.get(exc.status_code, ("请求有误", "bad request"))
        return _error_page(request, exc.status_code, message)

    @web.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        # Never echo the submitted values back (the default JSON body does).
        return _error_page(request, 400, ("请求参数有误", "invalid request"))

    web.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(app),
        session_cookie=SESSION_COOKIE,
        max_age=OFFICE_SESSION_SECONDS,
        same_site="lax",
        https_only=portal.base_url.startswith("https://"),
    )
    web.add_middleware(BodyLimit, max_upload_mb=portal.max_upload_mb)
    web.add_middleware(SecurityHeaders)
    return web


def _error_page(request: Request, status: int, message: tuple[str, str]) -> Response:
    return render(
        request,
        "error.html",
        {"status": status, "message": pick(message, language_of(request))},
        status=status,
    )
