"""The agency pages: listing, detail with due-date working, actions, reports and uploads."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import select

from wangjian.bootstrap import App, build_app
from wangjian.ledger.clocks import clock_of
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.models import Extension, Obligation, Referral, Submission, TypicalCase
from wangjian.ledger.setup import initialise_ledger

from .conftest import make_settings
from .factories import AT, make_lead, make_obligation, make_referral, token_for
from .portal_helpers import csrf_of, portal_client

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _xlsx() -> bytes:
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["表1", "线索数"])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_the_list_shows_only_own_referrals_overdue_first_and_filters(app: App) -> None:
    with transaction(app.sessions) as session:
        fresh = make_referral(session, app, agency="post")
        late = make_referral(session, app, agency="post", at=AT - timedelta(days=30))
        done = make_referral(session, app, agency="post", status="closed", clock=False)
        make_referral(
            session, app, agency="customs", lead=make_lead(session, summary="海关的线索XYZ")
        )
        token = token_for(app, session, "post")
        ids = (fresh.id, late.id, done.id)
    client = portal_client(app)
    page = client.get(f"/a/{token}/")
    assert page.status_code == 200
    assert "海关的线索XYZ" not in page.text
    positions = [page.text.index(f'/referrals/{i}"') for i in ids]
    assert positions[1] < positions[0], "the overdue referral comes first"
    assert "已逾期" in page.text
    only_overdue = client.get(f"/a/{token}/", params={"status": "overdue"}).text
    assert f'/referrals/{ids[1]}"' in only_overdue and f'/referrals/{ids[0]}"' not in only_overdue
    closed = client.get(f"/a/{token}/", params={"status": "closed"}).text
    assert f'/referrals/{ids[2]}"' in closed and f'/referrals/{ids[0]}"' not in closed
    # The current due day of the fresh referral is its acknowledgement day (2 working days on).
    window = {"due_from": "2021-10-27", "due_to": "2021-10-27"}
    dated = client.get(f"/a/{token}/", params=window).text
    assert f'/referrals/{ids[0]}"' in dated and f'/referrals/{ids[1]}"' not in dated
    assert client.get(f"/a/{token}/", params={"due_from": "not a date"}).status_code == 200


def test_the_detail_explains_why_and_how_the_due_dates_were_computed(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        referral = make_referral(session, app, agency="samr")
        token = token_for(app, session, "samr")
    page = portal_client(app).get(f"/a/{token}/referrals/{referral.id}")
    assert page.status_code == 200
    text = page.text
    assert referral.reason in text
    assert "自2021-10-25起算(次日起算,按工作日计算),15个工作日" in text
    assert "市场监督管理行政处罚程序规定" in text and "签收期限" in text
    english = portal_client(app).get(f"/a/{token}/referrals/{referral.id}?lang=en")
    assert "Why it was referred here" in english.text
    assert english.cookies.get("wangjian_lang") == "en"


def test_acknowledge_then_report_an_outcome_through_the_pages(app: App) -> None:
    with transaction(app.sessions) as session:
        referral_id = make_referral(session, app, agency="samr").id
        token = token_for(app, session, "samr")
    client = portal_client(app)
    url = f"/a/{token}/referrals/{referral_id}"
    acked = client.post(f"{url}/acknowledge", data={"csrf_token": csrf_of(client.get(url).text)})
    assert acked.status_code == 303 and acked.headers["location"].endswith("?done=acknowledged")
    page = client.get(acked.headers["location"])
    assert "已签收。" in page.text and "签收" in page.text
    refused = client.post(
        f"{url}/outcome",
        data={
            "csrf_token": csrf_of(page.text),
            "outcome": "case_filed",
            "decided_on": "2021-10-26",
        },
    )
    assert refused.status_code == 400 and "结果为立案时须填写立案编号" in refused.text
    closed = client.post(
        f"{url}/outcome",
        data={
            "csrf_token": csrf_of(page.text),
            "outcome": "case_filed",
            "case_number": "区市监立字〔2021〕7号",
            "decided_on": "2021-10-26",
            "note": "已立案",
        },
    )
    assert closed.status_code == 303
    with app.sessions() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None and referral.status == "closed"
        clock = clock_of(session, subject_type="referral", subject_id=referral_id)
        assert clock is not None and clock.status == "met"
        events = history(session, subject_type="referral", subject_id=referral_id)
        assert [e.action for e in events] == ["referral.acknowledged", "referral.outcome_reported"]
        assert {e.origin for e in events} == {"portal testclient"}
        assert {e.actor for e in events} == {"agency:samr"}
    final = client.get(url).text
    assert "区市监立字〔2021〕7号" in final and 'id="acknowledge"' not in final


def test_return_and_extension_requests_through_the_pages(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        first = make_referral(session, app, agency="samr", status="acknowledged").id
        second = make_referral(session, app, agency="samr").id
        token = token_for(app, session, "samr")
    client = portal_client(app)
    csrf = csrf_of(client.get(f"/a/{token}/referrals/{second}").text)
    asked = client.post(
        f"/a/{token}/referrals/{first}/extension",
        data={"csrf_token": csrf, "days": "10", "reason": "需调取平台数据"},
    )
    assert asked.status_code == 303
    too_many = client.post(
        f"/a/{token}/referrals/{second}/extension",
        data={"csrf_token": csrf, "days": "99", "reason": "x"},
    )
    assert too_many.status_code == 400 and "延期天数应为1至15" in too_many.text
    returned = client.post(
        f"/a/{token}/referrals/{second}/return",
        data={"csrf_token": csrf, "reason": "涉及专利标识,属知识产权局职责"},
    )
    assert returned.status_code == 303
    with app.sessions() as session:
        extension = session.scalar(select(Extension))
        assert extension is not None and (extension.referral_id, extension.days) == (first, 10)
        referral = session.get(Referral, second)
        assert referral is not None and referral.status == "returned"


def test_a_monthly_report_with_an_attachment_is_kept_outside_the_web_root(
    tmp_path: Path, database_url: str
) -> None:
    uploads = tmp_path / "private-uploads"
    app = build_app(make_settings(tmp_path, database_url))
    app.settings.portal.upload_dir = uploads
    initialise_ledger(app)
    try:
        with transaction(app.sessions) as session:
            obligation_id = make_obligation(session, app, agency="post").id
            token = token_for(app, session, "post")
        client = portal_client(app)
        url = f"/a/{token}/reports/{obligation_id}"
        csrf = csrf_of(client.get(url).text)
        response = client.post(
            f"{url}/monthly",
            data={"csrf_token": csrf, "text": "本月开展寄递渠道检查"},
            files={"attachments": ("../../十一月 动态.pdf", PDF, "application/pdf")},
        )
        assert response.status_code == 303, response.text
        stored = [p for p in uploads.rglob("*") if p.is_file()]
        assert len(stored) == 1 and stored[0].suffix == ".pdf"
        assert "动态" not in stored[0].name and len(stored[0].stem) == 32
        with app.sessions() as session:
            submission = session.scalar(select(Submission))
            obligation = session.get(Obligation, obligation_id)
            assert submission is not None and obligation is not None
            assert submission.files[0]["name"] == "十一月 动态.pdf"
            assert obligation.status == "submitted"
        download = client.get(f"/a/{token}/files/{submission.id}/0")
        assert download.status_code == 200 and download.content == PDF
        assert download.headers["content-disposition"].startswith("attachment;")
        assert client.get(f"/static/../{stored[0].relative_to(tmp_path)}").status_code == 404
    finally:
        app.dispose()


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("virus.exe", b"MZ\x90\x00", "类型不允许"),
        ("fake.pdf", b"MZ\x90\x00 not a pdf", "内容与扩展名.pdf不符"),
        ("fake.docx", b"PK\x03\x04 broken zip", "内容与扩展名.docx不符"),
        ("empty.pdf", b"", "为空"),
    ],
)
def test_uploads_of_the_wrong_type_are_refused_and_not_kept(
    sqlite_app: App, name: str, content: bytes, reason: str
) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        obligation_id = make_obligation(session, app, agency="post").id
        token = token_for(app, session, "post")
    client = portal_client(app)
    url = f"/a/{token}/reports/{obligation_id}"
    response = client.post(
        f"{url}/monthly",
        data={"csrf_token": csrf_of(client.get(url).text), "text": "x"},
        files={"attachments": (name, content, "application/octet-stream")},
    )
    assert response.status_code == 400 and reason in response.text
    upload_dir = Path(app.settings.portal.upload_dir)
    assert not upload_dir.exists() or not [p for p in upload_dir.rglob("*") if p.is_file()]
    with app.sessions() as session:
        assert session.scalar(select(Submission)) is None


def test_oversized_uploads_are_refused(sqlite_app: App) -> None:
    app = sqlite_app
    app.settings.portal.max_upload_mb = 1
    with transaction(app.sessions) as session:
        obligation_id = make_obligation(session, app, agency="post").id
        token = token_for(app, session, "post")
    client = portal_client(app)
    url = f"/a/{token}/reports/{obligation_id}"
    big = PDF + b"0" * (1024 * 1024)
    response = client.post(
        f"{url}/monthly",
        data={"csrf_token": csrf_of(client.get(url).text)},
        files={"attachments": ("big.pdf", big, "application/pdf")},
    )
    assert response.status_code == 400 and "超过1MB" in response.text
    # A body beyond what any form may carry is cut off before it is read.
    huge = client.post(
        f"{url}/monthly",
        content=b"x" * (17 * 1024 * 1024 + 10),
        headers={"content-type": "multipart/form-data; boundary=x"},
    )
    assert huge.status_code == 413


def test_a_summary_package_with_typical_cases_and_decisions(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        obligation_id = make_obligation(
            session, app, agency="samr", kind="deliverable", code="typical-cases-nov"
        ).id
        referral_id = make_referral(session, app, agency="samr").id
        token = token_for(app, session, "samr")
    client = portal_client(app)
    url = f"/a/{token}/reports/{obligation_id}"
    page = client.get(url)
    assert "典型案例" in page.text and "case_decision_0" in page.text
    response = client.post(
        f"{url}/package",
        data={
            "csrf_token": csrf_of(page.text),
            "case_title_0": "某网店销售假冒注册商标商品案",
            "case_number_0": "区市监罚〔2021〕15号",
            "case_referral_0": str(referral_id),
        },
        files={"case_decision_0": ("处罚决定书.pdf", PDF, "application/pdf")},
    )
    assert response.status_code == 303 and response.headers["location"].endswith("done=submitted")
    with app.sessions() as session:
        case = session.scalar(select(TypicalCase))
        assert case is not None and case.referral_id == referral_id and case.penalty_decision_file
        obligation = session.get(Obligation, obligation_id)
        assert obligation is not None and obligation.status == "submitted"


def test_the_summary_package_needs_an_xlsx_statistics_table(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        obligation_id = make_obligation(
            session, app, agency="samr", kind="summary_package", code="s"
        ).id
        token = token_for(app, session, "samr")
    client = portal_client(app)
    url = f"/a/{token}/reports/{obligation_id}"
    csrf = csrf_of(client.get(url).text)
    wrong = client.post(
        f"{url}/package",
        data={"csrf_token": csrf},
        files={"statistics_table": ("统计表.pdf", PDF, "application/pdf")},
    )
    assert wrong.status_code == 400 and "xlsx" in wrong.text
    partial = client.post(
        f"{url}/package",
        data={"csrf_token": csrf},
        files={
            "statistics_table": ("统计表.xlsx", _xlsx(), "application/octet-stream"),
            "summary_report": ("总结.pdf", PDF, "application/pdf"),
        },
    )
    assert partial.status_code == 303 and partial.headers["location"].endswith("done=incomplete")
    page = client.get(partial.headers["location"]).text
    assert "材料不全" in page and "缺少联合执法材料" in page


def test_an_ofd_file_is_recognised_by_its_package_contents(sqlite_app: App) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        obligation_id = make_obligation(session, app, agency="tax").id
        token = token_for(app, session, "tax")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("OFD.xml", "<ofd:OFD/>")
    client = portal_client(app)
    url = f"/a/{token}/reports/{obligation_id}"
    response = client.post(
        f"{url}/monthly",
        data={"csrf_token": csrf_of(client.get(url).text)},
        files={"attachments": ("进展.ofd", buffer.getvalue(), "application/ofd")},
    )
    assert response.status_code == 303
