"""The platform's pages (its signed link) and the office's assistance pages: a platform answers
its own requests with its data file or "no such operator"; the office makes requests and
records answers that came another way."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from wangjian.bootstrap import App
from wangjian.ledger.assist import request_assistance
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.models import AssistRequest, Notice

from .factories import make_lead, make_referral, token_for
from .portal_helpers import NOW, csrf_of, portal_client, sign_in_office

CSV = "订单号,金额\nA1,12.50\n".encode()
EVIL = '<script>alert("x")</script>'


def _request(app: App, *, platform: str = "taobao", detail: str = "订单明细") -> tuple[int, int]:
    with transaction(app.sessions) as session:
        lead = make_lead(session, shop_name="优品旗舰店", credit_code="91140105MA0K1234XH")
        referral = make_referral(session, app, agency="samr", lead=lead)
        made = request_assistance(
            session=session,
            app=app,
            platform_code=platform,
            referral_id=referral.id,
            asked=["identity", "sales"],
            detail=detail,
            actor="office:test",
            at=NOW - timedelta(hours=2),
        )
        return made.id, referral.id


def _uploads(app: App) -> list[Path]:
    return [p for p in Path(app.settings.portal.upload_dir).rglob("*") if p.is_file()]


def test_a_platform_answers_its_request_with_the_data_file_through_its_link(
    sqlite_app: App,
) -> None:
    app = sqlite_app
    assist_id, _ = _request(app, detail=EVIL)
    with app.sessions() as session:
        token = token_for(app, session, "taobao")
    client = portal_client(app)
    home = client.get(f"/a/{token}/")
    assert home.status_code == 200 and f"/assists/{assist_id}" in home.text
    assert "协查请求" in home.text and "移送线索" not in home.text  # a platform's own pages
    page = client.get(f"/a/{token}/assists/{assist_id}")
    assert "优品旗舰店" in page.text and "经营者身份信息" in page.text
    assert "假冒注册商标" not in page.text  # the case's evidence stays with the agencies
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text
    refused = client.post(
        f"/a/{token}/assists/{assist_id}/answer",
        data={"csrf_token": csrf_of(page.text), "answer": "data"},
        files={"data_file": ("订单.exe", b"MZ", "application/octet-stream")},
    )
    assert refused.status_code == 400 and "类型不允许" in refused.text and not _uploads(app)
    done = client.post(
        f"/a/{token}/assists/{assist_id}/answer",
        data={"csrf_token": csrf_of(page.text), "answer": "data", "note": "已调取"},
        files={"data_file": ("订单明细.csv", CSV, "text/csv")},
    )
    assert done.status_code == 303
    assert done.headers["location"].endswith(f"/assists/{assist_id}?done=assist_answered")
    with app.sessions() as session:
        request = session.get(AssistRequest, assist_id)
        assert request is not None
        clock = clock_of(session, subject_type="assist", subject_id=assist_id)
        (event,) = [
            e
            for e in history(session, subject_type="assist", subject_id=assist_id)
            if e.action == "assist.answered"
        ]
    assert (request.status, request.answer_file_name, request.answered_by) == (
        "answered",
        "订单明细.csv",
        "platform:taobao",
    )
    assert clock is not None and clock.status == "met"
    assert event.data["hours"] == 2.0 and event.origin and event.origin.startswith("portal")
    (kept,) = _uploads(app)
    assert kept.read_bytes() == CSV and kept.name != "订单明细.csv"
    # The office downloads what the platform sent.
    office = portal_client(app)
    sign_in_office(office, app)
    download = office.get(f"/office/assists/{assist_id}/file")
    assert download.status_code == 200 and download.content == CSV
    assert "attachment" in download.headers["content-disposition"]


def test_another_platform_can_neither_see_nor_answer_a_request(sqlite_app: App) -> None:
    app = sqlite_app
    assist_id, referral_id = _request(app, platform="taobao")
    own_id, _ = _request(app, platform="jd")
    with app.sessions() as session:
        jd, samr = token_for(app, session, "jd"), token_for(app, session, "samr")
    client = portal_client(app)
    forms = {
        jd: csrf_of(client.get(f"/a/{jd}/assists/{own_id}").text),
        samr: csrf_of(client.get(f"/a/{samr}/referrals/{referral_id}").text),
    }
    assert f"/assists/{assist_id}" not in client.get(f"/a/{jd}/").text
    for token, csrf in forms.items():
        assert client.get(f"/a/{token}/assists/{assist_id}").status_code == 404
        answer = client.post(
            f"/a/{token}/assists/{assist_id}/answer",
            data={"csrf_token": csrf, "answer": "data"},
            files={"data_file": ("x.csv", CSV, "text/csv")},
        )
        assert answer.status_code == 404
    with app.sessions() as session:
        request = session.get(AssistRequest, assist_id)
        assert request is not None and request.status == "open"
    assert not _uploads(app)


def test_no_such_operator_needs_no_file(sqlite_app: App) -> None:
    app = sqlite_app
    assist_id, _ = _request(app, platform="jd")
    with app.sessions() as session:
        token = token_for(app, session, "jd")
    client = portal_client(app)
    page = client.get(f"/a/{token}/assists/{assist_id}?lang=en")
    assert "No such operator" in page.text
    done = client.post(
        f"/a/{token}/assists/{assist_id}/answer",
        data={"csrf_token": csrf_of(page.text), "answer": "none", "note": "按信用代码未查到"},
    )
    assert done.status_code == 303
    with app.sessions() as session:
        request = session.get(AssistRequest, assist_id)
        assert request is not None and request.status == "no_such_operator"
    after = client.get(f"/a/{token}/assists/{assist_id}?lang=zh")
    assert "查无此经营者" in after.text and 'id="answer-form"' not in after.text


def test_the_office_makes_a_request_from_a_referral_and_records_an_answer(
    sqlite_app: App,
) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        lead = make_lead(session, platform="京东", shop_name="京东好物店")
        referral = make_referral(session, app, agency="samr", lead=lead)
    office = portal_client(app)
    csrf = sign_in_office(office, app)
    assert "/office/assists/new?referral_id=" in office.get(f"/office/referrals/{referral.id}").text
    form = office.get(f"/office/assists/new?referral_id={referral.id}")
    assert '<option value="jd" selected>' in form.text  # the lead's platform, preselected
    data = {
        "csrf_token": csrf,
        "referral_id": str(referral.id),
        "platform": "jd",
        "asked": ["identity", "listings"],
        "detail": "请提供店铺注册信息",
    }
    made = office.post("/office/assists", data=data)
    assert made.status_code == 303 and "done=assist_requested" in made.headers["location"]
    twice = office.post("/office/assists", data=data)
    assert "done=assist_exists" in twice.headers["location"]
    with app.sessions() as session:
        (request,) = session.scalars(select(AssistRequest))
        queued = session.scalar(
            select(func.count()).select_from(Notice).where(Notice.kind == "assist_request")
        )
    assert (request.platform_code, request.asked, queued) == ("jd", ["identity", "listings"], 1)
    assert request.requested_by.startswith("office:")
    listing = office.get("/office/assists?status=open")
    assert f"/office/assists/{request.id}" in listing.text and "京东商城" in listing.text
    empty = office.post(
        f"/office/assists/{request.id}/answer", data={"csrf_token": csrf, "answer": "data"}
    )
    assert empty.status_code == 400  # neither a file nor a word on how the data came
    recorded = office.post(
        f"/office/assists/{request.id}/answer",
        data={"csrf_token": csrf, "answer": "data", "note": "数据经红盾云桥收到"},
    )
    assert "done=assist_recorded" in recorded.headers["location"]
    with app.sessions() as session:
        done = session.get(AssistRequest, request.id)
        assert done is not None and done.status == "answered"
        assert done.answered_by and done.answered_by.startswith("office:")
