"""The platform commands and flows in real Prefect runs: `wangjian assist …` and `wangjian listed
…`, the quarter-hourly assist-chase and the listed-digest, and their deployments."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from flows.assist_chase import assist_chase
from wangjian.bootstrap import App
from wangjian.cli import app as cli
from wangjian.ledger.db import transaction
from wangjian.settings import PROJECT_ROOT

from .factories import make_referral
from .lead_factory import credit_code
from .test_listed import write_list

pytestmark = pytest.mark.prefect


def run(*args: str) -> tuple[int, dict[str, object], str]:
    result = CliRunner().invoke(cli, list(args))
    payload = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.exit_code, payload, result.stderr


def test_assist_commands_request_chase_list_and_record_an_answer(
    prefect_harness: None, sqlite_app: App, tmp_path: Path
) -> None:
    with transaction(sqlite_app.sessions) as session:
        referral = make_referral(session, sqlite_app, agency="samr", clock=False).id
    request = ["assist", "request", "--platform", "taobao", "--referral", str(referral)]
    request += ["--ask", "identity", "--ask", "sales", "--as-of", "2021-10-29T20:30", "--json"]
    code, made, _ = run(*request)
    assert code == 0 and made["created"] is True and made["notifications_sent"] == 1
    assert made["due_at"] == "2021-10-30T20:30:00+08:00"
    code, again, _ = run(*request)
    assert code == 0 and again == {**again, "id": made["id"], "created": False}

    # The quarter-hourly chase: the overdue notice a few minutes after the limit, sent at once.
    chased = assist_chase(as_of="2021-10-30T20:45")
    assert (chased["overdue_notices"], chased["notifications_sent"]) == (1, 1)
    code, listed, _ = run("assist", "list", "--as-of", "2021-10-31T09:00", "--json")
    (row,) = listed["assists"]  # type: ignore[misc]
    assert code == 0 and (row["id"], row["status"], row["overdue"]) == (made["id"], "open", True)

    data = tmp_path / "淘宝回函.csv"
    data.write_text("订单号,金额\nA1,12.5\n", encoding="utf-8")
    code, _, stderr = run(
        "assist", "answer", str(made["id"]), "--no-such-operator", "--file", str(data)
    )
    assert code == 1 and "--no-such-operator takes no --file" in stderr
    answer = ["assist", "answer", str(made["id"]), "--file", str(data), "--json"]
    code, answered, _ = run(*answer, "--as-of", "2021-10-31T10:00")
    assert code == 0 and (answered["status"], answered["file"]) == ("answered", "淘宝回函.csv")
    code, _, stderr = run(*answer)
    assert code == 1 and "不能再次答复" in stderr


def test_listed_commands_import_delist_list_and_send_the_digest(
    prefect_harness: None, sqlite_app: App, tmp_path: Path
) -> None:
    listed_code = credit_code(body="MA0K7777X")
    path = write_list(
        tmp_path / "名单.csv",
        [
            {
                "list_kind": "serious_violation",
                "credit_code": listed_code,
                "operator_name": "某公司",
            },
            {"list_kind": "removed_by_platform", "platform": "拼多多", "shop_name": "某店"},
            {"list_kind": "abnormal_operation"},  # no credit code: rejected
        ],
    )
    code, imported, stderr = run("listed", "import", str(path), "--as-of", "2021-10-24", "--json")
    assert code == 2 and (imported["listed"], imported["rejected"]) == (2, 1)
    assert imported["reject_report"] and str(imported["reject_report"]) in stderr
    code, digest, _ = run("listed", "digest", "--as-of", "2021-10-25T10:00", "--json")
    assert code == 0 and digest["platforms"] == {"taobao": 2, "jd": 2, "pinduoduo": 2, "douyin": 2}
    assert digest["notifications_sent"] == 4
    delist = ["listed", "delist", "--kind", "serious_violation", "--credit-code", listed_code]
    code, delisted, _ = run(*delist, "--reason", "信用修复", "--json")
    assert code == 0 and delisted["list_kind"] == "serious_violation"
    code, _, stderr = run(*delist)
    assert code == 1 and "已移出" in stderr
    code, listing, _ = run("listed", "list", "--json")
    assert code == 0 and [r["platform"] for r in listing["listed"]] == ["pinduoduo"]  # type: ignore[union-attr]
    code, _, stderr = run("listed", "import", str(tmp_path / "missing.csv"))
    assert code == 1 and "missing.csv" in stderr


def test_the_platform_schedules_follow_the_configuration(default_config: Any) -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    document = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    deployments = {d.name: d for d in PrefectYamlModel.model_validate(document).deployments}
    platforms = default_config.platforms_file
    for name, entrypoint, cron in (
        ("listed-digest", "flows/listed_digest.py:listed_digest", platforms.listed_digest_cron),
        ("assist-chase", "flows/assist_chase.py:assist_chase", platforms.assist_chase_cron),
    ):
        deployment = deployments[name]
        assert deployment.entrypoint == entrypoint and deployment.enforce_parameter_schema
        assert deployment.schedules is not None
        schedule = deployment.schedules[0]
        assert (schedule.cron, schedule.timezone) == (cron, "Asia/Shanghai")
        module = entrypoint.split(":")[0]
        assert (PROJECT_ROOT / module).exists()
