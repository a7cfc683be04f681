"""The `send-notifications` flow and `wangjian outbox`: batches as task runs, the office's
artifact of failures, listing, sending and retrying from the command line."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from prefect.artifacts import Artifact
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from typer.testing import CliRunner

from flows.send_notifications import send_notifications
from wangjian.bootstrap import build_app, use_app
from wangjian.cli import app as cli
from wangjian.ledger.db import transaction
from wangjian.ledger.setup import initialise_ledger

from .conftest import make_settings
from .mail_data import AS_OF, add_referrals, queue_referral_notices
from .smtp_server import SmtpServer

pytestmark = [pytest.mark.prefect, pytest.mark.smtp]

REFUSED = "customs.contact@wangjian-district.example.org"


def test_the_flow_sends_in_batches_and_the_office_sees_failures(
    prefect_harness: None, tmp_path: Path, sqlite_template: Path, smtp_server: SmtpServer
) -> None:
    target = tmp_path / "ledger.db"
    target.write_bytes(sqlite_template.read_bytes())
    app = build_app(
        make_settings(
            tmp_path, f"sqlite:///{target}", smtp=smtp_server.settings(), mail_batch_size=2
        )
    )
    initialise_ledger(app)
    with transaction(app.sessions) as session:
        for agency, category in (
            ("samr", "trademark"),
            ("customs", "counterfeit_import"),
            ("post", "prohibited_parcel"),
            ("police", "fraud"),
            ("ip", "patent_counterfeit"),
        ):
            referrals = add_referrals(
                session, app, agency=agency, category=category, as_of=app.as_of(AS_OF)
            )
            queue_referral_notices(session, referrals)
    smtp_server.handler.refused[REFUSED] = f"550 5.1.1 <{REFUSED}>: Recipient address rejected"
    runner = CliRunner()

    with use_app(app):
        state = send_notifications(as_of=AS_OF, return_state=True)
        result = state.result()
        assert (result["composed"], result["sent"], result["failed"]) == (5, 4, 1)
        assert result["failures"][0]["recipient"] == REFUSED
        assert len(smtp_server.received) == 4

        # The server records task runs a little after they end: wait for all five.
        deadline = time.monotonic() + 60
        while True:
            with get_client(sync_client=True) as client:
                runs = client.read_task_runs(
                    flow_run_filter=FlowRunFilter(
                        id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
                    )
                )
            if len(runs) >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        names = sorted(r.name.rsplit("-", 1)[0] for r in runs)
        # Five messages in batches of two: three send tasks, never one per message.
        assert names.count("send-outbox") == 3
        assert names.count("compose-messages") == names.count("publish-send-report") == 1

        artifact = Artifact.get("outbox-send")
        assert artifact is not None
        assert "550 5.1.1" in str(artifact.data) and REFUSED in str(artifact.data)

        listed = runner.invoke(cli, ["outbox", "list", "--status", "failed", "--json"])
        assert listed.exit_code == 0, listed.output
        payload = json.loads(listed.stdout)
        (failed,) = payload["messages"]
        assert failed["recipient"] == REFUSED and "550 5.1.1" in failed["last_error"]
        assert payload["counts"]["sent"] == 4 and payload["counts"]["failed"] == 1

        # The office corrects the address (here: the server stops refusing) and retries.
        del smtp_server.handler.refused[REFUSED]
        retried = runner.invoke(cli, ["outbox", "retry", str(failed["id"]), "--as-of", AS_OF])
        assert retried.exit_code == 0, retried.output
        sent = runner.invoke(cli, ["outbox", "send", "--as-of", AS_OF, "--json"])
        assert sent.exit_code == 0, sent.output
        assert json.loads(sent.stdout)["sent"] == 1
        assert len(smtp_server.message_ids()) == 5

        bad = runner.invoke(cli, ["outbox", "list", "--status", "lost"])
        assert bad.exit_code == 1 and "unknown status lost" in bad.output
    app.dispose()
