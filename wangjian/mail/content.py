"""What a message says: its notices' subjects loaded from the ledger in bulk, then rendered.

A notice carries only ids, dates and its step; when a batch of messages is sent, the referrals,
leads, clocks, obligations and parties they name are read with a handful of queries and handed
to the templates as plain data (the sandbox never sees an ORM object that could lazy-load).
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateNotFound
from openpyxl import Workbook
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from wangjian.access import portal_link
from wangjian.campaign.models import Limit, SlaPolicy
from wangjian.domain.deadlines import DueDate, compute_due
from wangjian.domain.listed import LIST_KINDS
from wangjian.ledger.assist import ASKED
from wangjian.ledger.models import (
    AssistRequest,
    Base,
    Deadline,
    Lead,
    ListedOperator,
    Message,
    Notice,
    Obligation,
    Party,
    Referral,
)
from wangjian.mail.envelope import (
    XLSX,
    Attachment,
    BadAddress,
    build_email,
    clean_header,
    mailbox,
    sender_address,
)
from wangjian.mail.render import (
    Renderer,
    RenderError,
    Section,
    candidates,
    template_environment,
    template_folders,
)
from wangjian.mail.transport import Outgoing

if TYPE_CHECKING:
    from wangjian.bootstrap import App

OBLIGATION_KINDS = frozenset(
    {"implementation_plan", "monthly_report", "deliverable", "summary_package"}
)
ESCALATIONS = frozenset({"leader", "supervision"})
ASSIST_STEPS = {
    "reminder": "assist_reminder",
    "due_today": "assist_reminder",
    "overdue": "assist_overdue",
    "leader": "assist_escalation",
    "supervision": "assist_escalation",
}
PRE_DEADLINE_OR_OVERDUE = frozenset({"reminder", "due_today", "overdue"})
IN_CHUNK = 5000


@dataclass
class Draft:
    """One message made ready to send, or the reason it could not be."""

    message_id: int
    mail: Outgoing | None = None
    subject: str | None = None
    error: str | None = None
    # Notices no longer worth telling (their clock stopped or restarted since they were
    # queued); when every notice is, there is no mail and the message is cancelled.
    withdrawn: list[int] = field(default_factory=list)


@dataclass
class Subjects:
    """Everything a batch of notices talks about, keyed by id."""

    parties: dict[str, dict[str, Any]] = field(default_factory=dict)
    referrals: dict[int, dict[str, Any]] = field(default_factory=dict)
    leads: dict[int, dict[str, Any]] = field(default_factory=dict)
    deadlines: dict[int, dict[str, Any]] = field(default_factory=dict)
    clock_of: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    obligations: dict[int, dict[str, Any]] = field(default_factory=dict)
    assists: dict[int, dict[str, Any]] = field(default_factory=dict)
    listings: dict[int, dict[str, Any]] = field(default_factory=dict)


@dataclass
class Batch:
    """Claimed messages with their notices and subjects, read in one go."""

    messages: list[Message]
    notices: dict[int, list[Notice]]
    subjects: Subjects


def _plain(row: Base) -> dict[str, Any]:
    plain = {c.key: getattr(row, c.key) for c in row.__table__.columns}
    if isinstance(row, Referral):
        plain["policy"] = row.policy  # kept apart, once per policy (FrozenPolicy)
    return plain


def _chunks(values: Iterable[Any]) -> Iterable[list[Any]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), IN_CHUNK):
        yield ordered[start : start + IN_CHUNK]


def _load(session: Session, model: Any, column: Any, ids: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for chunk in _chunks(ids):
        out.extend(session.scalars(select(model).where(column.in_(chunk))))
    return out


def load_subjects(session: Session, notices: Sequence[Notice]) -> Subjects:
    """Read what the notices name with one query per kind of thing."""
    found = Subjects(parties={p.code: _plain(p) for p in session.scalars(select(Party))})
    by_type: dict[str, set[int]] = defaultdict(set)
    for notice in notices:
        by_type[notice.subject_type].add(notice.subject_id)
    clocks = _load(
        session, Deadline, Deadline.id, (n.deadline_id for n in notices if n.deadline_id)
    )
    for subject_type, ids in by_type.items():
        for chunk in _chunks(ids):
            clocks += session.scalars(
                select(Deadline).where(
                    Deadline.subject_type == subject_type, Deadline.subject_id.in_(chunk)
                )
            )
    for clock in clocks:
        data = _plain(clock)
        found.deadlines[clock.id] = data
        found.clock_of[(clock.subject_type, clock.subject_id)] = data
        by_type[clock.subject_type].add(clock.subject_id)
    referrals = _load(session, Referral, Referral.id, by_type.get("referral", ()))
    found.referrals = {r.id: _plain(r) for r in referrals}
    found.leads = {
        lead.id: _plain(lead)
        for lead in _load(session, Lead, Lead.id, (r.lead_id for r in referrals))
    }
    found.obligations = {
        o.id: _plain(o)
        for o in _load(session, Obligation, Obligation.id, by_type.get("obligation", ()))
    }
    found.assists = {
        a.id: _plain(a)
        for a in _load(session, AssistRequest, AssistRequest.id, by_type.get("assist", ()))
    }
    # An assistance request names its shop through its lead.
    wanted = {a["lead_id"] for a in found.assists.values() if a["lead_id"]} - set(found.leads)
    found.leads.update({lead.id: _plain(lead) for lead in _load(session, Lead, Lead.id, wanted)})
    found.listings = {
        listing.id: _plain(listing)
        for listing in _load(session, ListedOperator, ListedOperator.id, by_type.get("listed", ()))
    }
    return found


class MessageBuilder:
    """Turns claimed `Message` rows into e-mails, for one App at one as-of time."""

    def __init__(self, app: App, *, as_of: datetime) -> None:
        self.app = app
        self.config = app.config
        self.settings = app.settings
        self.as_of = as_of.astimezone(app.tz)
        self.today = self.as_of.date()
        self.env = template_environment(template_folders(app.settings.templates_dir))
        self.sender = sender_address(app.settings, app.config)
        self._due: dict[tuple[datetime, Limit, int], DueDate | None] = {}

    # --- the batch -------------------------------------------------------------------------

    def load(self, session: Session, messages: Sequence[Message]) -> Batch:
        """Read the notices of `messages` and all they name (a short read, then no session)."""
        notices = _load(session, Notice, Notice.message_id, (m.id for m in messages))
        notices.sort(key=lambda n: n.id)
        by_message: dict[int, list[Notice]] = defaultdict(list)
        for notice in notices:
            if notice.message_id is not None:
                by_message[notice.message_id].append(notice)
        return Batch(list(messages), by_message, load_subjects(session, notices))

    def render(self, batch: Batch) -> list[Draft]:
        """Drafts for the batch's messages, in order; one that cannot be built says why."""
        book = self._address_book(batch.subjects.parties)
        drafts = []
        for message in batch.messages:
            draft = Draft(message_id=message.id)
            drafts.append(draft)
            notices = batch.notices.get(message.id, [])
            live = [n for n in notices if self._still_due(n, batch.subjects)]
            draft.withdrawn = [n.id for n in notices if n not in live]
            if notices and not live:
                continue
            try:
                draft.mail, draft.subject = self._one(message, live, batch.subjects, book)
            except (RenderError, BadAddress) as exc:
                draft.error = f"{type(exc).__name__}: {exc}"
        return drafts

    def _still_due(self, notice: Notice, subjects: Subjects) -> bool:
        """False for a ladder notice whose clock has stopped or restarted since it was queued:
        resolving an item stops its reminders even when they wait in the outbox."""
        if notice.kind not in PRE_DEADLINE_OR_OVERDUE | ESCALATIONS:
            return True
        clock = _clock(notice, subjects)
        if clock is None:
            return True
        version = (notice.context or {}).get("version")
        return clock["status"] == "open" and (version is None or version == clock["version"])

    # --- one message -----------------------------------------------------------------------

    def _one(
        self,
        message: Message,
        notices: list[Notice],
        subjects: Subjects,
        book: dict[str, dict[str, str]],
    ) -> tuple[Outgoing, str]:
        if not notices:
            raise RenderError("the message has no notices")
        locale = message.locale or self.settings.locale
        items = [self._item(n, subjects) for n in notices]
        sections = self._sections(items, locale=locale, agency=_single(n.party for n in notices))
        party = subjects.parties.get(message.party)
        context = self._context(message, party, book, locale)
        renderer = Renderer(self.env, locale=locale, agency=party["code"] if party else None)
        rendered = renderer.render(sections, context)
        attachments = []
        referral_items = [i for s in sections if s.template == "digest" for i in s.items]
        if referral_items:
            attachments.append(self._workbook(referral_items, message, locale))
        listed_items = [i for s in sections if s.template == "listed_digest" for i in s.items]
        if listed_items:
            attachments.append(self._listed_workbook(listed_items, message, locale))
        to = book.get(message.recipient.lower(), {})
        mail = build_email(
            message_id=message.message_id_header,
            sender=self.sender,
            to=mailbox(message.recipient, _display(to, locale)),
            cc=[mailbox(a, _display(book.get(a.lower(), {}), locale)) for a in message.cc],
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            date=self.as_of,
            language="zh-CN" if locale == "zh" else locale,
            attachments=attachments,
            extra_headers={"X-Wangjian-Kind": message.kind},
        )
        # The envelope sender (where bounces go) is the From address; every To and Cc receives.
        recipients = [message.recipient, *message.cc]
        outgoing = Outgoing.of(mail, sender=self.sender.addr_spec, recipients=recipients)
        return outgoing, clean_header(rendered.subject)

    def _context(
        self,
        message: Message,
        party: dict[str, Any] | None,
        book: dict[str, dict[str, str]],
        locale: str,
    ) -> dict[str, Any]:
        campaign = self.config.campaign
        recipient = book.get(message.recipient.lower(), {})
        return {
            "locale": locale,
            "campaign": {
                "code": campaign.code,
                "name": campaign.name,
                "name_en": campaign.name_en,
                "year": campaign.year,
            },
            "office": {
                "name": campaign.office.name,
                "name_en": campaign.office.name_en or campaign.office.name,
                "unit": campaign.office.unit,
                "email": campaign.office.email,
            },
            "leading_group": {
                "name": campaign.leading_group.name,
                "name_en": campaign.leading_group.name_en or campaign.leading_group.name,
                "email": campaign.leading_group.email,
            },
            "recipient": {
                "email": message.recipient,
                "name": recipient.get("name", ""),
                "organisation": recipient.get("org_zh", ""),
                "organisation_en": recipient.get("org_en", ""),
            },
            "party": _party_view(party) if party else None,
            "link": self._link(party) if party else None,
            "cc": [
                {"email": a, **book.get(a.lower(), {"name": "", "org_zh": "", "org_en": ""})}
                for a in message.cc
            ],
            "as_of": self.as_of,
            "today": self.today,
            "part": message.part,
            "parts": message.parts,
            "group_key": message.group_key,
        }

    # --- items and sections ----------------------------------------------------------------

    def _item(self, notice: Notice, subjects: Subjects) -> dict[str, Any]:
        clock = _clock(notice, subjects)
        party = subjects.parties.get(notice.party)
        item: dict[str, Any] = {
            "notice": {
                "key": notice.key,
                "kind": notice.kind,
                "step": notice.step or notice.kind,
                "audience": notice.audience,
                "context": dict(notice.context or {}),
            },
            "kind": notice.kind,
            "step": notice.step or notice.kind,
            "audience": notice.audience,
            "agency": _party_view(party) if party else {"code": notice.party},
            "link": self._link(party, _answer_path(notice.subject_type, notice.subject_id))
            if party
            else None,
            "subject_type": notice.subject_type,
            "subject_id": notice.subject_id,
            "deadline": self._clock_view(clock, notice) if clock else None,
            "referral": None,
            "lead": None,
            "category": None,
            "obligation": None,
            "assist": None,
            "listed": None,
        }
        if notice.subject_type == "referral":
            referral = subjects.referrals.get(notice.subject_id)
            if referral is None:
                raise RenderError(f"notice {notice.key}: referral {notice.subject_id} not found")
            lead = subjects.leads.get(referral["lead_id"])
            item.update(self._referral_view(referral, lead))
        elif notice.subject_type == "obligation":
            obligation = subjects.obligations.get(notice.subject_id)
            if obligation is None:
                raise RenderError(f"notice {notice.key}: obligation {notice.subject_id} not found")
            item["obligation"] = self._obligation_view(obligation)
        elif notice.subject_type == "assist":
            assist = subjects.assists.get(notice.subject_id)
            if assist is None:
                raise RenderError(f"notice {notice.key}: assist {notice.subject_id} not found")
            item["assist"] = self._assist_view(assist, subjects.leads.get(assist["lead_id"]))
        elif notice.subject_type == "listed":
            listing = subjects.listings.get(notice.subject_id)
            if listing is None:
                raise RenderError(f"notice {notice.key}: listing {notice.subject_id} not found")
            item["listed"] = self._listing_view(listing, notice)
        item["title"], item["title_en"] = _titles(item)
        return item

    def _sections(
        self, items: list[dict[str, Any]], *, locale: str, agency: str | None
    ) -> list[Section]:
        referrals = [i for i in items if i["kind"] == "referral"]
        grouped: dict[tuple[str, str], list[dict[str, Any]]] = {}
        if len(referrals) > 1:
            grouped[("digest", referrals[0]["audience"])] = referrals
            items = [i for i in items if i["kind"] != "referral"]
        for item in items:
            name = self._template_for(item, locale=locale, agency=agency)
            grouped.setdefault((name, item["audience"]), []).append(item)
        return [Section(template=n, audience=a, items=i) for (n, a), i in grouped.items()]

    def _template_for(self, item: dict[str, Any], *, locale: str, agency: str | None) -> str:
        """Which template tells this item (see templates/README.md)."""
        kind = item["kind"]
        if item["assist"] and kind in ASSIST_STEPS:
            # The platform's chase speaks of hours and of its data, not of an agency's referral.
            return ASSIST_STEPS[kind]
        if kind in PRE_DEADLINE_OR_OVERDUE and item["deadline"]:
            clock_kind = item["deadline"]["kind"]
            return clock_kind if clock_kind in OBLIGATION_KINDS else kind
        if kind == "referral" or kind in ESCALATIONS or kind in PRE_DEADLINE_OR_OVERDUE:
            return kind
        # A kind another part of the system queues without a template of its own yet.
        try:
            self.env.select_template(candidates(f"{kind}.txt", locale=locale, agency=agency))
        except TemplateNotFound:
            return "notice"
        return kind

    # --- views of the ledger rows ----------------------------------------------------------

    def _referral_view(
        self, referral: dict[str, Any], lead: dict[str, Any] | None
    ) -> dict[str, Any]:
        policy = self._policy(referral)
        outcome_limit = policy.outcome
        if lead and lead.get("listed_operator_id") and policy.listed_operator_outcome:
            outcome_limit = policy.listed_operator_outcome
        received = referral["received_at"]
        view = dict(referral)
        view.update(
            received_on=received.astimezone(self.app.tz).date(),
            ack_explanation=self._explain(received, policy.acknowledge, referral["ack_due_on"]),
            due_explanation=self._explain(
                received, outcome_limit, referral["due_on"], extra=referral["extension_days"]
            ),
            policy={
                "title": policy.title,
                "title_en": policy.title_en,
                "acknowledge": _limit_view(policy.acknowledge),
                "outcome": _limit_view(outcome_limit),
            },
        )
        category = self.config.categories.get(referral.get("category") or "")
        return {
            "referral": view,
            "lead": lead,
            "category": {
                "code": category.code,
                "name": category.name_zh,
                "name_en": category.name_en,
                "legal_basis": category.legal_basis,
            }
            if category
            else None,
        }

    def _policy(self, referral: dict[str, Any]) -> SlaPolicy:
        try:
            return SlaPolicy.model_validate(referral["policy"])
        except ValidationError:
            # The policy frozen on the referral is authoritative; the config's is a fallback
            # for rows written in another shape.
            policies = self.config.sla.policies
            return policies.get(referral["kind"]) or policies["referral"]

    def _explain(self, start: datetime, limit: Limit, due_on: date, *, extra: int = 0) -> str:
        """How a due date was computed, when the rule reproduces it; else the date alone."""
        key = (start, limit, extra)
        if key not in self._due:
            # Referrals of one dispatch share their start and limit: compute each once.
            try:
                self._due[key] = compute_due(
                    self.app.calendar, start, limit, tz=self.app.tz, extra=extra
                )
            except ValueError:
                self._due[key] = None
        due = self._due[key]
        if due is not None and due.due_on == due_on:
            return due.explain()
        return f"截止{due_on.isoformat()}。"

    def _clock_view(self, clock: dict[str, Any], notice: Notice) -> dict[str, Any]:
        view = dict(clock)
        due_on = _as_date(notice.context.get("due_on")) if notice.context else None
        due_on = due_on or clock["due_on"]
        view["due_on"] = due_on
        view["days_left"] = max((due_on - self.today).days, 0)
        view["overdue_days"] = max((self.today - due_on).days, 0)
        try:
            late = self.app.calendar.working_days_between(due_on, self.today)
        except ValueError:
            late = view["overdue_days"]
        view["overdue_working_days"] = max(late, 0)
        # Hour clocks (assistance requests) are told to the hour.
        due_at = clock["due_at"].astimezone(self.app.tz)
        hours = (self.as_of - due_at).total_seconds() / 3600
        view["due_at"] = due_at
        view["hours_overdue"] = max(math.ceil(hours), 0)
        view["hours_left"] = max(math.ceil(-hours), 0)
        return view

    def _assist_view(self, assist: dict[str, Any], lead: dict[str, Any] | None) -> dict[str, Any]:
        view = dict(assist)
        platform = self.config.platforms.get(assist["platform_code"])
        requested = assist["requested_at"].astimezone(self.app.tz)
        due_at = assist["due_at"].astimezone(self.app.tz)
        hours = round((due_at - requested).total_seconds() / 3600)
        view.update(
            requested_at=requested,
            due_at=due_at,
            hours=hours,
            explanation=(
                f"自{requested:%Y-%m-%d %H:%M}发出起,按自然小时连续计算(不扣除夜间、周末和节假日),"
                f"{hours}小时,截止{due_at:%Y-%m-%d %H:%M}。"
            ),
            asked_items=[
                {
                    "code": code,
                    "zh": ASKED.get(code, (code, code))[0],
                    "en": ASKED.get(code, (code, code))[1],
                }
                for code in assist["asked"] or []
            ],
            legal_basis_en=self.config.platforms_file.assist_basis_en
            if assist["legal_basis"] == self.config.platforms_file.assist_basis
            else None,
            platform_name=platform.name_zh if platform else assist["platform_code"],
            platform_name_en=platform.name_en if platform else assist["platform_code"],
            shop={
                key: (lead or {}).get(key)
                for key in ("platform", "shop_name", "url", "operator_name", "credit_code")
            },
        )
        return view

    def _listing_view(self, listing: dict[str, Any], notice: Notice) -> dict[str, Any]:
        view = dict(listing)
        zh, en = LIST_KINDS.get(listing["list_kind"], (listing["list_kind"], listing["list_kind"]))
        platform = self.config.platforms.get(listing["platform"] or "")
        view.update(
            list_kind_zh=zh,
            list_kind_en=en,
            platform_name=platform.name_zh if platform else listing["platform"],
            platform_name_en=platform.name_en if platform else listing["platform"],
            relation=(notice.context or {}).get("relation"),
            delisted=notice.step == "delisted",
        )
        return view

    def _obligation_view(self, obligation: dict[str, Any]) -> dict[str, Any]:
        view = dict(obligation)
        deadlines = self.config.deadlines
        asked = obligation["requirements"] or {}
        # What the obligation asks: its own requirements first, the campaign's defaults after.
        view.update(requires=[], min_typical_cases=0, penalty_decision_required=False)
        view.update(copy_to=None, title_en=_obligation_title_en(self.config, obligation))
        if obligation["kind"] == "summary_package":
            package = deadlines.summary_package
            view.update(
                requires=asked.get("requires", list(package.requires)),
                min_typical_cases=asked.get("min_typical_cases", package.min_typical_cases),
                penalty_decision_required=package.penalty_decision_required,
                copy_to=package.copy_to,
            )
        elif obligation["kind"] == "deliverable":
            spec = next((d for d in deadlines.deliverables if d.code == obligation["code"]), None)
            if spec:
                view.update(
                    min_typical_cases=asked.get("min_typical_cases", spec.min_typical_cases),
                    penalty_decision_required=spec.penalty_decision_required,
                    title_en=spec.title_en,
                )
        return view

    def _link(self, party: dict[str, Any], path: str = "") -> str:
        portal = self.settings.portal
        return portal_link(
            portal.base_url,
            portal.secret_key.get_secret_value(),
            party=party["code"],
            version=party["token_version"],
            path=path,
        )

    def _address_book(self, parties: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
        """Who an address is, for display names and the 'copied to' line."""
        campaign = self.config.campaign
        book: dict[str, dict[str, str]] = {}
        for p in parties.values():
            for email, person in (
                (p["contact_email"], p["contact_name"]),
                (p["leader_email"], p["leader_name"]),
            ):
                if email:
                    book.setdefault(
                        email.lower(),
                        {"name": person or "", "org_zh": p["name_zh"], "org_en": p["name_en"]},
                    )
        for unit in (campaign.office, campaign.leading_group):
            book[unit.email.lower()] = {
                "name": "",
                "org_zh": unit.name,
                "org_en": unit.name_en or unit.name,
            }
        return book

    def _listed_workbook(
        self, items: list[dict[str, Any]], message: Message, locale: str
    ) -> Attachment:
        content = listed_workbook(items, locale=locale, created=self.as_of)
        stem = "共享名单" if locale == "zh" else "listed-operators"
        part = f"_{message.part}-{message.parts}" if message.parts > 1 else ""
        name = f"{stem}_{message.party}_{self.today:%Y%m%d}{part}.xlsx"
        return Attachment(filename=name, content=content, maintype=XLSX[0], subtype=XLSX[1])

    def _workbook(self, items: list[dict[str, Any]], message: Message, locale: str) -> Attachment:
        content = referrals_workbook(items, locale=locale, created=self.as_of)
        stem = "移送线索清单" if locale == "zh" else "referrals"
        part = f"_{message.part}-{message.parts}" if message.parts > 1 else ""
        name = f"{stem}_{message.party}_{self.today:%Y%m%d}{part}.xlsx"
        return Attachment(filename=name, content=content, maintype=XLSX[0], subtype=XLSX[1])


# --- the referrals workbook of a digest --------------------------------------------------------

_COLUMNS = [
    ("移送编号", "referral id", lambda i: i["referral"]["id"]),
    ("线索来源", "source", lambda i: (i["lead"] or {}).get("source")),
    ("线索编号", "lead id", lambda i: (i["lead"] or {}).get("source_lead_id")),
    ("违法类别", "category", lambda i: (i["category"] or {}).get("name")),
    ("平台", "platform", lambda i: (i["lead"] or {}).get("platform")),
    ("店铺", "shop", lambda i: (i["lead"] or {}).get("shop_name")),
    ("经营者", "operator", lambda i: (i["lead"] or {}).get("operator_name")),
    ("统一社会信用代码", "credit code", lambda i: (i["lead"] or {}).get("credit_code")),
    ("行政区划", "region", lambda i: (i["lead"] or {}).get("region_code")),
    ("链接", "url", lambda i: (i["lead"] or {}).get("url")),
    ("线索摘要", "summary", lambda i: (i["lead"] or {}).get("summary")),
    ("涉嫌犯罪", "suspected crime", lambda i: (i["lead"] or {}).get("suspected_crime")),
    ("涉案金额(元)", "amount (yuan)", lambda i: (i["lead"] or {}).get("amount_yuan")),
    ("移送理由", "why this agency", lambda i: i["referral"]["reason"]),
    ("签收期限", "acknowledge by", lambda i: i["referral"]["ack_due_on"]),
    ("办结期限", "outcome due", lambda i: i["referral"]["due_on"]),
    ("期限计算", "how the date was computed", lambda i: i["referral"]["due_explanation"]),
    ("答复链接", "answer link", lambda i: i["link"]),
]


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@"):
        # Input text starting like a formula must stay text in the office's spreadsheet.
        return "'" + value
    if isinstance(value, bool):
        return "是" if value else "否"
    if value is None:
        return ""
    return value if isinstance(value, int | float | date | str) else str(value)


def referrals_workbook(items: Sequence[dict[str, Any]], *, locale: str, created: datetime) -> bytes:
    """An XLSX listing the referrals of a digest, one row each."""
    book = Workbook(write_only=True)
    book.properties.created = book.properties.modified = created.replace(tzinfo=None)
    sheet = book.create_sheet("移送线索" if locale == "zh" else "referrals")
    sheet.append([zh if locale == "zh" else en for zh, en, _ in _COLUMNS])
    for item in items:
        sheet.append([_cell(get(item)) for _, _, get in _COLUMNS])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


_LISTED_COLUMNS = [
    ("变动", "change", lambda i: "移出名单" if i["listed"]["delisted"] else "新列入"),
    ("名录类型", "list", lambda i: i["listed"]["list_kind_zh"]),
    ("统一社会信用代码", "credit code", lambda i: i["listed"]["credit_code"]),
    ("经营者", "operator", lambda i: i["listed"]["operator_name"]),
    ("平台", "platform", lambda i: i["listed"]["platform_name"]),
    ("店铺", "shop", lambda i: i["listed"]["shop_name"]),
    ("店铺编号", "shop id", lambda i: i["listed"]["shop_id"]),
    ("行政区划", "region", lambda i: i["listed"]["region_code"]),
    ("原因", "reason", lambda i: i["listed"]["reason"]),
    ("列入日期", "listed on", lambda i: i["listed"]["listed_on"]),
    ("移出日期", "delisted on", lambda i: i["listed"]["delisted_on"]),
    (
        "与本平台关系",
        "on your platform",
        lambda i: "本平台" if i["listed"]["relation"] == "hosts" else "可能入驻",
    ),
]


def listed_workbook(items: Sequence[dict[str, Any]], *, locale: str, created: datetime) -> bytes:
    """An XLSX of a digest's listed and delisted operators, for the platform's own checks."""
    book = Workbook(write_only=True)
    book.properties.created = book.properties.modified = created.replace(tzinfo=None)
    sheet = book.create_sheet("共享名单" if locale == "zh" else "listed operators")
    sheet.append([zh if locale == "zh" else en for zh, en, _ in _LISTED_COLUMNS])
    for item in items:
        sheet.append([_cell(get(item)) for _, _, get in _LISTED_COLUMNS])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


# --- small helpers -----------------------------------------------------------------------------


def _clock(notice: Notice, subjects: Subjects) -> dict[str, Any] | None:
    return subjects.deadlines.get(notice.deadline_id or 0) or subjects.clock_of.get(
        (notice.subject_type, notice.subject_id)
    )


def _single(values: Iterable[str]) -> str | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def _party_view(party: dict[str, Any]) -> dict[str, Any]:
    keys = ("code", "kind", "name_zh", "name_en", "contact_name", "leader_name", "region_code")
    return {k: party.get(k) for k in keys}


def _display(entry: dict[str, str], locale: str) -> str:
    org = entry.get("org_zh" if locale == "zh" else "org_en", "")
    return f"{org} {entry.get('name', '')}".strip()


def _answer_path(subject_type: str, subject_id: int) -> str:
    """Where the portal answers one item (the party's home page otherwise)."""
    if subject_type == "listed":
        return "listed"
    paths = {"referral": "referrals", "obligation": "reports", "assist": "assists"}
    return f"{paths[subject_type]}/{subject_id}" if subject_type in paths else ""


def _limit_view(limit: Limit) -> dict[str, Any]:
    return {
        "count": limit.count,
        "unit": limit.unit.value,
        "extendable_by": limit.extendable_by,
        "basis": limit.basis,
        "basis_en": limit.basis_en or limit.basis,
    }


def _as_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value) >= 10:
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _obligation_title_en(config: Any, obligation: dict[str, Any]) -> str:
    deadlines = config.deadlines
    spec = {
        "implementation_plan": deadlines.implementation_plan,
        "monthly_report": deadlines.monthly_report,
        "summary_package": deadlines.summary_package,
    }.get(obligation["kind"])
    return getattr(spec, "title_en", None) or obligation["title"]


def _titles(item: dict[str, Any]) -> tuple[str, str]:
    """A one-line name for the item in Chinese and in English (subjects and lists use it)."""
    if item["referral"]:
        lead = item["lead"] or {}
        who = lead.get("shop_name") or lead.get("operator_name") or lead.get("source_lead_id") or ""
        category = item["category"] or {}
        code = item["referral"].get("category") or ""
        return (
            f"{category.get('name') or code} {who}".strip(),
            f"{category.get('name_en') or code} {who}".strip(),
        )
    if item["obligation"]:
        return str(item["obligation"]["title"]), str(item["obligation"]["title_en"])
    if item["assist"]:
        assist = item["assist"]
        shop = assist["shop"]
        who = shop.get("shop_name") or shop.get("operator_name") or shop.get("credit_code") or ""
        return (
            f"协查函(编号{assist['id']}){who}".strip(),
            f"assistance request no. {assist['id']} {who}".strip(),
        )
    if item["listed"]:
        listing = item["listed"]
        who = (
            listing.get("operator_name")
            or listing.get("shop_name")
            or listing.get("credit_code")
            or ""
        )
        return (
            f"{listing['list_kind_zh']} {who}".strip(),
            f"{listing['list_kind_en']} {who}".strip(),
        )
    generic = f"{item['subject_type']} #{item['subject_id']}"
    return generic, generic
