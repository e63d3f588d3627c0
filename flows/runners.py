"""Where a flow's tasks run: a Dask cluster, through prefect-dask."""

from __future__ import annotations

from distributed import LocalCluster
from prefect.context import FlowRunContext
from prefect_dask import DaskTaskRunner

from nerbatch.cluster import local_cluster_options, quiet_dask_logs, scheduler_address, start_local_cluster


def dask_task_runner(address: str | None = None, *, threads: bool = False) -> DaskTaskRunner:
    """The given scheduler (or ``$DASK_SCHEDULER_ADDRESS``), else a LocalCluster
    created for the run, as the CLI's (``local_cluster_options``), whose workers
    report to the flow's Prefect server."""
    quiet_dask_logs()
    address = scheduler_address(address)
    if address:
        return DaskTaskRunner(address=address)
    return DaskTaskRunner(cluster_class=start_local_cluster_for_this_flow,
                          cluster_kwargs=local_cluster_options(threads=threads))


def flow_api_url() -> str | None:
    """The Prefect API the current flow run reports to, or None outside a flow run.

    Also the temporary server Prefect starts for a flow when no ``PREFECT_API_URL``
    is set, whose address is in no setting or environment variable."""
    context = FlowRunContext.get()
    client = context.client if context else None
    return str(client.api_url) if client is not None else None


def start_local_cluster_for_this_flow(**options) -> LocalCluster:
    """A LocalCluster whose worker processes report to the flow's Prefect server.

    A task run on a Dask worker takes the flow's settings, in which the API URL is
    unset when Prefect started a temporary server for the flow: each worker process
    would then start a temporary server of its own (one per worker, each taking
    seconds, and dying with it). ``PREFECT_API_URL`` in the workers' environment
    makes them report to the flow's server instead, so one server holds the run.
    (The runner creates the cluster at the first task submitted, inside the flow run.)
    """
    url = flow_api_url()
    return start_local_cluster(environment={"PREFECT_API_URL": url} if url else None, **options)
