"""Production settings: every process refuses the development placeholder secrets, and a secret
kept as a Prefect Secret block satisfies the check once the pull step has loaded it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from wangjian.bootstrap import build_app
from wangjian.settings import PlaceholderSecrets, Settings

from .conftest import CONFIG_DIR

PORTAL_SECRETS = ("WANGJIAN_PORTAL_SECRET_KEY", "WANGJIAN_PORTAL_OFFICE_PASSWORD")


@pytest.fixture
def production(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A production environment with no secrets set, in a folder without a `.env`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANGJIAN_ENV", "production")
    monkeypatch.setenv("WANGJIAN_CONFIG_DIR", str(CONFIG_DIR))
    monkeypatch.setenv("WANGJIAN_DATABASE_URL", f"sqlite:///{tmp_path / 'ledger.db'}")
    for name in PORTAL_SECRETS:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_a_production_process_refuses_the_placeholders_and_names_them(production: Path) -> None:
    with pytest.raises(PlaceholderSecrets) as refused:
        build_app()
    assert all(name in str(refused.value) for name in PORTAL_SECRETS)


def test_development_keeps_the_placeholders(tmp_path: Path) -> None:
    app = build_app(Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", config_dir=CONFIG_DIR))
    app.dispose()


def test_a_production_process_with_its_secrets_starts(
    production: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WANGJIAN_PORTAL_SECRET_KEY", "k" * 40)
    monkeypatch.setenv("WANGJIAN_PORTAL_OFFICE_PASSWORD", "a long office passphrase")
    build_app().dispose()


def test_a_command_in_production_without_secrets_exits_1_with_one_line(production: Path) -> None:
    # A process of its own, as an operator runs it (a process builds its App once).
    done = subprocess.run(
        [str(Path(sys.executable).parent / "wangjian"), "init"],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
    )
    assert done.returncode == 1
    assert "WANGJIAN_PORTAL_SECRET_KEY" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (production / "ledger.db").exists()  # nothing was done


@pytest.mark.prefect
def test_secrets_kept_as_secret_blocks_satisfy_production(
    production: Path, secret_blocks: Callable[[str, str], None]
) -> None:
    from wangjian.stack import load_secret_blocks

    secret_blocks("wangjian-portal-secret-key", "s" * 40)
    secret_blocks("wangjian-portal-office-password", "from the vault")

    assert load_secret_blocks()["loaded"] == sorted(PORTAL_SECRETS)
    app = build_app()
    assert app.settings.portal.office_password.get_secret_value() == "from the vault"
    app.dispose()
