"""prepare-corpus: ingest token-labelled corpora into a sentence dataset and vocabulary."""

from __future__ import annotations

from prefect import flow

from flows.runners import dask_task_runner
from flows.tasks import prepare_task
from nerbatch.prepare import PrepareOptions, PrepareReport


@flow(name="prepare-corpus-run")
def _prepare(inputs: list[str], out_dir: str, options: PrepareOptions) -> PrepareReport:
    return prepare_task.submit(inputs, out_dir, options).result()


@flow(name="prepare-corpus", log_prints=False)
def prepare_corpus_flow(
    inputs: list[str],
    out_dir: str,
    options: PrepareOptions = PrepareOptions(),
    dask_address: str | None = None,
) -> PrepareReport:
    """Corpus files (paths, globs, URLs) -> ``out_dir`` with sentences/, rejects/, vocab.json."""
    return _prepare.with_options(task_runner=dask_task_runner(dask_address, threads=True))(inputs, out_dir, options)
