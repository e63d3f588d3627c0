"""tag-documents: the nightly job. Tags one date's document dump into the
``dt=<date>`` partition, exactly once (a rerun of a done date is skipped)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from prefect import flow

from flows.runners import dask_task_runner
from flows.tasks import tag_date_task
from nerbatch.errors import NerbatchError
from nerbatch.tag import TagOptions, TagSummary


class MissingPaths(NerbatchError):
    """A path parameter is empty: the deployment was made without the operator's paths."""


def require_paths(**paths: str) -> None:
    """Refuse empty path parameters at once, naming them (``prefect deploy`` stores ""
    for a path whose environment variable was not set; "" would mean the current folder)."""
    empty = [name for name, value in paths.items() if not str(value).strip()]
    if empty:
        raise MissingPaths(f"{', '.join(empty)} empty: pass them with --param, or export NERBATCH_INPUT_TEMPLATE, "
                           "NERBATCH_MODEL_DIR and NERBATCH_OUT_ROOT and run `prefect deploy` again (README step 2)")


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
    require_paths(input_template=input_template, bundle_dir=bundle_dir, out_root=out_root)
    date = date or today_in(timezone)
    runner = dask_task_runner(dask_address)
    return _tag.with_options(task_runner=runner)(input_template, date, bundle_dir, out_root, options)
