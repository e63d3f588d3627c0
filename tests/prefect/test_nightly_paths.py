"""The nightly deployment runs with the operator's paths or does not run: deployed
the documented way (paths exported, README step 2), its scheduled runs carry them
and complete on a worker; deployed without them, its schedule is paused and
`prefect deploy` says in one line what to set."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from flows.tag import today_in
from tests.prefect.conftest import (
    OPERATOR_PATH_VARIABLES,
    PREFECT,
    PREFECT_FILE,
    REPO,
    Service,
    prefect_cli,
    write_dump,
)

CHECK = REPO / "deploy" / "require_env.py"


def _check(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(CHECK), "tag-documents/nightly", *OPERATOR_PATH_VARIABLES],
                          env=env, capture_output=True, text=True, timeout=60)


def test_the_deploy_time_check_says_true_or_false_and_what_to_set():
    paths = {"NERBATCH_INPUT_TEMPLATE": "/data/{date}/*.parquet", "NERBATCH_MODEL_DIR": "/m", "NERBATCH_OUT_ROOT": "/o"}
    ok = _check(paths)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "true\n", "")
    missing = _check({"NERBATCH_INPUT_TEMPLATE": "/data/{date}/*.parquet", "NERBATCH_OUT_ROOT": " "})
    assert missing.returncode == 0 and missing.stdout == "false\n"
    assert missing.stderr.count("\n") == 1 and "PAUSED" in missing.stderr
    assert "NERBATCH_MODEL_DIR is not set; NERBATCH_OUT_ROOT is not set" in missing.stderr
    assert "export NERBATCH_INPUT_TEMPLATE, NERBATCH_MODEL_DIR, NERBATCH_OUT_ROOT" in missing.stderr
    no_date = _check({**paths, "NERBATCH_INPUT_TEMPLATE": "/data/today/*.parquet"})
    assert no_date.stdout == "false\n" and "NERBATCH_INPUT_TEMPLATE has no {date}" in no_date.stderr


def test_a_run_without_its_paths_is_refused_at_once_naming_them():
    from flows.backfill import backfill_flow
    from flows.tag import MissingPaths, tag_documents_flow

    with pytest.raises(MissingPaths, match=r"^bundle_dir, out_root empty: pass them with --param, or export"):
        tag_documents_flow.fn("/data/{date}/*.parquet", "", " ")
    with pytest.raises(MissingPaths, match=r"^input_template empty"):
        backfill_flow.fn("", "/models/current", "/data/tagged")


def _deploy_nightly_as(name: str, env: dict[str, str], folder: Path) -> str:
    """Deploy the nightly of deploy/prefect.yaml under another name (so that the session's
    nightly and its scheduled runs stay as they are), as README step 3 does; the output."""
    config = yaml.safe_load(PREFECT_FILE.read_text())
    [nightly] = [d for d in config["deployments"] if d["name"] == "nightly"]
    config["deployments"] = [{**nightly, "name": name}]
    prefect_file = folder / f"{name}.yaml"
    prefect_file.write_text(yaml.safe_dump(config))
    return prefect_cli("--no-prompt", "deploy", "--prefect-file", str(prefect_file), "--name", name, env=env)


@pytest.mark.slow
def test_a_scheduled_nightly_run_gets_the_operators_paths_and_completes(prefect_server, deployed, operator_paths,
                                                                        trained_synthetic, tmp_path):
    assert deployed["tag-documents/nightly"]["schedules"][0]["active"]  # the session's, deployed the same way
    output = _deploy_nightly_as("nightly-scheduled", {**prefect_server.env, **operator_paths}, tmp_path)
    assert "PAUSED" not in output
    nightly = prefect_server.deployment("tag-documents/nightly-scheduled")
    expected = {"input_template": operator_paths["NERBATCH_INPUT_TEMPLATE"],
                "bundle_dir": operator_paths["NERBATCH_MODEL_DIR"], "out_root": operator_paths["NERBATCH_OUT_ROOT"]}
    assert {k: nightly["parameters"][k] for k in expected} == expected
    assert nightly["schedules"][0]["active"] is True
    query = {"flow_runs": {"deployment_id": {"any_": [nightly["id"]]}, "state": {"type": {"any_": ["SCHEDULED"]}}},
             "sort": "EXPECTED_START_TIME_ASC", "limit": 5}
    deadline = time.monotonic() + 90
    while not (scheduled := prefect_server.api("POST", "/flow_runs/filter", query)):
        assert time.monotonic() < deadline, "the scheduler created no nightly run in 90s"
        time.sleep(1)
    run = scheduled[0]
    assert run["idempotency_key"].startswith(f"scheduled {nightly['id']}")  # made by the schedule, not by hand
    assert {k: run["parameters"][k] for k in expected} == expected

    # The operator's machine: the model where NERBATCH_MODEL_DIR says, today's dump where the template says.
    shutil.copytree(trained_synthetic.bundle_dir, expected["bundle_dir"], dirs_exist_ok=True)
    for day in {today_in("Europe/Berlin"), today_in("Europe/Berlin") + dt.timedelta(days=1)}:  # a run near midnight
        folder = Path(expected["input_template"].format(date=day.isoformat())).parent
        write_dump(folder, 6, seed=40)
    # Its time comes now instead of at 04:30 Berlin time.
    now = dt.datetime.now(dt.UTC).isoformat()
    prefect_server.api("POST", f"/flow_runs/{run['id']}/set_state",
                       {"state": {"type": "SCHEDULED", "name": "Scheduled", "state_details": {"scheduled_time": now}},
                        "force": True})
    worker = Service("worker-cpu-scheduled", [PREFECT, "worker", "start", "--pool", "cpu", "--name", "test-scheduled"],
                     {**prefect_server.env, "PREFECT_WORKER_QUERY_SECONDS": "2"}, tmp_path, cwd=tmp_path)
    try:
        finished = prefect_server.wait_for_flow_run(run["id"], timeout=420, watch=[worker])
    finally:
        worker.stop(signal.SIGINT, timeout=30)
    assert finished["state_type"] == "COMPLETED", f"{finished['state']['message']}\n{worker.tail()}"
    manifests = list(Path(expected["out_root"], "_manifests").glob("dt=*.json"))
    assert len(manifests) == 1
    manifest = json.loads(manifests[0].read_text())
    assert manifest["datasets"]["entities"]["rows"] > 0
    assert manifest["model_version"] == trained_synthetic.model_version


@pytest.mark.slow
def test_a_nightly_deployed_without_its_paths_has_its_schedule_paused_and_says_what_to_set(prefect_server, deployed,
                                                                                            tmp_path):
    env = {k: v for k, v in prefect_server.env.items() if k not in OPERATOR_PATH_VARIABLES}
    output = _deploy_nightly_as("nightly-without-paths", env, tmp_path)
    [line] = [line for line in output.splitlines() if "PAUSED" in line]
    assert "NERBATCH_MODEL_DIR is not set" in line and "run `prefect deploy` again" in line
    deployment = prefect_server.deployment("tag-documents/nightly-without-paths")
    [schedule] = deployment["schedules"]
    assert schedule["active"] is False
    time.sleep(12)  # two scheduler loops: a paused schedule creates no runs
    runs = prefect_server.api("POST", "/flow_runs/filter",
                              {"flow_runs": {"deployment_id": {"any_": [deployment["id"]]}}, "limit": 5})
    assert runs == []
