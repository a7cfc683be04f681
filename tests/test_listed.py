"""The shared list of removed operators (一处清退、处处关店): imported with the lead files' rules,
flagging new leads about listed operators, delisting that stops the flag, and the platforms'
digest — each platform told once of what it hosts or may host."""

from __future__ import annotations

import csv
import email
from email import policy
from pathlib import Path
from typing import Any

import numpy as np
from openpyxl import load_workbook
from sqlalchemy import select

from tasks.listed import (
    apply_listed,
    check_listed,
    close_listed_import,
    open_listed_file,
    queue_listed_digests,
    read_listed,
)
from wangjian.bootstrap import App
from wangjian.campaign.models import Person, Platform
from wangjian.domain.listed import (
    HOSTS,
    MAY_HOST,
    REMOVED,
    SERIOUS,
    PlatformNames,
    identity_key,
    relation,
    shop_key,
)
from wangjian.intake.columns import LISTED_SCHEMA
from wangjian.ledger.db import transaction
from wangjian.ledger.events import history
from wangjian.ledger.listed import delist_operator
from wangjian.ledger.models import Lead, ListedOperator, Notice, Referral
from wangjian.ledger.sending import drain_outbox

from .dispatch_driver import run_import
from .lead_factory import credit_code, lead, write_csv

LISTED_CODE = credit_code(body="MA0K7777X")
OTHER_CODE = credit_code(body="MA0K5555X")


def write_list(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LISTED_SCHEMA.names)
        for row in rows:
            writer.writerow([row.get(c, "") for c in LISTED_SCHEMA.names])
    return path


def import_list(path: Path, as_of: str) -> dict[str, Any]:
    """What the import-listed-operators flow does, stage by stage, without the engine."""
    plan = open_listed_file.fn(str(path), as_of)
    for raw in read_listed(plan.file, 3):
        checked = check_listed.fn(raw, plan.report, plan.today)
        apply_listed.fn(plan.state.id, checked, int(raw["row"].max()), plan.report, "office:test")
    return close_listed_import.fn(plan)


def test_platform_names_shop_keys_and_identities_fold_what_files_write(
    default_config: Any,
) -> None:
    names = PlatformNames(default_config.platforms_file.platforms)
    assert [names.key(v) for v in ("淘宝", "淘宝网 ", "TMALL", "京东", "快 手", "", None)] == [
        "taobao",
        "taobao",
        "taobao",
        "jd",
        "快手",
        None,
        None,
    ]
    assert shop_key("优品 旗舰店·2") == shop_key("优品旗舰店2") == "优品旗舰店2"
    # A removal is per platform; a sanction is about the operator wherever it trades.
    assert identity_key(REMOVED, credit_code="X", platform="jd", shop_id=None, shop=None) == (
        "jd|cc:X"
    )
    assert identity_key(SERIOUS, credit_code="X", platform="jd", shop_id=None, shop=None) == "cc:X"
    assert identity_key(REMOVED, credit_code=None, platform="jd", shop_id=" 88 ", shop="s") == (
        "jd|id:88"
    )
    person = Person(name="x", email="x@example.org")
    regional = Platform(
        code="local",
        name_zh="本地平台",
        name_en="Local",
        contact=person,
        compliance_lead=person,
        hosts_regions=["140000"],
    )
    assert relation(regional, listed_platform="local", region_code="330106") == HOSTS
    assert relation(regional, listed_platform="jd", region_code="140105") == MAY_HOST
    assert relation(regional, listed_platform="jd", region_code="330106") is None
    assert relation(regional, listed_platform=None, region_code=None) == MAY_HOST


def test_a_bad_list_file_is_rejected_row_by_row_with_reasons(app: App, tmp_path: Path) -> None:
    path = write_list(
        tmp_path / "bad.csv",
        [
            {"list_kind": "serious_violation", "credit_code": LISTED_CODE},  # row 2: good
            {"list_kind": "经营异常名录", "credit_code": LISTED_CODE[:-1] + "0"},
            {"list_kind": "abnormal_operation", "operator_name": "无代码公司"},
            {"list_kind": "removed_by_platform", "shop_name": "无平台店"},
            {"list_kind": "removed_by_platform", "platform": "京东"},
            {"list_kind": "blacklist", "credit_code": OTHER_CODE},
            {
                "list_kind": "serious_violation",
                "credit_code": OTHER_CODE,
                "listed_on": "2021-13-01",
            },
            {"list_kind": "serious_violation", "credit_code": OTHER_CODE, "region_code": "14"},
            {"list_kind": "serious_violation", "credit_code": OTHER_CODE, "action": "remove!"},
            {"list_kind": "serious_violation", "credit_code": OTHER_CODE, "action": "delist"},
            {"list_kind": "", "credit_code": OTHER_CODE},
        ],
    )
    summary = import_list(path, "2021-10-24")
    assert (summary["listed"], summary["rejected"], summary["rows"]) == (1, 10, 11)
    with Path(summary["reject_report"]).open(encoding="utf-8-sig") as handle:
        rejects = {(int(r["row"]), r["column"]): r["reason_zh"] for r in csv.DictReader(handle)}
    assert rejects == {
        (3, "credit_code"): "统一社会信用代码校验码错误",
        (4, "credit_code"): "经营异常名录、严重违法失信名单须填写统一社会信用代码",
        (5, "platform"): "平台清退须填写清退的平台",
        (6, "shop_name"): "须填写统一社会信用代码,或店铺名称、店铺编号",
        (7, "list_kind"): rejects[(7, "list_kind")],
        (8, "listed_on"): "不是有效日期(应为 YYYY-MM-DD)",
        (9, "region_code"): "应为6位数字的行政区划代码",
        (10, "action"): "操作应为 list(列入)或 delist(移出)",
        (11, "list_kind"): "名录中没有该经营者,或已移出",  # a delisting the ledger refuses
        (12, "list_kind"): "名录类型为必填项",
    }
    assert rejects[(7, "list_kind")].startswith("未知的名录类型")
    # The same file again is the same import: nothing is listed twice.
    again = open_listed_file.fn(str(path), "2021-10-25")
    assert again.finished and again.state.counts["listed"] == 1


def test_new_leads_about_listed_operators_are_flagged_and_delisting_stops_it(
    app: App, tmp_path: Path
) -> None:
    listing = write_list(
        tmp_path / "list.csv",
        [
            {
                "list_kind": "serious_violation",
                "credit_code": LISTED_CODE,
                "operator_name": "太原市失信商贸有限公司",
                "reason": "虚假宣传",
                "listed_on": "2021-10-01",
            },
            {"list_kind": "平台清退", "platform": "京东", "shop_name": "优品 旗舰店2"},
            {"list_kind": "removed_by_platform", "platform": "拼多多", "shop_name": "别处的店"},
        ],
    )
    assert import_list(listing, "2021-10-24")["listed"] == 3
    leads = write_csv(
        tmp_path / "week-43.csv",
        [
            lead(1, credit_code=LISTED_CODE),
            lead(2, platform="京东", shop_name="优品旗舰店2", suspected_crime="true"),
            lead(3, platform="淘宝", shop_name="别处的店"),  # the same name on another platform
            lead(4, credit_code=OTHER_CODE),
        ],
    )
    run_import(leads, "2021-10-25")
    with app.sessions() as session:
        flags = {
            lead.source_lead_id: (lead.priority, lead.listed_operator_id)
            for lead in session.scalars(select(Lead))
        }
        referrals = {(r.lead_id, r.agency_code): r for r in session.scalars(select(Referral))}
    assert flags == {
        "L-00001": ("high", 1),
        "L-00002": ("high", 2),
        "L-00003": ("normal", None),
        "L-00004": ("normal", None),
    }
    serious, removed = referrals[(1, "samr")], referrals[(2, "samr")]
    assert "严重违法失信名单" in serious.reason and "从快核查" in serious.reason
    assert "被京东商城清退(一处清退、处处关店)" in removed.reason
    assert referrals[(2, "police")].priority == "high"  # the crime referral too
    # The faster limit (`listed_operator_outcome`: 10 working days) instead of 15.
    assert (serious.priority, serious.due_on.isoformat()) == ("high", "2021-11-08")
    assert serious.original_due_on == serious.due_on
    ordinary = referrals[(3, "samr")]
    assert (ordinary.priority, ordinary.due_on.isoformat()) == ("normal", "2021-11-15")
    assert "名单" not in ordinary.reason

    with transaction(app.sessions) as session:
        delisted = delist_operator(
            session=session,
            app=app,
            list_kind="serious_violation",
            credit_code=LISTED_CODE.lower(),
            reason="信用修复",
            on=app.as_of("2021-10-26").date(),
            actor="office:test",
            at=app.as_of("2021-10-26"),
        )
    run_import(
        write_csv(tmp_path / "week-44.csv", [lead(5, credit_code=LISTED_CODE)]), "2021-10-27"
    )
    with app.sessions() as session:
        late = session.scalars(select(Lead).where(Lead.source_lead_id == "L-00005")).one()
        trail = [e.action for e in history(session, subject_type="listed", subject_id=delisted.id)]
    assert (late.priority, late.listed_operator_id) == ("normal", None)
    assert trail == ["listed_operator.listed", "listed_operator.delisted"]


def test_each_platform_is_told_once_of_what_it_hosts_or_may_host(app: App, tmp_path: Path) -> None:
    import_list(
        write_list(
            tmp_path / "list.csv",
            [
                {"list_kind": "serious_violation", "credit_code": LISTED_CODE},
                {"list_kind": "removed_by_platform", "platform": "京东", "shop_name": "问题店"},
            ],
        ),
        "2021-10-24",
    )
    first = queue_listed_digests.fn(app.as_of("2021-10-24 10:00"))
    assert first["platforms"] == {"taobao": 2, "jd": 2, "pinduoduo": 2, "douyin": 2}
    again = queue_listed_digests.fn(app.as_of("2021-10-24 11:00"))
    assert again["notices"] == 0
    drain_outbox(app=app, mailer=app.mailer, as_of=app.as_of("2021-10-24 10:00"))
    mails = [
        email.message_from_bytes(p.read_bytes(), policy=policy.default)
        for p in (tmp_path / "mailbox").glob("*.eml")
    ]
    # One e-mail per platform: to its contact, its compliance lead copied, the list attached.
    assert sorted(m["To"].addresses[0].addr_spec for m in mails) == [
        "assist@douyin-platform.example.org",
        "assist@jd-platform.example.org",
        "assist@pdd-platform.example.org",
        "assist@taobao-platform.example.org",
    ]
    jd = next(m for m in mails if "jd-platform" in m["To"].addresses[0].addr_spec)
    assert "compliance@jd-platform.example.org" in jd["Cc"]
    assert "新列入2户" in jd["Subject"]
    body = jd.get_body(("plain",)).get_content()
    assert "问题店|本平台" in body and "第二十七条" in body and "/listed" in body
    (attachment,) = list(jd.iter_attachments())
    sheet = load_workbook(filename=_save(attachment, tmp_path)).active
    assert sheet is not None
    rows = list(sheet.iter_rows(values_only=True))
    assert len(rows) == 3 and rows[0][0] == "变动"

    with transaction(app.sessions) as session:
        delist_operator(
            session=session,
            app=app,
            list_kind="removed_by_platform",
            platform="京东商城",
            shop_name="问题店",
            reason="整改到位",
            on=app.as_of("2021-10-30").date(),
            actor="office:test",
            at=app.as_of("2021-10-30"),
        )
    import_list(
        write_list(
            tmp_path / "later.csv", [{"list_kind": "abnormal_operation", "credit_code": OTHER_CODE}]
        ),
        "2021-10-28",
    )
    later = queue_listed_digests.fn(app.as_of("2021-11-01 10:00"))
    # The abnormal-operation listing is new to everyone; the delisting is told to those told.
    assert later["platforms"] == {"taobao": 2, "jd": 2, "pinduoduo": 2, "douyin": 2}
    with app.sessions() as session:
        delisted = session.scalars(
            select(Notice).where(Notice.step == "delisted", Notice.party == "jd")
        ).one()
        removed = session.scalars(
            select(ListedOperator).where(ListedOperator.platform == "jd")
        ).one()
    assert delisted.group_key == "listed:2021-11-01" and delisted.subject_id == removed.id
    assert delisted.context["relation"] == HOSTS


def _save(part: Any, tmp_path: Path) -> Path:
    path = tmp_path / part.get_filename()
    path.write_bytes(part.get_content())
    return path


def test_flagging_is_set_based_on_a_chunk(app: App) -> None:
    import pandas as pd

    from wangjian.ledger.listed import flag_leads

    with transaction(app.sessions) as session:
        session.add(
            ListedOperator(
                list_kind="removed_by_platform",
                identity_key="taobao|shop:店",
                platform="taobao",
                shop_name="店",
                shop_key="店",
                listed_on=app.as_of("2021-10-01").date(),
            )
        )
    chunk = pd.DataFrame(
        {
            "credit_code": np.array(["", LISTED_CODE] * 500, dtype=object),
            "platform": np.array(["天猫", "京东"] * 500, dtype=object),
            "shop_name": np.array(["店", "店"] * 500, dtype=object),
        }
    )
    with app.sessions() as session:
        flags = flag_leads(session, app, chunk)
    assert flags["priority"].tolist() == ["high", "normal"] * 500
