"""The CRF against brute-force enumeration of every tag path, plus padding,
numerical-stability, compiled-graph and serialisation checks."""

from __future__ import annotations

import itertools
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from nerbatch.model import crf  # noqa: E402

# float32 forward-backward over <= 5 steps: errors are ~1e-6 relative.
RTOL = 1e-5
ATOL = 1e-5


def _np(x) -> np.ndarray:
    return keras.ops.convert_to_numpy(x)


def _random_case(rng: np.random.Generator, num_tags: int, lengths: list[int], padded: int):
    """Emissions [B, T, K] (garbage at padded steps), mask, tags and CRF parameters."""
    batch = len(lengths)
    emissions = rng.normal(scale=2.0, size=(batch, padded, num_tags)).astype("float32")
    mask = np.arange(padded)[None, :] < np.asarray(lengths)[:, None]
    emissions[~mask] = rng.normal(scale=50.0, size=(int((~mask).sum()), num_tags))
    tags = rng.integers(0, num_tags, size=(batch, padded)).astype("int32")
    tags[~mask] = -7  # must be ignored
    params = (
        rng.normal(scale=1.5, size=(num_tags, num_tags)).astype("float32"),
        rng.normal(scale=1.5, size=(num_tags,)).astype("float32"),
        rng.normal(scale=1.5, size=(num_tags,)).astype("float32"),
    )
    return emissions, mask, tags, params


def _all_path_scores(emissions: np.ndarray, length: int, params) -> tuple[list[tuple[int, ...]], np.ndarray]:
    """Every tag path over the first ``length`` steps of one row, with its score."""
    transitions, start, end = (p.astype("float64") for p in params)
    num_tags = emissions.shape[-1]
    paths = list(itertools.product(range(num_tags), repeat=length))
    scores = np.empty(len(paths))
    for n, path in enumerate(paths):
        s = start[path[0]] + end[path[-1]] + sum(float(emissions[t, path[t]]) for t in range(length))
        s += sum(transitions[path[t - 1], path[t]] for t in range(1, length))
        scores[n] = s
    return paths, scores


def _brute_force(emissions: np.ndarray, mask: np.ndarray, tags: np.ndarray, params):
    """log Z [B], gold log-likelihood [B], best path [B, T], best score [B], marginals [B, T, K]."""
    batch, padded, num_tags = emissions.shape
    log_z = np.zeros(batch)
    gold = np.zeros(batch)
    best_path = np.zeros((batch, padded), dtype="int32")
    best_score = np.zeros(batch)
    probs = np.zeros((batch, padded, num_tags))
    for b in range(batch):
        length = int(mask[b].sum())
        if length == 0:
            continue
        paths, scores = _all_path_scores(emissions[b].astype("float64"), length, params)
        top = scores.max()
        log_z[b] = top + np.log(np.exp(scores - top).sum())
        gold[b] = scores[paths.index(tuple(int(t) for t in tags[b, :length]))] - log_z[b]
        best = int(np.argmax(scores))
        best_path[b, :length] = paths[best]
        best_score[b] = scores[best]
        weights = np.exp(scores - log_z[b])
        for path, w in zip(paths, weights, strict=True):
            probs[b, np.arange(length), list(path)] += w
    return log_z, gold, best_path, best_score, probs


CASES = [
    # (num_tags, lengths of the rows, padded length)
    (2, [1], 1),
    (2, [3, 1, 2], 3),
    (3, [5, 4, 1, 3], 5),
    (3, [2, 2], 5),  # every row shorter than the padded batch
    (4, [4, 1, 5, 2], 5),
    (4, [1, 1], 3),
    (4, [3, 0, 2], 4),  # an empty row
]


@pytest.mark.parametrize("num_tags,lengths,padded", CASES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_brute_force(num_tags: int, lengths: list[int], padded: int, seed: int) -> None:
    rng = np.random.default_rng(1000 * seed + 10 * num_tags + padded)
    emissions, mask, tags, params = _random_case(rng, num_tags, lengths, padded)
    want_log_z, want_gold, want_path, want_best, want_probs = _brute_force(emissions, mask, tags, params)

    np.testing.assert_allclose(_np(crf.log_partition(emissions, mask, *params)), want_log_z, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_np(crf.log_likelihood(emissions, tags, mask, *params)), want_gold, rtol=RTOL, atol=ATOL)
    path, best = crf.viterbi_decode(emissions, mask, *params)
    np.testing.assert_array_equal(_np(path), want_path)
    np.testing.assert_allclose(_np(best), want_best, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(_np(crf.marginals(emissions, mask, *params)), want_probs, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("num_tags,lengths,padded", CASES)
def test_extra_padding_changes_nothing(num_tags: int, lengths: list[int], padded: int) -> None:
    rng = np.random.default_rng(7 + num_tags)
    emissions, mask, tags, params = _random_case(rng, num_tags, lengths, padded)
    extra = 3
    garbage = rng.normal(scale=100.0, size=(len(lengths), extra, num_tags)).astype("float32")
    longer_emissions = np.concatenate([emissions, garbage], axis=1)
    longer_mask = np.concatenate([mask, np.zeros((len(lengths), extra), dtype=bool)], axis=1)
    longer_tags = np.concatenate([tags, rng.integers(0, num_tags, size=(len(lengths), extra)).astype("int32")], axis=1)

    def results(e, m, t):
        path, best = crf.viterbi_decode(e, m, *params)
        return (
            _np(crf.log_partition(e, m, *params)),
            _np(crf.log_likelihood(e, t, m, *params)),
            _np(path),
            _np(best),
            _np(crf.marginals(e, m, *params)),
        )

    short = results(emissions, mask, tags)
    long = results(longer_emissions, longer_mask, longer_tags)
    for a, b in zip(short[:2] + short[3:4], long[:2] + long[3:4], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(long[2][:, :padded], short[2])
    np.testing.assert_array_equal(long[2][:, padded:], 0)
    np.testing.assert_allclose(long[4][:, :padded], short[4], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(long[4][:, padded:], 0)


def test_no_mask_means_every_step_valid() -> None:
    rng = np.random.default_rng(3)
    emissions, _, tags, params = _random_case(rng, 3, [4, 4], 4)
    ones = np.ones((2, 4), dtype=bool)
    np.testing.assert_allclose(
        _np(crf.log_likelihood(emissions, tags, None, *params)), _np(crf.log_likelihood(emissions, tags, ones, *params))
    )
    np.testing.assert_array_equal(
        _np(crf.viterbi_decode(emissions, None, *params)[0]), _np(crf.viterbi_decode(emissions, ones, *params)[0])
    )


def test_length_one_is_a_softmax() -> None:
    """With one step the CRF is a softmax over start + emission + end."""
    rng = np.random.default_rng(4)
    emissions, mask, tags, params = _random_case(rng, 4, [1], 1)
    _, start, end = params
    logits = emissions[0, 0].astype("float64") + start + end
    log_softmax = logits - np.log(np.exp(logits - logits.max()).sum()) - logits.max()
    np.testing.assert_allclose(
        _np(crf.log_likelihood(emissions, tags, mask, *params))[0], log_softmax[tags[0, 0]], rtol=RTOL
    )
    np.testing.assert_allclose(
        _np(crf.marginals(emissions, mask, *params))[0, 0], np.exp(log_softmax), rtol=RTOL, atol=ATOL
    )


def test_stable_with_huge_scores() -> None:
    """logsumexp keeps scores in the thousands finite; marginals still sum to 1."""
    rng = np.random.default_rng(5)
    emissions, mask, tags, params = _random_case(rng, 3, [5, 2], 5)
    emissions = emissions * 500.0
    params = tuple(p * 500.0 for p in params)
    nll = -_np(crf.log_likelihood(emissions, tags, mask, *params))
    probs = _np(crf.marginals(emissions, mask, *params))
    assert np.all(np.isfinite(nll)) and np.all(nll >= -1e-2)
    # float32 spacing near 1e4 is ~1e-3, which bounds alpha + beta - log Z.
    np.testing.assert_allclose(probs.sum(-1)[mask], 1.0, atol=1e-2)
    # ...and the rounding never makes a marginal an impossible probability (a
    # confidence above 1 fails calibration and would be published as such).
    assert probs.min() >= 0.0 and probs.max() <= 1.0


def _layer_with(params) -> crf.CRF:
    layer = crf.CRF(params[1].shape[0])
    layer.build((None, None, params[1].shape[0]))
    layer.set_weights(list(params))
    return layer


def test_layer_methods_use_its_parameters() -> None:
    rng = np.random.default_rng(6)
    emissions, mask, tags, params = _random_case(rng, 3, [3, 1], 4)
    layer = _layer_with(params)
    np.testing.assert_allclose(
        _np(layer.negative_log_likelihood(emissions, tags, mask)),
        -_np(crf.log_likelihood(emissions, tags, mask, *params)),
    )
    np.testing.assert_array_equal(
        _np(layer.viterbi_decode(emissions, mask)), _np(crf.viterbi_decode(emissions, mask, *params)[0])
    )
    np.testing.assert_allclose(_np(layer.marginals(emissions, mask)), _np(crf.marginals(emissions, mask, *params)))
    np.testing.assert_array_equal(_np(layer(emissions)), emissions)


def test_decodes_inside_a_compiled_predict() -> None:
    """Viterbi and forward-backward run in the backend's compiled predict function."""
    rng = np.random.default_rng(8)
    emissions, mask, _, params = _random_case(rng, 4, [5, 3, 1, 4], 5)
    layer = _layer_with(params)
    scores = keras.Input(shape=(None, 4), name="scores")
    valid = keras.Input(shape=(None,), dtype="bool", name="valid")
    model = keras.Model([scores, valid], crf.CRFDecode(layer)(scores, mask=valid))
    out = model.predict([emissions, mask], verbose=0, batch_size=2)
    _, _, want_path, _, want_probs = _brute_force(emissions, mask, np.zeros_like(mask, dtype="int32"), params)
    np.testing.assert_array_equal(out["tag_ids"], want_path)
    chosen = np.take_along_axis(want_probs, want_path[:, :, None], axis=2)[:, :, 0] * mask
    np.testing.assert_allclose(out["tag_marginals"], chosen, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(out["marginals"], want_probs, rtol=RTOL, atol=ATOL)


def test_compiled_decoding_with_changing_lengths() -> None:
    """Batches of different lengths make the TF predict function retrace with an unknown T."""
    rng = np.random.default_rng(10)
    params = _random_case(rng, 3, [1], 1)[3]
    scores = keras.Input(shape=(None, 3), name="scores")
    valid = keras.Input(shape=(None,), dtype="bool", name="valid")
    model = keras.Model([scores, valid], crf.CRFDecode(_layer_with(params))(scores, mask=valid))
    for padded in (5, 3, 7, 2, 6, 1):
        lengths = [padded, max(1, padded - 2)]
        emissions, mask, _, _ = _random_case(rng, 3, lengths, padded)
        out = model.predict_on_batch([emissions, mask])
        _, _, want_path, _, want_probs = _brute_force(emissions, mask, np.zeros_like(mask, dtype="int32"), params)
        np.testing.assert_array_equal(out["tag_ids"], want_path)
        np.testing.assert_allclose(out["marginals"], want_probs, rtol=RTOL, atol=ATOL)


def test_layer_round_trips_through_a_keras_file(tmp_path) -> None:
    rng = np.random.default_rng(9)
    emissions, mask, _, params = _random_case(rng, 3, [4, 2], 4)
    layer = crf.CRF(3, transitions_regularizer=keras.regularizers.L2(0.01), name="crf")
    scores = keras.Input(shape=(None, 3))
    model = keras.Model(scores, crf.CRFDecode(layer, name="decode")(layer(scores)))
    layer.set_weights(list(params))
    path = tmp_path / "crf.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    restored = loaded.get_layer("crf")
    assert isinstance(restored, crf.CRF) and restored.num_tags == 3
    assert isinstance(restored.transitions_regularizer, keras.regularizers.L2)
    for got, want in zip(restored.get_weights(), params, strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        loaded.predict(emissions, verbose=0)["tag_ids"], model.predict(emissions, verbose=0)["tag_ids"]
    )


def test_rejects_scores_of_the_wrong_width() -> None:
    with pytest.raises(ValueError, match="3 scores per token"):
        crf.CRF(3).build((None, None, 4))
