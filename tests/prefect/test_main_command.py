"""The README's main command (``scripts/run-main.sh``) runs the whole ner-pipeline
flow on a fresh Prefect home: prepare, train, evaluate, tag, and says where the
outputs are."""

from __future__ import annotations

import json
import subprocess

import pandas as pd
import pytest

from tests.prefect.conftest import REPO, clean_env
from tests.synthetic import synthetic_sentences, write_gmb

pytestmark = pytest.mark.slow


def test_main_command_runs_the_pipeline_end_to_end(tmp_path):
    corpus = write_gmb(tmp_path / "ner_dataset.csv", synthetic_sentences(300, seed=9))
    work = tmp_path / "pipeline"
    # A Prefect home whose parent folders do not exist yet, as on a fresh clone.
    env = clean_env(PREFECT_HOME=str(tmp_path / "fresh" / "prefect-home"))
    result = subprocess.run(
        ["bash", str(REPO / "scripts" / "run-main.sh"), str(corpus), "--work-dir", str(work),
         "--preset", "tiny", "--epochs", "3", "--date", "2026-11-20"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert f"model report:   {work}/model/report.md" in result.stdout
    assert f"tagged entities: {work}/tagged/entities/dt=2026-11-20" in result.stdout
    assert (work / "model" / "report.md").exists()
    manifest = json.loads((work / "tagged" / "_manifests" / "dt=2026-11-20.json").read_text())
    # The test split, detokenised into documents, was tagged (entity quality is tested elsewhere:
    # three epochs of the tiny preset may find none).
    tokens = pd.read_parquet(work / "tagged" / "tokens" / "dt=2026-11-20")
    assert manifest["datasets"]["tokens"]["rows"] == len(tokens) > 0
    assert manifest["datasets"]["entities"]["rows"] == len(pd.read_parquet(work / "tagged" / "entities" / "dt=2026-11-20"))


def test_main_command_without_a_corpus_says_what_one_is_before_starting_anything(tmp_path):
    import sys

    prefect_home = tmp_path / "prefect-home"
    missing = tmp_path / "shared" / "data" / "gmb_ner_dataset.csv"
    result = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", str(missing), "--work-dir", str(tmp_path / "pipeline")],
        env=clean_env(PREFECT_HOME=str(prefect_home)), cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {missing}: file not found")
    assert "Annotated Corpus for Named Entity Recognition" in result.stderr and "ner_dataset.csv" in result.stderr
    assert "scripts/run-main.sh PATH/TO/ner_dataset.csv" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") <= 2
    assert not list(prefect_home.glob("*.db")) and not (tmp_path / "pipeline").exists()  # no server, no work started


def test_main_command_refuses_a_work_dir_whose_output_folders_hold_other_things(tmp_path):
    import sys

    corpus = write_gmb(tmp_path / "ner_dataset.csv", synthetic_sentences(20, seed=9))
    (tmp_path / "work" / "model").mkdir(parents=True)
    (tmp_path / "work" / "model" / "notes.md").write_text("mine")
    result = subprocess.run(
        [sys.executable, "-m", "flows.pipeline", str(corpus), "--work-dir", str(tmp_path / "work")],
        env=clean_env(PREFECT_HOME=str(tmp_path / "prefect-home")), cwd=REPO, capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr == (f"error: {tmp_path / 'work' / 'model'}: exists and is not an earlier train output "
                             "(no bundle.json); give --work-dir a new folder\n")
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["model"]
