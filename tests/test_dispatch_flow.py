"""The dispatch-leads flow in a real Prefect run, and `wangjian leads import` / `referrals list`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prefect import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
from sqlalchemy import func, select
from typer.testing import CliRunner

from flows.dispatch_leads import dispatch_leads
from wangjian.bootstrap import App
from wangjian.cli import app as cli
from wangjian.ledger.models import Notice, Referral

from .lead_factory import lead, write_csv

pytestmark = pytest.mark.prefect


def test_the_flow_refers_a_file_and_publishes_what_happened(
    prefect_harness: None, sqlite_app: App, tmp_path: Path
) -> None:
    rows = [lead(i, suspected_crime=str(i == 2)) for i in range(1, 6)] + [lead(9, found_on="x")]
    path = write_csv(tmp_path / "week-43.csv", rows)
    state = dispatch_leads(
        path=str(path), as_of="2021-10-25", send=False, chunk_rows=2, return_state=True
    )
    summary = state.result()
    assert (summary["imported"], summary["rejected"], summary["referrals"]) == (
        5,
        1,
        {"samr": 5, "police": 1},
    )
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
    assert run.name == "week-43.csv @ 2021-10-25"
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {
        "dispatch-referrals",
        "dispatch-counts",
        "dispatch-reject-report",
        "dispatch-progress",
    }
    table = by_key["dispatch-referrals"].data
    table = json.loads(table) if isinstance(table, str) else table
    assert {(r["agency"], r["referrals"]) for r in table} == {("samr", 5), ("police", 1)}
    assert by_key["dispatch-progress"].data == 100.0
    assert summary["reject_report"] in str(by_key["dispatch-reject-report"].data)

    again = dispatch_leads(path=str(path), as_of="2021-10-25", send=False)
    assert again["already_imported"] and again["imported"] == 5
    with sqlite_app.sessions() as s:
        assert (
            s.scalar(select(func.count(Notice.id)))
            == s.scalar(select(func.count(Referral.id)))
            == 6
        )


def test_leads_import_prints_the_contracts_json_and_exits_2_on_rejects(
    prefect_harness: None, sqlite_app: App, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "leads.csv",
        [lead(1), lead(2, category="price", region_code="330106"), lead(3, region_code="1")],
    )
    result = CliRunner().invoke(
        cli, ["leads", "import", str(path), "--as-of", "2021-10-25", "--json"]
    )
    assert result.exit_code == 2, result.stderr
    output = json.loads(result.stdout)
    assert {k: output[k] for k in ("imported", "duplicates", "rejected", "held", "referrals")} == {
        "imported": 2,
        "duplicates": 0,
        "rejected": 1,
        "held": 0,
        "referrals": {"samr": 1, "transfer_out": 1},
    }
    assert Path(output["reject_report"]).exists() and output["reject_report"] in result.stderr
    assert output["notifications"], "the notices are sent at the end of the import"
    with sqlite_app.sessions() as s:
        assert set(s.scalars(select(Notice.status))) == {"sent"}

    listed = CliRunner().invoke(cli, ["referrals", "list", "--agency", "reg-330000", "--json"])
    assert listed.exit_code == 0, listed.stderr
    (referral,) = json.loads(listed.stdout)["referrals"]
    assert {k: referral[k] for k in ("lead_id", "agency", "kind", "status", "due_on")} == {
        "lead_id": "L-00002",
        "agency": "reg-330000",
        "kind": "transfer_out",
        "status": "open",
        "due_on": "2021-11-15",
    }


def test_leads_import_of_an_unusable_file_exits_1_with_one_line(
    sqlite_app: App, tmp_path: Path
) -> None:
    path = write_csv(tmp_path / "wrong.csv", [lead(1)], header=["id", "what", "where"])
    result = CliRunner().invoke(cli, ["leads", "import", str(path), "--json"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "lacks required columns" in result.stderr
    missing = CliRunner().invoke(cli, ["leads", "import", str(tmp_path / "none.csv")])
    assert missing.exit_code == 1 and "file not found" in missing.stderr
    bad_date = CliRunner().invoke(cli, ["leads", "import", str(path), "--as-of", "soon"])
    assert bad_date.exit_code == 1 and "--as-of" in bad_date.stderr


def test_a_large_file_is_written_by_the_dispatcher_process_with_the_same_result(
    prefect_harness: None, sqlite_app: App, tmp_path: Path
) -> None:
    from wangjian.ledger.dispatcher import EXTRA, writes_apart

    sqlite_app.settings.dispatch_process_rows = 0  # every file counts as large
    rows = [lead(i, suspected_crime=str(i % 3 == 0)) for i in range(1, 13)]
    rows.append(lead(1))  # a duplicate, found in the child's transaction
    path = write_csv(tmp_path / "large.csv", rows)
    assert writes_apart(sqlite_app, 13)
    try:
        summary = dispatch_leads(path=str(path), as_of="2021-10-25", send=False, chunk_rows=4)
        assert EXTRA in sqlite_app.extras  # the chunks went through the dispatcher process
        assert (summary["imported"], summary["duplicates"]) == (12, 1)
        assert summary["referrals"] == {"samr": 12, "police": 4}
        with sqlite_app.sessions() as s:
            assert s.scalar(select(func.count(Notice.id))) == 16
            assert s.scalar(select(func.count(Referral.id))) == 16
    finally:
        sqlite_app.extras.pop(EXTRA).close()
