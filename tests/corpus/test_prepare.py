"""``prepare`` end to end on real Dask clusters."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from nerbatch.errors import StrictModeError
from nerbatch.prepare import PrepareOptions, prepare_corpus
from nerbatch.vocab import Vocabulary
from tests.conftest import SHARED_DATA
from tests.corpus.test_readers import GMB_HEADER, gmb_lines, write


def read_sentences(out: Path) -> pd.DataFrame:
    return pd.read_parquet(out / "sentences").sort_values("sentence_id").reset_index(drop=True)


@pytest.fixture()
def corpus(tmp_path) -> Path:
    body = "".join(gmb_lines(200, long_every=9)) + "Sentence: 999,x,NN,O\n,y,NN,O,EXTRA\n"
    return write(tmp_path / "ner_dataset.csv", GMB_HEADER + body)


def test_prepare_writes_sentences_rejects_vocab_and_report(tmp_path, corpus, dask_client_fixture):
    out = tmp_path / "out"
    report = prepare_corpus([str(corpus)], out, PrepareOptions(blocksize=512))
    sentences = read_sentences(out)
    rejects = pd.read_parquet(out / "rejects")
    n_token_lines = corpus.read_text(encoding="latin-1").count("\n") - 1
    assert sentences["n_tokens"].sum() + len(rejects) == n_token_lines
    assert len(sentences) == 200 and report.sentences == sentences["split"].value_counts().to_dict() | {
        k: 0 for k in ("train", "validation", "test") if k not in set(sentences["split"])
    }
    assert rejects["line"].tolist() == [n_token_lines, n_token_lines + 1]  # header is line 1
    assert report.tokens_rejected == 2 and report.rejects_by_reason == {
        "expected 4 fields, found 5": 1, "in a sentence with a rejected line": 1}
    row = sentences.iloc[0]
    assert list(row["words"])[:2] == [row["sentence_id"].split("#")[1].replace("Sentence: ", "w") + "_0", "Paris" + row["sentence_id"].split(": ")[1]]
    assert (sentences["n_tokens"] == sentences["words"].map(len)).all()
    vocab = Vocabulary.load(out / "vocab.json")
    train_words = {w for ws in sentences.loc[sentences["split"] == "train", "words"] for w in ws}
    assert set(vocab.words[2:]) == train_words  # the vocabulary sees the train split only
    assert vocab.tags == ("O", "B-geo")
    assert json.loads((out / "prepare_report.json").read_text())["vocab"]["words"] == len(vocab.words)
    assert 0 < report.oov_rate["validation"] <= 1


def test_lazy_group_sentences_matches_prepare(tmp_path, corpus, dask_client_fixture):
    from nerbatch.corpus.readers import read_corpus
    from nerbatch.corpus.sentences import group_sentences

    prepare_corpus([str(corpus)], tmp_path / "out", PrepareOptions(blocksize=300))
    lazy = group_sentences(read_corpus(str(corpus), blocksize=300).tokens).compute()
    lazy = lazy.sort_values("sentence_id").reset_index(drop=True)
    written = read_sentences(tmp_path / "out")
    assert lazy["sentence_id"].tolist() == written["sentence_id"].tolist()
    assert lazy["split"].tolist() == written["split"].tolist()
    assert [list(w) for w in lazy["words"]] == [list(w) for w in written["words"]]


def test_splits_do_not_depend_on_partitioning_or_file_order(tmp_path, dask_client_fixture):
    a = write(tmp_path / "a.csv", GMB_HEADER + "".join(gmb_lines(80)))
    b = write(tmp_path / "b.csv", GMB_HEADER + "".join(gmb_lines(80)))
    prepare_corpus([str(a), str(b)], tmp_path / "o1", PrepareOptions(blocksize=None))
    prepare_corpus([str(b), str(a)], tmp_path / "o2", PrepareOptions(blocksize=300))
    first, second = read_sentences(tmp_path / "o1"), read_sentences(tmp_path / "o2")
    pd.testing.assert_frame_equal(first, second)
    shares = first["split"].value_counts(normalize=True)
    assert 0.65 < shares["train"] < 0.95


def test_split_files_assign_whole_inputs(tmp_path, dask_client_fixture):
    train = write(tmp_path / "train.csv", GMB_HEADER + "".join(gmb_lines(30)))
    test = write(tmp_path / "test.csv", GMB_HEADER + "".join(gmb_lines(10)))
    options = PrepareOptions(split_files={"train": [str(train)], "test": [str(test)]})
    report = prepare_corpus([], tmp_path / "out", options)
    assert report.sentences == {"train": 30, "validation": 0, "test": 10}


def test_strict_mode_fails_and_writes_nothing(tmp_path, corpus, dask_client_fixture):
    out = tmp_path / "out"
    with pytest.raises(StrictModeError, match=r"2 rejected line\(s\), e\.g\. ner_dataset\.csv:\d+: in a sentence with a rejected line \(line \d+\); ner_dataset\.csv:\d+: expected 4 fields"):
        prepare_corpus([str(corpus)], out, PrepareOptions(strict=True))
    assert not out.exists()
    assert not list(tmp_path.glob(".out.staging-*"))


def test_rerun_replaces_the_output_directory(tmp_path, dask_client_fixture):
    out = tmp_path / "out"
    big = write(tmp_path / "big.csv", GMB_HEADER + "".join(gmb_lines(50)))
    prepare_corpus([str(big)], out, PrepareOptions(blocksize=200))
    small = write(tmp_path / "small.csv", GMB_HEADER + "".join(gmb_lines(3)))
    prepare_corpus([str(small)], out, PrepareOptions())
    assert len(read_sentences(out)) == 3  # no stale part files from the first run


@pytest.mark.skipif(not (SHARED_DATA / "gmb_ner_dataset.csv").exists(), reason="sample corpora not present")
@pytest.mark.parametrize(
    "name, sentences, tokens",
    [("gmb_ner_dataset.csv", 10_927, 238_655), ("seed_ner.csv", 4_544, 100_022)],
)
def test_sample_corpora_counts_are_exact(tmp_path, name, sentences, tokens, dask_client_fixture):
    report = prepare_corpus([str(SHARED_DATA / name)], tmp_path / "out", PrepareOptions(blocksize=256 * 1024))
    assert sum(report.sentences.values()) == sentences
    assert report.tokens_kept == tokens and report.tokens_rejected == 0
    if name.startswith("gmb"):
        words = {w for ws in read_sentences(tmp_path / "out")["words"] for w in ws}
        assert "None" in words


def test_prepare_on_a_separate_process_cluster_matches_local(tmp_path, corpus, process_cluster, dask_client_fixture):
    from distributed import Client

    prepare_corpus([str(corpus)], tmp_path / "local", PrepareOptions(blocksize=700))
    local = read_sentences(tmp_path / "local")
    with Client(process_cluster.address) as client, client.as_current():
        report = prepare_corpus([str(corpus)], tmp_path / "remote", PrepareOptions(blocksize=700))
        workers = {w["name"] for w in client.scheduler_info()["workers"].values()}
    assert workers == {"worker-0", "worker-1"}
    assert report.tokens_rejected == 2
    pd.testing.assert_frame_equal(read_sentences(tmp_path / "remote"), local)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nerbatch.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_prepare_on_an_existing_cluster(tmp_path, corpus, process_cluster):
    result = run_cli("prepare", str(corpus), "--out", str(tmp_path / "out"), "--dask-address", process_cluster.address,
                     "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "format gmb (detected)" in result.stdout
    assert "rejected 2" in result.stdout
    assert (tmp_path / "out" / "vocab.json").exists()


def test_cli_errors_are_one_line_without_traceback(tmp_path):
    missing = tmp_path / "nope.csv"
    result = run_cli("prepare", str(missing), "--out", str(tmp_path / "out"), "--workers", "1")
    assert result.returncode == 2
    assert f"error: {missing}: file not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_prepare_on_its_own_cluster_with_a_progress_bar_logs_no_errors(tmp_path, corpus):
    result = run_cli("prepare", str(corpus), "--out", str(tmp_path / "out"), "--progress")
    assert result.returncode == 0, result.stderr
    assert "100% Completed" in result.stderr and "Completed" not in result.stdout  # stdout: the summary only
    assert "Traceback" not in result.stderr and "ERROR" not in result.stderr, result.stderr
    assert result.stdout.startswith("prepare: 1 file(s)") and "rejected 2" in result.stdout
    quiet = run_cli("prepare", str(corpus), "--out", str(tmp_path / "out"))  # stderr is not a terminal here
    assert quiet.returncode == 0 and "Completed" not in quiet.stderr + quiet.stdout
