"""The command line as users script it: one-line failures with exit 1, JSON on stdout only."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wangjian.bootstrap import App
from wangjian.cli import app as cli
from wangjian.settings import PROJECT_ROOT

from .test_report import SHANGHAI, _seed_shanghai

REPORT_KEYS = {"as_of", "leads", "referrals", "by_agency", "by_outcome", "on_time_rate", "files"}


def test_init_with_a_broken_config_fails_with_one_line_and_exit_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", folder, ignore=shutil.ignore_patterns("campaigns"))
    text = (folder / "agencies.yaml").read_text(encoding="utf-8")
    (folder / "agencies.yaml").write_text(
        text.replace("samr.contact@wangjian-district.example.org", "not-an-address", 1),
        encoding="utf-8",
    )
    monkeypatch.setenv("WANGJIAN_CONFIG_DIR", str(folder))
    monkeypatch.setenv("WANGJIAN_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    done = CliRunner().invoke(cli, ["init"])
    assert done.exit_code == 1
    message = " ".join(done.stderr.split())
    assert (
        "agencies.yaml: agencies[0].contact.email: 'not-an-address' is not an e-mail address"
        in message
    )
    assert done.stdout == ""
    assert not (tmp_path / "x.db").exists()  # nothing was done


def test_init_on_an_unreachable_database_fails_with_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANGJIAN_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    done = CliRunner().invoke(cli, ["init"])
    assert done.exit_code == 1
    assert "database unreachable" in done.stderr


@pytest.mark.prefect
def test_report_json_has_the_contract_keys_and_the_files(
    prefect_harness: None, sqlite_app: App, tmp_path: Path
) -> None:
    # One CLI run per process: Prefect's console handler keeps the stream of the first
    # CliRunner; the report itself is tested on both databases in test_report.py.
    as_of = _seed_shanghai(sqlite_app)
    done = CliRunner().invoke(
        cli, ["report", "--as-of", as_of.isoformat(), "--out", str(tmp_path / "r"), "--json"]
    )
    assert done.exit_code == 0, done.stderr
    payload = json.loads(done.stdout)
    assert set(payload) >= REPORT_KEYS
    assert {k: v for k, v in payload["by_outcome"].items() if v} == SHANGHAI
    assert payload["by_agency"]["samr"] == 1166
    assert set(payload["files"]) == {"xlsx", "html", "markdown"}
    assert all(Path(p).exists() for p in payload["files"].values())
