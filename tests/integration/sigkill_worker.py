"""A badge transfer run as its own process by tests/integration/test_transfer_sigkill.py, so it can be SIGKILLed.

``python sigkill_worker.py '<settings JSON>'``: runs ``CredlyBadgesToSqlOperator.execute`` with the connections
of the ``AIRFLOW_CONN_*`` environment variables and reports on stdout, one flushed line each:

* ``COMMITTED <pages> <rows> <status>`` after every committed batch; for a sliced load
  (``settings["parallel_cursors"]`` above 1) followed by ``SLICES <fetched> <running>``: how many slices have a
  committed checkpoint, finished or mid-cursor (a slice with no committed page has none);
* ``AT <point> <n>`` when ``settings["stop_at"]`` is ``"<point>:<n>"`` and that point of batch ``n`` is reached;
  the worker then waits there forever (the test kills it). Points: ``write`` (the batch written, not
  committed), ``save`` (its checkpoint row replaced, not committed), ``commit`` (just committed, before the
  batch hook),
  ``prune`` (stale rows deleted, not committed), ``save-done`` (the final ``done`` checkpoint saved, not
  committed; ``n`` is 1 for these two);
* ``HOLD <point> <n>`` likewise for ``settings["hold_at"]``, but the worker goes on once it reads a line on
  stdin;
* ``ENTER <point> <n>`` before the ``write`` or ``commit`` of batch ``n`` when ``settings["announce"]`` names it,
  without waiting: the test kills on reading it, so the kill lands inside (or just after) that step;
* ``RESULT <json>``: the operator's summary, when the transfer completed.

``settings["batch_rows"]`` ``None`` is the operator's default; ``settings["row_group_rows"]`` sets a DuckDB
writer's row group size (where the commits of a first load then fall).
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from typing import Any


def _say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def main(settings: dict[str, Any]) -> None:
    import airflow_provider_credly.transfers.base as base
    from airflow_provider_credly.transfers.credly_to_sql import CredlyBadgesToSqlOperator
    from airflow_provider_credly.warehouse.checkpoint import CheckpointStore, slice_key

    stop_at = settings.get("stop_at")  # "point:n"
    hold_at = settings.get("hold_at")  # "point:n"
    announce = settings.get("announce")  # "point:n"
    seen: Counter[str] = Counter()

    def reached(point: str) -> None:
        seen[point] += 1
        n = seen[point]
        if announce == f"{point}:{n}":
            _say("ENTER", point, n)
        if stop_at == f"{point}:{n}":
            _say("AT", point, n)
            while True:  # killed here
                time.sleep(60)
        if hold_at == f"{point}:{n}":
            _say("HOLD", point, n)
            sys.stdin.readline()  # the test says when to go on

    batch_saved = False  # a batch's checkpoint was saved since the last commit
    slice_prefix = slice_key(settings["checkpoint_key"], "")
    slices: dict[str, str] = {}  # a sliced load's slice checkpoints saved so far: status by key

    make_writer = getattr(base, "writer_for")  # patched below, in this process only

    def writer_for(*args: Any, **kwargs: Any) -> Any:
        writer = make_writer(*args, **kwargs)
        if settings.get("row_group_rows"):  # DuckDB: commits of a first load end on row groups this size
            writer.row_group_rows = int(settings["row_group_rows"])
        write, commit, prune = writer.write, writer.commit, writer.prune

        def write_batch(*a: Any, **kw: Any) -> Any:
            reached("enter-write")
            written = write(*a, **kw)
            reached("write")
            return written

        def commit_batch() -> None:
            nonlocal batch_saved
            is_batch, batch_saved = batch_saved, False
            if is_batch:
                reached("enter-commit")
            commit()
            if is_batch:
                reached("commit")

        def prune_rows(*a: Any, **kw: Any) -> Any:
            deleted = prune(*a, **kw)
            reached("prune")
            return deleted

        writer.write, writer.commit, writer.prune = write_batch, commit_batch, prune_rows
        return writer

    setattr(base, "writer_for", writer_for)

    save = CheckpointStore.save

    def save_checkpoint(self: CheckpointStore, checkpoint: Any) -> None:
        nonlocal batch_saved
        save(self, checkpoint)
        if checkpoint.key.startswith(slice_prefix):  # saved with its load's checkpoint, in the same commit
            slices[checkpoint.key] = checkpoint.status
        elif checkpoint.status == "done":
            reached("save-done")
        elif checkpoint.pages > 0:  # not the fresh checkpoint of a new load
            batch_saved = True
            reached("save")

    setattr(CheckpointStore, "save", save_checkpoint)

    # announced points are named after the step they enter
    if announce:
        announce = f"enter-{announce}"

    class ReportingBadgesToSql(CredlyBadgesToSqlOperator):
        def after_batch_committed(self, checkpoint: Any) -> None:
            _say("COMMITTED", checkpoint.pages, checkpoint.rows, checkpoint.status)
            if slices:
                fetched = sum(status != "running" for status in slices.values())
                _say("SLICES", fetched, len(slices) - fetched)

    op = ReportingBadgesToSql(
        task_id="load",
        destination_conn_id=settings["destination"],
        table=settings["table"],
        mode=settings.get("mode", "full"),
        badge_format=settings.get("badge_format", "minimal"),
        prune=bool(settings.get("prune", False)),
        batch_rows=None if settings["batch_rows"] is None else int(settings["batch_rows"]),
        page_queue_size=int(settings.get("page_queue_size", 1)),
        checkpoint_key=settings["checkpoint_key"],
        parallel_cursors=int(settings.get("parallel_cursors", 1)),
        min_slice_badges=int(settings.get("min_slice_badges", 1_000)),
    )

    class TI:
        try_number = 1
        map_index = -1

    result = op.execute({"ti": TI()})  # type: ignore[typeddict-item]
    _say("RESULT", json.dumps(result, default=str))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
