"""Score a predictor on one split of the sentence dataset: entity scores, the
entity-type confusion, and the calibration of entity confidence."""

from __future__ import annotations

from collections import Counter
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
    #: gold tags the model cannot predict (not in its vocabulary) -> tokens with that tag
    unknown_gold_tags: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "split": self.split,
            "scores": self.scores.to_dict(),
            "confusion": self.confusion.to_dict(),
            "calibration": self.calibration.to_dict(),
            "unknown_gold_tags": self.unknown_gold_tags,
        }


def unknown_tags(gold: list[list[str]], known: tuple[str, ...] | list[str]) -> dict[str, int]:
    """Gold tags outside ``known`` (a model's tag list) with their token counts, most frequent first."""
    known_set = set(known)
    counts = Counter(tag for tags in gold for tag in tags if tag not in known_set)
    return dict(counts.most_common())


def describe_unknown_tags(unknown: dict[str, int], known: tuple[str, ...] | list[str] = (), limit: int = 8) -> str:
    """``N gold token(s) have tags the model does not know: B-PER (120), ... (model tags: O, B-geo, ...)``."""
    shown = ", ".join(f"{tag} ({n:,})" for tag, n in list(unknown.items())[:limit])
    more = f" and {len(unknown) - limit} more" if len(unknown) > limit else ""
    text = f"{sum(unknown.values()):,} gold token(s) have tags the model does not know: {shown}{more}"
    if known:
        text += " (model tags: " + ", ".join(list(known)[:limit]) + (", ...)" if len(known) > limit else ")")
    return text


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
    return _evaluate(predictor, words, gold, split, mode)


def _evaluate(
    predictor: Predictor, words: list[list[str]], gold: list[list[str]], split: str, mode: Mode
) -> SplitEvaluation:
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
    bundle_dir: str | Path,
    prepared: str | Path,
    split: str = "test",
    *,
    mode: Mode = "conlleval",
    allow_unknown_tags: bool = False,
) -> tuple[str, SplitEvaluation]:
    """Load a bundle as a consumer would (file hashes, smoke check) and score it on
    ``split`` of a ``prepare`` output: ``(model_version, evaluation)``.

    Gold tags the model does not know can never be predicted, so every entity
    of theirs counts as missed: a corpus with another tag set (``B-PER`` vs
    ``B-per``) would score 0 quietly. They are an :class:`InputError` naming
    the tags and their counts, unless ``allow_unknown_tags`` (a tag present
    only outside the train split, say); the evaluation lists them either way.
    """
    from nerbatch.bundle import load_bundle

    if split not in SPLITS:
        raise InputError(str(prepared), f"unknown split {split!r} (one of {', '.join(SPLITS)})")
    sentences_dir, _ = resolve_prepared(prepared)
    bundle = load_bundle(bundle_dir)
    words, gold = load_split(sentences_dir, split)
    if not gold:
        raise InputError(str(sentences_dir), f"the {split} split has no sentences")
    unknown = unknown_tags(gold, bundle.vocab.tags)
    if unknown and not allow_unknown_tags:
        raise InputError(
            str(sentences_dir),
            f"{split} split: {describe_unknown_tags(unknown, bundle.vocab.tags)}; their entities could never be "
            "found. Is this the tag set the model was trained on? Pass --allow-unknown-tags to score anyway",
        )
    result = _evaluate(bundle.predictor(), words, gold, split, mode)
    result.unknown_gold_tags = unknown
    return bundle.version, result
