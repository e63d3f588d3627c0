"""Connect to Dask: an existing scheduler when given an address, else a
LocalCluster started (and stopped) for the job."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from distributed import Client, LocalCluster

ADDRESS_ENV = "DASK_SCHEDULER_ADDRESS"


def quiet_dask_logs() -> None:
    """Cluster start-up, shutdown and p2p shuffles log at INFO/WARNING on every
    run; keep job (and Prefect flow) logs readable. Errors still show."""
    logging.getLogger("distributed").setLevel(logging.WARNING)
    for name in ("distributed.shuffle._scheduler_plugin", "distributed.http.proxy", "distributed.nanny",
                 "distributed.worker.state_machine"):
        logging.getLogger(name).setLevel(logging.ERROR)


def worker_thread_env(threads: int) -> dict[str, str]:
    """Cap the math libraries of a worker at its Dask thread count: TensorFlow
    and BLAS otherwise each start a pool per core, and N workers x N threads
    oversubscribe the machine."""
    n = str(threads)
    return {"OMP_NUM_THREADS": n, "TF_NUM_INTRAOP_THREADS": n, "TF_NUM_INTEROP_THREADS": n}


def scheduler_address(address: str | None = None) -> str | None:
    """``address``, else ``$DASK_SCHEDULER_ADDRESS``, else None (start a LocalCluster)."""
    return address or os.environ.get(ADDRESS_ENV) or None


def local_cluster_options(n_workers: int | None = None, *, threads: bool = False) -> dict:
    """LocalCluster arguments for a job, no dashboard.

    Default: one single-threaded worker process per core, math libraries capped
    at that one thread (tokenising, TensorFlow and pandas code hold the GIL).
    ``threads``: one worker in this process with ``n_workers`` threads, for jobs
    whose work is Arrow and NumPy kernels that release the GIL (``prepare``):
    it starts in milliseconds instead of about a second, and tasks hand results
    over without pickling (``benchmarks/prepare_speed.py`` measures both).
    """
    if threads:
        return {"n_workers": 1, "threads_per_worker": n_workers or os.cpu_count() or 1, "processes": False,
                "dashboard_address": None}
    return {
        "n_workers": n_workers or os.cpu_count() or 1,
        "threads_per_worker": 1,
        "processes": True,
        "dashboard_address": None,
        # Worker processes configure their own logging: keep their start-up chatter out of job logs.
        "env": {**worker_thread_env(1), "DASK_LOGGING__DISTRIBUTED": "warning"},
    }


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
    with LocalCluster(**local_cluster_options(n_workers, threads=threads)) as cluster, \
            Client(cluster, set_as_default=False) as client, _current(client, as_current):
        yield client


def _current(client: Client, enabled: bool):
    return client.as_current() if enabled else nullcontext()
