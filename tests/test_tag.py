"""Batch tagging end to end: the output contract, offsets, bad documents,
determinism and exactly-once publishing, on real Dask clusters."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from nerbatch.outputs import manifest_path
from nerbatch.tables import ENTITY_SCHEMA
from nerbatch.tag import TagOptions, tag_documents
from tests.synthetic import document_text, synthetic_sentences

pytestmark = pytest.mark.slow
DATE = dt.date(2026, 11, 20)


def write_dump(folder: Path, n_docs: int, n_files: int, seed: int = 3) -> dict[str, str]:
    """Parquet files of ``doc_id``, ``text``; returns the texts by id."""
    folder.mkdir(parents=True, exist_ok=True)
    sentences = synthetic_sentences(n_docs * 3, seed=seed)
    docs = {f"d{i:04d}": document_text(sentences[3 * i : 3 * i + 3]) for i in range(n_docs)}
    ids = list(docs)
    for k in range(n_files):
        chunk = ids[k * n_docs // n_files : (k + 1) * n_docs // n_files]
        pd.DataFrame({"doc_id": chunk, "text": [docs[i] for i in chunk]}).to_parquet(folder / f"dump-{k}.parquet")
    return docs


def read_dataset(root: Path, name: str) -> pd.DataFrame:
    frame = pd.read_parquet(root / name)
    return frame.sort_values([c for c in ("doc_id", "sentence_index", "start_char", "token_index") if c in frame]).reset_index(drop=True)


def test_tagged_entities_follow_the_contract_and_offsets(tmp_path, trained_synthetic, dask_client_fixture):
    docs = write_dump(tmp_path / "dump", 40, 3)
    summary = tag_documents([str(tmp_path / "dump" / "*.parquet")], trained_synthetic.bundle_dir, tmp_path / "out",
                            TagOptions(date=DATE))
    assert summary.status == "written" and summary.documents == 40 and summary.rejects == 0
    entities = read_dataset(tmp_path / "out", "entities")
    assert list(entities.columns) == ENTITY_SCHEMA.names + ["dt"]
    assert len(entities) == summary.entities > 40
    for row in entities.itertuples():
        assert docs[row.doc_id][row.start_char : row.end_char] == row.text
    assert set(entities["label"]) == {"per", "geo", "org"}
    assert entities["model_version"].unique().tolist() == [trained_synthetic.model_version]
    assert ((entities["confidence"] > 0) & (entities["confidence"] <= 1)).all()
    people = entities[entities["label"] == "per"]["text"]
    assert people.str.contains(" ").any()  # multi-token entities come out as one span
    tokens = read_dataset(tmp_path / "out", "tokens")
    assert len(tokens) == summary.tokens
    assert all(docs[r.doc_id][r.start_char : r.end_char] == r.token for r in tokens.itertuples())
    manifest = json.loads(manifest_path(tmp_path / "out", DATE).read_text())
    assert manifest["datasets"]["entities"]["rows"] == len(entities)
    assert {f["sha256"] for f in manifest["inputs"]} and manifest["model_version"] == trained_synthetic.model_version


def test_rerun_skips_force_rewrites_identically(tmp_path, trained_synthetic, dask_client_fixture):
    write_dump(tmp_path / "dump", 30, 2)
    inputs = [str(tmp_path / "dump" / "*.parquet")]
    first = tag_documents(inputs, trained_synthetic.bundle_dir, tmp_path / "out", TagOptions(date=DATE))
    before = read_dataset(tmp_path / "out", "entities")
    names = sorted(p.name for p in (tmp_path / "out" / "entities" / f"dt={DATE}").iterdir())
    again = tag_documents(inputs, trained_synthetic.bundle_dir, tmp_path / "out", TagOptions(date=DATE))
    assert again.status == "skipped" and again.commit_id == first.commit_id
    forced = tag_documents(inputs, trained_synthetic.bundle_dir, tmp_path / "out", TagOptions(date=DATE, force=True))
    assert forced.status == "written" and forced.commit_id != first.commit_id
    pd.testing.assert_frame_equal(read_dataset(tmp_path / "out", "entities"), before)  # same rows once, never twice
    assert sorted(p.name for p in (tmp_path / "out" / "entities" / f"dt={DATE}").iterdir()) == names


def test_a_skipped_rerun_reports_the_counts_of_the_run_that_wrote_the_date(tmp_path, trained_synthetic,
                                                                           dask_client_fixture):
    from flows.tasks import FORCE_PARAMETER

    write_dump(tmp_path / "dump", 30, 2)
    inputs = [str(tmp_path / "dump" / "*.parquet")]
    first = tag_documents(inputs, trained_synthetic.bundle_dir, tmp_path / "out", TagOptions(date=DATE))
    again = tag_documents(inputs, trained_synthetic.bundle_dir, tmp_path / "out", TagOptions(date=DATE))
    assert first.status == "written" and again.status == "skipped"
    counted = ("documents", "sentences", "tokens", "entities", "entities_by_label", "rejects", "rejects_by_reason")
    assert {k: getattr(again, k) for k in counted} == {k: getattr(first, k) for k in counted}
    assert first.documents == 30
    # The way to redo it, as each caller spells it.
    assert again.summary().endswith("nothing written. Use --force to redo it.")
    assert again.summary(force_option=FORCE_PARAMETER).endswith('Use options={"force": true} to redo it.')
    assert "--force" not in again.summary(force_option=FORCE_PARAMETER)


def test_bad_documents_are_tagged_or_rejected_never_fatal(tmp_path, trained_synthetic, dask_client_fixture):
    import csv
    import io

    good = document_text(synthetic_sentences(2, seed=5))
    # 5 MB in a few thousand long tokens (cheap to tag), and one 3,000-token sentence.
    big = " ".join(["Paris"] + ["x" * 2000] * 2600)
    run_on = " ".join(["Angela", "Merkel", "visited", "Paris"] * 750)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([["doc_id", "text"], ["ok1", good]])
    body = buffer.getvalue().encode()
    body += b"bad-bytes,caf\xe9 au lait\n" + b"empty,\n" + b",no id here\n"  # rows 3, 4, 5
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows([["ok1", good], ["big", big], ["run-on", run_on]])  # rows 6, 7, 8
    (tmp_path / "a.csv").write_bytes(body + buffer.getvalue().encode())

    summary = tag_documents([str(tmp_path / "a.csv")], trained_synthetic.bundle_dir, tmp_path / "out", TagOptions(date=DATE))
    rejects = read_dataset(tmp_path / "out", "rejects").set_index("row")
    assert rejects.loc[3, "reason"] == "invalid_utf8"
    assert rejects.loc[4, "reason"] == "empty_text"
    assert rejects.loc[5, "reason"] == "null_id"
    assert rejects.loc[6, "reason"] == "duplicate_id"
    assert summary.documents == 3 and summary.rejects == 4
    tokens = read_dataset(tmp_path / "out", "tokens")
    assert (tokens["doc_id"] == "big").sum() == 2601 and len(big) > 5_000_000
    run_on_tokens = tokens[tokens["doc_id"] == "run-on"]
    assert len(run_on_tokens) == 3000 and run_on_tokens["sentence_index"].nunique() == 1  # tagged whole


def tag_cli(csv_text: str, tmp_path: Path, bundle_dir: Path, *options: str) -> subprocess.CompletedProcess:
    """``nerbatch tag`` on a one-file CSV dump into ``tmp_path/out``, in its own process."""
    (tmp_path / "d.csv").write_text(csv_text)
    return subprocess.run(
        [sys.executable, "-m", "nerbatch.cli", "tag", str(tmp_path / "d.csv"), "--model", str(bundle_dir),
         "--out", str(tmp_path / "out"), "--workers", "1", "--no-progress", *options],
        capture_output=True, text=True, timeout=300,
    )


def test_missing_column_is_one_clear_error(tmp_path, trained_synthetic):
    result = tag_cli("id,body\n1,hello\n", tmp_path, trained_synthetic.bundle_dir)
    assert result.returncode == 2
    assert "d.csv" in result.stderr and "doc_id" in result.stderr and "Traceback" not in result.stderr


def test_bad_run_id_is_rejected_before_any_work(tmp_path, trained_synthetic):
    result = tag_cli("doc_id,text\n1,hello\n", tmp_path, trained_synthetic.bundle_dir, "--run-id", "../escape")
    assert result.returncode == 2
    assert "run_id" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def _staged_parts(out: Path) -> list[Path]:
    return list((out / "_staging").glob("dt=*/*/entities/part-*.parquet"))


def test_killed_run_leaves_nothing_visible_and_rerun_completes(tmp_path, trained_synthetic):
    docs = write_dump(tmp_path / "dump", 120, 12)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "nerbatch.cli", "tag", str(tmp_path / "dump" / "*.parquet"), "--model",
           str(trained_synthetic.bundle_dir), "--out", str(out), "--date", str(DATE), "--workers", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 240
    while not _staged_parts(out) and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the CLI, its LocalCluster and workers, between writing and committing
    proc.wait()
    assert _staged_parts(out)  # some parts were written...
    assert not (out / "entities").exists() and not manifest_path(out, DATE).exists()  # ...none is visible
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    entities = read_dataset(out, "entities")
    assert set(entities["doc_id"]) == set(docs)
    assert not entities.duplicated(["doc_id", "sentence_index", "start_char"]).any()
    assert not list((out / "_staging").glob("dt=*/*"))  # the dead attempt was cleaned up


def test_two_runs_of_the_same_date_at_once_publish_it_once(tmp_path, trained_synthetic):
    # A nightly run and a backfill of the same date: the second waits for the date lock,
    # then finds the date done.
    docs = write_dump(tmp_path / "dump", 60, 6)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "nerbatch.cli", "tag", str(tmp_path / "dump" / "*.parquet"), "--model",
           str(trained_synthetic.bundle_dir), "--out", str(out), "--date", str(DATE), "--workers", "1", "--no-progress"]
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [run.communicate(timeout=600)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sorted("already done" in output for output in outputs) == [False, True], outputs
    entities = read_dataset(out, "entities")
    assert set(entities["doc_id"]) <= set(docs) and len(entities) > 0
    assert not entities.duplicated(["doc_id", "sentence_index", "start_char"]).any()
    assert json.loads(manifest_path(out, DATE).read_text())["datasets"]["entities"]["rows"] == len(entities)


def test_worker_killed_mid_run_still_gives_every_entity_once(tmp_path, trained_synthetic, dask_client_fixture):
    from distributed import Client

    from tests.conftest import ProcessCluster

    write_dump(tmp_path / "dump", 160, 16)
    inputs = [str(tmp_path / "dump" / "*.parquet")]
    options = TagOptions(date=DATE, run_id="same-run")
    tag_documents(inputs, trained_synthetic.bundle_dir, tmp_path / "calm", options)  # undisturbed, on the LocalCluster
    expected = read_dataset(tmp_path / "calm", "entities")

    cluster = ProcessCluster(tmp_path, [[], []])
    try:
        with Client(cluster.address) as client, client.as_current():
            outcome: dict = {}

            def run() -> None:
                try:
                    outcome["summary"] = tag_documents(inputs, trained_synthetic.bundle_dir, tmp_path / "stormy", options)
                except BaseException as exc:  # noqa: BLE001 - reported below
                    outcome["error"] = exc

            runner = threading.Thread(target=run)
            runner.start()
            deadline = time.time() + 240
            while not _staged_parts(tmp_path / "stormy") and time.time() < deadline:
                time.sleep(0.05)
            assert runner.is_alive(), "the run ended before a worker could be killed"
            pids = client.run(os.getpid)
            victim = next(a for a, w in client.scheduler_info()["workers"].items() if w["name"] == "worker-0")
            os.kill(pids[victim], signal.SIGKILL)  # the worker process dies mid-run; its nanny starts a new one
            runner.join(timeout=600)
    finally:
        cluster.stop()
    assert "error" not in outcome, outcome.get("error")
    pd.testing.assert_frame_equal(read_dataset(tmp_path / "stormy", "entities"), expected)


def test_successful_run_leaves_no_staging_or_trash_folder(tmp_path, trained_synthetic, dask_client_fixture):
    write_dump(tmp_path / "dump", 10, 2)
    inputs = [str(tmp_path / "dump" / "*.parquet")]
    for force in (False, True):  # the forced rerun replaces the partition through _trash/
        tag_documents(inputs, trained_synthetic.bundle_dir, tmp_path / "out", TagOptions(date=DATE, force=force))
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
            "_locks", "_manifests", "entities", "rejects", "tokens"]


def lambda_bundle(source: Path, target: Path) -> Path:
    """A copy of a bundle whose model.keras holds a Lambda layer (code), with bundle.json's
    hashes and version rewritten to match: only safe_mode stands between it and running."""
    import shutil

    import keras

    from nerbatch.bundle import content_version
    from nerbatch.checksums import file_sha256

    shutil.copytree(source, target)
    inputs = keras.Input((3,))
    keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2)(inputs)).save(target / "model.keras")
    manifest = json.loads((target / "bundle.json").read_text())
    manifest["files"]["model.keras"] = file_sha256(target / "model.keras")[1]
    manifest["model_version"] = content_version(target)
    (target / "bundle.json").write_text(json.dumps(manifest))
    return target


def test_a_bundle_holding_code_is_one_line_in_predict_and_tag(tmp_path, trained_synthetic):
    bundle = lambda_bundle(trained_synthetic.bundle_dir, tmp_path / "lambda")
    predicted = subprocess.run([sys.executable, "-m", "nerbatch.cli", "predict", str(bundle), "Angela Merkel visited Paris."],
                               capture_output=True, text=True, timeout=300)
    tagged = tag_cli("doc_id,text\n1,Angela Merkel visited Paris.\n", tmp_path, bundle)
    for result in (predicted, tagged):
        assert result.returncode == 2
        last = result.stderr.strip().splitlines()[-1]
        assert last.startswith(f"error: {bundle}: model.keras cannot be loaded safely"), result.stderr
        assert "Traceback" not in result.stderr and "Compute Failed" not in result.stderr, result.stderr
    assert not (tmp_path / "out" / "entities").exists()


def test_an_unwritable_output_root_is_one_line(tmp_path, trained_synthetic):
    (tmp_path / "out").write_text("a file where the output root should be")
    result = tag_cli("doc_id,text\n1,Angela Merkel visited Paris.\n", tmp_path, trained_synthetic.bundle_dir)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: {tmp_path / 'out'}: cannot write the output here")
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_output_root_is_one_line(tmp_path, trained_synthetic):
    (tmp_path / "out").mkdir()
    (tmp_path / "out").chmod(0o555)
    try:
        result = tag_cli("doc_id,text\n1,Angela Merkel visited Paris.\n", tmp_path, trained_synthetic.bundle_dir)
    finally:
        (tmp_path / "out").chmod(0o755)
    assert result.returncode == 2 and "cannot write the output here" in result.stderr
    assert "Traceback" not in result.stderr
