"""Where a flow's tasks run: a Dask cluster, through prefect-dask."""

from __future__ import annotations

from prefect_dask import DaskTaskRunner

from nerbatch.cluster import local_cluster_options, quiet_dask_logs, scheduler_address, start_local_cluster


def dask_task_runner(address: str | None = None, *, threads: bool = False) -> DaskTaskRunner:
    """The given scheduler (or ``$DASK_SCHEDULER_ADDRESS``), else a LocalCluster
    created for the run, as the CLI's (``local_cluster_options``)."""
    quiet_dask_logs()
    address = scheduler_address(address)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class=start_local_cluster, cluster_kwargs=local_cluster_options(threads=threads))
