"""prepare-corpus: ingest token-labelled corpora into a sentence dataset and vocabulary."""

from __future__ import annotations

from prefect import flow

from flows.runners import dask_task_runner
from flows.tasks import prepare_task
from nerbatch.prepare import PrepareOptions, PrepareReport


@flow(name="prepare-corpus-run")
def _prepare(inputs: list[str], out_dir: str, options: PrepareOptions, overwrite: bool) -> PrepareReport:
    return prepare_task.submit(inputs, out_dir, options, overwrite).result()


@flow(name="prepare-corpus", log_prints=False)
def prepare_corpus_flow(
    inputs: list[str],
    out_dir: str,
    options: PrepareOptions = PrepareOptions(),
    dask_address: str | None = None,
    overwrite: bool = False,
) -> PrepareReport:
    """Corpus files (paths, globs, URLs) -> ``out_dir`` with sentences/, rejects/, vocab.json.

    ``out_dir`` is replaced as a whole: it must be new, empty or an earlier
    prepare output, or ``overwrite`` must be set (never a file, an input's folder,
    ``/`` or the home folder)."""
    runner = dask_task_runner(dask_address, threads=True)
    return _prepare.with_options(task_runner=runner)(inputs, out_dir, options, overwrite)
