"""Tests of nerbatch.evaluate: hand-computed cases and cross-checks against seqeval."""

from __future__ import annotations

import json
import random
import warnings

import numpy as np
import pytest
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics.sequence_labeling import get_entities as seqeval_get_entities
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support as seqeval_default_prfs
from seqeval.metrics.v1 import precision_recall_fscore_support as seqeval_strict_prfs
from seqeval.scheme import IOB2, IOBES

from nerbatch.evaluate import (
    MISSED,
    SPURIOUS,
    Entity,
    EntityScores,
    calibration,
    entity_calibration,
    entity_confidences,
    entity_confusion,
    extract_entities,
    match_entities,
    score_entities,
    scores_at_thresholds,
    split_tag,
)

E = Entity


# --------------------------------------------------------------------------
# Chunk extraction, by hand. The conlleval expectations were also checked
# against the Perl conlleval script (found-chunk counts).
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tags", "conlleval", "strict"),
    [
        (["B-PER", "I-PER", "O", "B-LOC"], [E("PER", 0, 2), E("LOC", 3, 4)], [E("PER", 0, 2), E("LOC", 3, 4)]),
        # orphan I-X after O: a chunk for conlleval, nothing for strict IOB2
        (["O", "I-PER", "I-PER"], [E("PER", 1, 3)], []),
        # type change inside a chunk
        (["B-PER", "I-LOC"], [E("PER", 0, 1), E("LOC", 1, 2)], [E("PER", 0, 1)]),
        (["B-PER", "I-PER", "I-LOC", "I-LOC"], [E("PER", 0, 2), E("LOC", 2, 4)], [E("PER", 0, 2)]),
        # IOB1: B-X only separates two adjacent chunks of the same type
        (["I-PER", "B-PER"], [E("PER", 0, 1), E("PER", 1, 2)], [E("PER", 1, 2)]),
        (["B-PER", "B-PER"], [E("PER", 0, 1), E("PER", 1, 2)], [E("PER", 0, 1), E("PER", 1, 2)]),
        # types may contain hyphens: split at the first one only
        (["I-geo-loc", "I-geo-loc"], [E("geo-loc", 0, 2)], []),
        (["O", "O"], [], []),
        ([], [], []),
        # an entity running to the end of the sentence
        (["O", "B-ORG", "I-ORG"], [E("ORG", 1, 3)], [E("ORG", 1, 3)]),
    ],
)
def test_extract_entities_by_hand(tags: list[str], conlleval: list[Entity], strict: list[Entity]) -> None:
    assert extract_entities(tags, mode="conlleval") == conlleval
    assert extract_entities(tags, mode="strict", scheme="IOB2") == strict


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        # conlleval has no rule for S-: same-type S-X S-X is one chunk
        (["S-LOC", "S-LOC"], [E("LOC", 0, 2)]),
        (["S-LOC", "S-PER"], [E("LOC", 0, 1), E("PER", 1, 2)]),
        # E-X B-X of one type: neither endOfChunk nor startOfChunk fires
        (["B-PER", "E-PER", "B-PER", "E-PER"], [E("PER", 0, 4)]),
        (["B-PER", "S-PER"], [E("PER", 0, 2)]),
        (["E-PER", "E-PER"], [E("PER", 0, 1), E("PER", 1, 2)]),
        (["B-PER", "E-PER", "I-PER"], [E("PER", 0, 2), E("PER", 2, 3)]),
        (["B-PER", "I-PER", "E-PER", "O"], [E("PER", 0, 3)]),
        # an S-X (unknown prefix to conlleval) still ends at O through the type change
        (["S-LOC", "O", "S-LOC"], [E("LOC", 0, 1), E("LOC", 2, 3)]),
    ],
)
def test_conlleval_reads_e_and_s_prefixes_like_the_perl_script(tags: list[str], expected: list[Entity]) -> None:
    assert extract_entities(tags, mode="conlleval") == expected


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        # untyped tags: the type is "" (conlleval's regex), I after O starts a chunk
        (["O", "I", "I"], [E("", 1, 3)]),
        # an untyped chunk is not ended by O; conlleval would carry it into the
        # next sentence, we end it with the sentence
        (["B-PER", "S", "O"], [E("PER", 0, 1), E("", 1, 3)]),
        # "." tags suppress the type-change end: B-Y starts a chunk while X is open
        (["B-X", ".-X", "B-Y"], [E("X", 0, 2), E("Y", 2, 3)]),
    ],
)
def test_conlleval_exotic_tags(tags: list[str], expected: list[Entity]) -> None:
    assert extract_entities(tags, mode="conlleval") == expected


def test_conlleval_mode_deliberately_differs_from_seqeval_on_s_tags() -> None:
    # seqeval's default mode added S/E rules the Perl script does not have.
    tags = ["S-LOC", "S-LOC"]
    assert len(seqeval_get_entities(tags)) == 2
    assert len(extract_entities(tags, mode="conlleval")) == 1
    assert len(extract_entities(tags, mode="strict", scheme="IOBES")) == 2


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        (["S-LOC", "S-LOC"], [E("LOC", 0, 1), E("LOC", 1, 2)]),
        (["B-PER", "E-PER", "B-PER", "E-PER"], [E("PER", 0, 2), E("PER", 2, 4)]),
        (["B-PER", "I-PER", "I-PER", "E-PER", "O"], [E("PER", 0, 4)]),
        # not closed by E-X, closed by the wrong type, orphan E-X / I-X: no entity
        (["B-PER", "I-PER", "O"], []),
        (["B-PER", "I-PER", "E-LOC"], []),
        (["E-PER", "I-PER"], []),
        (["B-PER", "S-PER"], [E("PER", 1, 2)]),
    ],
)
def test_strict_iobes_by_hand(tags: list[str], expected: list[Entity]) -> None:
    assert extract_entities(tags, mode="strict", scheme="IOBES") == expected


@pytest.mark.parametrize("tag", ["E-PER", "S-PER", "B-", "PER", "X-PER"])
def test_strict_iob2_rejects_tags_outside_the_scheme(tag: str) -> None:
    with pytest.raises(ValueError, match="not a valid IOB2 tag"):
        extract_entities(["O", tag], mode="strict", scheme="IOB2")


def test_unknown_mode_or_scheme_is_an_error() -> None:
    with pytest.raises(ValueError, match="mode"):
        extract_entities(["O"], mode="lenient")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scheme"):
        extract_entities(["O"], mode="strict", scheme="BILOU")  # type: ignore[arg-type]


def test_split_tag() -> None:
    assert split_tag("B-PER") == ("B", "PER")
    assert split_tag("I-geo-loc") == ("I", "geo-loc")
    assert split_tag("O") == ("O", "")


# --------------------------------------------------------------------------
# Scores, by hand
# --------------------------------------------------------------------------


def test_one_right_one_wrong_type() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"]]
    s = score_entities(gold, pred)
    assert (s.precision, s.recall, s.f1) == (0.5, 0.5, 0.5)
    assert (s.n_gold, s.n_predicted, s.n_correct) == (2, 2, 1)
    assert list(s.per_type) == ["LOC", "ORG", "PER"]
    assert (s.per_type["PER"].f1, s.per_type["PER"].support) == (1.0, 1)
    assert (s.per_type["LOC"].recall, s.per_type["LOC"].support) == (0.0, 1)
    org = s.per_type["ORG"]
    assert (org.precision, org.recall, org.f1, org.support, org.n_predicted) == (0.0, 0.0, 0.0, 0, 1)
    assert s.macro_f1 == pytest.approx(1 / 3)
    assert s.token_accuracy == 0.75  # 3 of 4 tags equal
    # tokens 0, 1, 3 are not O in gold or prediction; 2 of them right
    assert (s.token_accuracy_non_o, s.n_tokens_non_o) == (pytest.approx(2 / 3), 3)
    assert (s.n_sentences, s.n_tokens) == (1, 4)


def test_three_gold_two_predicted_one_correct() -> None:
    gold = [["B-PER", "O", "B-LOC", "I-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "O", "B-LOC", "O"], ["O", "O"]]  # LOC boundary wrong, ORG missed
    s = score_entities(gold, pred)
    assert s.precision == 0.5
    assert s.recall == pytest.approx(1 / 3)
    assert s.f1 == pytest.approx(0.4)  # 2 * .5 * (1/3) / (.5 + 1/3)
    # 6 tokens, 4 equal; non-O in gold or prediction: B-PER, B-LOC, I-LOC/O, B-ORG/O -> 2 of 4
    assert s.token_accuracy == pytest.approx(4 / 6)
    assert (s.token_accuracy_non_o, s.n_tokens_non_o) == (0.5, 4)


def test_entities_only_match_within_their_own_sentence() -> None:
    gold = [["B-PER", "O"], ["O", "O"]]
    pred = [["O", "O"], ["B-PER", "O"]]
    assert score_entities(gold, pred).n_correct == 0


def test_no_gold_entities_gives_zero_not_nan() -> None:
    s = score_entities([["O", "O"]], [["B-PER", "O"]])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    assert s.per_type["PER"].support == 0


def test_no_predicted_entities_gives_zero() -> None:
    s = score_entities([["B-PER", "O"]], [["O", "O"]])
    assert (s.precision, s.recall, s.f1) == (0.0, 0.0, 0.0)
    assert s.token_accuracy == 0.5


def test_nothing_anywhere() -> None:
    s = score_entities([["O", "O"]], [["O", "O"]])
    assert (s.precision, s.recall, s.f1, s.macro_f1) == (0.0, 0.0, 0.0, 0.0)
    assert s.per_type == {}
    assert s.token_accuracy == 1.0
    # no token is non-O in gold or prediction: the 0 convention, with the count to show it
    assert (s.token_accuracy_non_o, s.n_tokens_non_o) == (0.0, 0)
    empty = score_entities([], [])
    assert (empty.n_sentences, empty.n_tokens, empty.f1) == (0, 0, 0.0)


def test_misaligned_input_is_an_error() -> None:
    with pytest.raises(ValueError, match="sentences"):
        score_entities([["O"]], [])
    with pytest.raises(ValueError, match="sentence 1"):
        score_entities([["O"], ["O", "O"]], [["O"], ["O"]])


def test_to_dict_is_json_and_round_trips() -> None:
    s = score_entities([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "O", "O", "B-LOC"]], mode="strict")
    data = json.loads(json.dumps(s.to_dict()))
    assert data["headline"] == "f1"
    assert data["f1"] == s.f1
    assert data["per_type"]["LOC"]["support"] == 1
    assert "not the headline" in data["token_level"]["note"]
    assert data["token_level"]["token_accuracy"] == s.token_accuracy
    assert EntityScores.from_dict(data) == s


def test_format_table_has_each_type_and_the_micro_row() -> None:
    s = score_entities([["B-PER", "I-PER", "O", "B-LOC"]], [["B-PER", "I-PER", "O", "B-ORG"]])
    lines = s.format_table().splitlines()
    assert lines[0].split() == ["type", "precision", "recall", "f1", "support"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[2:] if not line.startswith("-")}
    assert rows["PER"] == ["1.0000", "1.0000", "1.0000", "1"]
    assert rows["ORG"] == ["0.0000", "0.0000", "0.0000", "0"]
    assert rows["micro"] == ["avg", "0.5000", "0.5000", "0.5000", "2"]
    assert rows["macro"][:4] == ["avg", "0.3333", "0.3333", "0.3333"]


# --------------------------------------------------------------------------
# Cross-check against seqeval on random (often invalid) sequences
# --------------------------------------------------------------------------

IOB_TAGS = ["O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-MISC", "B-geo-loc", "I-geo-loc"]
IOBES_TAGS = ["O", "O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]


def _random_corpora(tagset: list[str], seed: int, n_corpora: int = 60) -> list[tuple[list[list[str]], list[list[str]]]]:
    """Small random corpora: gold of random tags, prediction = gold with ~40% of tags replaced."""
    rng = random.Random(seed)
    corpora = []
    for _ in range(n_corpora):
        gold = [[rng.choice(tagset) for _ in range(rng.randint(1, 10))] for _ in range(rng.randint(1, 6))]
        pred = [[rng.choice(tagset) if rng.random() < 0.4 else t for t in sent] for sent in gold]
        corpora.append((gold, pred))
    return corpora


def _assert_same_as_seqeval(
    gold: list[list[str]], pred: list[list[str]], ours: EntityScores, scheme: type | None = None
) -> None:
    """Compare with seqeval: default mode if ``scheme`` is None, else ``mode="strict"``.

    seqeval's ``f1_score(mode="strict", scheme=...)`` dispatches to ``v1``'s
    precision_recall_fscore_support, its default mode to ``sequence_labeling``'s:
    we call those to get P, R, F1 and support at once.
    """
    if scheme is None:
        prfs, kwargs, f1_kwargs = seqeval_default_prfs, {}, {}
    else:
        prfs, kwargs, f1_kwargs = seqeval_strict_prfs, {"scheme": scheme}, {"mode": "strict", "scheme": scheme}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval warns on zero division, then returns 0 as we do
        micro = prfs(gold, pred, average="micro", zero_division=0, **kwargs)
        macro = prfs(gold, pred, average="macro", zero_division=0, **kwargs)
        p, r, f, support = prfs(gold, pred, average=None, zero_division=0, **kwargs)
        public_f1 = seqeval_f1(gold, pred, zero_division=0, **f1_kwargs)
    assert ours.f1 == pytest.approx(public_f1)
    assert (ours.precision, ours.recall, ours.f1) == pytest.approx(micro[:3])
    assert ours.n_gold == micro[3]
    if len(p):
        assert (ours.macro_precision, ours.macro_recall, ours.macro_f1) == pytest.approx(macro[:3])
    else:  # no entity anywhere: seqeval's macro is the mean of nothing (NaN); ours is 0
        assert (ours.macro_precision, ours.macro_recall, ours.macro_f1) == (0.0, 0.0, 0.0)
    # seqeval's per-type arrays follow the sorted union of gold and predicted types, as ours do
    assert [s.precision for s in ours.per_type.values()] == pytest.approx(list(p))
    assert [s.recall for s in ours.per_type.values()] == pytest.approx(list(r))
    assert [s.f1 for s in ours.per_type.values()] == pytest.approx(list(f))
    assert [s.support for s in ours.per_type.values()] == list(support)


def test_conlleval_mode_equals_seqeval_default_on_random_iob_sequences() -> None:
    corpora = _random_corpora(IOB_TAGS, seed=11)
    for gold, pred in corpora:
        _assert_same_as_seqeval(gold, pred, score_entities(gold, pred, mode="conlleval"))
        for tags in gold + pred:
            expected = [E(t, start, end + 1) for t, start, end in seqeval_get_entities(tags)]
            assert extract_entities(tags, mode="conlleval") == expected
    # the random data does exercise both agreement and disagreement
    all_scores = [score_entities(g, p).f1 for g, p in corpora]
    assert min(all_scores) < 0.7 < max(all_scores)


def test_strict_iob2_equals_seqeval_strict_on_random_sequences() -> None:
    for gold, pred in _random_corpora(IOB_TAGS, seed=12):
        ours = score_entities(gold, pred, mode="strict", scheme="IOB2")
        _assert_same_as_seqeval(gold, pred, ours, scheme=IOB2)


def test_strict_iobes_equals_seqeval_strict_on_random_sequences() -> None:
    for gold, pred in _random_corpora(IOBES_TAGS, seed=13):
        ours = score_entities(gold, pred, mode="strict", scheme="IOBES")
        _assert_same_as_seqeval(gold, pred, ours, scheme=IOBES)


def test_strict_and_conlleval_disagree_on_invalid_sequences() -> None:
    gold = [["O", "I-PER", "I-PER", "O"]]
    pred = [["O", "I-PER", "I-PER", "O"]]
    assert score_entities(gold, pred, mode="conlleval").f1 == 1.0
    assert score_entities(gold, pred, mode="strict").n_gold == 0


# --------------------------------------------------------------------------
# Confusion
# --------------------------------------------------------------------------


def test_confusion_by_hand() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"], ["B-LOC", "I-LOC", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-PER", "O", "O"], ["B-LOC", "O", "B-MISC"]]
    c = entity_confusion(gold, pred)
    assert c.types == ("LOC", "MISC", "ORG", "PER")
    assert c.row_labels[-1] == SPURIOUS and c.column_labels[-1] == MISSED
    assert c.count("PER", "PER") == 1
    assert c.count("LOC", "PER") == 1  # right span, wrong type
    assert c.count("ORG", MISSED) == 1
    assert c.count("LOC", MISSED) == 1  # boundary error: missed ...
    assert c.count(SPURIOUS, "LOC") == 1  # ... plus spurious
    assert c.count(SPURIOUS, "MISC") == 1
    assert int(c.counts.sum()) == 6
    data = json.loads(json.dumps(c.to_dict()))
    assert data["rows"] == ["LOC", "MISC", "ORG", "PER", SPURIOUS]
    assert data["counts"][0] == [0, 0, 0, 1, 1]


def test_confusion_is_consistent_with_the_scores() -> None:
    for gold, pred in _random_corpora(IOB_TAGS, seed=14, n_corpora=20):
        for mode in ("conlleval", "strict"):
            c = entity_confusion(gold, pred, mode=mode)
            s = score_entities(gold, pred, mode=mode)
            k = len(c.types)
            assert c.types == tuple(s.per_type)
            assert int(np.trace(c.counts[:k, :k])) == s.n_correct
            assert c.counts[:k].sum(axis=1).tolist() == [t.support for t in s.per_type.values()]
            assert c.counts[:, :k].sum(axis=0).tolist() == [t.n_predicted for t in s.per_type.values()]
            assert c.counts[k, k] == 0


def test_confusion_rejects_types_named_like_its_labels() -> None:
    with pytest.raises(ValueError, match="clash"):
        entity_confusion([["B-missed"]], [["O"]])


# --------------------------------------------------------------------------
# Calibration and thresholds
# --------------------------------------------------------------------------


def test_ece_of_an_overconfident_tiny_case_by_hand() -> None:
    # bins: [0.9,1.0): conf .95 acc .5 (2); [0.8,0.9): conf .85 acc 0 (1); [0.3,0.4): conf .35 acc 1 (1)
    cal = calibration([0.95, 0.95, 0.85, 0.35], [True, False, False, True], n_gold=5)
    assert cal.ece == pytest.approx((2 * 0.45 + 1 * 0.85 + 1 * 0.65) / 4)  # = 0.6
    assert cal.bin_count == (0, 0, 0, 1, 0, 0, 0, 0, 1, 2)
    assert cal.bin_accuracy[9] == 0.5 and cal.bin_confidence[9] == pytest.approx(0.95)
    assert np.isnan(cal.bin_accuracy[0]) and np.isnan(cal.bin_confidence[0])
    assert cal.bin_edges[6] == 0.6 and len(cal.bin_edges) == 11
    assert cal.n == 4


def test_ece_is_zero_when_calibrated_exactly() -> None:
    conf = [0.25] * 4 + [0.75] * 4 + [1.0] * 2
    correct = [True, False, False, False] + [True, True, True, False] + [True, True]
    assert calibration(conf, correct, n_gold=10).ece == pytest.approx(0.0, abs=1e-12)


def test_ece_is_near_zero_for_calibrated_samples_and_not_for_overconfident_ones() -> None:
    rng = np.random.default_rng(0)
    conf = rng.uniform(0, 1, 100_000)
    calibrated = rng.uniform(0, 1, conf.size) < conf
    assert calibration(conf, calibrated, n_gold=conf.size).ece < 0.01
    overconfident = rng.uniform(0, 1, conf.size) < conf**2  # true accuracy below confidence
    # E[c - c^2] for c ~ U(0, 1) = 1/2 - 1/3
    assert calibration(conf, overconfident, n_gold=conf.size).ece == pytest.approx(1 / 6, abs=0.01)


def test_bin_edges_put_boundary_values_in_the_upper_bin() -> None:
    cal = calibration([0.0, 0.6, 0.7, 1.0], [True] * 4, n_gold=4)
    assert cal.bin_count == (1, 0, 0, 0, 0, 0, 1, 1, 0, 1)
    assert calibration([0.5], [True], n_bins=2, n_gold=1).bin_count == (0, 1)


def test_calibration_of_nothing() -> None:
    cal = calibration([], [], n_gold=3)
    assert (cal.ece, cal.n, sum(cal.bin_count)) == (0.0, 0, 0)
    assert [(t.precision, t.recall, t.n_kept) for t in cal.thresholds] == [(0.0, 0.0, 0)] * 3
    assert json.loads(json.dumps(cal.to_dict()))["bins"][0]["accuracy"] is None


def test_calibration_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        calibration([1.2], [True], n_gold=1)
    with pytest.raises(ValueError, match="flags"):
        calibration([0.5, 0.5], [True], n_gold=1)
    with pytest.raises(ValueError, match="n_gold"):
        calibration([0.5, 0.5], [True, True], n_gold=1)
    with pytest.raises(ValueError, match="n_bins"):
        calibration([0.5], [True], n_bins=0, n_gold=1)


def test_scores_at_thresholds_by_hand() -> None:
    rows = scores_at_thresholds([0.95, 0.95, 0.85, 0.35], [True, False, False, True], n_gold=5)
    assert [r.threshold for r in rows] == [0.5, 0.7, 0.9]
    assert [(r.n_kept, r.n_correct) for r in rows] == [(3, 1), (3, 1), (2, 1)]
    assert rows[0].precision == pytest.approx(1 / 3) and rows[0].recall == pytest.approx(0.2)
    assert (rows[2].precision, rows[2].recall) == (0.5, pytest.approx(0.2))
    assert rows[2].f1 == pytest.approx(2 * 0.5 * 0.2 / 0.7)
    # confidence exactly at the threshold is kept
    assert scores_at_thresholds([0.7], [True], n_gold=1, thresholds=[0.7])[0].n_kept == 1


def test_match_entities_and_entity_confidences() -> None:
    gold = [[E("PER", 0, 2), E("LOC", 3, 4)], [E("ORG", 0, 1)]]
    pred = [[E("PER", 0, 2), E("ORG", 3, 4)], [], ]
    assert match_entities(gold, pred) == [True, False]
    assert entity_confidences([E("PER", 0, 2), E("ORG", 3, 4)], [0.9, 0.6, 0.99, 0.8]) == [0.6, 0.8]
    with pytest.raises(ValueError):
        match_entities(gold, pred[:1])


def test_entity_calibration_end_to_end() -> None:
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    pred = [["B-PER", "I-PER", "O", "B-ORG"], ["O", "O"]]
    token_conf = [[0.9, 0.6, 0.99, 0.8], [0.5, 0.5]]
    cal = entity_calibration(gold, pred, token_conf)
    # PER: min(0.9, 0.6) = 0.6, correct -> bin 6; ORG: 0.8, wrong -> bin 8
    assert cal.n == 2
    assert cal.bin_count[6] == 1 and cal.bin_count[8] == 1
    assert cal.ece == pytest.approx((abs(1 - 0.6) + abs(0 - 0.8)) / 2)
    t05 = cal.thresholds[0]
    assert (t05.n_kept, t05.precision, t05.recall) == (2, 0.5, pytest.approx(1 / 3))  # 3 gold entities
