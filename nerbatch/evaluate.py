"""Entity-level evaluation: the headline metric of a tagger is entity F1.

Everything here takes *lists of sentences*: ``gold`` and ``predicted`` are
sequences of tag sequences (one list of strings per sentence, gold and
prediction of equal length). There is no padding in this API, so nothing here
can count a padding position as a token.

Two ways of reading entities ("chunks") out of tags:

``conlleval``
    Exactly the chunk rules of the CoNLL Perl script ``conlleval`` (its
    ``startOfChunk`` / ``endOfChunk``): IOB1 and IOB2 are read alike, an
    ``I-X`` after ``O`` or after another type starts a new chunk, and ``E-``
    prefixes follow the script's rules. The script has no rule for ``S-``: an
    ``S-X`` is only a chunk boundary where the type changes, so ``S-X S-X``
    (and ``E-X B-X``) form ONE chunk, as in conlleval. Score IOBES output with
    ``strict`` mode and ``scheme="IOBES"`` instead. For B/I/O tags this mode
    gives the same numbers as seqeval's default mode; for E-/S- tags seqeval
    deviates from the script (it added its own S/E rules) and we do not.
    Checked against the Perl script on random corpora: for tags that are
    ``O`` or ``PREFIX-TYPE`` (any prefix) the gold, found and correct counts,
    overall and per type, are the script's. Two corners differ: a chunk of
    untyped tags (a bare ``S``) is ended at the sentence end (the script lets
    it run into the next sentence), and with the script's exotic ``.``/``[``/
    ``]`` tags its streaming match may count fewer correct chunks than our
    exact-span match.

``strict``
    seqeval's ``mode="strict"`` (the reference) with scheme ``IOB2`` or
    ``IOBES``. IOB2: an entity starts only at ``B-X`` and extends over the
    ``I-X`` that immediately follow it. IOBES: an entity is ``S-X`` or
    ``B-X I-X* E-X``. Invalid sequences are *not repaired*: tokens that do not
    fit the scheme (an ``I-X`` after ``O`` or after another type, an ``E-X``
    without its ``B-X``, an IOBES ``B-X I-X`` never closed by ``E-X``) belong
    to no entity. A tag whose prefix the scheme does not have (``E-X`` under
    IOB2) or that is not ``O`` / ``P-TYPE`` raises ``ValueError``.

An entity is ``Entity(type, start, end)`` with ``end`` exclusive, over token
positions of one sentence. A predicted entity is correct when a gold entity of
the same sentence has the same type, start and end.

Zero-division convention (as conlleval): precision is 0 when nothing was
predicted, recall is 0 when there is no gold entity, F1 is 0 when
precision + recall is 0. The same 0 is used for an accuracy over no tokens.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

Mode = Literal["conlleval", "strict"]
Scheme = Literal["IOB2", "IOBES"]

MODES: tuple[str, ...] = ("conlleval", "strict")
SCHEMES: tuple[str, ...] = ("IOB2", "IOBES")
OUTSIDE = "O"

#: Column of the confusion table for a gold entity whose span no prediction has.
MISSED = "missed"
#: Row of the confusion table for a predicted entity whose span no gold entity has.
SPURIOUS = "spurious"

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.5, 0.7, 0.9)


class Entity(NamedTuple):
    """One entity of one sentence: type and token span ``[start, end)``."""

    type: str
    start: int
    end: int


# --------------------------------------------------------------------------
# Chunk extraction
# --------------------------------------------------------------------------


def split_tag(tag: str) -> tuple[str, str]:
    """Split a tag into ``(prefix, type)`` at its first hyphen.

    ``"B-PER" -> ("B", "PER")``, ``"I-geo-loc" -> ("I", "geo-loc")``,
    ``"O" -> ("O", "")``: the regex ``^([^-]*)-(.*)$`` of conlleval, so types
    may contain hyphens.
    """
    prefix, hyphen, type_ = tag.partition("-")
    return (prefix, type_) if hyphen else (tag, "")


def _conlleval_end(prev_prefix: str, prefix: str, prev_type: str, type_: str) -> bool:
    """conlleval's ``endOfChunk``: did a chunk end between the two tokens?"""
    if (prev_prefix, prefix) in {
        ("B", "B"), ("B", "O"), ("I", "B"), ("I", "O"),
        ("E", "E"), ("E", "I"), ("E", "O"),
    }:  # fmt: skip
        return True
    if prev_prefix not in ("O", ".") and prev_type != type_:
        return True
    # conlleval: "[" and "]" chunks are assumed to have length 1.
    return prev_prefix in ("[", "]")


def _conlleval_start(prev_prefix: str, prefix: str, prev_type: str, type_: str) -> bool:
    """conlleval's ``startOfChunk``: did a chunk start at the current token?"""
    if (prev_prefix, prefix) in {
        ("B", "B"), ("I", "B"), ("O", "B"), ("O", "I"),
        ("E", "E"), ("E", "I"), ("O", "E"),
    }:  # fmt: skip
        return True
    if prefix not in ("O", ".") and prev_type != type_:
        return True
    return prefix in ("[", "]")


def _conlleval_entities(tags: Sequence[str]) -> list[Entity]:
    entities: list[Entity] = []
    prev_prefix, prev_type = OUTSIDE, ""
    start: int | None = None
    chunk_type = ""
    # conlleval sees an "O" at every sentence boundary; so do we.
    for i, tag in enumerate([*tags, OUTSIDE]):
        prefix, type_ = split_tag(tag)
        ended = start is not None and _conlleval_end(prev_prefix, prefix, prev_type, type_)
        started = _conlleval_start(prev_prefix, prefix, prev_type, type_)
        # A start without an end only happens with conlleval's exotic "." tags;
        # conlleval counts both chunks, so close the open one here.
        if start is not None and (ended or started):
            entities.append(Entity(chunk_type, start, i))
            start = None
        if started:
            start, chunk_type = i, type_
        prev_prefix, prev_type = prefix, type_
    if start is not None:
        # Only untyped tags (e.g. a bare "S") survive the boundary "O"; conlleval
        # would let such a chunk run into the next sentence. We end it here.
        entities.append(Entity(chunk_type, start, len(tags)))
    return entities


def _strict_parse(tags: Sequence[str], scheme: str) -> list[tuple[str, str]]:
    allowed = {"IOB2": ("B", "I"), "IOBES": ("B", "I", "E", "S")}[scheme]
    parsed = []
    for i, tag in enumerate(tags):
        prefix, type_ = split_tag(tag)
        if tag == OUTSIDE:
            parsed.append((OUTSIDE, ""))
        elif prefix in allowed and type_:
            parsed.append((prefix, type_))
        else:
            raise ValueError(f"tag {tag!r} at position {i} is not a valid {scheme} tag")
    return parsed


def _strict_entities(tags: Sequence[str], scheme: str) -> list[Entity]:
    parsed = _strict_parse(tags, scheme)
    n = len(parsed)
    entities: list[Entity] = []
    i = 0
    while i < n:
        prefix, type_ = parsed[i]
        if scheme == "IOBES" and prefix == "S":
            entities.append(Entity(type_, i, i + 1))
            i += 1
            continue
        if prefix != "B":
            i += 1  # O, or an orphan I-/E-: part of no entity
            continue
        j = i + 1
        while j < n and parsed[j] == ("I", type_):
            j += 1
        if scheme == "IOB2":
            entities.append(Entity(type_, i, j))
            i = j
        elif j < n and parsed[j] == ("E", type_):
            entities.append(Entity(type_, i, j + 1))
            i = j + 1
        else:
            i = j  # IOBES B-X I-X* not closed by E-X: no entity
    return entities


def _check_mode(mode: str, scheme: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")


def extract_entities(
    tags: Sequence[str], *, mode: Mode = "conlleval", scheme: Scheme = "IOB2"
) -> list[Entity]:
    """Entities of ONE sentence, in order of their start.

    ``tags``: the sentence's tags, e.g. ``["B-PER", "I-PER", "O"]``.
    Returns ``[Entity("PER", 0, 2)]``. ``scheme`` is used by ``strict`` mode
    only (``conlleval`` mode reads every scheme with the same rules).
    """
    _check_mode(mode, scheme)
    if mode == "conlleval":
        return _conlleval_entities(tags)
    return _strict_entities(tags, scheme)


def extract_all_entities(
    sentences: Sequence[Sequence[str]], *, mode: Mode = "conlleval", scheme: Scheme = "IOB2"
) -> list[list[Entity]]:
    """``extract_entities`` for each sentence: one list of entities per sentence."""
    return [extract_entities(tags, mode=mode, scheme=scheme) for tags in sentences]


def check_aligned(gold: Sequence[Sequence[Any]], predicted: Sequence[Sequence[Any]]) -> None:
    """``ValueError`` unless both have as many sentences, and each sentence as many tags."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted")
    for i, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"sentence {i}: {len(g)} gold tags but {len(p)} predicted")


# --------------------------------------------------------------------------
# Scores
# --------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


@dataclass(frozen=True)
class TypeScores:
    """Scores of one entity type. ``support`` = number of gold entities."""

    precision: float
    recall: float
    f1: float
    support: int
    n_predicted: int
    n_correct: int

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a JSON-ready dict."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "support": self.support,
            "n_predicted": self.n_predicted,
            "n_correct": self.n_correct,
        }


def _type_scores(n_correct: int, n_predicted: int, n_gold: int) -> TypeScores:
    precision = _ratio(n_correct, n_predicted)
    recall = _ratio(n_correct, n_gold)
    return TypeScores(precision, recall, _f1(precision, recall), n_gold, n_predicted, n_correct)


_TOKEN_NOTE = (
    "token-level, for comparison only, not the headline: computed over real tokens "
    "(never padding); token_accuracy_non_o leaves out tokens whose gold and predicted "
    "tags are both O"
)


@dataclass(frozen=True)
class EntityScores:
    """Entity-level scores of a tagger on a set of sentences.

    The headline is ``f1``: micro-averaged over all entities, an entity counts
    as correct only with exact type and span. ``macro_*`` are unweighted means
    over the types found in gold or prediction (a type that is only predicted
    counts with F1 0). ``token_accuracy`` (all real tokens) and
    ``token_accuracy_non_o`` (tokens where gold or prediction is not ``O``) are
    for comparison only.
    """

    precision: float
    recall: float
    f1: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_type: dict[str, TypeScores]
    n_gold: int
    n_predicted: int
    n_correct: int
    token_accuracy: float
    token_accuracy_non_o: float
    n_sentences: int
    n_tokens: int
    n_tokens_non_o: int
    mode: str
    scheme: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; token-level numbers sit under ``token_level`` with a note."""
        return {
            "headline": "f1",
            "mode": self.mode,
            "scheme": self.scheme,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "macro_precision": self.macro_precision,
            "macro_recall": self.macro_recall,
            "macro_f1": self.macro_f1,
            "n_gold": self.n_gold,
            "n_predicted": self.n_predicted,
            "n_correct": self.n_correct,
            "n_sentences": self.n_sentences,
            "n_tokens": self.n_tokens,
            "per_type": {name: s.to_dict() for name, s in self.per_type.items()},
            "token_level": {
                "note": _TOKEN_NOTE,
                "token_accuracy": self.token_accuracy,
                "token_accuracy_non_o": self.token_accuracy_non_o,
                "n_tokens_non_o": self.n_tokens_non_o,
            },
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EntityScores:
        """Inverse of ``to_dict`` (e.g. to re-read a bundle's metrics.json)."""
        token = data["token_level"]
        return cls(
            precision=data["precision"],
            recall=data["recall"],
            f1=data["f1"],
            macro_precision=data["macro_precision"],
            macro_recall=data["macro_recall"],
            macro_f1=data["macro_f1"],
            per_type={name: TypeScores(**s) for name, s in data["per_type"].items()},
            n_gold=data["n_gold"],
            n_predicted=data["n_predicted"],
            n_correct=data["n_correct"],
            token_accuracy=token["token_accuracy"],
            token_accuracy_non_o=token["token_accuracy_non_o"],
            n_sentences=data["n_sentences"],
            n_tokens=data["n_tokens"],
            n_tokens_non_o=token["n_tokens_non_o"],
            mode=data["mode"],
            scheme=data["scheme"],
        )

    def format_table(self, digits: int = 4) -> str:
        """A plain-text table: one row per type, then the micro and macro rows."""
        names = [*self.per_type, "micro avg", "macro avg"]
        width = max(len(n) for n in names)
        header = f"{'type':<{width}}  {'precision':>9}  {'recall':>9}  {'f1':>9}  {'support':>8}"
        rows = [header, "-" * len(header)]

        def row(name: str, p: float, r: float, f: float, support: int) -> str:
            return (
                f"{name:<{width}}  {p:>9.{digits}f}  {r:>9.{digits}f}  "
                f"{f:>9.{digits}f}  {support:>8d}"
            )

        for name, s in self.per_type.items():
            rows.append(row(name, s.precision, s.recall, s.f1, s.support))
        rows.append("-" * len(header))
        rows.append(row("micro avg", self.precision, self.recall, self.f1, self.n_gold))
        rows.append(
            row("macro avg", self.macro_precision, self.macro_recall, self.macro_f1, self.n_gold)
        )
        return "\n".join(rows)


def _token_accuracies(
    gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]
) -> tuple[float, float, int, int]:
    n_tokens = n_right = n_non_o = n_right_non_o = 0
    for g_tags, p_tags in zip(gold, predicted):
        for g, p in zip(g_tags, p_tags):
            n_tokens += 1
            n_right += g == p
            if g != OUTSIDE or p != OUTSIDE:
                n_non_o += 1
                n_right_non_o += g == p
    return _ratio(n_right, n_tokens), _ratio(n_right_non_o, n_non_o), n_tokens, n_non_o


def score_entities(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    *,
    mode: Mode = "conlleval",
    scheme: Scheme = "IOB2",
) -> EntityScores:
    """Entity-level micro/macro/per-type scores plus token accuracies.

    ``gold`` and ``predicted``: one tag sequence per sentence, same lengths
    (``ValueError`` otherwise). Types in ``per_type`` are sorted by name and
    are those seen in gold or prediction.
    """
    _check_mode(mode, scheme)
    check_aligned(gold, predicted)
    gold_counts: Counter[str] = Counter()
    pred_counts: Counter[str] = Counter()
    correct_counts: Counter[str] = Counter()
    for g_tags, p_tags in zip(gold, predicted):
        g_ents = extract_entities(g_tags, mode=mode, scheme=scheme)
        p_ents = extract_entities(p_tags, mode=mode, scheme=scheme)
        gold_counts.update(e.type for e in g_ents)
        pred_counts.update(e.type for e in p_ents)
        correct_counts.update(e.type for e in set(g_ents) & set(p_ents))

    per_type = {
        name: _type_scores(correct_counts[name], pred_counts[name], gold_counts[name])
        for name in sorted(gold_counts.keys() | pred_counts.keys())
    }
    n_gold, n_pred = sum(gold_counts.values()), sum(pred_counts.values())
    n_correct = sum(correct_counts.values())
    micro = _type_scores(n_correct, n_pred, n_gold)
    scores = list(per_type.values())
    token_acc, token_acc_non_o, n_tokens, n_non_o = _token_accuracies(gold, predicted)
    return EntityScores(
        precision=micro.precision,
        recall=micro.recall,
        f1=micro.f1,
        macro_precision=_ratio(sum(s.precision for s in scores), len(scores)),
        macro_recall=_ratio(sum(s.recall for s in scores), len(scores)),
        macro_f1=_ratio(sum(s.f1 for s in scores), len(scores)),
        per_type=per_type,
        n_gold=n_gold,
        n_predicted=n_pred,
        n_correct=n_correct,
        token_accuracy=token_acc,
        token_accuracy_non_o=token_acc_non_o,
        n_sentences=len(gold),
        n_tokens=n_tokens,
        n_tokens_non_o=n_non_o,
        mode=mode,
        scheme=scheme,
    )


# --------------------------------------------------------------------------
# Entity-type confusion
# --------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EntityConfusion:
    """Counts of (gold label, predicted label) over entity spans.

    ``counts[r, c]``: rows are ``row_labels`` = entity types + ``SPURIOUS``,
    columns are ``column_labels`` = entity types + ``MISSED``. A gold entity of
    type X adds one to ``[X, Y]`` when the prediction has an entity of type Y
    on exactly the same span, else to ``[X, MISSED]``; a predicted entity of
    type Y on a span no gold entity has adds one to ``[SPURIOUS, Y]``. So the
    diagonal is the correct entities, row sums (without the ``SPURIOUS`` row)
    are the supports, and a boundary error shows up as one missed plus one
    spurious. ``counts[SPURIOUS, MISSED]`` is always 0.
    """

    types: tuple[str, ...]
    counts: np.ndarray  # shape (len(types) + 1, len(types) + 1), int64

    @property
    def row_labels(self) -> tuple[str, ...]:
        """Gold labels of the rows: the types, then ``SPURIOUS``."""
        return (*self.types, SPURIOUS)

    @property
    def column_labels(self) -> tuple[str, ...]:
        """Predicted labels of the columns: the types, then ``MISSED``."""
        return (*self.types, MISSED)

    def count(self, gold_label: str, predicted_label: str) -> int:
        """The count in row ``gold_label``, column ``predicted_label``."""
        row = self.row_labels.index(gold_label)
        return int(self.counts[row, self.column_labels.index(predicted_label)])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``rows`` (gold), ``columns`` (predicted), ``counts``."""
        return {
            "rows": list(self.row_labels),
            "columns": list(self.column_labels),
            "counts": self.counts.tolist(),
        }


def _spans(entities: Iterable[Entity]) -> dict[tuple[int, int], str]:
    return {(e.start, e.end): e.type for e in entities}


def entity_confusion(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    *,
    mode: Mode = "conlleval",
    scheme: Scheme = "IOB2",
) -> EntityConfusion:
    """Entity-type confusion table of ``predicted`` against ``gold`` tag sequences.

    Inputs as in ``score_entities``. Types are sorted by name. Raises
    ``ValueError`` if an entity type is literally ``"missed"`` or ``"spurious"``.
    """
    _check_mode(mode, scheme)
    check_aligned(gold, predicted)
    pairs: Counter[tuple[str, str]] = Counter()
    seen_types: set[str] = set()
    for g_tags, p_tags in zip(gold, predicted):
        # Within one sentence chunks never overlap, so a span identifies an entity.
        g_spans = _spans(extract_entities(g_tags, mode=mode, scheme=scheme))
        p_spans = _spans(extract_entities(p_tags, mode=mode, scheme=scheme))
        seen_types.update(g_spans.values(), p_spans.values())
        for span, g_type in g_spans.items():
            pairs[g_type, p_spans.get(span, MISSED)] += 1
        for span, p_type in p_spans.items():
            if span not in g_spans:
                pairs[SPURIOUS, p_type] += 1
    if seen_types & {MISSED, SPURIOUS}:
        raise ValueError(f"entity types {MISSED!r} / {SPURIOUS!r} clash with the table labels")
    types = sorted(seen_types)
    rows = {label: i for i, label in enumerate((*types, SPURIOUS))}
    cols = {label: i for i, label in enumerate((*types, MISSED))}
    counts = np.zeros((len(types) + 1, len(types) + 1), dtype=np.int64)
    for (g_label, p_label), n in pairs.items():
        counts[rows[g_label], cols[p_label]] = n
    return EntityConfusion(types=tuple(types), counts=counts)


# --------------------------------------------------------------------------
# Confidence: alignment, calibration, thresholds
# --------------------------------------------------------------------------


def match_entities(
    gold_entities: Sequence[Sequence[Entity]], predicted_entities: Sequence[Sequence[Entity]]
) -> list[bool]:
    """For each predicted entity, whether it is correct (same sentence, type, span).

    Both arguments hold one list of entities per sentence. Returns one bool per
    predicted entity, flattened in order (sentence by sentence, then in the
    order of ``predicted_entities``), so it lines up with a flat list of
    confidences built in the same order.
    """
    if len(gold_entities) != len(predicted_entities):
        raise ValueError(
            f"{len(gold_entities)} gold sentences but {len(predicted_entities)} predicted"
        )
    correct: list[bool] = []
    for g_ents, p_ents in zip(gold_entities, predicted_entities):
        gold_set = set(g_ents)
        correct.extend(e in gold_set for e in p_ents)
    return correct


def entity_confidences(
    entities: Iterable[Entity], token_confidences: Sequence[float]
) -> list[float]:
    """Confidence of each entity of one sentence: the minimum over its tokens.

    ``token_confidences``: one value per token of the sentence, e.g. the CRF
    marginal probability of the decoded tag. The minimum, because an entity is
    only right if every one of its tags is.
    """
    return [float(min(token_confidences[e.start : e.end])) for e in entities]


@dataclass(frozen=True)
class ThresholdScores:
    """Precision/recall/F1 when only predictions with confidence >= threshold are kept."""

    threshold: float
    precision: float
    recall: float
    f1: float
    n_kept: int
    n_correct: int

    def to_dict(self) -> dict[str, float | int]:
        """The fields as a JSON-ready dict."""
        return {
            "threshold": self.threshold,
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "n_kept": self.n_kept,
            "n_correct": self.n_correct,
        }


@dataclass(frozen=True)
class Calibration:
    """Reliability bins and expected calibration error of entity confidences.

    Bin ``i`` holds confidences ``c`` with ``bin_edges[i] <= c < bin_edges[i+1]``
    (the last bin also holds 1.0). ``bin_confidence`` / ``bin_accuracy`` are the
    mean confidence and fraction correct in the bin, NaN for an empty bin.
    ``ece`` = sum over bins of ``count/n * |accuracy - confidence|`` (0.0 when
    ``n`` is 0). ``thresholds`` are the scores at a few confidence cut-offs.
    """

    bin_edges: tuple[float, ...]
    bin_confidence: tuple[float, ...]
    bin_accuracy: tuple[float, ...]
    bin_count: tuple[int, ...]
    ece: float
    n: int
    thresholds: tuple[ThresholdScores, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; empty bins have ``null`` confidence and accuracy."""

        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        bins = [
            {
                "lower": self.bin_edges[i],
                "upper": self.bin_edges[i + 1],
                "mean_confidence": clean(self.bin_confidence[i]),
                "accuracy": clean(self.bin_accuracy[i]),
                "count": self.bin_count[i],
            }
            for i in range(len(self.bin_count))
        ]
        return {
            "ece": self.ece,
            "n": self.n,
            "bins": bins,
            "thresholds": [t.to_dict() for t in self.thresholds],
        }


def _as_arrays(
    confidences: Sequence[float], correct: Sequence[bool]
) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=bool).reshape(-1)
    if conf.shape != ok.shape:
        raise ValueError(f"{conf.size} confidences but {ok.size} correctness flags")
    if conf.size and (np.isnan(conf).any() or conf.min() < 0.0 or conf.max() > 1.0):
        raise ValueError("confidences must lie in [0, 1]")
    return conf, ok


def scores_at_thresholds(
    confidences: Sequence[float],
    correct: Sequence[bool],
    *,
    n_gold: int,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> tuple[ThresholdScores, ...]:
    """Precision/recall/F1 keeping only predicted entities with confidence >= t.

    ``confidences`` and ``correct``: one value per predicted entity.
    ``n_gold``: number of gold entities (the recall denominator).
    """
    conf, ok = _as_arrays(confidences, correct)
    if n_gold < int(ok.sum()):
        raise ValueError(f"n_gold={n_gold} is less than the {int(ok.sum())} correct predictions")
    result = []
    for t in thresholds:
        kept = conf >= t
        n_kept, n_right = int(kept.sum()), int((kept & ok).sum())
        s = _type_scores(n_right, n_kept, n_gold)
        result.append(ThresholdScores(float(t), s.precision, s.recall, s.f1, n_kept, n_right))
    return tuple(result)


def calibration(
    confidences: Sequence[float],
    correct: Sequence[bool],
    n_bins: int = 10,
    *,
    n_gold: int,
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> Calibration:
    """Reliability bins (equal width on [0, 1]), ECE and threshold table.

    ``confidences``: one value in [0, 1] per predicted entity; ``correct``: one
    bool per predicted entity (see ``match_entities``); ``n_gold``: number of
    gold entities, needed for recall in the threshold table.
    """
    if n_bins < 1:
        raise ValueError("n_bins must be at least 1")
    conf, ok = _as_arrays(confidences, correct)
    # i / n_bins rather than linspace: linspace(0, 1, 11)[6] is 0.6000000000000001,
    # which would put a confidence of exactly 0.6 into the bin below.
    edges = np.arange(n_bins + 1) / n_bins
    # Membership by the same edges we report; 1.0 goes into the last bin.
    index = np.clip(np.searchsorted(edges, conf, side="right") - 1, 0, n_bins - 1)
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=conf, minlength=n_bins)
    right_sum = np.bincount(index, weights=ok.astype(np.float64), minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.where(counts > 0, conf_sum / counts, np.nan)
        accuracy = np.where(counts > 0, right_sum / counts, np.nan)
    filled = counts > 0
    gaps = counts[filled] * np.abs(accuracy[filled] - mean_conf[filled])
    ece = float(gaps.sum() / conf.size) if conf.size else 0.0
    return Calibration(
        bin_edges=tuple(float(e) for e in edges),
        bin_confidence=tuple(float(c) for c in mean_conf),
        bin_accuracy=tuple(float(a) for a in accuracy),
        bin_count=tuple(int(c) for c in counts),
        ece=ece,
        n=int(conf.size),
        thresholds=scores_at_thresholds(conf, ok, n_gold=n_gold, thresholds=thresholds),
    )


def entity_calibration(
    gold: Sequence[Sequence[str]],
    predicted: Sequence[Sequence[str]],
    token_confidences: Sequence[Sequence[float]],
    *,
    n_bins: int = 10,
    mode: Mode = "conlleval",
    scheme: Scheme = "IOB2",
    thresholds: Sequence[float] = DEFAULT_THRESHOLDS,
) -> Calibration:
    """Calibration of predicted entities straight from tag sequences.

    ``token_confidences``: per sentence, one confidence per token of the
    predicted tags (e.g. CRF marginals). Each predicted entity's confidence is
    the minimum over its tokens; it is correct on an exact type+span match.
    """
    _check_mode(mode, scheme)
    check_aligned(gold, predicted)
    check_aligned(predicted, token_confidences)
    gold_entities = extract_all_entities(gold, mode=mode, scheme=scheme)
    pred_entities = extract_all_entities(predicted, mode=mode, scheme=scheme)
    confidences = [
        c
        for ents, probs in zip(pred_entities, token_confidences)
        for c in entity_confidences(ents, probs)
    ]
    return calibration(
        confidences,
        match_entities(gold_entities, pred_entities),
        n_bins,
        n_gold=sum(len(ents) for ents in gold_entities),
        thresholds=thresholds,
    )
