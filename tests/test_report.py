"""Tests of nerbatch.report: files written, PNGs valid, numbers taken from the inputs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import pytest

from nerbatch.evaluate import (
    Calibration,
    EntityConfusion,
    EntityScores,
    entity_calibration,
    entity_confusion,
    score_entities,
)
from nerbatch.report import (
    CONFUSION_PNG,
    LEARNING_CURVES_PNG,
    PER_TYPE_F1_PNG,
    RELIABILITY_PNG,
    plot_confusion,
    plot_learning_curves,
    plot_per_type_f1,
    plot_reliability,
    write_report,
)

TEST_GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG", "I-ORG"],
    ["O", "B-LOC", "I-LOC", "O", "B-PER"],
    ["B-ORG", "O", "O", "B-MISC"],
]
TEST_PRED = [
    ["B-PER", "I-PER", "O", "B-ORG", "O", "B-ORG", "I-ORG"],
    ["O", "B-LOC", "O", "O", "B-PER"],
    ["B-ORG", "O", "B-PER", "O"],
]
TEST_CONF = [
    [0.97, 0.91, 0.99, 0.55, 0.99, 0.88, 0.8],
    [0.99, 0.62, 0.7, 0.99, 0.93],
    [0.75, 0.99, 0.45, 0.9],
]
VAL_GOLD = [["B-PER", "O", "B-LOC"], ["B-ORG", "I-ORG"]]
VAL_PRED = [["B-PER", "O", "O"], ["B-ORG", "I-ORG"]]

HISTORY = [
    {"epoch": 1, "loss": 5.25, "val_precision": 0.41, "val_recall": 0.33, "val_f1": 0.3657, "seconds": 12.5},
    {"epoch": 2, "loss": 2.75, "val_precision": 0.62, "val_recall": 0.58, "val_f1": 0.5993, "seconds": 11.9},
    {"epoch": 3, "loss": 1.5, "val_precision": 0.66, "val_recall": 0.61, "val_f1": 0.6340, "seconds": 12.1},
]
CONFIG = {"learning_rate": 0.001, "lstm_units": 128, "char_embedding_dim": 25, "epochs": 3}


def _inputs() -> dict:
    return {
        "history": HISTORY,
        "validation": score_entities(VAL_GOLD, VAL_PRED),
        "test": score_entities(TEST_GOLD, TEST_PRED),
        "confusion": entity_confusion(TEST_GOLD, TEST_PRED),
        "calibration": entity_calibration(TEST_GOLD, TEST_PRED, TEST_CONF),
        "config": CONFIG,
        "model_version": "sha256-3f2a9c",
        "dataset_summary": {"train_sentences": 14041, "test_sentences": 3453},
    }


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    inputs = _inputs()
    path = write_report(tmp_path_factory.mktemp("report") / "nested", **inputs)
    return path, inputs, path.read_text(encoding="utf-8")


def _assert_valid_png(path: Path, min_bytes: int = 5_000) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > min_bytes
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 200 and pixels.shape[1] > 200
    assert pixels.std() > 0.01  # not a blank canvas


def test_write_report_writes_markdown_and_all_pngs(report: tuple[Path, dict, str]) -> None:
    path, _, _ = report
    assert path.name == "report.md" and path.is_file()
    for name in (LEARNING_CURVES_PNG, PER_TYPE_F1_PNG, CONFUSION_PNG, RELIABILITY_PNG):
        _assert_valid_png(path.parent / name)


def test_report_links_every_png_and_every_link_resolves(report: tuple[Path, dict, str]) -> None:
    path, _, text = report
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert sorted(links) == sorted([LEARNING_CURVES_PNG, PER_TYPE_F1_PNG, CONFUSION_PNG, RELIABILITY_PNG])
    assert all((path.parent / link).is_file() for link in links)


def test_report_headline_is_test_entity_scores_first(report: tuple[Path, dict, str]) -> None:
    _, inputs, text = report
    test: EntityScores = inputs["test"]
    validation: EntityScores = inputs["validation"]
    assert test.f1 != validation.f1  # the fixture must tell them apart
    headline = f"**Entity F1 {test.f1:.4f}** — precision {test.precision:.4f}, recall {test.recall:.4f}"
    assert headline in text
    # before any other section, and before any token accuracy figure
    assert text.index(headline) < text.index("## Per-type")
    assert text.index(headline) < text.index(f"{test.token_accuracy:.4f}")
    assert f"| validation | {validation.precision:.4f} | {validation.recall:.4f} | {validation.f1:.4f} |" in text
    assert f"{test.n_correct} of {test.n_predicted} predicted entities" in text
    assert "sha256-3f2a9c" in text.splitlines()[0]


def test_report_per_type_table_comes_from_the_scores(report: tuple[Path, dict, str]) -> None:
    _, inputs, text = report
    test: EntityScores = inputs["test"]
    assert set(test.per_type) == {"LOC", "MISC", "ORG", "PER"}
    for name, s in test.per_type.items():
        assert f"| {name} | {s.precision:.4f} | {s.recall:.4f} | {s.f1:.4f} | {s.support} | {s.n_predicted} |" in text
    assert f"| **micro avg** | {test.precision:.4f} | {test.recall:.4f} | {test.f1:.4f} | {test.n_gold} |" in text


def test_report_explains_token_accuracy(report: tuple[Path, dict, str]) -> None:
    _, inputs, text = report
    test: EntityScores = inputs["test"]
    assert f"token accuracy: {test.token_accuracy:.4f} over {test.n_tokens} real tokens" in text
    assert f"{test.token_accuracy_non_o:.4f} over {test.n_tokens_non_o} tokens" in text
    assert "excludes padding" in text
    assert "99% accuracy" in text and "misleading" in text


def test_report_calibration_and_confusion_sections(report: tuple[Path, dict, str]) -> None:
    _, inputs, text = report
    cal: Calibration = inputs["calibration"]
    conf: EntityConfusion = inputs["confusion"]
    assert f"**{cal.ece:.4f}** over {cal.n} predicted entities" in text
    assert len(cal.thresholds) == 3
    for t in cal.thresholds:
        assert f"| {t.threshold:.4f} | {t.n_kept} | {t.precision:.4f} | {t.recall:.4f} | {t.f1:.4f} |" in text
    assert "| gold \\ predicted | LOC | MISC | ORG | PER | missed |" in text
    loc_row = conf.counts[conf.row_labels.index("LOC")].tolist()
    assert "| LOC | " + " | ".join(str(n) for n in loc_row) + " |" in text


def test_report_lists_hyper_parameters_history_and_dataset(report: tuple[Path, dict, str]) -> None:
    _, _, text = report
    for key, value in CONFIG.items():
        assert f"| {key} | {value} |" in text
    assert "Best validation F1 0.6340 at epoch 3." in text
    assert "| 2 | 2.7500 | 0.6200 | 0.5800 | 0.5993 | 11.9000 |" in text
    assert "## Dataset" in text and "| train_sentences | 14041 |" in text


def test_report_without_history_or_dataset(tmp_path: Path) -> None:
    inputs = _inputs() | {"history": [], "dataset_summary": None}
    path = write_report(tmp_path, **inputs)
    text = path.read_text(encoding="utf-8")
    assert "No training history was given." in text
    assert "## Dataset" not in text
    assert not (tmp_path / LEARNING_CURVES_PNG).exists()
    assert LEARNING_CURVES_PNG not in text
    assert (tmp_path / RELIABILITY_PNG).is_file()


def test_plots_cope_with_no_entities_at_all(tmp_path: Path) -> None:
    gold = pred = [["O", "O", "O"]]
    scores = score_entities(gold, pred)
    _assert_valid_png(plot_per_type_f1(scores, tmp_path / "f1.png"), min_bytes=1_000)
    _assert_valid_png(plot_confusion(entity_confusion(gold, pred), tmp_path / "c.png"), min_bytes=1_000)
    cal = entity_calibration(gold, pred, [[0.9, 0.9, 0.9]])
    _assert_valid_png(plot_reliability(cal, tmp_path / "r.png"), min_bytes=1_000)


def test_learning_curves_need_a_history_but_not_every_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty"):
        plot_learning_curves([], tmp_path / "x.png")
    only_loss = [{"epoch": 1, "loss": 2.0}, {"epoch": 2, "loss": 1.0}]
    _assert_valid_png(plot_learning_curves(only_loss, tmp_path / "loss.png"))


def test_importing_report_does_not_import_matplotlib() -> None:
    code = "import sys, nerbatch.report; print('matplotlib' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
