"""Score a predictor on one split of the sentence dataset: entity scores, the
entity-type confusion, and the calibration of entity confidence."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nerbatch.batching import iter_split, resolve_prepared
from nerbatch.errors import InputError
from nerbatch.evaluate import (
    Calibration,
    EntityConfusion,
    EntityScores,
    Mode,
    entity_calibration,
    entity_confusion,
    score_entities,
)
from nerbatch.inference import Predictor

SPLITS = ("train", "validation", "test")


@dataclass
class SplitEvaluation:
    split: str
    scores: EntityScores
    confusion: EntityConfusion
    calibration: Calibration
    # The split's tags and the tagger's, one list per sentence: for further analysis,
    # such as a paired bootstrap against another tagger (nerbatch.significance).
    gold: list[list[str]] = field(repr=False)
    predicted: list[list[str]] = field(repr=False)

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "scores": self.scores.to_dict(),
            "confusion": self.confusion.to_dict(),
            "calibration": self.calibration.to_dict(),
        }


def load_split(sentences_dir: str | Path, split: str) -> tuple[list[list[str]], list[list[str]]]:
    """All ``(words, tags)`` of one split (evaluation splits are kept in memory)."""
    words: list[list[str]] = []
    tags: list[list[str]] = []
    for _, w, t in iter_split(sentences_dir, split):
        words += w
        tags += t
    return words, tags


def evaluate_split(
    predictor: Predictor, sentences_dir: str | Path, split: str, *, mode: Mode = "conlleval"
) -> SplitEvaluation:
    words, gold = load_split(sentences_dir, split)
    tagged = predictor.tag(words)
    predicted = [t.tags for t in tagged]
    return SplitEvaluation(
        split=split,
        scores=score_entities(gold, predicted, mode=mode),
        confusion=entity_confusion(gold, predicted, mode=mode),
        calibration=entity_calibration(gold, predicted, [t.confidences for t in tagged], mode=mode),
        gold=gold,
        predicted=predicted,
    )


def evaluate_bundle(
    bundle_dir: str | Path, prepared: str | Path, split: str = "test", *, mode: Mode = "conlleval"
) -> tuple[str, SplitEvaluation]:
    """Load a bundle as a consumer would (file hashes, smoke check) and score it on
    ``split`` of a ``prepare`` output: ``(model_version, evaluation)``."""
    from nerbatch.bundle import load_bundle

    if split not in SPLITS:
        raise InputError(str(prepared), f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    sentences_dir, _ = resolve_prepared(prepared)
    bundle = load_bundle(bundle_dir)
    result = evaluate_split(bundle.predictor(), sentences_dir, split, mode=mode)
    if result.scores.n_sentences == 0:
        raise InputError(str(sentences_dir), f"the {split} split has no sentences")
    return bundle.version, result
