"""Without PREFECT_API_URL, the main command's flow starts one temporary Prefect
server, and the tasks that run on the LocalCluster's worker processes report to
it (they used to start one temporary server each)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from tests.prefect.conftest import REPO, clean_env
from tests.synthetic import synthetic_sentences, write_gmb

pytestmark = pytest.mark.slow


def test_one_prefect_server_holds_every_task_run_of_the_pipeline(tmp_path):
    corpus = write_gmb(tmp_path / "ner_dataset.csv", synthetic_sentences(200, seed=4))
    home = tmp_path / "prefect-home"
    home.mkdir()
    env = clean_env(PREFECT_HOME=str(home), PYTHONPATH=str(REPO))
    result = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", str(corpus), "--work-dir", str(tmp_path / "work"),
         "--preset", "tiny", "--epochs", "2", "--date", "2026-11-21"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    started = [line for line in output.splitlines() if "Starting temporary server on" in line]
    assert len(started) == 1, "\n".join(started)  # the flow's; none on the Dask workers

    with sqlite3.connect(home / "prefect.db") as db:
        flow_runs = dict(db.execute("SELECT id, name FROM flow_run").fetchall())
        task_runs = db.execute("SELECT name, state_type, flow_run_id FROM task_run").fetchall()
        training_logs = db.execute("SELECT message FROM log WHERE message LIKE 'training on %'").fetchall()
    # Task run names get a random suffix, except tag-<date>; the subflow has a task run of its own.
    names = [name if name.startswith("tag-") else name.rsplit("-", 1)[0] for name, _, _ in task_runs]
    for task in ("prepare", "train", "evaluate", "demo-dump", "tag-2026-11-21"):
        assert names.count(task) == 1, names
    assert {state for _, state, _ in task_runs} == {"COMPLETED"}
    assert all(flow_run_id in flow_runs for _, _, flow_run_id in task_runs)
    # The worker's logs reached it too, including which devices training used.
    assert [message for (message,) in training_logs if "GPU" in message], training_logs
