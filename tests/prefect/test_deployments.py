"""deploy/prefect.yaml on a real Prefect server: the cron schedule creates runs,
a process worker runs the nightly deployment end to end (and prepare on demand), a backfill with one
corrupt date reports it and completes on rerun, and training lands on the Dask
worker that has the GPU resource (or fails at once when there is none)."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import pytest

from tests.prefect.conftest import PREFECT, REPO, Service, flow_run_id_from, prefect_cli, write_dump
from tests.synthetic import synthetic_sentences, write_gmb

pytestmark = pytest.mark.slow

BERLIN = ZoneInfo("Europe/Berlin")
DATE = dt.date(2026, 11, 20)


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_deployments_match_prefect_yaml(deployed):
    nightly = deployed["tag-documents/nightly"]
    assert nightly["entrypoint"] == "flows/tag.py:tag_documents_flow"
    assert nightly["work_pool_name"] == "cpu"
    # the pull step's env placeholder was resolved at deploy time, to the checkout deployed from
    assert nightly["pull_steps"] == [{"prefect.deployments.steps.set_working_directory": {"directory": str(REPO)}}]
    assert nightly["global_concurrency_limit"]["limit"] == 1
    assert nightly["parameters"]["timezone"] == "Europe/Berlin"
    assert {"input_template", "bundle_dir", "out_root"} <= set(nightly["parameters"])
    assert nightly["job_variables"]["env"]["TF_CPP_MIN_LOG_LEVEL"] == "3"
    [schedule] = nightly["schedules"]
    assert schedule["active"] and schedule["schedule"]["cron"] == "30 4 * * *"
    assert schedule["schedule"]["timezone"] == "Europe/Berlin"

    backfill = deployed["backfill/on-demand"]
    assert backfill["schedules"] == [] and backfill["work_pool_name"] == "cpu"
    train = deployed["train-tagger/gpu"]
    assert train["work_pool_name"] == "gpu" and train["parameters"]["gpu"] is True
    assert train["job_variables"]["env"]["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
    assert train["job_variables"]["env"]["PREFECT_LOGGING_LEVEL"] == "INFO"  # the merge kept the base env
    assert deployed["ner-pipeline/default"]["entrypoint"] == "flows/pipeline.py:ner_pipeline"
    prepare = deployed["prepare-corpus/on-demand"]
    assert prepare["entrypoint"] == "flows/prepare.py:prepare_corpus_flow" and prepare["schedules"] == []


def test_nightly_cron_creates_scheduled_runs_in_berlin_time(prefect_server, deployed):
    """The scheduler service (PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS=5 here) inserts
    the nightly's future runs: this is what SQLAlchemy 2.1 breaks in Prefect 3.8.8."""
    deployment_id = deployed["tag-documents/nightly"]["id"]
    query = {"flow_runs": {"deployment_id": {"any_": [deployment_id]}, "state": {"type": {"any_": ["SCHEDULED"]}}},
             "sort": "EXPECTED_START_TIME_ASC", "limit": 50}
    deadline = time.monotonic() + 90
    while len(runs := prefect_server.api("POST", "/flow_runs/filter", query)) < 3:
        assert time.monotonic() < deadline, f"the scheduler created {len(runs)} runs in 90s:\n{prefect_server.service.tail()}"
        time.sleep(1)
    now = dt.datetime.now(dt.UTC)
    starts = [_utc(r["expected_start_time"]) for r in runs]
    local = [s.astimezone(BERLIN) for s in starts]
    assert all((t.hour, t.minute, t.second) == (4, 30, 0) for t in local), local
    days = [t.date() for t in local]
    assert days == [days[0] + dt.timedelta(days=i) for i in range(len(days))]  # one run a day, none missing
    assert now - dt.timedelta(minutes=10) < starts[0] <= now + dt.timedelta(days=1)
    # the expected instant is 04:30 Berlin of that day, whatever its UTC offset (CET or CEST)
    assert starts == [dt.datetime.combine(d, dt.time(4, 30), BERLIN).astimezone(dt.UTC) for d in days]
    assert all(r["idempotency_key"].startswith(f"scheduled {deployment_id}") for r in runs)
    assert all(r["parameters"] == {} or "date" not in r["parameters"] for r in runs)  # date: today at run time


def test_nightly_deployment_runs_on_a_process_worker(prefect_server, deployed, trained_synthetic, tmp_path):
    dump = tmp_path / "dumps" / DATE.isoformat()
    docs = write_dump(dump, 24, seed=11)
    out = tmp_path / "tagged"
    env = prefect_server.env
    output = prefect_cli(
        "deployment", "run", "tag-documents/nightly",
        "--param", f"date={DATE}",
        "--param", f"input_template={tmp_path}/dumps/{{date}}/*.parquet",
        "--param", f"bundle_dir={trained_synthetic.bundle_dir}",
        "--param", f"out_root={out}",
        env=env,
    )
    flow_run_id = flow_run_id_from(output)
    # Started outside the checkout: the deployment's pull step must find the code.
    worker = Service("worker-cpu", [PREFECT, "worker", "start", "--pool", "cpu", "--name", "test-cpu"],
                     {**env, "PREFECT_WORKER_QUERY_SECONDS": "2"}, tmp_path, cwd=tmp_path)
    started = time.monotonic()
    try:
        run = prefect_server.wait_for_flow_run(flow_run_id, timeout=420, watch=[worker])
        print(f"\nnightly run {run['state_name']} {time.monotonic() - started:.1f}s after the worker started")
        assert run["state_type"] == "COMPLETED", f"{run['state_name']}: {run['state']['message']}\n{worker.tail()}"
    finally:
        graceful = worker.stop(signal.SIGINT, timeout=30)
    assert graceful, f"the worker did not stop on SIGINT:\n{worker.tail()}"
    assert run["deployment_id"] == deployed["tag-documents/nightly"]["id"]
    assert run["parameters"]["date"] == DATE.isoformat()

    partition = out / "entities" / f"dt={DATE}"
    assert partition.is_dir() and (partition / "_SUCCESS").exists()
    entities = pd.read_parquet(partition)
    assert len(entities) > 0
    for row in entities.itertuples():
        assert docs[row.doc_id][row.start_char : row.end_char] == row.text
    assert entities["model_version"].unique().tolist() == [trained_synthetic.model_version]

    manifest = json.loads((out / "_manifests" / f"dt={DATE}.json").read_text())
    assert manifest["date"] == DATE.isoformat()
    assert manifest["model_version"] == trained_synthetic.model_version
    assert manifest["datasets"]["entities"]["rows"] == len(entities)
    assert [Path(f["path"]).name for f in manifest["inputs"]] == ["dump-0.parquet"]
    assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) and f["size"] > 0 for f in manifest["inputs"])
    artifact = prefect_server.latest_artifact(f"tag-{DATE}")  # published by the tag task of that run
    assert f"dt={DATE}" in artifact["data"] and str(out) in artifact["data"]


def test_prepare_deployment_runs_on_a_process_worker(prefect_server, deployed, tmp_path):
    (tmp_path / "corpus").mkdir()
    corpus = write_gmb(tmp_path / "corpus" / "ner_dataset.csv", synthetic_sentences(40, seed=5))
    out = tmp_path / "prepared"
    env = prefect_server.env
    params = {"inputs": [str(corpus)], "out_dir": str(out), "options": {"min_count": 1}}
    output = prefect_cli("deployment", "run", "prepare-corpus/on-demand", "--params", json.dumps(params), env=env)
    flow_run_id = flow_run_id_from(output)
    worker = Service("worker-cpu-prepare", [PREFECT, "worker", "start", "--pool", "cpu", "--name", "test-prepare"],
                     {**env, "PREFECT_WORKER_QUERY_SECONDS": "2"}, tmp_path, cwd=tmp_path)
    try:
        run = prefect_server.wait_for_flow_run(flow_run_id, timeout=300, watch=[worker])
        assert run["state_type"] == "COMPLETED", f"{run['state_name']}: {run['state']['message']}\n{worker.tail()}"
    finally:
        graceful = worker.stop(signal.SIGINT, timeout=30)
    assert graceful, f"the worker did not stop on SIGINT:\n{worker.tail()}"
    assert run["deployment_id"] == deployed["prepare-corpus/on-demand"]["id"]
    report = json.loads((out / "prepare_report.json").read_text())
    assert sum(report["sentences"].values()) == 40
    assert len(pd.read_parquet(out / "sentences")) == 40 and (out / "vocab.json").exists()


def test_backfill_reports_a_corrupt_date_and_completes_it_on_rerun(prefect_api, gpu_cluster, trained_synthetic,
                                                                   tmp_path):
    from flows.backfill import backfill_flow

    dates = [dt.date(2026, 11, 18), dt.date(2026, 11, 19), dt.date(2026, 11, 20)]
    bad_date = dates[1]
    for i, date in enumerate(dates):
        if date != bad_date:
            write_dump(tmp_path / "dumps" / date.isoformat(), 10, seed=20 + i)
    garbage = tmp_path / "dumps" / bad_date.isoformat() / "garbage.parquet"
    garbage.parent.mkdir(parents=True)
    garbage.write_bytes(b"this is not a parquet file\n" * 10)
    template = f"{tmp_path}/dumps/{{date}}/*.parquet"
    out = tmp_path / "tagged"
    kwargs = dict(input_template=template, bundle_dir=str(trained_synthetic.bundle_dir), out_root=str(out),
                  start_date=dates[0], end_date=dates[-1], max_concurrency=2, dask_address=gpu_cluster.address)

    state = backfill_flow(**kwargs, return_state=True)
    run = prefect_api.flow_run(str(state.state_details.flow_run_id))
    assert run["state_type"] == "FAILED", run["state"]
    message = run["state"]["message"]
    assert "BackfillIncomplete" in message and str(bad_date) in message and str(garbage) in message, message
    assert "not a readable Parquet file" in message
    for date in dates:
        assert (out / "entities" / f"dt={date}").is_dir() == (date != bad_date)
    status = {row["date"]: row for row in prefect_api.latest_artifact("backfill-status")["data"]}
    assert status[str(bad_date)]["status"] == "failed" and str(garbage) in status[str(bad_date)]["reason"]
    assert {status[str(d)]["status"] for d in dates if d != bad_date} == {"written"}

    garbage.unlink()  # the fix: a good dump for that date
    write_dump(garbage.parent, 10, seed=99)
    rerun = backfill_flow(**kwargs)
    assert [(r["date"], r["status"]) for r in rerun] == [
        (str(dates[0]), "skipped"), (str(bad_date), "written"), (str(dates[2]), "skipped")]
    assert (out / "entities" / f"dt={bad_date}" / "_SUCCESS").exists()
    status = {row["date"]: row["status"] for row in prefect_api.latest_artifact("backfill-status")["data"]}
    assert status == {str(dates[0]): "skipped", str(bad_date): "written", str(dates[2]): "skipped"}


def test_gpu_training_runs_on_the_gpu_worker(prefect_api, gpu_cluster, prepared_synthetic, tmp_path):
    from flows.train import train_tagger_flow
    from nerbatch.train import TrainConfig

    bundle = tmp_path / "bundle"
    result = train_tagger_flow(str(prepared_synthetic), str(bundle),
                               TrainConfig(preset="tiny", epochs=1, max_batches_per_epoch=5), gpu=True,
                               dask_address=gpu_cluster.address)
    assert result["worker"] == "worker-1"  # the one started with --resources GPU=1
    assert (bundle / "model.keras").exists() and result["model_version"]


def test_gpu_training_without_a_gpu_worker_fails_fast(prefect_api, prepared_synthetic, tmp_path, monkeypatch):
    from flows.train import NoGpuWorker, train_tagger_flow
    from nerbatch.train import TrainConfig

    monkeypatch.delenv("DASK_SCHEDULER_ADDRESS", raising=False)  # the default: a LocalCluster, no GPU resource
    started = time.monotonic()
    with pytest.raises(NoGpuWorker, match="no Dask worker has a GPU resource"):
        train_tagger_flow(str(prepared_synthetic), str(tmp_path / "bundle"),
                          TrainConfig(preset="tiny", epochs=1, max_batches_per_epoch=5), gpu=True)
    assert time.monotonic() - started < 90
    assert not (tmp_path / "bundle").exists()


def test_flows_follow_the_output_folder_rule_and_do_not_retry_a_refusal(prefect_api, prepared_synthetic, tmp_path):
    from flows.prepare import prepare_corpus_flow
    from flows.train import train_tagger_flow
    from nerbatch.errors import OutputDirectoryError
    from nerbatch.train import TrainConfig

    (tmp_path / "corpus").mkdir()
    corpus = write_gmb(tmp_path / "corpus" / "ner_dataset.csv", synthetic_sentences(40, seed=5))
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "todo.md").write_text("mine")
    started = time.monotonic()
    with pytest.raises(OutputDirectoryError, match="not an earlier prepare output"):
        prepare_corpus_flow([str(corpus)], str(notes))
    with pytest.raises(OutputDirectoryError, match="holds the input"):
        prepare_corpus_flow([str(corpus)], str(tmp_path / "corpus"), overwrite=True)
    with pytest.raises(OutputDirectoryError, match="not an earlier train output"):
        train_tagger_flow(str(prepared_synthetic), str(notes), TrainConfig(preset="tiny", epochs=1))
    assert time.monotonic() - started < 60  # a refusal is never retried (retries wait 10 s and more)
    assert sorted(p.name for p in notes.iterdir()) == ["todo.md"] and corpus.exists()
    report = prepare_corpus_flow([str(corpus)], str(notes), overwrite=True)
    assert sum(report.sentences.values()) == 40 and not (notes / "todo.md").exists()
