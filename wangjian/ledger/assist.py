"""Assistance requests to platforms (协查): made, chased on an hour clock, answered.

A request asks one platform for data about the shop of a referral or a lead, on a legal basis,
by a time counted in calendar hours (the platform's `sla_hours`). It goes out through the outbox
as an `assist_request` notice (keyed, so queued once) and its clock climbs the configured hour
ladder in the ordinary sweep. The platform answers through its signed link — the data file, or
"no such operator" — or the office records the answer it received another way; either stops the
clock. Every change writes an event in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from wangjian.bootstrap import App
from wangjian.campaign.models import Limit, Platform, Unit
from wangjian.domain.deadlines import DueDate, compute_due
from wangjian.ledger.clocks import clock_of, meet_clock, open_clock
from wangjian.ledger.events import history, record_event
from wangjian.ledger.models import AssistRequest, Lead, Party, Referral
from wangjian.ledger.outbox import notice_key, queue_notices

SUBJECT = "assist"
CLOCK_KIND = "assist_response"
NOTICE_KIND = "assist_request"
ANSWERED, NO_SUCH_OPERATOR = "answered", "no_such_operator"
OUTCOMES = (ANSWERED, NO_SUCH_OPERATOR)
MAX_TEXT = 4000

# What may be asked for, in the words of a 协查函.
ASKED: dict[str, tuple[str, str]] = {
    "identity": (
        "经营者身份信息(注册主体、实名认证信息、联系方式、经营地址)",
        "the operator's identity (registered entity, real-name verification, contact, address)",
    ),
    "sales": ("交易记录(订单明细、销售数量及金额)", "sales records (orders, quantities, amounts)"),
    "listings": (
        "商品发布信息(商品链接、发布及下架时间、页面快照)",
        "listings (links, when published and removed, page snapshots)",
    ),
    "logistics": ("物流及发货信息", "shipping and delivery records"),
    "payments": ("资金结算信息", "payment settlement records"),
}
STATUS: dict[str, tuple[str, str]] = {
    "open": ("待答复", "awaiting answer"),
    ANSWERED: ("已提供数据", "data provided"),
    NO_SUCH_OPERATOR: ("查无此经营者", "no such operator"),
    "cancelled": ("已撤回", "withdrawn"),
}


class AssistRefused(Exception):
    """A request or an answer the ledger cannot take, said in Chinese and English."""

    def __init__(self, zh: str, en: str) -> None:
        super().__init__(en)
        self.zh, self.en = zh, en

    def in_language(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class AssistNotFound(AssistRefused):
    """No such request for this party: the same answer whether it is missing or another's."""

    def __init__(self, assist_id: int) -> None:
        super().__init__(f"未找到协查请求{assist_id}", f"no assistance request {assist_id}")


class AlreadyRequested(AssistRefused):
    """The same data was asked of the same platform about the same item, and is still awaited."""

    def __init__(self, existing: int) -> None:
        super().__init__(
            f"已有相同的协查请求(编号{existing})待平台答复",
            f"the same request (no. {existing}) is already awaiting the platform's answer",
        )
        self.existing = existing


@dataclass(frozen=True)
class AnswerFile:
    """The data file a platform sent, kept under the upload folder (path relative to it)."""

    path: str
    name: str
    sha256: str
    size: int


def platform_of(app: App, code: str) -> Platform:
    platform = app.config.platforms.get(code)
    if platform is None:
        known = "、".join(app.config.platforms) or "无"
        raise AssistRefused(
            f"未配置的平台{code!r}(已配置:{known})",
            f"{code!r} is not a configured platform (known: {', '.join(app.config.platforms)})",
        )
    return platform


def answer_limit(app: App, platform: Platform, legal_basis: str) -> Limit:
    """The platform's answer time: its `sla_hours`, counted in calendar hours."""
    return Limit(
        count=platform.sla_hours,
        unit=Unit.HOURS,
        basis=legal_basis,
        basis_en=app.config.platforms_file.assist_basis_en,
    )


def subject_key(
    platform: str, *, referral_id: int | None, lead_id: int | None, asked: list[str]
) -> str:
    item = f"referral:{referral_id}" if referral_id is not None else f"lead:{lead_id}"
    return f"{platform}|{item}|{','.join(sorted(asked))}"


def request_assistance(
    *,
    session: Session,
    app: App,
    platform_code: str,
    referral_id: int | None = None,
    lead_id: int | None = None,
    asked: list[str],
    detail: str | None,
    legal_basis: str | None = None,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> AssistRequest:
    """Ask a platform for data (协查函): the request, its hour clock and its notice, once."""
    platform = platform_of(app, platform_code)
    party = session.get(Party, platform_code)
    if party is None or party.kind != "platform" or not party.active:
        raise AssistRefused(
            f"平台{platform_code}尚未载入,请先运行 wangjian init",
            f"platform {platform_code} is not in the ledger: run `wangjian init`",
        )
    if (referral_id is None) == (lead_id is None):
        raise AssistRefused(
            "请指定一项移送或一条线索(二者选一)", "name one referral or one lead (not both)"
        )
    if referral_id is not None:
        referral = session.get(Referral, referral_id)
        if referral is None:
            raise AssistRefused(f"未找到移送{referral_id}", f"no referral {referral_id}")
        lead_id_of = referral.lead_id
    else:
        assert lead_id is not None
        if session.get(Lead, lead_id) is None:
            raise AssistRefused(f"未找到线索{lead_id}", f"no lead {lead_id}")
        lead_id_of = lead_id
    wanted = sorted(dict.fromkeys(a.strip() for a in asked if a and a.strip()))
    unknown = [a for a in wanted if a not in ASKED]
    if not wanted or unknown:
        raise AssistRefused(
            f"请选择协查事项({'、'.join(ASKED)})"
            + (f",无法识别:{'、'.join(unknown)}" if unknown else ""),
            f"say what is asked ({', '.join(ASKED)})"
            + (f"; unknown: {', '.join(unknown)}" if unknown else ""),
        )
    detail = (detail or "").strip() or None
    basis = (legal_basis or "").strip() or app.config.platforms_file.assist_basis
    if (detail and len(detail) > MAX_TEXT) or len(basis) > MAX_TEXT:
        raise AssistRefused(f"说明超过{MAX_TEXT}字", f"text longer than {MAX_TEXT} characters")
    key = subject_key(platform_code, referral_id=referral_id, lead_id=lead_id, asked=wanted)
    existing = session.scalar(
        select(AssistRequest.id).where(
            AssistRequest.subject_key == key, AssistRequest.status == "open"
        )
    )
    if existing is not None:
        raise AlreadyRequested(existing)
    due = compute_due(app.calendar, at, answer_limit(app, platform, basis), tz=app.tz)
    request = AssistRequest(
        platform_code=platform_code,
        referral_id=referral_id,
        lead_id=lead_id_of,
        asked=wanted,
        detail=detail,
        legal_basis=basis,
        subject_key=key,
        requested_by=actor,
        requested_at=at,
        due_at=due.due_at,
        status="open",
    )
    session.add(request)
    session.flush()
    clock = open_clock(
        session,
        app,
        subject_type=SUBJECT,
        subject_id=request.id,
        kind=CLOCK_KIND,
        party=platform_code,
        ladder=app.config.platforms_file.assist_ladder,
        due=due,
    )
    session.flush()
    queue_notices(
        session,
        [
            {
                "key": notice_key(
                    recipient=party.contact_email,
                    subject_type=SUBJECT,
                    subject_id=request.id,
                    kind=NOTICE_KIND,
                ),
                "kind": NOTICE_KIND,
                "party": platform_code,
                "audience": "contact",
                "recipient": party.contact_email,
                "cc": [],
                "subject_type": SUBJECT,
                "subject_id": request.id,
                "deadline_id": clock.id,
                "step": None,
                "group_key": f"assist:{request.id}",
                "context": {"due_at": due.due_at.isoformat(), "version": clock.version},
                "status": "queued",
            }
        ],
    )
    record_event(
        session,
        actor=actor,
        action="assist.requested",
        subject_type=SUBJECT,
        subject_id=request.id,
        at=at,
        origin=origin,
        data={
            "platform": platform_code,
            "referral_id": referral_id,
            "lead_id": lead_id_of,
            "asked": wanted,
            "due_at": due.due_at.isoformat(),
            "explanation": due.explain(),
        },
    )
    return request


def answer_assistance(
    *,
    session: Session,
    app: App,
    assist_id: int,
    platform_code: str | None,
    outcome: str,
    file: AnswerFile | None = None,
    note: str | None = None,
    actor: str,
    at: datetime,
    origin: str | None = None,
) -> AssistRequest:
    """The platform's answer (`platform_code` its own), or the office's record of one (None):
    the data file, or no such operator. Stops the clock."""
    request = session.get(AssistRequest, assist_id, with_for_update=True)
    if request is None or (platform_code is not None and request.platform_code != platform_code):
        raise AssistNotFound(assist_id)
    if request.status != "open":
        label = STATUS.get(request.status, (request.status, request.status))
        raise AssistRefused(
            f"该协查请求已办结({label[0]}),不能再次答复",
            f"this request is already closed ({label[1]}) and cannot be answered again",
        )
    note = (note or "").strip() or None
    if note and len(note) > MAX_TEXT:
        raise AssistRefused(
            f"说明超过{MAX_TEXT}字", f"the note is longer than {MAX_TEXT} characters"
        )
    if outcome == ANSWERED:
        if file is None and (platform_code is not None or not note):
            raise AssistRefused(
                "请上传数据文件"
                + ("" if platform_code is not None else ",或说明数据以何种方式收到"),
                "upload the data file"
                + ("" if platform_code is not None else ", or say how the data arrived"),
            )
    elif outcome == NO_SUCH_OPERATOR:
        if file is not None:
            raise AssistRefused(
                "答复“查无此经营者”时不附数据文件", "no data file goes with 'no such operator'"
            )
    else:
        raise AssistRefused(
            "请选择答复方式:提供数据或查无此经营者", "choose: provide the data, or no such operator"
        )
    request.status, request.answered_at, request.answered_by = outcome, at, actor
    request.answer_note = note
    if file is not None:
        request.answer_file, request.answer_file_name = file.path, file.name[:200]
        request.answer_file_sha256 = file.sha256
    meet_clock(session, subject_type=SUBJECT, subject_id=request.id, at=at)
    hours = (at - request.requested_at).total_seconds() / 3600
    record_event(
        session,
        actor=actor,
        action=f"assist.{outcome}",
        subject_type=SUBJECT,
        subject_id=request.id,
        at=at,
        origin=origin,
        data={
            "platform": request.platform_code,
            "hours": round(hours, 2),
            "on_time": at <= request.due_at,
            "recorded_by_office": platform_code is None,
            "file": {"name": file.name, "size": file.size, "sha256": file.sha256} if file else None,
        },
    )
    return request


# --- reading back ------------------------------------------------------------------------------


def list_assist_requests(
    session: Session,
    app: App,
    *,
    now: datetime,
    platform_code: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Requests with their platform, item, due time and answer, open and overdue first."""
    query = (
        select(AssistRequest, Party.name_zh, Party.name_en, Lead)
        .join(Party, Party.code == AssistRequest.platform_code)
        .outerjoin(Lead, Lead.id == AssistRequest.lead_id)
    )
    if platform_code is not None:
        query = query.where(AssistRequest.platform_code == platform_code)
    if status == "overdue":
        query = query.where(AssistRequest.status == "open", AssistRequest.due_at < now)
    elif status:
        query = query.where(AssistRequest.status == status)
    query = query.order_by((AssistRequest.status != "open"), AssistRequest.due_at, AssistRequest.id)
    if limit:
        query = query.limit(limit)
    rows = []
    for request, name_zh, name_en, lead in session.execute(query).tuples():
        rows.append(
            assist_view(app, request, lead, now=now)
            | {"platform_name": name_zh, "platform_name_en": name_en}
        )
    return rows


def assist_view(
    app: App, request: AssistRequest, lead: Lead | None, *, now: datetime
) -> dict[str, Any]:
    """A request as plain data: what, about whom, by when, how long the answer took."""
    open_ = request.status == "open"
    took = (
        (request.answered_at - request.requested_at).total_seconds() / 3600
        if request.answered_at
        else None
    )
    late = (now - request.due_at).total_seconds() / 3600 if open_ else 0.0
    return {
        "id": request.id,
        "platform": request.platform_code,
        "referral_id": request.referral_id,
        "lead_id": request.lead_id,
        "asked": list(request.asked or []),
        "detail": request.detail,
        "legal_basis": request.legal_basis,
        "status": request.status,
        "overdue": open_ and late > 0,
        "hours_overdue": round(max(late, 0.0), 1),
        "requested_by": request.requested_by,
        "requested_at": request.requested_at.astimezone(app.tz),
        "due_at": request.due_at.astimezone(app.tz),
        "answered_at": request.answered_at.astimezone(app.tz) if request.answered_at else None,
        "answered_by": request.answered_by,
        "answer_hours": round(took, 1) if took is not None else None,
        "answer_file_name": request.answer_file_name,
        "answer_note": request.answer_note,
        "shop": _shop(lead),
    }


def _shop(lead: Lead | None) -> dict[str, Any] | None:
    """What a platform needs to find the shop: identifiers only, never the case's evidence."""
    if lead is None:
        return None
    return {
        "platform": lead.platform,
        "shop_name": lead.shop_name,
        "url": lead.url,
        "operator_name": lead.operator_name,
        "credit_code": lead.credit_code,
        "region_code": lead.region_code,
    }


def assist_detail(
    session: Session, app: App, *, assist_id: int, platform_code: str | None, now: datetime
) -> dict[str, Any]:
    """One request for its platform (or the office: None), with its clock and history."""
    request = session.get(AssistRequest, assist_id)
    if request is None or (platform_code is not None and request.platform_code != platform_code):
        raise AssistNotFound(assist_id)
    lead = session.get(Lead, request.lead_id) if request.lead_id else None
    party = session.get(Party, request.platform_code)
    view = assist_view(app, request, lead, now=now)
    clock = clock_of(session, subject_type=SUBJECT, subject_id=request.id)
    # The limit as it was when the request was made (the configuration may have changed since).
    hours = round((request.due_at - request.requested_at).total_seconds() / 3600)
    due = DueDate(
        due_on=request.due_at.astimezone(app.tz).date(),
        due_at=request.due_at.astimezone(app.tz),
        start=request.requested_at.astimezone(app.tz),
        unit=Unit.HOURS,
        count=hours,
        rule="按自然小时连续计算",
    )
    return {
        **view,
        "platform_name": party.name_zh if party else request.platform_code,
        "platform_name_en": party.name_en if party else request.platform_code,
        "due_explanation": due.explain(),
        "clock": {
            "status": clock.status,
            "last_step": clock.last_step,
            "escalated_at": clock.escalated_at,
        }
        if clock
        else None,
        "events": [
            {"at": e.at.astimezone(app.tz), "actor": e.actor, "action": e.action}
            for e in history(session, subject_type=SUBJECT, subject_id=request.id)
        ],
    }


def assist_counts(session: Session, *, now: datetime) -> dict[str, int]:
    """Open and overdue requests, for the office's overview."""
    open_ = session.scalar(
        select(func.count()).select_from(AssistRequest).where(AssistRequest.status == "open")
    )
    overdue = session.scalar(
        select(func.count())
        .select_from(AssistRequest)
        .where(AssistRequest.status == "open", AssistRequest.due_at < now)
    )
    return {"open": int(open_ or 0), "overdue": int(overdue or 0)}
