"""`wangjian init`: create or migrate the ledger and load the campaign configuration into it."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import OperationalError

from wangjian.bootstrap import App
from wangjian.ledger import migrate
from wangjian.ledger.db import DatabaseUnavailable, transaction
from wangjian.ledger.parties import read_meta, sync_parties, write_meta
from wangjian.ledger.provisional import recompute_on_init


def initialise_ledger(app: App) -> dict[str, Any]:
    """Migrate the schema to head, sync parties from config, remember the campaign; idempotent."""
    try:
        before, after = migrate.upgrade(app.engine)
    except OperationalError as exc:
        raise DatabaseUnavailable(f"database unreachable: {exc.orig}") from None
    config = app.config
    with transaction(app.sessions) as session:
        meta = read_meta(session)
        parties = sync_parties(session, config)
        write_meta(
            session,
            {
                "campaign_code": config.campaign.code,
                "campaign_name": config.campaign.name,
                "config_digest": config.digest,
                "config_dir": str(config.directory),
            },
        )
    result: dict[str, Any] = {
        "database": app.engine.url.render_as_string(hide_password=True),
        "schema_before": before,
        "schema": after,
        "campaign": config.campaign.code,
        "parties": parties,
        "config_changed": meta.get("config_digest") not in (None, config.digest),
    }
    if meta.get("campaign_code") not in (None, config.campaign.code):
        result["warning"] = (
            f"this database held campaign {meta['campaign_code']!r}; it now serves "
            f"{config.campaign.code!r}"
        )
    for hook in app.extras.get("init_hooks", []) + INIT_HOOKS:
        result.update(hook(app) or {})
    return result


# Later stages register work that `init` must redo when the configuration changes (e.g. the
# deadline engine recomputes provisional due dates once a missing calendar year is added).
INIT_HOOKS: list[Any] = [recompute_on_init]
