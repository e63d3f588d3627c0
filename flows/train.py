"""train-tagger: train the BiLSTM-CRF on a prepared corpus, on a GPU worker when asked."""

from __future__ import annotations

import dask
from prefect import flow
from prefect.context import FlowRunContext

from flows.runners import dask_task_runner
from flows.tasks import train_task
from nerbatch.errors import NerbatchError
from nerbatch.train import TrainConfig


class NoGpuWorker(NerbatchError):
    """gpu=True, but no Dask worker offers a GPU resource: the task would wait forever."""


def submit_training(prepared_dir: str, bundle_dir: str, config: TrainConfig, gpu: bool, overwrite: bool = False):
    """Submit the training task; with ``gpu``, only a worker started with
    ``--resources GPU=1`` may run it (the annotation works with ``.submit`` only)."""
    if not gpu:
        return train_task.submit(prepared_dir, bundle_dir, config, overwrite)
    # The flow's own Dask client (``.client`` starts the cluster on first use).
    # Not ``get_dask_client()``: in a flow body it needs a client the runner only
    # creates at the first ``.submit`` (AttributeError on ``None`` before that).
    client = FlowRunContext.get().task_runner.client
    workers = client.scheduler_info()["workers"].values()
    if not any(w.get("resources", {}).get("GPU", 0) >= 1 for w in workers):
        raise NoGpuWorker("gpu=True but no Dask worker has a GPU resource; start one with "
                          "`dask worker ADDRESS --resources GPU=1` or pass gpu=False")
    with dask.annotate(resources={"GPU": 1}):
        return train_task.submit(prepared_dir, bundle_dir, config, overwrite)


@flow(name="train-tagger-run")
def _train(prepared_dir: str, bundle_dir: str, config: TrainConfig, gpu: bool, overwrite: bool) -> dict:
    return submit_training(prepared_dir, bundle_dir, config, gpu, overwrite).result()


@flow(name="train-tagger")
def train_tagger_flow(
    prepared_dir: str,
    bundle_dir: str,
    config: TrainConfig = TrainConfig(),
    gpu: bool = False,
    dask_address: str | None = None,
    overwrite: bool = False,
) -> dict:
    """A ``prepare`` output -> a model bundle (model, vocab, config, metrics, report).

    ``bundle_dir`` is replaced as a whole: it must be new, empty or an earlier
    bundle, or ``overwrite`` must be set (never a file or an input's folder)."""
    runner = dask_task_runner(dask_address)
    return _train.with_options(task_runner=runner)(prepared_dir, bundle_dir, config, gpu, overwrite)
