"""One partition of a lead file (a range of its chunks), dispatched by whichever worker takes it.

The same story as `dispatch-leads`, on the partition's chunks only: open the partition's import
(resumed after its last committed chunk if a worker died under it), check, route, flag and refer
each chunk while the next is read, close the partition. Its notices wait for the whole file.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from prefect import flow
from prefect.futures import PrefectFuture

from tasks.dispatch import close_import, refer_leads, route_leads
from tasks.intake import check_leads
from tasks.listed import flag_listed_operators
from tasks.partitions import open_partition_import, read_partition
from wangjian.bootstrap import get_app
from wangjian.intake import CHUNK_ROWS
from wangjian.ledger.dispatcher import writes_apart
from wangjian.ledger.partitions import ChunkRange

IN_FLIGHT = 2  # chunks referred while the next is read, as in dispatch-leads


@flow(
    name="dispatch-partition",
    flow_run_name="partition {file_import}/{first_chunk}-{last_chunk}",
    log_prints=False,
)
def dispatch_partition(
    path: str,
    file_import: int,
    first_chunk: int,
    last_chunk: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Any]:
    """Refer the leads of chunks `first_chunk`..`last_chunk` (None: to the end) of a file."""
    plan = open_partition_import(path, file_import, first_chunk, last_chunk)
    if plan.finished:
        return {**plan.summary(), "already_imported": True}
    rows = plan.file.estimated_rows
    if last_chunk is not None:
        rows = min(rows, (last_chunk - first_chunk + 1) * chunk_rows)
    apart = writes_apart(get_app(), rows)
    in_flight: deque[PrefectFuture[dict[str, Any]]] = deque()
    for raw in read_partition(plan.file, chunk_rows, ChunkRange(first_chunk, last_chunk)):
        checked = check_leads(raw, plan.report)
        batch = route_leads(checked, last_row=int(raw["row"].max()))
        batch = flag_listed_operators(batch)
        while len(in_flight) >= IN_FLIGHT:
            in_flight.popleft().result()
        previous = list(in_flight)[-1:]
        # Chunks are referred in file order: each waits for the one before.
        future = refer_leads.submit(plan.state.id, batch, apart, wait_for=previous)  # type: ignore[call-overload]
        in_flight.append(future)
    while in_flight:
        in_flight.popleft().result()
    return close_import(plan)
