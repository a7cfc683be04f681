"""Security, tested: isolation between agencies on every route, tokens, CSRF, escaping, office."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select
from starlette.routing import Mount

from agencies.answers import StoredFile, request_extension, submit_monthly_report
from portal import create_app
from wangjian.access import SALT, sign_link_token
from wangjian.bootstrap import App
from wangjian.ledger.assist import request_assistance
from wangjian.ledger.db import transaction
from wangjian.ledger.models import (
    AssistRequest,
    Event,
    Extension,
    Lead,
    Obligation,
    Party,
    Referral,
    Submission,
)

from .factories import make_lead, make_obligation, make_referral, token_for
from .portal_helpers import NOW, csrf_of, portal_client, sign_in_office

PDF = b"%PDF-1.4\n%%EOF\n"
SECRET = "A-ONLY-7f3c"  # appears in every piece of agency A's data


@dataclass
class World:
    token_a: str
    token_b: str
    referral_a: int
    referral_b: int
    obligation_a: int
    submission_a: int
    extension_a: int
    held_lead: int
    assist_a: int  # an assistance request to a platform, about agency A's referral


def _world(app: App) -> World:
    with transaction(app.sessions) as session:
        lead = make_lead(session, summary=f"{SECRET} 假冒商标", shop_name=f"{SECRET} 店")
        referral_a = make_referral(session, app, agency="customs", lead=lead, status="acknowledged")
        referral_b = make_referral(session, app, agency="post")
        obligation_a = make_obligation(session, app, agency="customs", title=f"{SECRET} 月报")
        done_a = make_obligation(
            session, app, agency="customs", code="2021-10", title=f"{SECRET} 十月"
        )
        submission = submit_monthly_report(
            session=session,
            app=app,
            obligation_id=done_a.id,
            agency_code="customs",
            text=f"{SECRET} 报送内容",
            attachments=[StoredFile("attachment", f"{SECRET}.pdf", "x/none.pdf", 1, "0" * 64)],
            actor="agency:customs",
            at=NOW,
        )
        extension = request_extension(
            session=session,
            app=app,
            referral_id=referral_a.id,
            agency_code="customs",
            days=5,
            reason=f"{SECRET} 延期",
            actor="agency:customs",
            at=NOW,
        )
        held = make_lead(session, status="held", category=None, summary="待分类")
        assist = request_assistance(
            session=session,
            app=app,
            platform_code="taobao",
            referral_id=referral_a.id,
            asked=["identity"],
            detail=f"{SECRET} 协查",
            actor="office:test",
            at=NOW,
        )
        return World(
            token_a=token_for(app, session, "customs"),
            token_b=token_for(app, session, "post"),
            referral_a=referral_a.id,
            referral_b=referral_b.id,
            obligation_a=obligation_a.id,
            submission_a=submission.id,
            extension_a=extension.id,
            held_lead=held.id,
            assist_a=assist.id,
        )


def _snapshot(app: App) -> dict[str, Any]:
    """Everything a route could change, to compare before and after a walk."""
    with app.sessions() as session:
        return {
            "referrals": sorted(
                (r.id, r.status, r.agency_code, r.due_on, r.outcome)
                for r in session.scalars(select(Referral))
            ),
            "events": session.scalar(select(func.count()).select_from(Event)),
            "obligations": sorted((o.id, o.status) for o in session.scalars(select(Obligation))),
            "submissions": session.scalar(select(func.count()).select_from(Submission)),
            "extensions": sorted((e.id, e.status) for e in session.scalars(select(Extension))),
            "leads": sorted((lead.id, lead.status) for lead in session.scalars(select(Lead))),
            "tokens": sorted((p.code, p.token_version) for p in session.scalars(select(Party))),
            "assists": sorted((a.id, a.status) for a in session.scalars(select(AssistRequest))),
        }


FORM = {
    "outcome": "no_violation",
    "case_number": "X-1",
    "decided_on": "2021-10-26",
    "note": "note",
    "reason": "reason",
    "days": "3",
    "text": "text",
    "agency": "ip",
    "category": "trademark",
    "decision": "approve",
    "case_title_0": "case",
    "answer": "none",
    "platform": "taobao",
    "asked": "identity",
    "referral_id": "1",
}


def _fill(path: str, world: World, token: str) -> str:
    values = {
        "token": token,
        "referral_id": world.referral_a,
        "obligation_id": world.obligation_a,
        "submission_id": world.submission_a,
        "index": 0,
        "extension_id": world.extension_a,
        "lead_id": world.held_lead,
        "code": "customs",
        "assist_id": world.assist_a,
    }

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in values, f"route {path} has a parameter {name!r} the walk does not know"
        return str(values[name])

    return re.sub(r"\{(\w+)(?::\w+)?\}", value, path)


def _routes(app: App) -> list[tuple[str, str]]:
    """Every (method, path) of the app, routers included, so a new route cannot escape the walk."""
    web = create_app(app)
    out: list[tuple[str, str]] = []
    for context in iter_route_contexts(web.routes):
        route = context.original_route
        if isinstance(route, APIRoute):
            assert context.path and context.methods
            out += [(method, context.path) for method in sorted(context.methods)]
        elif isinstance(route, Mount):
            out.append(("GET", f"{context.path}/portal.css"))
        else:
            raise AssertionError(f"the walk does not know the route {route!r}")
    return out


def test_agency_b_can_neither_see_nor_change_agency_as_items_on_any_route(app: App) -> None:
    world = _world(app)
    client = portal_client(app)
    csrf_b = csrf_of(client.get(f"/a/{world.token_b}/referrals/{world.referral_b}").text)
    before = _snapshot(app)
    routes = _routes(app)
    walked = {"agency": 0, "office": 0, "public": 0}
    for method, template in routes:
        path = _fill(template, world, world.token_b)
        kwargs: dict[str, Any] = {}
        if method == "POST":
            kwargs = {
                "data": {**FORM, "csrf_token": csrf_b},
                "files": {"attachments": ("a.pdf", PDF, "application/pdf")},
            }
        # Agency B's link travels with every request, in every place a careless route might look.
        client.cookies.set("token", world.token_b)
        response = client.request(
            method,
            path,
            params={"token": world.token_b},
            headers={"X-Token": world.token_b},
            **kwargs,
        )
        body = response.text
        assert SECRET not in body, f"{method} {template} shows agency A's data to agency B"
        if template.startswith("/a/{token}"):
            walked["agency"] += 1
            mentions_item = any(
                p in template
                for p in ("{referral_id}", "{obligation_id}", "{submission_id}", "{assist_id}")
            )
            expected = {404} if mentions_item else {200}
            assert response.status_code in expected, (method, template, response.status_code)
        elif template.startswith("/office"):
            walked["office"] += 1
            if template == "/office/login":
                # Agency B's CSRF token is not a sign-in form's: refused before any password check.
                assert response.status_code == (200 if method == "GET" else 403), (method, template)
            else:
                assert response.status_code == 303, (method, template, response.status_code)
                assert response.headers["location"].endswith("/office/login")
        else:
            walked["public"] += 1
            assert response.status_code == 200, (method, template)
    assert _snapshot(app) == before, "a route changed something for the wrong agency"
    assert walked["agency"] >= 15 and walked["office"] >= 22 and walked["public"] >= 3


def test_forged_expired_and_revoked_tokens_are_refused_on_every_agency_route(
    sqlite_app: App,
) -> None:
    app = sqlite_app
    world = _world(app)
    secret = app.settings.portal.secret_key.get_secret_value()
    forged = sign_link_token("another-key-entirely", party="customs", version=1)
    tampered = world.token_a[:-3] + ("AAA" if not world.token_a.endswith("AAA") else "BBB")
    unknown = sign_link_token(secret, party="nobody", version=1)
    old = sign_link_token(secret, party="customs", version=1)
    client = portal_client(app)
    csrf_a = csrf_of(client.get(f"/a/{world.token_a}/referrals/{world.referral_a}").text)
    with transaction(app.sessions) as session:
        party = session.get(Party, "customs")
        assert party is not None
        party.token_version = 2  # revokes `old` (and world.token_a)
    before = _snapshot(app)
    agency_routes = [(m, p) for m, p in _routes(app) if p.startswith("/a/{token}")]
    for token in (forged, tampered, unknown, old, "not-a-token"):
        for method, template in agency_routes:
            data = {**FORM, "csrf_token": csrf_a} if method == "POST" else None
            response = client.request(method, _fill(template, world, token), data=data)
            assert response.status_code == 403, (token, method, template)
            assert SECRET not in response.text
    assert _snapshot(app) == before
    assert "已作废" in client.get(f"/a/{old}/").text
    fresh = token_for_version(app, "customs")
    assert client.get(f"/a/{fresh}/").status_code == 200


def token_for_version(app: App, code: str) -> str:
    with app.sessions() as session:
        return token_for(app, session, code)


def test_an_expired_link_says_so(sqlite_app: App) -> None:
    app = sqlite_app
    app.settings.portal.token_days = 1
    with app.sessions() as session:
        token = token_for(app, session, "post")
    client = portal_client(app)
    assert client.get(f"/a/{token}/").status_code == 200

    # A link signed a day and five seconds ago (itsdangerous takes the time from its signer).
    class PastSigner(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 86400 - 5

    secret = app.settings.portal.secret_key.get_secret_value()
    old = URLSafeTimedSerializer(secret, salt=SALT, signer=PastSigner).dumps({"p": "post", "v": 1})
    response = client.get(f"/a/{old}/")
    assert response.status_code == 403 and "链接已过期" in response.text


def test_every_post_route_refuses_a_missing_wrong_or_foreign_csrf_token(sqlite_app: App) -> None:
    app = sqlite_app
    world = _world(app)
    client = portal_client(app)
    csrf_a = csrf_of(client.get(f"/a/{world.token_a}/referrals/{world.referral_a}").text)
    office = portal_client(app)
    office_csrf = sign_in_office(office, app)
    before = _snapshot(app)
    posts = [p for m, p in _routes(app) if m == "POST"]
    assert posts
    for template in posts:
        is_agency = template.startswith("/a/{token}")
        actor = client if is_agency else office
        path = _fill(template, world, world.token_a)
        good = csrf_a if is_agency else office_csrf
        # Another scope's valid token is as wrong as a forged one.
        foreign = office_csrf if is_agency else csrf_a
        for token in (None, "0" * 64, foreign, good[:-1] + ("0" if good[-1] != "0" else "1")):
            data = dict(FORM)
            if token is not None:
                data["csrf_token"] = token
            response = actor.post(path, data=data)
            if template == "/office/logout" or template == "/office/login":
                assert response.status_code == 403, (template, token)
            else:
                assert response.status_code == 403, (template, token, response.status_code)
            assert "安全校验未通过" in response.text
    assert _snapshot(app) == before
    # A CSRF token is tied to its session: the same token from a fresh browser is refused.
    stranger = portal_client(app)
    response = stranger.post(
        f"/a/{world.token_a}/referrals/{world.referral_a}/extension",
        data={**FORM, "csrf_token": csrf_a},
    )
    assert response.status_code == 403


EVIL = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def test_user_text_is_never_rendered_unescaped(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        lead = make_lead(
            session,
            summary=EVIL,
            shop_name=EVIL,
            operator_name=EVIL,
            url="javascript:alert(document.cookie)",
        )
        referral = make_referral(session, app, agency="samr", lead=lead, reason=EVIL)
        make_lead(session, status="held", category=None, summary=EVIL, hold_reason=EVIL)
        obligation = make_obligation(session, app, agency="samr", title=EVIL)
        token = token_for(app, session, "samr")
    client = portal_client(app)
    url = f"/a/{token}/referrals/{referral.id}"
    csrf = csrf_of(client.get(url).text)
    client.post(f"{url}/extension", data={"csrf_token": csrf, "days": "3", "reason": EVIL})
    client.post(
        f"{url}/outcome", data={"csrf_token": csrf, "outcome": "no_violation", "note": EVIL}
    )
    report = f"/a/{token}/reports/{obligation.id}"
    client.post(
        f"{report}/monthly", data={"csrf_token": csrf_of(client.get(report).text), "text": EVIL}
    )
    office = portal_client(app)
    sign_in_office(office, app)
    pages = [
        client.get(f"/a/{token}/").text,
        client.get(url).text,
        client.get(report).text,
        client.get(f"/a/{token}/reports").text,
        office.get(f"/office/referrals/{referral.id}").text,
        office.get("/office/leads").text,
        office.get("/office/agencies/samr").text,
        office.get(f"/office/reports/{obligation.id}").text,
        office.get("/office/reports").text,
        client.get(f"{url}?lang=en").text,
    ]
    for page in pages:
        assert "<script>" not in page and "<img src=x" not in page
        assert 'href="javascript:' not in page
    assert "&lt;script&gt;" in pages[1] and "&lt;script&gt;" in pages[5]


def test_security_headers_keep_the_link_token_to_this_site(sqlite_app: App) -> None:
    app = sqlite_app
    with app.sessions() as session:
        token = token_for(app, session, "post")
    response = portal_client(app).get(f"/a/{token}/")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script-src 'none'" in response.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


def test_office_pages_need_the_office_sign_in_and_refuse_agency_tokens(sqlite_app: App) -> None:
    app = sqlite_app
    with app.sessions() as session:
        token = token_for(app, session, "samr")
    client = portal_client(app)
    for attempt in (
        {"params": {"token": token}},
        {"headers": {"Authorization": f"Bearer {token}"}},
    ):
        response = client.get("/office/", **attempt)  # type: ignore[arg-type]
        assert response.status_code == 303 and response.headers["location"] == "/office/login"
    as_cookie = portal_client(app)
    as_cookie.cookies.set("wangjian_portal", token)
    assert as_cookie.get("/office/").status_code == 303
    assert client.get(f"/a/{token}/office/").status_code == 404
    login = client.get("/office/login")
    wrong = client.post(
        "/office/login",
        data={"username": "office", "password": "guess", "csrf_token": csrf_of(login.text)},
    )
    assert wrong.status_code == 401
    assert client.get("/office/").status_code == 303
    # The agency's session cookie (holding its CSRF nonce) does not make it the office.
    client.get(f"/a/{token}/")
    assert client.get("/office/").status_code == 303
    sign_in_office(client, app)
    assert client.get("/office/").status_code == 200


def test_a_session_cookie_signed_with_another_key_is_ignored(sqlite_app: App) -> None:
    app = sqlite_app
    other = portal_client(app)
    sign_in_office(other, app)
    cookie = other.cookies.get("wangjian_portal")
    assert cookie
    app.settings.portal.secret_key = type(app.settings.portal.secret_key)("rotated-" + "k" * 30)
    rotated = TestClient(create_app(app), follow_redirects=False)
    rotated.cookies.set("wangjian_portal", cookie)
    assert rotated.get("/office/").status_code == 303


@pytest.mark.parametrize("path", ["/", "/healthz", "/static/portal.css"])
def test_public_routes_show_no_campaign_data(sqlite_app: App, path: str) -> None:
    app = sqlite_app
    _world(app)
    response = portal_client(app).get(path)
    assert response.status_code == 200 and SECRET not in response.text


def test_access_logs_do_not_keep_link_tokens() -> None:
    import logging

    from portal.security import RedactLinkTokens, access_log_config

    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/a/eyJwIjoic2FtciJ9.abc.def/referrals/3", "1.1", 200),
        None,
    )
    assert RedactLinkTokens().filter(record)
    assert "eyJ" not in record.getMessage() and "/a/…/referrals/3" in record.getMessage()
    assert access_log_config()["handlers"]["access"]["filters"] == ["redact_link_tokens"]
