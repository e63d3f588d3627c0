"""Where a flow's tasks run: a Dask cluster, through prefect-dask."""

from __future__ import annotations

import os

from prefect_dask import DaskTaskRunner

from nerbatch.cluster import ADDRESS_ENV, quiet_dask_logs, worker_thread_env


def dask_task_runner(address: str | None = None, n_workers: int | None = None) -> DaskTaskRunner:
    """The given scheduler (or ``$DASK_SCHEDULER_ADDRESS``), else a LocalCluster
    of single-threaded worker processes created for the run."""
    quiet_dask_logs()
    address = address or os.environ.get(ADDRESS_ENV) or None
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": n_workers or os.cpu_count() or 1,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
            "env": worker_thread_env(1),
        }
    )
