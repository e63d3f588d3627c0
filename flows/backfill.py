"""backfill: tag a range of dates (or every date found in an archive), a few at
a time. Dates already done with the same inputs and model are skipped, a failed
date does not stop the others, and a rerun completes only what is missing."""

from __future__ import annotations

import datetime as dt
import re

from fsspec.core import url_to_fs
from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from flows.runners import dask_task_runner
from flows.tag import require_paths
from flows.tasks import tag_date_task
from nerbatch.errors import InputError, NerbatchError
from nerbatch.tag import TagOptions

DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class BackfillIncomplete(NerbatchError):
    """Some dates failed; the others are done. Rerun the backfill to complete it."""


def dates_between(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise ValueError(f"end_date {end} is before start_date {start}")
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def dates_in_archive(input_template: str) -> list[dt.date]:
    """Every date for which ``input_template`` (with ``{date}``; a local path or any
    fsspec URL) matches files. Raises ``InputError`` when it matches none."""
    if "{date}" not in input_template:
        raise ValueError("input_template needs a {date} placeholder to find dates in an archive")
    prefix, _, suffix = input_template.partition("{date}")
    fs, pattern = url_to_fs(prefix + "*" + suffix)
    # The prefix as fs.glob spells paths (no protocol, local paths absolute); the "_"
    # keeps a trailing "/" from being normalised away.
    plain_prefix = url_to_fs(prefix + "_")[1][:-1]
    found = set()
    for path in fs.glob(pattern):
        match = DATE.match(path[len(plain_prefix):])
        if match:
            found.add(dt.date.fromisoformat(match.group()))
    if not found:
        raise InputError(input_template, "the archive has no files for any date")
    return sorted(found)


@flow(name="backfill-run")
def _backfill(input_template: str, dates: list[dt.date], bundle_dir: str, out_root: str, options: TagOptions,
              max_concurrency: int) -> list[dict]:
    """Every date's status; a failed date is reported by the caller (one line), not here."""
    logger = get_run_logger()
    statuses: list[dict] = []
    for i in range(0, len(dates), max_concurrency):
        wave = dates[i : i + max_concurrency]
        futures = [tag_date_task.submit(input_template, d, bundle_dir, out_root, options) for d in wave]
        for date, future in zip(wave, futures):
            state = future.wait() or future.state
            if state.is_completed():
                summary = future.result()
                statuses.append({"date": str(date), "status": summary.status, "documents": summary.documents,
                                 "entities": summary.entities, "reason": ""})
                logger.info("%s: %s", date, summary.status)
            else:
                try:
                    future.result()
                    reason = state.message or state.name
                except Exception as exc:  # noqa: BLE001 - reported per date
                    reason = str(exc)
                statuses.append({"date": str(date), "status": "failed", "documents": 0, "entities": 0,
                                 "reason": reason})
    create_table_artifact(key="backfill-status", table=statuses, description="Per-date status of the backfill")
    return statuses


def incomplete(statuses: list[dict]) -> BackfillIncomplete | None:
    """One error naming every failed date with its file and reason, or None."""
    failed = [s for s in statuses if s["status"] == "failed"]
    if not failed:
        return None
    return BackfillIncomplete(
        f"{len(failed)} of {len(statuses)} dates failed: " + "; ".join(f"{s['date']}: {s['reason']}" for s in failed)
    )


@flow(name="backfill")
def backfill_flow(
    input_template: str,
    bundle_dir: str,
    out_root: str,
    start_date: dt.date | None = None,
    end_date: dt.date | None = None,
    max_concurrency: int = 2,
    options: TagOptions = TagOptions(),
    dask_address: str | None = None,
) -> list[dict]:
    """Tag every date from ``start_date`` to ``end_date`` (inclusive), or, without
    them, every date the archive ``input_template`` has files for."""
    require_paths(input_template=input_template, bundle_dir=bundle_dir, out_root=out_root)
    if (start_date is None) != (end_date is None):
        raise ValueError("give both start_date and end_date, or neither (then the archive is scanned)")
    if max_concurrency < 1:  # checked before the archive scan, which may be slow on an object store
        raise ValueError("max_concurrency must be at least 1")
    dates = dates_between(start_date, end_date) if start_date else dates_in_archive(input_template)
    runner = dask_task_runner(dask_address)
    statuses = _backfill.with_options(task_runner=runner)(input_template, dates, bundle_dir, out_root, options,
                                                           max_concurrency)
    # Raised here, in the run an operator watches (`prefect deployment run --watch`
    # streams this run's logs, not its subflow's): one line, and the failed state's message.
    if error := incomplete(statuses):
        raise error
    return statuses
