"""Building, training, decoding, saving and loading the tagger."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pydantic  # noqa: E402
import pytest  # noqa: E402

from nerbatch.model import crf  # noqa: E402
from nerbatch.model.features import encode_batch, encode_inputs  # noqa: E402
from nerbatch.model.tagger import (  # noqa: E402
    CRFTagger,
    TaggerConfig,
    WordDropout,
    build_decoder,
    build_tagger,
    encode_sentences,
    find_crf,
    input_names,
    load_tagger,
    predict_tags,
    select_inputs,
)
from nerbatch.vocab import PAD_ID, UNK_ID, Vocabulary  # noqa: E402

SENTENCES = [
    ["John", "Smith", "lives", "in", "Paris", "."],
    ["Mary", "visited", "London", "yesterday"],
    ["the", "weather", "is", "fine"],
    ["Anna", "left"],
    ["Berlin"],
]
TAGS = [
    ["B-PER", "I-PER", "O", "O", "B-LOC", "O"],
    ["B-PER", "O", "B-LOC", "O"],
    ["O", "O", "O", "O"],
    ["B-PER", "O"],
    ["B-LOC"],
]


def _vocab() -> Vocabulary:
    words = Counter(w for s in SENTENCES for w in s)
    chars = Counter(c for s in SENTENCES for w in s for c in w)
    return Vocabulary.from_counts(words, chars, [t for s in TAGS for t in s])


VOCAB = _vocab()
TINY = TaggerConfig.preset("tiny", seed=3)


def _train(config: TaggerConfig, epochs: int = 3) -> tuple[CRFTagger, dict, np.ndarray]:
    keras.utils.set_random_seed(0)
    model = build_tagger(config, VOCAB)
    x, y = encode_batch(SENTENCES, VOCAB, TAGS, include=input_names(config))
    model.compile(optimizer=keras.optimizers.Adam(0.05))
    model.fit(x, y, epochs=epochs, batch_size=len(SENTENCES), verbose=0)
    return model, x, y


@pytest.fixture(scope="module")
def trained() -> tuple[CRFTagger, dict, np.ndarray]:
    return _train(TINY)


# -- configuration ---------------------------------------------------------------------


def test_presets() -> None:
    default, seed = TaggerConfig.preset("default"), TaggerConfig.preset("seed")
    assert default.use_chars and default.use_casing and default.lstm_units == (100,)
    assert (seed.word_dim, seed.lstm_units, seed.forward_lstm_units, seed.hidden_units) == (
        150,
        (150,),
        (300,),
        "num_tags",
    )
    assert not seed.use_chars and not seed.use_casing and seed.recurrent_dropout == 0.0
    # Pretrained vectors are on by default; the tutorial's network had none.
    assert default.vectors == "glove-6b-50d" and seed.vectors is None and TaggerConfig.preset("tiny").vectors is None
    assert default.word_init_from_vectors and default.word_dim == 50
    assert TaggerConfig.preset("seed", recurrent_dropout=0.2).recurrent_dropout == 0.2
    assert TaggerConfig.model_validate_json(seed.model_dump_json()) == seed
    with pytest.raises(ValueError, match="unknown preset"):
        TaggerConfig.preset("huge")
    with pytest.raises(pydantic.ValidationError):
        TaggerConfig(lstm_size=3)  # misspelt field
    with pytest.raises(pydantic.ValidationError):
        TaggerConfig(lstm_units=(), forward_lstm_units=())
    with pytest.raises(pydantic.ValidationError):
        TaggerConfig(embedding_dropout=1.5)


def test_default_architecture() -> None:
    model = build_tagger(TINY, VOCAB)
    assert isinstance(model, CRFTagger)
    assert sorted(model.input) == ["casing", "chars", "words"] == sorted(input_names(TINY))
    names = {layer.name for layer in model.layers}
    assert {"word_dropout", "word_embedding", "char_cnn", "casing_embedding", "bilstm_0", "emissions", "crf"} <= names
    x = encode_inputs(SENTENCES, VOCAB)
    assert model.predict(x, verbose=0).shape == (5, 6, len(VOCAB.tags))
    lstm = model.get_layer("bilstm_0").forward_layer
    # The cuDNN kernel's conditions.
    assert lstm.cell.recurrent_dropout == 0 and not lstm.unroll and lstm.cell.use_bias
    assert (
        lstm.cell.activation is keras.activations.tanh and lstm.cell.recurrent_activation is keras.activations.sigmoid
    )


def test_seed_architecture() -> None:
    model = build_tagger(TaggerConfig.preset("seed"), VOCAB)
    assert list(model.input) == ["words"]
    names = [layer.name for layer in model.layers]
    assert "char_cnn" not in names and "casing_embedding" not in names and "word_dropout" not in names
    assert model.get_layer("word_embedding").output_dim == 150
    assert model.get_layer("bilstm_0").forward_layer.units == 150
    assert model.get_layer("forward_lstm_0").units == 300
    hidden = model.get_layer("hidden")
    assert hidden.units == len(VOCAB.tags) and hidden.activation is keras.activations.relu


# -- training ----------------------------------------------------------------------------


def test_loss_is_the_mean_crf_nll_and_reaches_the_transitions(trained) -> None:
    model, x, y = trained
    fresh = build_tagger(TINY, VOCAB)
    assert np.abs(find_crf(model).get_weights()[0] - find_crf(fresh).get_weights()[0]).max() > 1e-3
    emissions = model.predict(x, verbose=0)
    want = -np.mean(
        keras.ops.convert_to_numpy(crf.log_likelihood(emissions, y, x["words"] != 0, *find_crf(model).get_weights()))
    )
    got = model.evaluate(x, y, batch_size=len(SENTENCES), verbose=0)
    assert got == pytest.approx(want, rel=1e-4)


def test_sample_weight_weights_each_sentence(trained) -> None:
    model, x, y = trained
    emissions = model.predict(x, verbose=0)
    nll = -keras.ops.convert_to_numpy(crf.log_likelihood(emissions, y, x["words"] != 0, *find_crf(model).get_weights()))
    weights = np.array([1.0, 0.0, 2.0, 0.0, 0.0], dtype="float32")
    loss = model.compute_loss(x=x, y=y, y_pred=emissions, sample_weight=weights, training=False)
    assert float(keras.ops.convert_to_numpy(loss)) == pytest.approx((nll[0] + 2 * nll[2]) / 5, rel=1e-4)


def test_word_dropout_only_in_training() -> None:
    layer = WordDropout(0.5, seed=1)
    ids = np.tile(np.array([[5, 6, 7, 8, 9, 10, 0, 0]], dtype="int32"), (200, 1))
    dropped = keras.ops.convert_to_numpy(layer(ids, training=True))
    real = ids != PAD_ID
    assert np.all(dropped[~real] == PAD_ID)
    changed = dropped[real] != ids[real]
    assert np.all(dropped[real][changed] == UNK_ID)
    assert 0.45 < changed.mean() < 0.55
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(ids, training=False)), ids)


# -- decoding ------------------------------------------------------------------------------


def test_decoder_runs_viterbi_on_the_emissions(trained) -> None:
    model, x, _ = trained
    decoder = build_decoder(model, all_marginals=True)
    out = decoder.predict(x, verbose=0)
    assert out["tag_ids"].dtype == np.int32 and out["tag_ids"].shape == x["words"].shape
    assert out["tag_marginals"].dtype == np.float32
    params = find_crf(model).get_weights()
    mask = x["words"] != 0
    want, _ = crf.viterbi_decode(model.predict(x, verbose=0), mask, *params)
    np.testing.assert_array_equal(out["tag_ids"], keras.ops.convert_to_numpy(want))
    np.testing.assert_allclose(out["marginals"].sum(-1), mask.astype("float32"), atol=1e-5)
    chosen = np.take_along_axis(out["marginals"], out["tag_ids"][..., None], axis=2)[..., 0]
    np.testing.assert_allclose(out["tag_marginals"], chosen, atol=1e-6)
    assert np.all(out["tag_marginals"][mask] > 0) and np.all(out["tag_marginals"][~mask] == 0)
    assert np.all(out["tag_ids"][~mask] == 0)


def test_batch_padding_does_not_change_predictions(trained) -> None:
    """Alone, in a batch, padded to 12 steps, or next to a long word: same tags and confidences."""
    model, _, _ = trained
    decoder = build_decoder(model)
    sentence = SENTENCES[1]
    alone = predict_tags(decoder, encode_inputs([sentence], VOCAB))
    others = [sentence, ["an", "Extraordinarilylongword", "here"], SENTENCES[0]]
    batched = predict_tags(decoder, encode_inputs(others, VOCAB, pad_to=12))
    n = len(sentence)
    np.testing.assert_array_equal(batched[0][0, :n], alone[0][0, :n])
    np.testing.assert_allclose(batched[1][0, :n], alone[1][0, :n], atol=1e-5)
    np.testing.assert_array_equal(batched[0][0, n:], 0)


def test_predict_tags_takes_a_training_model_and_extra_inputs() -> None:
    model = build_tagger(TaggerConfig.preset("seed", word_dim=8, lstm_units=(4,), forward_lstm_units=(4,)), VOCAB)
    inputs = encode_inputs(SENTENCES, VOCAB)  # chars and casing too: ignored
    tag_ids, marginals = predict_tags(model, inputs, batch_size=2)
    assert tag_ids.shape == marginals.shape == inputs["words"].shape
    assert list(select_inputs(model, inputs)) == ["words"]
    with pytest.raises(KeyError, match="needs inputs"):
        select_inputs(build_tagger(TINY, VOCAB), {"words": inputs["words"]})


def test_encode_sentences_follows_the_config() -> None:
    x, y = encode_sentences(TaggerConfig.preset("seed"), VOCAB, SENTENCES, TAGS, pad_to=8)
    assert list(x) == ["words"] and x["words"].shape == y.shape == (5, 8)
    x, y = encode_sentences(TINY.model_copy(update={"max_word_length": 3}), VOCAB, SENTENCES)
    assert sorted(x) == ["casing", "chars", "words"] and x["chars"].shape[2] == 3 and y is None


# -- saving ---------------------------------------------------------------------------------


def test_saved_model_loads_safely_and_predicts_the_same(trained, tmp_path: Path) -> None:
    model, x, y = trained
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    assert isinstance(loaded, CRFTagger)
    assert isinstance(load_tagger(path), CRFTagger)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    before = predict_tags(build_decoder(model), x)
    after = predict_tags(build_decoder(loaded), x)
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    # A saved decoder loads too.
    decoder_path = tmp_path / "decoder.keras"
    build_decoder(model).save(decoder_path)
    reloaded = predict_tags(keras.saving.load_model(decoder_path, safe_mode=True), x)
    np.testing.assert_array_equal(reloaded[0], before[0])
    np.testing.assert_array_equal(reloaded[1], before[1])
    # The loaded model trains on.
    loaded.compile(optimizer="adam")
    assert np.isfinite(loaded.fit(x, y, epochs=1, verbose=0).history["loss"][0])


# -- pretrained vectors ----------------------------------------------------------------------


def test_pretrained_vectors_are_an_input_not_a_weight(tmp_path: Path) -> None:
    from nerbatch.model.vectors import read_text_vectors

    lines = [f"{w.lower()} " + " ".join(["0.5"] * 7) for w in ("paris", "london", "berlin", "unseen")]
    path = tmp_path / "glove.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    vectors = read_text_vectors(path)
    config = TINY.model_copy(update={"vectors": str(path)})
    assert input_names(config) == ("words", "chars", "casing", "vectors")
    model = build_tagger(config, VOCAB, vectors)
    plain = build_tagger(TINY, VOCAB)
    # The table is not in the model (training updates none of its rows): the only extra
    # weights are the first BiLSTM's kernel rows for the D vector columns.
    extra = sum(int(np.prod(w.shape)) for w in model.weights) - sum(int(np.prod(w.shape)) for w in plain.weights)
    assert extra == 2 * 4 * TINY.lstm_units[0] * vectors.dim
    x, _ = encode_sentences(config, VOCAB, SENTENCES, vectors=vectors)
    assert x["vectors"].shape == (*x["words"].shape, 7)
    moved = {**x, "vectors": x["vectors"] * -3.0}
    assert not np.allclose(model.predict_on_batch(x), model.predict_on_batch(moved))
    # The width comes from the source when no table is given.
    assert build_tagger(config, VOCAB).input["vectors"].shape == (None, None, 7)
    # Training words may start their trainable embedding from their vector (first D columns).
    started = build_tagger(config.model_copy(update={"word_init_from_vectors": True}), VOCAB, vectors)
    (matrix,) = started.get_layer("word_embedding").get_weights()
    np.testing.assert_array_equal(matrix[VOCAB.word_id("Paris"), :7], 0.5)
    assert not np.allclose(matrix[VOCAB.word_id("Paris"), 7:], 0.5)
    assert not np.allclose(matrix[VOCAB.word_id("John"), :7], 0.5)  # not in the table: random as before


# -- mixed precision -----------------------------------------------------------------------


def test_mixed_precision_keeps_the_crf_in_float32() -> None:
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model, x, y = _train(TINY, epochs=1)
        assert model.get_layer("bilstm_0").compute_dtype == "float16"
        assert find_crf(model).compute_dtype == "float32"
        emissions = model.predict(x, verbose=0)
        assert emissions.dtype == np.float32
        tag_ids, marginals = predict_tags(build_decoder(model), x)
        want, _ = crf.viterbi_decode(emissions, x["words"] != 0, *find_crf(model).get_weights())
        np.testing.assert_array_equal(tag_ids, keras.ops.convert_to_numpy(want))
        assert marginals.dtype == np.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)
