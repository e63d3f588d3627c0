"""Connect to Dask: an existing scheduler when given an address, else a
LocalCluster started (and stopped) for the job."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, nullcontext

import dask
from distributed import Client, LocalCluster

ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"
#: Dask serves its HTTP endpoints (health, metrics) even without the dashboard
#: package, by default on every interface at :8787: a free local port instead
#: keeps two runs on one machine from colliding and exposes nothing.
HTTP_ADDRESS = "127.0.0.1:0"


def quiet_dask_logs() -> None:
    """Cluster start-up, shutdown and p2p shuffles log at INFO/WARNING on every
    run; keep job (and Prefect flow) logs readable. Errors still show."""
    logging.getLogger("distributed").setLevel(logging.WARNING)
    for name in ("distributed.shuffle._scheduler_plugin", "distributed.http.proxy", "distributed.nanny",
                 "distributed.worker.state_machine"):
        logging.getLogger(name).setLevel(logging.ERROR)


def worker_environment() -> dict[str, str]:
    """Environment of LocalCluster worker processes (one Dask thread each): the
    math libraries capped at that thread (TensorFlow and BLAS otherwise each
    start a pool per core, and N workers x N threads oversubscribe the machine),
    and Dask's start-up chatter kept out of job logs."""
    return {"OMP_NUM_THREADS": "1", "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
            "DASK_LOGGING__DISTRIBUTED": "warning"}


#: Dask's defaults for worker processes that nerbatch's workers go without (None in
#: ``pre-spawn-environ`` unsets a default). ``MALLOC_TRIM_THRESHOLD_`` (Dask: 65536, so
#: that pandas workers hand memory back to the OS) turns off glibc's adaptive mmap
#: threshold whatever its value: every large tensor TensorFlow allocates and frees is
#: then an mmap/munmap pair, and a training epoch on a Dask worker took 1.7x as long
#: as in a plain process (a fifth of its time in the kernel).
UNSET_IN_WORKERS = ("MALLOC_TRIM_THRESHOLD_",)


def start_local_cluster(*, environment: Mapping[str, str] | None = None, **options) -> LocalCluster:
    """``LocalCluster(**options)`` whose worker processes start with
    :func:`worker_environment` plus ``environment`` (e.g. the Prefect API its
    tasks report to). It must be in place before a worker is spawned (Dask's
    ``distributed.nanny.pre-spawn-environ``): a spawned worker imports NumPy and
    sets up logging before a Nanny's ``env`` reaches it."""
    variables = {**worker_environment(), **(environment or {})}
    pre_spawn = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in variables.items()}
    pre_spawn.update({f"distributed.nanny.pre-spawn-environ.{k}": None for k in UNSET_IN_WORKERS})
    with dask.config.set(pre_spawn), environment_restored(variables):
        return LocalCluster(**options)


@contextmanager
def environment_restored(variables: Iterable[str] = ()) -> Iterator[None]:
    """This process's worker-environment variables (and ``variables``) as they were
    before the block.

    A Nanny writes its pre-spawn variables into its own process's environment
    before each spawn (Dask documents it), so without this the process that
    started a LocalCluster would keep TensorFlow and BLAS capped at one thread
    for the rest of its life (a training run after ``prepare`` in one process
    used one core of two).
    """
    keys = {*worker_environment(), "PYTHONHASHSEED", *variables}
    before = {k: os.environ.get(k) for k in keys}
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def scheduler_address(address: str | None = None) -> str | None:
    """``address``, else ``$DASK_SCHEDULER_ADDRESS``, else None (start a LocalCluster)."""
    return address or os.environ.get(ADDRESS_ENV) or None


def local_cluster_options(n_workers: int | None = None, *, threads: bool = False) -> dict:
    """LocalCluster arguments for a job, HTTP endpoints on :data:`HTTP_ADDRESS`.

    Default: one single-threaded worker process per core (tokenising,
    TensorFlow and pandas code hold the GIL); start it with
    :func:`start_local_cluster`.
    ``threads``: one worker in this process with ``n_workers`` threads, for jobs
    whose work is Arrow and NumPy kernels that release the GIL (``prepare``):
    it starts in milliseconds instead of about a second, and tasks hand results
    over without pickling (``benchmarks/prepare_speed.py`` measures both).
    """
    cores = n_workers or os.cpu_count() or 1
    if threads:
        return {"n_workers": 1, "threads_per_worker": cores, "processes": False, "dashboard_address": HTTP_ADDRESS}
    return {"n_workers": cores, "threads_per_worker": 1, "processes": True, "dashboard_address": HTTP_ADDRESS}


@contextmanager
def dask_client(
    address: str | None = None, *, n_workers: int | None = None, threads: bool = False, as_current: bool = True
) -> Iterator[Client]:
    """A Dask client for the duration of a job: connected to ``scheduler_address(address)``,
    else to a LocalCluster (``local_cluster_options(n_workers, threads=threads)``)
    started and stopped with it.
    ``as_current`` makes the client the scheduler of ``dask.compute`` in the block.
    """
    quiet_dask_logs()
    address = scheduler_address(address)
    # The client is current only inside this block (never the process default), so
    # a flow started later in the same process is not silently routed to this
    # cluster (prefect-dask adopts any current client, even when given an address).
    if address:
        with Client(address, set_as_default=False) as client, _current(client, as_current):
            yield client
        return
    # Restored again at the end: a worker restarted during the job is spawned the same way.
    with environment_restored(), start_local_cluster(**local_cluster_options(n_workers, threads=threads)) as cluster, \
            Client(cluster, set_as_default=False) as client, _current(client, as_current):
        yield client


def _current(client: Client, enabled: bool):
    return client.as_current() if enabled else nullcontext()
