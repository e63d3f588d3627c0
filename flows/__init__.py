"""Prefect flows for nerbatch: orchestration only (retries, artifacts, task
runners); the work is done by the ``nerbatch`` library."""

from flows.refusal_logs import log_refusals_in_one_line

# Here, so that every process that runs a flow or one of its tasks (the flow-run
# process of a deployment, Dask workers unpickling a task) has it before it logs.
log_refusals_in_one_line()
