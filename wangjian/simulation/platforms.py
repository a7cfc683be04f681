"""The platforms' side of the simulated campaign: the office asks them for data about shops
(协查) and they answer — most within hours, some late, a few never; and the office shares the
list of merchants removed elsewhere (一处清退、处处关店), which later leads then hit."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path

import numpy as np
from sqlalchemy import select

from portal.uploads import store_upload
from wangjian.bootstrap import App
from wangjian.ledger.assist import AnswerFile, answer_assistance, request_assistance
from wangjian.ledger.db import transaction
from wangjian.ledger.listed import platform_names
from wangjian.ledger.models import AssistRequest, Lead, Referral
from wangjian.simulation import documents
from wangjian.simulation.leadgen import PLATFORMS, SHOP_WORDS


@dataclass(frozen=True)
class PlatformHabit:
    """Hours a platform takes to answer (range), and the share it never answers."""

    hours: tuple[int, int]
    silent_share: float = 0.0
    no_operator_share: float = 0.1


HABITS = {
    "taobao": PlatformHabit((2, 14)),
    "jd": PlatformHabit((6, 34), no_operator_share=0.05),
    "pinduoduo": PlatformHabit((4, 26), silent_share=0.05),
    "douyin": PlatformHabit((18, 70), silent_share=0.15),
}
REQUESTS_PER_DAY = 3


class SimulatedPlatforms:
    """The office's assistance requests and the platforms' answers, deterministic for a seed."""

    def __init__(self, app: App, *, seed: int) -> None:
        self.app, self.seed = app, seed
        self.names = platform_names(app)

    def ask(self, day: date) -> int:
        """The office asks for data about a few of yesterday's referrals on configured platforms."""
        at = datetime.combine(day, time(10, 0), tzinfo=self.app.tz)
        since = at - timedelta(days=1)
        made = 0
        with transaction(self.app.sessions) as session:
            rows = session.execute(
                select(Referral.id, Lead.platform)
                .join(Lead, Lead.id == Referral.lead_id)
                .where(
                    Referral.received_at > since,
                    Referral.received_at <= at,
                    Referral.kind == "referral",
                )
                .order_by(Referral.id)
            ).all()
            for referral_id, platform in rows:
                code = self.names.key(platform)
                if code not in HABITS or made >= REQUESTS_PER_DAY:
                    continue
                request_assistance(
                    session=session,
                    app=self.app,
                    platform_code=code,
                    referral_id=referral_id,
                    asked=["identity", "sales"],
                    actor="office",
                    detail="请提供该店铺经营者身份信息及近六个月交易记录",
                    at=at,
                    origin="simulated office",
                )
                made += 1
        return made

    def answer(self, day: date) -> int:
        """Platforms answer what they planned to answer by 15:00 today."""
        until = datetime.combine(day, time(15, 0), tzinfo=self.app.tz)
        answered = 0
        with transaction(self.app.sessions) as session:
            for request in session.scalars(
                select(AssistRequest)
                .where(AssistRequest.status == "open")
                .order_by(AssistRequest.id)
            ):
                habit = HABITS.get(request.platform_code)
                rng = np.random.default_rng([self.seed, request.id, 17])
                if habit is None or rng.random() < habit.silent_share:
                    continue
                at = request.requested_at + timedelta(
                    hours=float(rng.uniform(habit.hours[0], habit.hours[1]))
                )
                if at > until:
                    continue
                none = rng.random() < habit.no_operator_share
                answer_assistance(
                    session=session,
                    app=self.app,
                    assist_id=request.id,
                    platform_code=request.platform_code,
                    outcome="no_such_operator" if none else "answered",
                    file=None if none else self._data_file(request, at),
                    actor=request.platform_code,
                    at=at,
                    origin="simulated platform",
                )
                answered += 1
        return answered

    def _data_file(self, request: AssistRequest, at: datetime) -> AnswerFile:
        content = documents.statistics_xlsx(
            f"协查#{request.id}", [("订单数", 120), ("销售额(元)", 35800)]
        )
        stored = store_upload(
            settings=self.app.settings.portal,
            filename=f"协查数据-{request.id}.xlsx",
            stream=io.BytesIO(content),
            role="attachment",
            at=at,
        )
        assert stored is not None
        return AnswerFile(
            path=stored.path, name=stored.name, sha256=stored.sha256, size=stored.size
        )


def write_listed_file(path: Path, *, lead_indices: range, listed_on: date, every: int = 7) -> Path:
    """Shops that later leads will name, as removed by their platform or on the serious list."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        ["list_kind", "action", "platform", "shop_name", "operator_name", "reason", "listed_on"]
    )
    for i in lead_indices[::every]:
        if i % 8 > 3:
            continue  # the generator's platforms 4–7 are not configured here
        kind = "removed_by_platform" if i % 3 else "serious_violation"
        shop = f"{SHOP_WORDS[i % 10]}{SHOP_WORDS[(i // 10) % 10]}旗舰店{i % 9973}"
        reason = "售假被平台清退" if kind == "removed_by_platform" else "列入严重违法失信名单"
        writer.writerow([kind, "list", PLATFORMS[i % 8], shop, "", reason, listed_on.isoformat()])
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path
