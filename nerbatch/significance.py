"""How sure is a difference in entity F1? A paired bootstrap over sentences.

Two taggers scored on the same split differ in F1 partly because one is better
and partly because of *which* sentences the split happens to hold. The paired
bootstrap (Efron & Tibshirani 1993; for NLP, Koehn 2004 and Berg-Kirkpatrick
et al. 2012) resamples the split's sentences with replacement, scores both
taggers on each resample, and reads the spread of the difference: a 95%
interval that excludes 0 means the split resolves the difference; one that
straddles 0 means it does not, whatever the point estimate says.

Entity F1 is micro-averaged, so it is not a mean over sentences: each resample
sums the per-sentence counts (correct, predicted, gold entities) and computes
F1 from the sums, exactly as :func:`nerbatch.evaluate.score_entities` does for
the whole split.

A side may be several runs of one model (different seeds) on the same
sentences: its F1 on a resample is then the mean of its runs' F1, so the
interval is that of the difference of mean F1, and seed-to-seed spread is
left to the runs themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from nerbatch.evaluate import Mode, Scheme, check_aligned, extract_entities

Tags = Sequence[Sequence[str]]


def sentence_entity_counts(
    gold: Tags, predicted: Tags, *, mode: Mode = "conlleval", scheme: Scheme = "IOB2"
) -> np.ndarray:
    """int64 [N, 3]: per sentence, the number of (correct, predicted, gold) entities.

    ``gold`` and ``predicted``: one tag sequence per sentence, same lengths.
    Summed over rows, the columns give ``score_entities``' ``n_correct``,
    ``n_predicted`` and ``n_gold``.
    """
    check_aligned(gold, predicted)
    counts = np.zeros((len(gold), 3), dtype=np.int64)
    for i, (g_tags, p_tags) in enumerate(zip(gold, predicted)):
        g_ents = set(extract_entities(g_tags, mode=mode, scheme=scheme))
        p_ents = set(extract_entities(p_tags, mode=mode, scheme=scheme))
        counts[i] = len(g_ents & p_ents), len(p_ents), len(g_ents)
    return counts


def micro_f1(counts: np.ndarray) -> np.ndarray:
    """Entity F1 from summed counts: ``counts`` [..., N, 3] -> [...] (0 where nothing is predicted or gold).

    2·correct / (predicted + gold) is the harmonic mean of precision and recall.
    """
    correct, predicted, gold = np.moveaxis(counts.sum(axis=-2), -1, 0)
    denominator = predicted + gold
    return np.divide(2.0 * correct, denominator, out=np.zeros(np.shape(denominator)), where=denominator > 0)


@dataclass(frozen=True)
class F1Difference:
    """F1 of side A minus F1 of side B on the same sentences, with a bootstrap interval."""

    difference: float  # on the split itself
    low: float  # the interval's bounds, percentiles of the resampled differences
    high: float
    confidence: float  # e.g. 0.95
    a_better: float  # share of resamples on which A's F1 is higher than B's
    resamples: int
    sentences: int

    @property
    def resolved(self) -> bool:
        """The interval excludes 0: the split tells the two apart."""
        return self.low > 0 or self.high < 0

    @property
    def verdict(self) -> str:
        return "resolved by this split" if self.resolved else "not resolved by this split: the interval includes 0"

    def describe(self, scale: float = 100.0) -> str:
        """``"+0.17 [-1.10, +1.42]"`` in F1 points (``scale`` 100)."""
        return f"{scale * self.difference:+.2f} [{scale * self.low:+.2f}, {scale * self.high:+.2f}]"

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def paired_bootstrap_f1(
    gold: Tags,
    runs_a: Sequence[Tags],
    runs_b: Sequence[Tags],
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
    mode: Mode = "conlleval",
    scheme: Scheme = "IOB2",
) -> F1Difference:
    """Paired bootstrap of mean entity F1 of ``runs_a`` minus that of ``runs_b``.

    ``gold``: one tag sequence per sentence. ``runs_a`` / ``runs_b``: one or
    more predictions of the same sentences (e.g. one per training seed), each
    aligned with ``gold``. Every resample draws ``len(gold)`` sentence indices
    with replacement, the same draw for every run of both sides.
    """
    if not runs_a or not runs_b:
        raise ValueError("each side needs at least one run")
    if resamples < 1 or not 0 < confidence < 1:
        raise ValueError("resamples must be >= 1 and confidence in (0, 1)")
    if not gold:
        raise ValueError("no sentences to resample")
    a = np.stack([sentence_entity_counts(gold, p, mode=mode, scheme=scheme) for p in runs_a])  # [Ra, N, 3]
    b = np.stack([sentence_entity_counts(gold, p, mode=mode, scheme=scheme) for p in runs_b])
    observed = float(micro_f1(a).mean() - micro_f1(b).mean())

    rng = np.random.default_rng(seed)
    differences = np.empty(resamples)
    # Chunks of resamples bound the memory of the fancy-indexed counts ([R, chunk, N, 3]).
    chunk = max(1, 2_000_000 // (len(gold) * (len(a) + len(b))))
    for start in range(0, resamples, chunk):
        idx = rng.integers(0, len(gold), size=(min(chunk, resamples - start), len(gold)))
        differences[start : start + len(idx)] = micro_f1(a[:, idx]).mean(axis=0) - micro_f1(b[:, idx]).mean(axis=0)
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(differences, [tail, 100 - tail])
    return F1Difference(
        difference=observed,
        low=float(low),
        high=float(high),
        confidence=confidence,
        a_better=float((differences > 0).mean()),
        resamples=resamples,
        sentences=len(gold),
    )
