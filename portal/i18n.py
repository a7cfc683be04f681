"""Chinese by default, English on request (`?lang=en`, remembered in a cookie)."""

from __future__ import annotations

from starlette.requests import Request

LANGS = ("zh", "en")
COOKIE = "wangjian_lang"

STATUS = {
    "open": ("待签收", "awaiting acknowledgement"),
    "acknowledged": ("办理中", "acknowledged, in progress"),
    "closed": ("已办结", "closed"),
    "returned": ("已退回", "returned"),
    "reassigned": ("已改派", "reassigned"),
    "overdue": ("已逾期", "overdue"),
}
KIND = {
    "referral": ("线索移送", "referral"),
    "crime": ("涉嫌犯罪移送", "suspected crime"),
    "transfer_out": ("异地移送", "transfer to another region"),
}
OBLIGATION_STATUS = {
    "open": ("待报送", "due"),
    "submitted": ("已报送", "submitted"),
    "incomplete": ("材料不全", "incomplete"),
    "overdue": ("逾期未报", "overdue"),
}
CLOCK = {
    "referral_ack": ("签收计时", "acknowledgement clock"),
    "referral_outcome": ("办理计时", "outcome clock"),
    "assist_response": ("协查答复计时", "assistance answer clock"),
    "open": ("计时中", "running"),
    "met": ("已完成", "met"),
    "cancelled": ("已取消", "cancelled"),
}
EXTENSION_STATUS = {
    "requested": ("待审批", "awaiting decision"),
    "approved": ("已同意", "approved"),
    "refused": ("不同意", "refused"),
}
EVENTS = {
    "referral.created": ("移送", "referred"),
    "referral.acknowledged": ("签收", "acknowledged"),
    "referral.outcome_reported": ("报送办理结果", "outcome reported"),
    "referral.returned": ("退回", "returned"),
    "referral.reassigned": ("改派", "reassigned"),
    "extension.requested": ("申请延期", "extension requested"),
    "extension.approved": ("同意延期", "extension approved"),
    "extension.refused": ("不同意延期", "extension refused"),
    "obligation.submitted": ("报送", "submitted"),
    "obligation.incomplete": ("报送(材料不全)", "submitted, incomplete"),
    "assist.requested": ("发出协查函", "assistance requested"),
    "assist.answered": ("平台提供数据", "data provided"),
    "assist.no_such_operator": ("答复查无此经营者", "no such operator"),
    "deadline.overdue": ("逾期", "overdue"),
    "deadline.escalated": ("报告负责人", "escalated"),
    "deadline.listed": ("挂牌督办", "listed for supervision"),
}
# Messages after a successful action (the redirect carries only the key, never free text).
DONE = {
    "acknowledged": (
        "已签收。请在办理期限内报送办理结果。",
        "Acknowledged. Please report the outcome by the due date.",
    ),
    "outcome": ("办理结果已报送,该移送已办结。", "Outcome reported; the referral is closed."),
    "returned": ("已退回联席会议办公室。", "Returned to the joint-meeting office."),
    "extension": ("延期申请已提交,待办公室审批。", "Extension requested; the office will decide."),
    "submitted": ("已报送。", "Submitted."),
    "incomplete": (
        "已收到,但材料不全,请补充后重新报送。",
        "Received, but incomplete: please complete and submit again.",
    ),
    "routed": ("已分类并移送。", "Classified and referred."),
    "reassigned": ("已改派。", "Reassigned."),
    "decided": ("已处理延期申请。", "Extension request decided."),
    "revoked": ("该单位此前的链接已全部作废。", "All earlier links of this agency are revoked."),
    "assist_answered": (
        "答复已提交,协查计时已停止。",
        "Answer sent; the request's clock has stopped.",
    ),
    "assist_requested": (
        "协查函已生成,将随下一次发送发出;答复计时已开始。",
        "Request made; it goes out with the next send, and its clock has started.",
    ),
    "assist_exists": (
        "已有相同的协查请求待平台答复,未重复发出。",
        "The same request is already awaiting the platform's answer; not sent twice.",
    ),
    "assist_recorded": (
        "已登记平台答复,协查计时已停止。",
        "Answer recorded; the clock has stopped.",
    ),
}


def language_of(request: Request) -> str:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        return asked
    remembered = request.cookies.get(COOKIE)
    return remembered if remembered in LANGS else "zh"


def pick(pair: tuple[str, str] | None, lang: str, fallback: str = "") -> str:
    if pair is None:
        return fallback
    return pair[1] if lang == "en" else pair[0]
