"""What an operator reads on a real Prefect server: a failed backfill date is one
line (no traceback) and the failed state's message; a rerun of a done date keeps
the date's artifact and reports the counts of the run that wrote it."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pytest

from tests.prefect.conftest import prefect_cli, write_dump

pytestmark = pytest.mark.slow


def _run_logs(server, flow_run_ids: list[str], until: str, count: int = 1, timeout: float = 60) -> list[dict]:
    """Every log of these flow runs (and their task runs), once ``count`` of them contain
    ``until`` (logs are sent in batches, those of task runs from the Dask workers)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = server.api("POST", "/logs/filter", {"logs": {"flow_run_id": {"any_": flow_run_ids}},
                                                    "sort": "TIMESTAMP_ASC", "limit": 200})
        if sum(until in log["message"] for log in logs) >= count or time.monotonic() > deadline:
            return logs
        time.sleep(1)


def _flow_run_and_subflows(server, flow_run_id: str) -> list[str]:
    children = server.api("POST", "/flow_runs/filter",
                          {"flow_runs": {"parent_flow_run_id": {"any_": [flow_run_id]}}, "limit": 50})
    return [flow_run_id, *(child["id"] for child in children)]


def test_a_failed_backfill_date_is_one_line_and_the_failed_state_message(prefect_api, gpu_cluster,
                                                                         trained_synthetic, tmp_path):
    from flows.backfill import backfill_flow

    good, bad = dt.date(2026, 10, 1), dt.date(2026, 10, 2)
    write_dump(tmp_path / "dumps" / good.isoformat(), 8, seed=31)
    garbage = tmp_path / "dumps" / bad.isoformat() / "garbage.parquet"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"not parquet\n" * 10)
    kwargs = dict(input_template=f"{tmp_path}/dumps/{{date}}/*.parquet", bundle_dir=str(trained_synthetic.bundle_dir),
                  out_root=str(tmp_path / "tagged"), start_date=good, end_date=bad, dask_address=gpu_cluster.address)

    state = backfill_flow(**kwargs, return_state=True)
    flow_run_id = str(state.state_details.flow_run_id)
    run = prefect_api.flow_run(flow_run_id)
    assert run["state_type"] == "FAILED"
    reason = f"{bad}: {garbage}: not a readable Parquet file"
    assert reason in run["state"]["message"], run["state"]["message"]

    # The failed task and the backfill run each end with a "Finished in state Failed" line.
    logs = _run_logs(prefect_api, _flow_run_and_subflows(prefect_api, flow_run_id), until="Finished in state Failed",
                     count=2)
    messages = [log["message"] for log in logs]
    assert not [m for m in messages if "Traceback" in m], "\n".join(messages)
    errors = [log for log in logs if log["level"] >= logging.ERROR]
    # In the run that `prefect deployment run --watch` follows: one line naming date, file and reason.
    in_the_run = [log["message"] for log in errors if log["flow_run_id"] == flow_run_id]
    assert len(in_the_run) == 1, "\n".join(messages)
    assert in_the_run[0].startswith(f"BackfillIncomplete: 1 of 2 dates failed: {reason}")
    # Elsewhere only the failed task's own state line, which Prefect always writes.
    [task_line] = [log["message"] for log in errors if log["flow_run_id"] != flow_run_id]
    assert task_line.startswith("Finished in state Failed") and "\n" not in task_line
    assert f"{garbage}: not a readable Parquet file" in task_line

    inspected = prefect_cli("flow-run", "inspect", flow_run_id, env=prefect_api.env)
    assert "not a readable Parquet file" in inspected and str(bad) in inspected


def test_a_rerun_of_a_done_date_keeps_its_artifact_and_reports_the_manifests_counts(prefect_api, gpu_cluster,
                                                                                     trained_synthetic, tmp_path):
    from flows.backfill import backfill_flow

    date = dt.date(2026, 10, 5)
    write_dump(tmp_path / "dumps" / date.isoformat(), 12, seed=32)
    out = tmp_path / "tagged"
    kwargs = dict(input_template=f"{tmp_path}/dumps/{{date}}/*.parquet", bundle_dir=str(trained_synthetic.bundle_dir),
                  out_root=str(out), start_date=date, end_date=date, dask_address=gpu_cluster.address)

    [first] = backfill_flow(**kwargs)
    artifact = prefect_api.latest_artifact(f"tag-{date}")
    manifest = json.loads((out / "_manifests" / f"dt={date}.json").read_text())
    assert first["status"] == "written" and first["documents"] == 12
    assert first["entities"] == manifest["datasets"]["entities"]["rows"] > 0

    state = backfill_flow(**kwargs, return_state=True)
    [again] = state.result()
    assert again == {**first, "status": "skipped"}  # the counts of the run that wrote the date
    [status] = prefect_api.latest_artifact("backfill-status")["data"]
    assert (status["documents"], status["entities"]) == (12, first["entities"])
    # No artifact for a run that wrote nothing: the date's latest one is still the real one.
    assert prefect_api.latest_artifact(f"tag-{date}")["id"] == artifact["id"]
    # The no-op says how to redo it in Prefect's terms.
    flow_run_id = str(state.state_details.flow_run_id)
    logs = _run_logs(prefect_api, _flow_run_and_subflows(prefect_api, flow_run_id), until="already done")
    [noop] = [log["message"] for log in logs if "already done" in log["message"]]
    assert noop.endswith('Use options={"force": true} to redo it.') and "--force" not in noop
