"""The dispatch-leads flow's stages run in order without the Prefect engine (`.fn()`), for tests
of the logic; `pause` and `stop_after` let a test interrupt an import between chunks."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tasks.dispatch import close_import, refer_leads, route_leads
from tasks.intake import check_leads, open_import, read_leads
from tasks.listed import flag_listed_operators


class Interrupted(Exception):
    """Raised by `run_import(stop_after=n)` after n chunks, as a crash would stop it."""


def run_import(
    path: Path | str,
    as_of: str | None = "2021-10-25",
    *,
    chunk_rows: int = 50_000,
    stop_after: int | None = None,
    pause: float = 0.0,
) -> dict[str, Any]:
    plan = open_import.fn(str(path), as_of)
    if plan.finished:
        return {**plan.summary(), "already_imported": True}
    for done, raw in enumerate(read_leads(plan.file, chunk_rows)):
        if stop_after is not None and done == stop_after:
            raise Interrupted(f"stopped after {done} chunks")
        checked = check_leads.fn(raw, plan.report)
        batch = route_leads.fn(checked, last_row=int(raw["row"].max()))
        refer_leads.fn(plan.state.id, flag_listed_operators.fn(batch))
        time.sleep(pause)
    return close_import.fn(plan)


if __name__ == "__main__":  # a child process for the crash test: python -m tests.dispatch_driver
    import sys

    from wangjian.bootstrap import build_app, use_app
    from wangjian.settings import Settings

    database_url, config_dir, rejects_dir, lead_file = sys.argv[1:5]
    settings = Settings(database_url=database_url, config_dir=config_dir, rejects_dir=rejects_dir)
    with use_app(build_app(settings)):
        run_import(lead_file, chunk_rows=40, pause=0.02)
