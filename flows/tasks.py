"""Prefect tasks: each calls one library function on the flow's Dask cluster
and publishes what it did as an artifact. Shared by the flows."""

from __future__ import annotations

import datetime as dt
import socket
from contextlib import contextmanager
from pathlib import Path

import dask
from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect_dask import get_dask_client

from nerbatch.errors import NerbatchError
from nerbatch.prepare import PrepareOptions, PrepareReport, prepare_corpus
from nerbatch.tag import TagOptions, TagSummary, tag_documents
from nerbatch.train import TrainConfig, describe_epoch, train_tagger

#: How a flow run is told to redo a date that is already done (the CLI's ``--force``).
FORCE_PARAMETER = 'options={"force": true}'

#: Back-off between retries of a transient failure (a lost worker, a flaky file system).
RETRY_DELAYS = [10, 30, 90]


def retry_unless_bad_input(task, task_run, state) -> bool:
    """Retry on transient failures, never on bad input (retrying cannot fix it)."""
    try:
        state.result()
    except NerbatchError:
        return False
    except Exception:  # noqa: BLE001 - anything else may be transient
        return True
    return False


@contextmanager
def cluster():
    """The flow's Dask cluster as the scheduler of every computation in the task.

    Computing through the client (``dask.compute``) secedes the task's worker
    thread while it waits, so a task hosted on a single-threaded worker cannot
    deadlock the cluster (unlike ``client.compute(...).result()``).
    """
    with get_dask_client() as client, dask.config.set(scheduler=client):
        yield client


def where_am_i() -> str:
    """The Dask worker name (or the host) this task runs on, for logs and tests."""
    try:
        from distributed import get_worker

        return str(get_worker().name)
    except ValueError:
        return socket.gethostname()


@task(name="prepare", retries=2, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_unless_bad_input)
def prepare_task(inputs: list[str], out_dir: str, options: PrepareOptions, overwrite: bool = False) -> PrepareReport:
    with cluster():
        report = prepare_corpus(inputs, out_dir, options, overwrite=overwrite)
    get_run_logger().info(report.summary())
    create_markdown_artifact(
        key="prepare-report",
        markdown=f"# prepare\n\n```\n{report.summary()}\n```\n\nOutput: `{out_dir}`",
        description="Corpus ingest summary",
    )
    return report


@task(name="train", retries=1, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_unless_bad_input)
def train_task(prepared_dir: str, bundle_dir: str, config: TrainConfig, overwrite: bool = False) -> dict:
    from nerbatch.model.backend import describe_devices

    logger = get_run_logger()
    worker = where_am_i()
    logger.info("training on %s: %s", worker, describe_devices())
    result = train_tagger(prepared_dir, bundle_dir, config, on_epoch=lambda row: logger.info("%s", describe_epoch(row)),
                          overwrite=overwrite)
    rows = []
    for split in ("validation", "test"):
        s = result.metrics[split]["scores"]
        rows.append({"split": split, "precision": round(s["precision"], 4), "recall": round(s["recall"], 4),
                     "f1": round(s["f1"], 4), "entities": s["n_gold"]})
    create_table_artifact(key="train-metrics", table=rows, description=f"Entity P/R/F1, model {result.model_version}")
    create_markdown_artifact(
        key="train-report",
        markdown=(f"# Model {result.model_version}\n\nBundle: `{bundle_dir}`\n\n"
                  f"Report: [{bundle_dir}/report.md](file://{Path(bundle_dir).absolute()}/report.md)\n\n"
                  f"Best epoch {result.metrics['best_epoch']}, trained in {result.seconds:.0f}s on `{worker}`."),
        description="Where the model bundle and its report are",
    )
    return {"bundle_dir": bundle_dir, "model_version": result.model_version, "test_f1": result.test_f1,
            "worker": worker}


def resolve_inputs(template: str, date: dt.date) -> list[str]:
    """The input location of one date, e.g. ``dumps/{date}/*.parquet``."""
    return [template.format(date=date.isoformat())]


@task(name="tag-date", retries=2, retry_delay_seconds=RETRY_DELAYS, retry_condition_fn=retry_unless_bad_input,
      task_run_name="tag-{date}")
def tag_date_task(input_template: str, date: dt.date, bundle_dir: str, out_root: str, options: TagOptions) -> TagSummary:
    with cluster():
        summary = tag_documents(resolve_inputs(input_template, date), bundle_dir, out_root,
                                options.model_copy(update={"date": date}))
    text = summary.summary(force_option=FORCE_PARAMETER)
    get_run_logger().info(text)
    # A skipped date wrote nothing: its artifact from the run that wrote it stays the latest.
    if summary.status == "written":
        create_markdown_artifact(
            key=f"tag-{date.isoformat()}",
            markdown=f"# tag {date}\n\n```\n{text}\n```\n\nOutputs: `{out_root}` (partition `dt={date}`)",
            description=f"Tagging summary for {date}",
        )
    return summary
