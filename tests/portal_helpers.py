"""Helpers for portal tests: a client on a fixed clock, CSRF tokens from pages, office sign-in."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from portal import create_app
from wangjian.bootstrap import App

from .factories import AT

NOW = AT + timedelta(days=1)
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def portal_client(app: App, *, now: datetime = NOW) -> TestClient:
    """A client of the portal; uploads go beside the test's mailbox, never into the work tree."""
    portal = app.settings.portal
    if not Path(portal.upload_dir).is_absolute():
        portal.upload_dir = Path(app.settings.mailbox_dir).parent / "uploads"
    return TestClient(create_app(app, now=lambda: now), follow_redirects=False)


def csrf_of(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def sign_in_office(client: TestClient, app: App) -> str:
    """Sign the office in; returns a CSRF token for office forms."""
    page = client.get("/office/login")
    portal = app.settings.portal
    response = client.post(
        "/office/login",
        data={
            "username": portal.office_user,
            "password": portal.office_password.get_secret_value(),
            "csrf_token": csrf_of(page.text),
        },
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/office/").text)
