"""Rendering: one autoescaping Jinja2 environment, the visitor's language, dates in campaign time."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from agencies.answers import OUTCOMES
from portal import i18n
from portal.security import csrf_token, wangjian_app
from wangjian.bootstrap import App

TEMPLATES = Path(__file__).parent / "templates"


def build_environment() -> Environment:
    # Autoescape everything: every string from the ledger (summaries, notes, reasons) is user text.
    env = Environment(
        loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined
    )
    env.globals.update(OUTCOMES=OUTCOMES, i18n=i18n)
    return env


def now_of(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.app.state.now
    return clock()


def today_of(request: Request) -> date:
    return now_of(request).astimezone(wangjian_app(request).tz).date()


def root(request: Request) -> str:
    """The path the portal is mounted at ('' when it runs on its own)."""
    return str(request.scope.get("root_path", "")).rstrip("/")


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any],
    *,
    status: int = 200,
) -> HTMLResponse:
    app: App = wangjian_app(request)
    lang = i18n.language_of(request)
    env: Environment = request.app.state.templates

    def tr(zh: str, en: str) -> str:
        return en if lang == "en" else zh

    def label(table: dict[str, tuple[str, str]], code: str | None) -> str:
        return i18n.pick(table.get(code or ""), lang, code or "—")

    def local(value: datetime | None) -> str:
        return value.astimezone(app.tz).strftime("%Y-%m-%d %H:%M") if value else "—"

    def lang_url(target: str) -> str:
        query = dict(request.query_params)
        query["lang"] = target
        return f"{root(request)}{request.url.path}?{urlencode(query)}"

    def category_name(code: str | None) -> str:
        category = app.config.categories.get(code or "")
        if category is None:
            return code or "—"
        return category.name_en if lang == "en" else category.name_zh

    def safe_href(url: str | None) -> str | None:
        # Autoescaping does not stop `javascript:` links: only plain web addresses become links.
        if not url:
            return None
        return url if urlsplit(url.strip()).scheme.lower() in ("http", "https") else None

    values = {
        "request": request,
        "lang": lang,
        "tr": tr,
        "label": label,
        "local": local,
        "lang_url": lang_url,
        "safe_href": safe_href,
        "category_name": category_name,
        "csrf": lambda scope: csrf_token(request, scope),
        "root": root(request),
        "campaign": app.config.campaign,
        "today": today_of(request),
        "done": i18n.pick(i18n.DONE.get(request.query_params.get("done", "")), lang) or None,
        "error": None,
        **context,
    }
    html = env.get_template(template).render(values)
    response = HTMLResponse(html, status_code=status)
    asked = request.query_params.get("lang")
    if asked in i18n.LANGS:
        response.set_cookie(i18n.COOKIE, asked, max_age=365 * 86400, samesite="lax", httponly=True)
    return response


def redirect(request: Request, path: str, **query: str) -> RedirectResponse:
    """Post/redirect/get to a page of this portal (a path, never a full address)."""
    suffix = f"?{urlencode(query)}" if query else ""
    return RedirectResponse(f"{root(request)}{path}{suffix}", status_code=303)
