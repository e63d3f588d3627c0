"""Tests of nerbatch.significance: counts agree with score_entities, and the
paired bootstrap behaves as a paired bootstrap must."""

from __future__ import annotations

import random

import numpy as np
import pytest

from nerbatch.evaluate import score_entities
from nerbatch.significance import micro_f1, paired_bootstrap_f1, sentence_entity_counts

TAGS = ["O", "O", "O", "B-per", "I-per", "B-geo", "I-geo", "B-org"]


def random_gold(n: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    return [[rng.choice(TAGS) for _ in range(rng.randint(1, 12))] for _ in range(n)]


def noisy(gold: list[list[str]], error_rate: float, seed: int) -> list[list[str]]:
    """``gold`` with each tag replaced by a random one with probability ``error_rate``."""
    rng = random.Random(seed)
    return [[rng.choice(TAGS) if rng.random() < error_rate else t for t in s] for s in gold]


@pytest.mark.parametrize("mode", ["conlleval", "strict"])
def test_counts_and_f1_agree_with_score_entities(mode: str) -> None:
    for seed in range(5):
        gold = random_gold(40, seed)
        predicted = noisy(gold, 0.3, seed + 100)
        counts = sentence_entity_counts(gold, predicted, mode=mode)
        scores = score_entities(gold, predicted, mode=mode)
        assert counts.shape == (40, 3)
        assert tuple(counts.sum(axis=0)) == (scores.n_correct, scores.n_predicted, scores.n_gold)
        assert micro_f1(counts) == pytest.approx(scores.f1)


def test_micro_f1_of_nothing_is_zero_and_batches_over_leading_axes() -> None:
    assert micro_f1(np.zeros((3, 3), dtype=np.int64)) == 0.0
    counts = np.array([[[1, 2, 1]], [[0, 1, 1]], [[0, 0, 0]]])  # three resamples of one sentence
    np.testing.assert_allclose(micro_f1(counts), [2 / 3, 0.0, 0.0])


def test_difference_is_the_difference_of_mean_f1_over_runs() -> None:
    gold = random_gold(60, 1)
    runs_a = [noisy(gold, 0.1, s) for s in (1, 2, 3)]
    runs_b = [noisy(gold, 0.3, s) for s in (4, 5)]
    result = paired_bootstrap_f1(gold, runs_a, runs_b, resamples=200)
    mean_a = np.mean([score_entities(gold, p).f1 for p in runs_a])
    mean_b = np.mean([score_entities(gold, p).f1 for p in runs_b])
    assert result.difference == pytest.approx(mean_a - mean_b)
    assert result.sentences == 60 and result.resamples == 200


def test_identical_taggers_differ_by_exactly_nothing() -> None:
    gold = random_gold(50, 2)
    predicted = noisy(gold, 0.3, 7)
    result = paired_bootstrap_f1(gold, [predicted], [list(predicted)], resamples=500)
    assert (result.difference, result.low, result.high, result.a_better) == (0.0, 0.0, 0.0, 0.0)
    assert not result.resolved and "not resolved" in result.verdict


def test_a_clearly_better_tagger_is_resolved() -> None:
    gold = random_gold(200, 3)
    result = paired_bootstrap_f1(gold, [gold], [noisy(gold, 0.4, 8)], resamples=1000)
    assert 0 < result.low <= result.difference <= result.high
    assert result.resolved and result.a_better == 1.0
    assert result.describe().startswith("+")


def test_resampling_is_paired() -> None:
    """B is A with one sentence changed: on every resample their F1 differ by little.

    Drawn independently for A and B, the resamples would spread the difference
    as widely as A's own F1 moves (several points on 300 sentences).
    """
    gold = random_gold(300, 4)
    a = noisy(gold, 0.3, 9)
    b = [list(s) for s in a]
    b[0] = list(gold[0])
    paired = paired_bootstrap_f1(gold, [a], [b], resamples=2000)
    own_spread = paired_bootstrap_f1(gold, [a], [noisy(gold, 1.0, 10)], resamples=2000)
    assert paired.high - paired.low < 0.02
    assert own_spread.high - own_spread.low > 0.04


def test_the_interval_narrows_with_more_sentences() -> None:
    """The bootstrap's spread falls like 1/sqrt(sentences): 16x the sentences, about 1/4 the width."""
    widths = []
    for n in (100, 1600):
        gold = random_gold(n, 5)
        r = paired_bootstrap_f1(gold, [noisy(gold, 0.2, 11)], [noisy(gold, 0.3, 12)], resamples=2000)
        assert r.low <= r.difference <= r.high
        widths.append(r.high - r.low)
    assert 2.5 < widths[0] / widths[1] < 6.5


def test_seeded_and_checked() -> None:
    gold = random_gold(40, 6)
    a, b = noisy(gold, 0.2, 1), noisy(gold, 0.3, 2)
    assert paired_bootstrap_f1(gold, [a], [b], seed=3, resamples=300) == paired_bootstrap_f1(
        gold, [a], [b], seed=3, resamples=300
    )
    with pytest.raises(ValueError, match="at least one run"):
        paired_bootstrap_f1(gold, [], [b])
    with pytest.raises(ValueError, match="gold tags but"):
        paired_bootstrap_f1(gold, [a], [b[:-1] + [b[-1] + ["O"]]])
    with pytest.raises(ValueError, match="confidence"):
        paired_bootstrap_f1(gold, [a], [b], confidence=1.0)
    with pytest.raises(ValueError, match="no sentences"):
        paired_bootstrap_f1([], [[]], [[]])
