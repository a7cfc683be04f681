"""A lead file dispatched in partitions (by several workers, in any order) ends the same as the
file dispatched whole: the same leads, referrals, duplicates, rejects and notices, one digest
group for the file, each partition resumable and idempotent."""

from __future__ import annotations

import csv
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from flows.dispatch_leads import dispatch_leads
from flows.dispatch_partition import dispatch_partition
from tasks.partitions import open_partition_import
from wangjian.bootstrap import App, build_app, use_app
from wangjian.ledger.models import Import, Lead, Notice, Referral
from wangjian.ledger.partitions import (
    ChunkRange,
    close_partitioned_import,
    combine_counts,
    split_chunks,
)
from wangjian.ledger.setup import initialise_ledger

from .conftest import make_settings
from .lead_factory import lead, write_csv

AS_OF = "2021-10-25"
CHUNK_ROWS = 5


@pytest.mark.parametrize(
    ("rows", "partitions", "expected"),
    [
        (40, 3, [(0, 2), (3, 4), (5, None)]),
        (40, 2, [(0, 3), (4, None)]),
        (12, 5, [(0, 0), (1, 1), (2, None)]),  # no more partitions than chunks
        (0, 4, [(0, None)]),
    ],
)
def test_chunks_split_evenly_and_the_last_range_runs_to_the_end(
    rows: int, partitions: int, expected: list[tuple[int, int | None]]
) -> None:
    ranges = split_chunks(rows, CHUNK_ROWS, partitions)
    assert [(r.first, r.last) for r in ranges] == expected


def test_a_range_covers_its_chunks_and_knows_when_it_is_past() -> None:
    middle, tail = ChunkRange(3, 5), ChunkRange(6, None)
    assert [i for i in range(10) if middle.covers(i)] == [3, 4, 5]
    assert middle.past(6) and not middle.past(5) and not tail.past(10_000)
    assert (middle.name(17), tail.name(17)) == ("17/3-5", "17/6-end")


def test_counts_add_up_with_their_referrals_per_agency() -> None:
    total = combine_counts(
        [
            {"imported": 3, "rejected": 1, "referrals": {"samr": 2, "police": 1}, "terms": {}},
            {"imported": 2, "duplicates": 1, "referrals": {"samr": 2}},
        ]
    )
    assert (total["imported"], total["rejected"], total["duplicates"]) == (5, 1, 1)
    assert total["referrals"] == {"police": 1, "samr": 4}


def _lead_file(path: Path) -> Path:
    """38 rows over 8 chunks of 5: a rejected row, a lead repeated across partitions, a listing
    reported twice (the second joins the first's referral), crimes and transfers out."""
    rows: list[dict[str, Any]] = []
    for n in range(1, 37):
        overrides: dict[str, Any] = {}
        if n % 7 == 0:
            overrides["suspected_crime"] = "true"
        if n % 9 == 0:
            overrides["region_code"] = "330106"
        if n % 4 == 0:
            overrides["category"] = "counterfeit_import"
        rows.append(lead(n, **overrides))
    rows[12]["found_on"] = "not a date"  # rejected (chunk 2)
    rows.append(lead(3))  # the lead of row 4 again (chunk 7): a duplicate
    rows.append(lead(90, url=rows[1]["url"]))  # row 3's listing again (chunk 7): attached
    return write_csv(path, rows)


def _ledger(app: App) -> dict[str, Any]:
    """What a dispatch left in the ledger, free of ids."""
    with app.sessions() as session:
        referrals = Counter(session.execute(select(Referral.agency_code, Referral.kind)).all())
        leads = Counter(s for (s,) in session.execute(select(Lead.status)))
        notices = session.scalar(select(func.count(Notice.id)).where(Notice.kind == "referral"))
        groups = {g for (g,) in session.execute(select(Notice.group_key))}
    return {"referrals": referrals, "leads": leads, "notices": notices, "groups": len(groups)}


@pytest.fixture
def whole(prefect_harness: None, tmp_path: Path, sqlite_template: Path) -> Iterator[App]:
    """A second ledger, where the same file is dispatched whole."""
    target = tmp_path / "whole" / "ledger.db"
    target.parent.mkdir()
    shutil.copy(sqlite_template, target)
    built = build_app(make_settings(tmp_path / "whole", f"sqlite:///{target}"))
    initialise_ledger(built)
    yield built
    built.dispose()


@pytest.mark.prefect
def test_a_file_dispatched_in_partitions_in_any_order_ends_as_the_file_dispatched_whole(
    prefect_harness: None, app: App, whole: App, tmp_path: Path
) -> None:
    path = _lead_file(tmp_path / "week-44.csv")
    with use_app(whole):
        expected = dispatch_leads(path=str(path), as_of=AS_OF, send=False, chunk_rows=CHUNK_ROWS)

    # The file's import, as dispatch-partitioned opens it; then three partitions, last first.
    from tasks.partitions import plan_partitions

    plan = plan_partitions.fn(str(path), AS_OF, 3, CHUNK_ROWS)
    assert [(c.first, c.last) for c in plan.chunks] == [(0, 2), (3, 4), (5, None)]
    for chunks in reversed(plan.chunks):
        part = dispatch_partition(
            path=str(path),
            file_import=plan.file_import,
            first_chunk=chunks.first,
            last_chunk=chunks.last,
            chunk_rows=CHUNK_ROWS,
        )
        assert part["rows"] > 0
    state = close_partitioned_import(
        app=app, file_import=plan.file_import, rejects_dir=app.settings.rejects_dir
    )

    for key in ("imported", "duplicates", "rejected", "held", "attached"):
        assert state.counts[key] == expected[key], key
    assert state.counts["referrals"] == expected["referrals"]
    assert state.counts["rows"] == expected["rows"] == 38
    assert expected["duplicates"] == expected["rejected"] == expected["attached"] == 1
    assert _ledger(app) == _ledger(whole)
    # One digest group for the whole file, named for the file's import.
    with app.sessions() as session:
        groups = {g for (g,) in session.execute(select(Notice.group_key))}
        parts = session.scalars(select(Import).where(Import.partition != "all")).all()
    assert groups == {f"dispatch:{plan.file_import}"}
    assert sorted(p.partition for p in parts) == [
        f"{plan.file_import}/0-2",
        f"{plan.file_import}/3-4",
        f"{plan.file_import}/5-end",
    ]
    # One reject report for the file, with the rows the whole dispatch rejected.
    assert state.reject_report and expected["reject_report"]
    assert _report_rows(state.reject_report) == _report_rows(expected["reject_report"])


@pytest.mark.prefect
def test_a_partition_run_again_does_nothing_and_closing_twice_changes_nothing(
    prefect_harness: None, sqlite_app: App, tmp_path: Path
) -> None:
    from tasks.partitions import plan_partitions

    path = _lead_file(tmp_path / "week-45.csv")
    plan = plan_partitions.fn(str(path), AS_OF, 2, CHUNK_ROWS)
    for chunks in plan.chunks:
        dispatch_partition(
            path=str(path),
            file_import=plan.file_import,
            first_chunk=chunks.first,
            last_chunk=chunks.last,
            chunk_rows=CHUNK_ROWS,
        )
    before = _ledger(sqlite_app)
    again = dispatch_partition(
        path=str(path), file_import=plan.file_import, first_chunk=0, last_chunk=3, chunk_rows=5
    )
    assert again["already_imported"]
    first = close_partitioned_import(
        app=sqlite_app, file_import=plan.file_import, rejects_dir=sqlite_app.settings.rejects_dir
    )
    second = close_partitioned_import(
        app=sqlite_app, file_import=plan.file_import, rejects_dir=sqlite_app.settings.rejects_dir
    )
    assert first == second and first.status == "done"
    assert _ledger(sqlite_app) == before
    # The file seen again, whole or in partitions, is reported as imported.
    replan = plan_partitions.fn(str(path), AS_OF, 2, CHUNK_ROWS)
    assert replan.finished and replan.summary["imported"] == first.counts["imported"]


def test_closing_before_every_partition_is_done_is_refused(sqlite_app: App, tmp_path: Path) -> None:
    from wangjian.ledger.dispatch import open_lead_import
    from wangjian.ledger.partitions import open_partition

    whole = open_lead_import(
        app=sqlite_app, file_name="f.csv", sha256="a" * 64, as_of=sqlite_app.as_of(AS_OF)
    )
    open_partition(app=sqlite_app, file_import=whole.id, chunks=ChunkRange(0, None))
    with pytest.raises(RuntimeError, match="partitions not done"):
        close_partitioned_import(
            app=sqlite_app, file_import=whole.id, rejects_dir=sqlite_app.settings.rejects_dir
        )


def test_a_partition_of_a_changed_file_is_refused(sqlite_app: App, tmp_path: Path) -> None:
    from wangjian.ledger.dispatch import open_lead_import

    path = _lead_file(tmp_path / "week-46.csv")
    whole = open_lead_import(
        app=sqlite_app, file_name=path.name, sha256="b" * 64, as_of=sqlite_app.as_of(AS_OF)
    )
    with pytest.raises(ValueError, match="content changed"):
        open_partition_import.fn(str(path), whole.id, 0, None)


def _report_rows(path: str) -> list[list[str]]:
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.reader(handle))
