"""Prefect flows for nerbatch: orchestration only (retries, artifacts, task
runners); the work is done by the ``nerbatch`` library."""
