"""Browser tests: Debian's chromium, driven by Playwright, against the portal on a live server."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import select

from portal import create_app
from wangjian.bootstrap import App
from wangjian.ledger.db import transaction
from wangjian.ledger.models import Deadline, Lead, Party, Referral
from wangjian.ledger.outbox import notice_key, queue_notices
from wangjian.ledger.sending import drain_outbox

from .factories import make_lead, make_referral
from .portal_helpers import NOW

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (`apt-get install chromium`)",
    ),
]


class LiveServer:
    """The portal on uvicorn in a thread, on a free local port."""

    def __init__(self, app: App) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        app.settings.portal.base_url = self.url
        config = uvicorn.Config(
            create_app(app, now=lambda: NOW), log_level="warning", lifespan="off"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the portal did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.socket.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


def _send_referral_notice(app: App, referral_id: int, to: str) -> Path:
    """The referral notice as dispatch queues it, sent by the real sender into the mailbox."""
    now = datetime.now(UTC)
    with transaction(app.sessions) as session:
        queue_notices(
            session,
            [
                {
                    "key": notice_key(
                        recipient=to,
                        subject_type="referral",
                        subject_id=referral_id,
                        kind="referral",
                    ),
                    "kind": "referral",
                    "party": "samr",
                    "audience": "contact",
                    "recipient": to,
                    "cc": [],
                    "subject_type": "referral",
                    "subject_id": referral_id,
                    "step": None,
                    "group_key": f"dispatch:browser-{referral_id}",
                    "context": {},
                    "status": "queued",
                    "created_at": now,
                }
            ],
        )
    # The sender runs its own event loop; Playwright's sync API already runs one in this thread.
    with ThreadPoolExecutor(1) as pool:
        report = pool.submit(drain_outbox, app=app, mailer=app.mailer, as_of=now).result()
    assert report.sent == 1
    (eml,) = Path(app.settings.mailbox_dir).glob("*.eml")
    return eml


def _link_in(eml: Path) -> str:
    """What the agency's contact does: open the e-mail and follow its link."""
    message = BytesParser(policy=policy.default).parsebytes(eml.read_bytes())
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = re.search(r"https?://\S+/a/\S+", body.get_content())
    assert match, "the notice carries no portal link"
    return match.group(0)


def test_an_agency_follows_its_link_acknowledges_and_reports_and_the_clock_stops(
    sqlite_app: App, browser: Any
) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        lead = make_lead(
            session, summary="某网店销售假冒“某某”注册商标运动鞋", shop_name="潮鞋小铺"
        )
        referral_id = make_referral(session, app, agency="samr", lead=lead).id
        party = session.get(Party, "samr")
        assert party is not None
        to = party.contact_email
    with LiveServer(app) as server:
        app.settings.portal.base_url = server.url  # the links in the mail point at this portal
        eml = _send_referral_notice(app, referral_id, to)
        page = browser.new_page()
        page.goto(_link_in(eml))
        page.wait_for_load_state()
        assert "区市场监督管理局" in page.content()
        if "/referrals/" not in page.url:
            page.get_by_role("link", name=str(referral_id), exact=True).click()
        page.wait_for_url(re.compile(rf"/referrals/{referral_id}"))
        assert "某网店销售假冒“某某”注册商标运动鞋" in page.content()
        assert "个工作日" in page.content()  # how the due dates were computed
        page.get_by_role("button", name="签收").click()
        page.wait_for_url(re.compile(r"done=acknowledged"))
        assert "已签收。" in page.content()
        page.select_option("#outcome", "ordered_to_correct")
        page.fill("#decided_on", "2021-10-26")
        page.fill("#note", "已责令该网店下架涉案商品并改正")
        page.get_by_role("button", name="报送办理结果").click()
        page.wait_for_url(re.compile(r"done=outcome"))
        content = page.content()
        assert "已办结" in content and "责令改正" in content
        assert "已责令该网店下架涉案商品并改正" in content
        page.goto(f"{page.url.split('?')[0]}?lang=en")
        assert "Outcome" in page.content() and "ordered to correct" in page.content()
        page.close()
    with app.sessions() as session:
        referral = session.get(Referral, referral_id)
        assert referral is not None and referral.status == "closed"
        clock = session.scalar(
            select(Deadline).where(
                Deadline.subject_type == "referral", Deadline.subject_id == referral_id
            )
        )
        assert clock is not None
        assert (clock.status, clock.next_fire_at) == ("met", None)
        # The sweep reads `status = 'open' AND next_fire_at <= as_of`: this clock is gone from it,
        # however late the sweep runs.
        chased = session.scalars(
            select(Deadline.subject_id).where(
                Deadline.subject_type == "referral",
                Deadline.status == "open",
                Deadline.next_fire_at <= datetime.now().astimezone() + timedelta(days=3650),
            )
        ).all()
        assert referral_id not in chased


def test_the_office_signs_in_and_routes_a_held_lead(sqlite_app: App, browser: Any) -> None:
    app = sqlite_app
    with transaction(app.sessions) as session:
        lead_id = make_lead(
            session, status="held", category=None, summary="微信群内销售盗版教辅图书"
        ).id
    portal = app.settings.portal
    with LiveServer(app) as server:
        page = browser.new_page()
        page.goto(f"{server.url}/office/")
        page.fill("input[name=username]", portal.office_user)
        page.fill("input[name=password]", portal.office_password.get_secret_value())
        page.get_by_role("button", name="登录").click()
        page.get_by_role("link", name="待分类线索").click()
        assert "微信群内销售盗版教辅图书" in page.content()
        page.select_option("select[name=category]", "piracy")
        page.get_by_role("button", name="分类并移送").click()
        page.wait_for_url(re.compile(r"done=routed"))
        assert "已分类并移送" in page.content()
        page.close()
    with app.sessions() as session:
        lead = session.get(Lead, lead_id)
        referral = session.scalar(select(Referral).where(Referral.lead_id == lead_id))
        assert lead is not None and lead.status == "referred"
        assert referral is not None and referral.agency_code == "copyright"
