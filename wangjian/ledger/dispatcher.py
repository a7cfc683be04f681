"""The dispatcher's own process: a chunk written to the ledger while the next one is checked.

Checking and routing a chunk (pandas) and writing one (SQLite's B-trees, `executemany`) are both
CPU work. In one process they share one interpreter lock, and the writer, which lets go of it
around every row it steps, then waits behind the reader most of the time: the two stages run
one after the other however they are scheduled. A large file therefore has its chunks written
by a process of its own, started on first use and kept for the App (its engine, its open-keys
bitmap and its checkpointer stay warm from one file to the next); a small file, or a ledger in
memory, is written in the flow's process, where starting another would cost more than it saves.

The child writes exactly what `dispatch_batch` writes in the caller's process, under the same
lock and in one transaction per chunk: if it dies, the chunk is either committed or not, the
task's retry starts a new process, and the import resumes from its last committed row.
"""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from wangjian.bootstrap import App
from wangjian.campaign import CampaignConfig
from wangjian.ledger.db import create_ledger_engine, session_factory
from wangjian.ledger.dispatch import LeadBatch, dispatch_batch, warm_up
from wangjian.settings import Settings

EXTRA = "dispatcher"  # where an App keeps its dispatcher process

_child_app: App | None = None  # in the dispatcher process: the App it writes with


def writes_apart(app: App, estimated_rows: int) -> bool:
    """Whether a file of about this many rows is written by the dispatcher process."""
    database = app.engine.url.database or ""
    in_memory = app.engine.dialect.name == "sqlite" and database in ("", ":memory:")
    return not in_memory and estimated_rows >= app.settings.dispatch_process_rows


def _start(settings: Settings, config: CampaignConfig) -> None:
    """In the child: the same settings and campaign configuration as the flow's App."""
    global _child_app
    engine = create_ledger_engine(settings.database_url)
    _child_app = App(
        settings=settings, config=config, engine=engine, sessions=session_factory(engine)
    )


def _warm_up() -> None:
    assert _child_app is not None, "the dispatcher process was not started"
    warm_up(_child_app)


def _dispatch(import_id: int, batch: LeadBatch) -> dict[str, Any]:
    assert _child_app is not None, "the dispatcher process was not started"
    return dispatch_batch(app=_child_app, import_id=import_id, batch=batch)


class Dispatcher:
    """One process that writes chunks, one at a time, for one App."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(
                    max_workers=1,
                    # Not forked: the flow's process runs threads (Prefect's, SQLite's).
                    mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start,
                    initargs=(self._app.settings, self._app.config),
                )
            return self._pool

    def start(self) -> None:
        """Start the process now, without waiting for it: it starts up (a fresh interpreter,
        the imports, the ledger's connection and open-keys bitmap, seconds in all) while the
        first chunk is read and checked. Its first chunk then finds it ready."""
        self._executor().submit(_warm_up)

    def dispatch(self, import_id: int, batch: LeadBatch) -> dict[str, Any]:
        """Write one chunk in the dispatcher process; its counts, as `dispatch_batch` returns."""
        pool = self._executor()
        try:
            return pool.submit(_dispatch, import_id, batch).result()
        except BrokenProcessPool:
            # The process died (killed, out of memory): the next call starts another, and the
            # chunk, committed or not, is found as it is.
            with self._lock:
                if self._pool is pool:
                    self._pool = None
            pool.shutdown(wait=False, cancel_futures=True)
            raise

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


def dispatcher(app: App) -> Dispatcher:
    """The App's dispatcher process (started on its first chunk, closed with the App)."""
    found = app.extras.get(EXTRA)
    if found is None:
        found = app.extras.setdefault(EXTRA, Dispatcher(app))
    return found  # type: ignore[no-any-return]
