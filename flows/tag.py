"""tag-documents: the nightly job. Tags one date's document dump into the
``dt=<date>`` partition, exactly once (a rerun of a done date is skipped)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from prefect import flow

from flows.runners import dask_task_runner
from flows.tasks import tag_date_task
from nerbatch.tag import TagOptions, TagSummary


def today_in(timezone: str) -> dt.date:
    return dt.datetime.now(ZoneInfo(timezone)).date()


@flow(name="tag-documents-run")
def _tag(input_template: str, date: dt.date, bundle_dir: str, out_root: str, options: TagOptions) -> TagSummary:
    return tag_date_task.submit(input_template, date, bundle_dir, out_root, options).result()


@flow(name="tag-documents")
def tag_documents_flow(
    input_template: str,
    bundle_dir: str,
    out_root: str,
    date: dt.date | None = None,
    timezone: str = "UTC",
    options: TagOptions = TagOptions(),
    dask_address: str | None = None,
) -> TagSummary:
    """Tag ``input_template`` (``{date}`` is replaced, e.g. ``dumps/{date}/*.parquet``)
    for ``date`` (default: today in ``timezone``) into ``out_root``."""
    date = date or today_in(timezone)
    runner = dask_task_runner(dask_address)
    return _tag.with_options(task_runner=runner)(input_template, date, bundle_dir, out_root, options)
