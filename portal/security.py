"""Who may see what: agency links, the office's sign-in, CSRF tokens, request size, headers.

- An agency is whoever holds a valid link token (`/a/<token>/…`): signed, unexpired, and of the
  party's current `token_version`. Every page and action then filters on that party's code.
- The office signs in with its own credential; the signed session cookie says so. Agency tokens
  are never looked at by office routes.
- Every form carries a CSRF token: an HMAC of a random per-session nonce and the form's scope.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import logging
import re
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Depends, Form, Request
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from wangjian.access import TokenRejected, read_link_token
from wangjian.bootstrap import App
from wangjian.ledger.models import Party

SESSION_COOKIE = "wangjian_portal"
MAX_FILES_PER_FORM = 16
FORM_LIMIT = 256 * 1024


class PortalError(Exception):
    """A refusal shown as an error page (in the visitor's language)."""

    def __init__(self, status: int, zh: str, en: str) -> None:
        super().__init__(en)
        self.status, self.zh, self.en = status, zh, en


class SignInRequired(Exception):
    """An office page asked for without the office's session: go to the sign-in page."""


@dataclass(frozen=True)
class AgencyAccess:
    code: str
    name_zh: str
    name_en: str
    kind: str
    token: str

    @property
    def actor(self) -> str:
        return f"agency:{self.code}"

    @property
    def csrf_scope(self) -> str:
        return f"agency:{self.code}"


def wangjian_app(request: Request) -> App:
    return request.app.state.wangjian  # type: ignore[no-any-return]


def agency_access(request: Request, token: str) -> AgencyAccess:
    """The party a link token names, if the token is genuine, unexpired and not revoked."""
    app = wangjian_app(request)
    portal = app.settings.portal
    try:
        claims = read_link_token(
            portal.secret_key.get_secret_value(), token, max_age_seconds=portal.token_days * 86400
        )
    except TokenRejected as rejected:
        if rejected.reason == "expired":
            raise PortalError(
                403,
                "链接已过期,请使用最近一封通知邮件中的链接,或联系联席会议办公室。",
                "This link has expired: use the link in your latest notice, or ask the office.",
            ) from None
        raise _invalid_link() from None
    with app.sessions() as session:
        party = session.get(Party, claims.party)
        if party is None or not party.active or party.token_version != claims.version:
            raise _invalid_link()
        return AgencyAccess(party.code, party.name_zh, party.name_en, party.kind, token)


def _invalid_link() -> PortalError:
    return PortalError(
        403,
        "链接无效或已作废,请使用最近一封通知邮件中的链接,或联系联席会议办公室。",
        "This link is not valid or has been revoked: use the link in your latest notice.",
    )


def office_user(request: Request) -> str:
    """The signed-in office user; office pages accept nothing else (no agency token)."""
    user = request.session.get("office")
    if not isinstance(user, str) or not user:
        raise SignInRequired()
    return user


def csrf_token(request: Request, scope: str) -> str:
    """The token a form of `scope` must send back (creates the session nonce on first use)."""
    nonce = request.session.get("nonce")
    if not isinstance(nonce, str):
        nonce = secrets.token_hex(16)
        request.session["nonce"] = nonce
    return _csrf_digest(wangjian_app(request), nonce, scope)


def check_csrf(request: Request, scope: str, supplied: str) -> None:
    nonce = request.session.get("nonce")
    expected = _csrf_digest(wangjian_app(request), nonce, scope) if isinstance(nonce, str) else ""
    if not expected or not hmac.compare_digest(expected, supplied or ""):
        raise PortalError(
            403,
            "表单已失效(安全校验未通过),请刷新页面后重新提交。",
            "The form has expired (security check failed): reload the page and submit again.",
        )


def _csrf_digest(app: App, nonce: str, scope: str) -> str:
    key = session_secret(app) + "|csrf"
    return hmac.new(key.encode(), f"{scope}|{nonce}".encode(), hashlib.sha256).hexdigest()


def session_secret(app: App) -> str:
    """The session cookie's key, derived from the portal secret (never the link key itself)."""
    secret = app.settings.portal.secret_key.get_secret_value()
    return hmac.new(secret.encode(), b"wangjian.portal.session", hashlib.sha256).hexdigest()


def agency_form(
    request: Request,
    access: AgencyAccess = Depends(agency_access),
    csrf_token: str = Form(""),
) -> AgencyAccess:
    """An agency's POST: a valid link and a valid CSRF token."""
    check_csrf(request, access.csrf_scope, csrf_token)
    return access


def office_form(
    request: Request, user: str = Depends(office_user), csrf_token: str = Form("")
) -> str:
    """An office POST: the office's session and a valid CSRF token."""
    check_csrf(request, "office", csrf_token)
    return user


def client_origin(request: Request) -> str:
    """Where a change came from, for the event trail."""
    host = request.client.host if request.client else "unknown"
    return f"portal {host}"


# --- ASGI middleware -----------------------------------------------------------------------------


class BodyLimit:
    """Refuse request bodies above the limit while they stream in, not after they are stored."""

    def __init__(self, app: ASGIApp, *, max_upload_mb: int) -> None:
        self.app = app
        self.multipart_limit = max_upload_mb * 1024 * 1024 * MAX_FILES_PER_FORM + 1024 * 1024

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        limit = self.multipart_limit if content_type.startswith("multipart/") else FORM_LIMIT
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_plain(send, 413, _too_large(limit).detail)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _too_large(limit)
            return message

        await self.app(scope, limited, send)


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"request larger than {limit // (1024 * 1024) or 1} MB")


async def _send_plain(send: Send, status: int, text: str) -> None:
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"text/plain; charset=utf-8"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})


SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
        b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    # Agency links carry their token in the path: never leak it to a site a page links to.
    (b"referrer-policy", b"no-referrer"),
]


class SecurityHeaders:
    """No scripts, no framing, no referrer, no caching of pages that show a case."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                headers += SECURITY_HEADERS
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


class RedactLinkTokens(logging.Filter):
    """Access logs must not hold agencies' link tokens: `/a/<token>/…` is logged as `/a/…/…`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN_IN_PATH.sub("/a/…/", a) if isinstance(a, str) else a for a in record.args
            )
        return True


_TOKEN_IN_PATH = re.compile(r"/a/[^/?\s]+/")


def access_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with the token filter on its access log."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_link_tokens"] = {"()": RedactLinkTokens}
    config["handlers"]["access"]["filters"] = ["redact_link_tokens"]
    return config
