"""``prepare`` and ``train`` replace their output folder as a whole, so they must
never be pointed at someone's data: a refusal is one line naming the folder and
the way out, exit 2, and nothing is touched (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import dask
import pytest

from nerbatch.errors import OutputDirectoryError
from nerbatch.prepare import PrepareOptions, prepare_corpus
from tests.corpus.test_readers import GMB_HEADER, gmb_lines, write


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` with the bytes of files: what "nothing touched" compares."""
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


@pytest.fixture()
def corpus(tmp_path) -> Path:
    (tmp_path / "data").mkdir()
    return write(tmp_path / "data" / "ner_dataset.csv", GMB_HEADER + "".join(gmb_lines(20)))


def prepare(corpus: Path, out: Path | str, **kwargs):
    with dask.config.set(scheduler="sync"):
        return prepare_corpus([str(corpus)], out, PrepareOptions(), **kwargs)


def refused(corpus: Path, out: Path | str, watched: Path, match: str, **kwargs) -> None:
    before = snapshot(watched)
    with pytest.raises(OutputDirectoryError, match=match):
        prepare(corpus, out, **kwargs)
    assert snapshot(watched) == before


def test_prepare_refuses_the_folder_that_holds_its_input_even_with_overwrite(tmp_path, corpus):
    for overwrite in (False, True):
        refused(corpus, corpus.parent, tmp_path, r"data: holds the input .*ner_dataset\.csv", overwrite=overwrite)
    refused(corpus, tmp_path, tmp_path, "holds the input", overwrite=True)  # a folder further up


def test_prepare_refuses_a_file_even_the_input_itself(tmp_path, corpus):
    notes = write(tmp_path / "notes.txt", "mine")
    refused(corpus, notes, tmp_path, r"notes\.txt: is a file, not an output folder", overwrite=True)
    refused(corpus, corpus, tmp_path, r"ner_dataset\.csv: is a file", overwrite=True)


def test_prepare_refuses_home_cwd_and_root_even_with_overwrite(tmp_path, corpus, monkeypatch):
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    write(home / ".ssh" / "id_ed25519", "secret")
    monkeypatch.setenv("HOME", str(home))
    refused(corpus, home, tmp_path, "is your home folder", overwrite=True)
    refused(corpus, "~", tmp_path, "is your home folder", overwrite=True)
    refused(corpus, tmp_path, tmp_path, "above your home folder", overwrite=True)
    work = tmp_path / "work"
    work.mkdir()
    write(work / "draft.txt", "mine")
    monkeypatch.chdir(work)
    refused(corpus, ".", tmp_path, "is the current folder", overwrite=True)
    refused(corpus, work, tmp_path, "is the current folder", overwrite=True)
    with pytest.raises(OutputDirectoryError, match="is the root folder"):
        prepare(corpus, "/", overwrite=True)


def test_prepare_refuses_a_folder_with_other_content_unless_overwrite(tmp_path, corpus):
    other = tmp_path / "results"
    (other / "bundle").mkdir(parents=True)
    write(other / "bundle" / "bundle.json", json.dumps({"model_version": "m-1", "nerbatch_version": "0.1"}))
    write(other / "notes.md", "my notes")
    refused(corpus, other, tmp_path, r"results: exists and is not an earlier prepare output \(no prepare_report\.json\); "
                                     r"give --out a new folder, or pass --overwrite")
    prepare(corpus, other, overwrite=True)
    assert (other / "prepare_report.json").exists() and not (other / "notes.md").exists()


def test_prepare_replaces_an_empty_folder_and_its_own_earlier_output(tmp_path, corpus):
    out = tmp_path / "out"
    out.mkdir()
    prepare(corpus, out)
    first = json.loads((out / "prepare_report.json").read_text())
    small = write(tmp_path / "data" / "small.csv", GMB_HEADER + "".join(gmb_lines(3)))
    prepare(small, out)  # no --overwrite needed for our own earlier output
    second = json.loads((out / "prepare_report.json").read_text())
    assert sum(first["sentences"].values()) == 20 and sum(second["sentences"].values()) == 3


def test_a_bundle_is_not_an_earlier_prepare_output(tmp_path, corpus):
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    write(bundle / "bundle.json", json.dumps({"model_version": "m-1", "nerbatch_version": "0.1"}))
    write(bundle / "model.keras", "weights")
    refused(corpus, bundle, tmp_path, r"no prepare_report\.json")


def test_an_unwritable_output_folder_is_one_clear_error(tmp_path, corpus):
    blocker = write(tmp_path / "blocker", "a file where a folder should be")
    with pytest.raises(OutputDirectoryError, match=r"blocker/out: cannot create the folder it goes in"):
        prepare(corpus, blocker / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only folders")
def test_a_read_only_output_folder_is_one_clear_error(tmp_path, corpus):
    parent = tmp_path / "ro"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        with pytest.raises(OutputDirectoryError, match=r"ro/out: cannot write in .*ro \(Permission denied\)"):
            prepare(corpus, parent / "out")
    finally:
        parent.chmod(0o755)


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nerbatch.cli", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


def test_cli_prepare_refusals_are_one_line_with_exit_2(tmp_path, corpus):
    before = snapshot(tmp_path)
    for out, cwd, message in [(str(corpus.parent), None, "holds the input"), (".", corpus.parent, "is the current folder"),
                              (str(corpus), None, "is a file")]:
        result = run_cli("prepare", str(corpus), "--out", out, "--workers", "1", cwd=cwd)
        assert result.returncode == 2, result.stderr
        assert result.stderr.startswith(f"error: {out}: ") and message in result.stderr
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert snapshot(tmp_path) == before


def test_cli_prepare_overwrite_replaces_another_folder(tmp_path, corpus):
    other = tmp_path / "other"
    other.mkdir()
    write(other / "notes.md", "old")
    refused = run_cli("prepare", str(corpus), "--out", str(other), "--workers", "1")
    assert refused.returncode == 2 and "pass --overwrite" in refused.stderr
    assert (other / "notes.md").exists()
    result = run_cli("prepare", str(corpus), "--out", str(other), "--workers", "1", "--overwrite")
    assert result.returncode == 0, result.stderr
    assert (other / "vocab.json").exists() and not (other / "notes.md").exists()


TINY = {"preset": "tiny", "epochs": 1, "batch_size": 16, "max_batches_per_epoch": 2, "seed": 1}


def test_train_refuses_a_folder_holding_another_bundle_and_notes_before_training(tmp_path, prepared_synthetic):
    from nerbatch.train import TrainConfig, train_tagger

    models = tmp_path / "models"
    (models / "production").mkdir(parents=True)
    write(models / "production" / "bundle.json", json.dumps({"model_version": "m-1", "nerbatch_version": "0.1"}))
    write(models / "notes.md", "which model is live")
    before = snapshot(tmp_path)
    with pytest.raises(OutputDirectoryError, match=r"models: exists and is not an earlier train output \(no bundle\.json\)"):
        train_tagger(prepared_synthetic, models, TrainConfig(**TINY))
    with pytest.raises(OutputDirectoryError, match="holds the input"):
        train_tagger(prepared_synthetic, prepared_synthetic.parent, TrainConfig(**TINY), overwrite=True)
    assert snapshot(tmp_path) == before


def test_train_replaces_its_own_earlier_bundle_and_others_only_with_overwrite(tmp_path, prepared_synthetic):
    from nerbatch.train import TrainConfig, train_tagger

    bundle = tmp_path / "bundle"
    first = train_tagger(prepared_synthetic, bundle, TrainConfig(**TINY))
    second = train_tagger(prepared_synthetic, bundle, TrainConfig(**{**TINY, "seed": 2}))
    assert first.model_version != second.model_version
    assert json.loads((bundle / "bundle.json").read_text())["model_version"] == second.model_version
    other = tmp_path / "other"
    other.mkdir()
    write(other / "notes.md", "old")
    train_tagger(prepared_synthetic, other, TrainConfig(**TINY), overwrite=True)
    assert (other / "bundle.json").exists() and not (other / "notes.md").exists()


def test_cli_train_refusal_is_one_line(tmp_path, prepared_synthetic):
    other = tmp_path / "other"
    other.mkdir()
    write(other / "notes.md", "old")
    result = run_cli("train", str(prepared_synthetic), "--out", str(other), "--preset", "tiny", "--epochs", "1",
                     "--no-progress")
    assert result.returncode == 2
    # TensorFlow may log its start-up to stderr first; the refusal is the one last line.
    assert result.stderr.splitlines()[-1].startswith(f"error: {other}: exists and is not an earlier train output")
    assert "--overwrite" in result.stderr and "Traceback" not in result.stderr
    assert snapshot(other) == {"notes.md": b"old"}


def test_train_refuses_an_unwritable_bundle_folder_before_training(tmp_path, prepared_synthetic):
    from nerbatch.train import TrainConfig, train_tagger

    blocker = write(tmp_path / "blocker", "a file where a folder should be")
    started = time.monotonic()
    with pytest.raises(OutputDirectoryError, match=r"blocker/bundle: cannot create the folder it goes in"):
        train_tagger(prepared_synthetic, blocker / "bundle", TrainConfig(**{**TINY, "epochs": 30}))
    assert time.monotonic() - started < 5  # refused before building or training a model
