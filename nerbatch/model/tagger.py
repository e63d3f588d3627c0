"""The BiLSTM-CRF tagger: configuration, model building, decoding.

Default architecture (``TaggerConfig.preset("default")``)::

    words   -> WordDropout -> Embedding (mask_zero) -----------.
    vectors (pretrained, frozen, looked up outside the model) --+
    chars   -> CharCNN (char embedding, Conv1D, masked max) ---+-> Concatenate -> Dropout
    casing  -> Embedding (small) -----------------------------'
        -> [Bidirectional(LSTM) -> Dropout] x n -> [LSTM] x m -> [Dense hidden]
        -> Dense(K) emissions -> CRF

Inputs are the dict of :mod:`nerbatch.model.features` (only the keys the
configuration uses, see :func:`input_names`). The training model
(:class:`CRFTagger`) outputs emissions float32 ``[B, T, K]`` and its loss is
the mean negative log-likelihood of the CRF, so ``model.compile(optimizer=...)``
and ``model.fit(inputs, tag_ids)`` train it on any backend. :func:`build_decoder`
wraps the same layers in an inference model that runs Viterbi and
forward-backward inside the compiled predict function.

LSTMs keep cuDNN's conditions (default activations, ``use_bias=True``,
``unroll=False``, ``recurrent_dropout=0``, right-padded masks), so the
TensorFlow backend runs them as one fused kernel on a GPU. ``recurrent_dropout``
is configurable but anything above 0 falls back to the generic, several times
slower kernel.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from nerbatch.model.backend import load_keras
from nerbatch.model.crf import CRF, CRFDecode
from nerbatch.model.features import DEFAULT_MAX_WORD_LENGTH, NUM_CASING_CLASSES, encode_batch
from nerbatch.model.vectors import WordVectors, load_vectors
from nerbatch.vocab import PAD_ID, UNK_ID, Vocabulary

keras = load_keras()  # not `import keras`: nerbatch starts the backend in one place
ops = keras.ops


class TaggerConfig(BaseModel):
    """Every hyper-parameter of the tagger's architecture and input features.

    Training hyper-parameters (optimiser, learning rate, batch size, epochs)
    belong to the training code, not here.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Words.
    word_dim: int = Field(100, ge=1)
    word_dropout: float = Field(0.05, ge=0.0, lt=1.0, description="chance a word id becomes <unk> in training")
    vectors: str | None = Field(
        None, description="pretrained vectors: a built-in source (glove-6b-50d) or a GloVe/word2vec/fastText text file"
    )
    word_init_from_vectors: bool = Field(
        False, description="start each training word's embedding from its pretrained vector (the first D columns)"
    )
    # Characters.
    use_chars: bool = True
    char_dim: int = Field(30, ge=1)
    char_filters: int = Field(50, ge=1)
    char_kernel_size: int = Field(3, ge=1)
    char_activation: str = "tanh"
    max_word_length: int = Field(DEFAULT_MAX_WORD_LENGTH, ge=1, description="characters of a word the CNN sees")
    # Casing.
    use_casing: bool = True
    casing_dim: int = Field(8, ge=1)
    # Sequence encoder.
    embedding_dropout: float = Field(0.5, ge=0.0, lt=1.0)
    lstm_units: tuple[int, ...] = Field((100,), description="one bidirectional LSTM a value; units per direction")
    lstm_dropout: float = Field(0.5, ge=0.0, lt=1.0, description="dropout on each BiLSTM's output")
    forward_lstm_units: tuple[int, ...] = Field((), description="unidirectional LSTMs stacked after the BiLSTMs")
    recurrent_dropout: float = Field(0.0, ge=0.0, lt=1.0, description="above 0 disables the cuDNN kernel")
    hidden_units: int | Literal["num_tags"] | None = Field(None, description="a Dense layer before the emissions")
    hidden_activation: str = "relu"
    # Reproducibility of word dropout.
    seed: int = 0

    @model_validator(mode="after")
    def _check(self) -> TaggerConfig:
        if not self.lstm_units and not self.forward_lstm_units:
            raise ValueError("at least one LSTM layer is needed")
        if any(u < 1 for u in (*self.lstm_units, *self.forward_lstm_units)):
            raise ValueError("LSTM units must be positive")
        if isinstance(self.hidden_units, int) and self.hidden_units < 1:
            raise ValueError("hidden_units must be positive")
        return self

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> TaggerConfig:
        """A named configuration with some fields overridden.

        ``default``: word embedding (50, started from GloVe) + GloVe 6B 50d
        vectors (frozen) + char-CNN + casing embeddings, one BiLSTM(100),
        CRF, word dropout 0.2.

        ``seed``: the seed tutorial's network: word embedding 150 (no chars,
        no casing), Bidirectional(LSTM(150)), LSTM(300),
        TimeDistributed(Dense(n_tags, relu)), CRF. keras-contrib's CRF
        projected its input to the tag scores itself, which the emissions
        Dense layer does here. The tutorial's ``recurrent_dropout=0.2`` is
        left out (0.0) because it disables the cuDNN kernel; pass
        ``recurrent_dropout=0.2`` to restore it.

        ``tiny``: the default architecture at toy sizes, for tests and smoke runs.
        """
        presets = {
            # Chosen on GMB validation F1: word dropout 0.2 (rare words lean on their characters and
            # vectors); a trainable embedding as wide as the vectors and started from them (0.8337,
            # seed 42) beat a random 100-wide one beside them (0.8204). README: "Pretrained word vectors".
            "default": {"word_dropout": 0.2, "vectors": "glove-6b-50d", "word_dim": 50, "word_init_from_vectors": True},
            "seed": {
                "word_dim": 150,
                "word_dropout": 0.0,
                "use_chars": False,
                "use_casing": False,
                "embedding_dropout": 0.0,
                "lstm_units": (150,),
                "lstm_dropout": 0.0,
                "forward_lstm_units": (300,),
                "hidden_units": "num_tags",
                "hidden_activation": "relu",
            },
            "tiny": {
                "word_dim": 16,
                "char_dim": 8,
                "char_filters": 16,
                "casing_dim": 4,
                "lstm_units": (16,),
                "embedding_dropout": 0.1,
                "lstm_dropout": 0.1,
            },
        }
        if name not in presets:
            raise ValueError(f"unknown preset {name!r}; known: {sorted(presets)}")
        return cls(**{**presets[name], **overrides})


def input_names(config: TaggerConfig) -> tuple[str, ...]:
    """The input keys a model built from ``config`` takes, in the order of ``features.INPUT_NAMES``."""
    return (
        ("words",)
        + (("chars",) if config.use_chars else ())
        + (("casing",) if config.use_casing else ())
        + (("vectors",) if config.vectors else ())
    )


# -- layers -----------------------------------------------------------------------------


@keras.saving.register_keras_serializable(package="nerbatch")
class WordDropout(keras.layers.Layer):
    """Replaces word ids by the unknown id at random, in training only.

    Teaches the model to tag from characters and context when a word is
    unknown, as it will be for rare words at inference. Padding is never touched.

    Args:
        rate: chance that each word id is replaced.
        unknown_id: the id put in its place.
        seed: seeds the layer's ``keras.random.SeedGenerator``.

    Call args:
        word_ids: int ``[B, T]``. Returns int ``[B, T]``.
    """

    def __init__(self, rate: float, unknown_id: int = UNK_ID, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"rate must be in [0, 1), got {rate}")
        self.rate = float(rate)
        self.unknown_id = int(unknown_id)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, word_ids: Any, training: bool | None = None) -> Any:
        if not training or self.rate == 0.0:
            return word_ids
        draw = keras.random.uniform(ops.shape(word_ids), seed=self.seed_generator)
        drop = ops.logical_and(draw < self.rate, ops.not_equal(word_ids, PAD_ID))
        return ops.where(drop, ops.full_like(word_ids, self.unknown_id), word_ids)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "unknown_id": self.unknown_id, "seed": self.seed}


@keras.saving.register_keras_serializable(package="nerbatch")
class CharCNN(keras.layers.Layer):
    """Word features from characters: embedding, 1-D convolution, max over the word.

    Padding characters contribute zeros to the convolution and are left out of
    the max, so a word's features do not depend on how far the batch pads
    words; a padding token (no characters) gets zeros.

    Args:
        num_chars: size of the character vocabulary.
        char_dim: character embedding size.
        filters: convolution filters = output features.
        kernel_size: characters each filter sees.
        activation: of the convolution.

    Call args:
        chars: int ``[B, T, C]`` character ids (0 = padding).
        Returns float ``[B, T, filters]``.
    """

    def __init__(
        self,
        num_chars: int,
        char_dim: int,
        filters: int,
        kernel_size: int,
        activation: str = "tanh",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.num_chars = int(num_chars)
        self.char_dim = int(char_dim)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.activation = activation
        # Sub-layers take this layer's dtype policy: on loading, the global policy may
        # differ from the one the model was trained under (mixed precision).
        self.embedding = keras.layers.Embedding(
            self.num_chars, self.char_dim, dtype=self.dtype_policy, name="char_embedding"
        )
        self.conv = keras.layers.Conv1D(
            self.filters, self.kernel_size, padding="same", activation=activation, dtype=self.dtype_policy,
            name="char_conv",
        )

    def build(self, input_shape: tuple) -> None:
        self.embedding.build((None, None))
        self.conv.build((None, None, self.char_dim))

    def call(self, chars: Any) -> Any:
        batch, steps, width = ops.shape(chars)[0], ops.shape(chars)[1], ops.shape(chars)[2]
        flat = ops.reshape(chars, (-1, width))  # [B*T, C]
        valid = ops.not_equal(flat, PAD_ID)
        embedded = self.embedding(flat) * ops.cast(valid, self.compute_dtype)[:, :, None]
        features = self.conv(embedded)  # [B*T, C, F]
        features = ops.where(valid[:, :, None], features, ops.full_like(features, -1e4))
        pooled = ops.max(features, axis=1)
        pooled = ops.where(ops.any(valid, axis=1)[:, None], pooled, ops.zeros_like(pooled))
        return ops.reshape(pooled, (batch, steps, self.filters))

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (input_shape[0], input_shape[1], self.filters)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "num_chars": self.num_chars,
            "char_dim": self.char_dim,
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "activation": self.activation,
        }


@keras.saving.register_keras_serializable(package="nerbatch")
class PaddingMask(keras.layers.Layer):
    """bool ``[B, T]``: True where the word id is not padding.

    The mask the LSTMs and the CRF get is made from the word ids explicitly,
    the same rule the loss uses, rather than left to Keras' implicit mask
    propagation, which a layer without mask support would silently drop.
    """

    def call(self, word_ids: Any) -> Any:
        return ops.not_equal(word_ids, PAD_ID)

    def compute_output_spec(self, word_ids: Any) -> Any:
        return keras.KerasTensor(word_ids.shape, dtype="bool")


@keras.saving.register_keras_serializable(package="nerbatch")
class CRFTagger(keras.Model):
    """A functional model whose outputs are CRF emissions and whose loss is the CRF's.

    Built by :func:`build_tagger`; ``compile(optimizer=...)`` needs no loss: any
    ``loss`` given to ``compile`` is ignored. ``fit(inputs, tag_ids)`` with
    ``tag_ids`` int ``[B, T]``; an optional ``sample_weight`` is per sentence, ``[B]``.
    """

    def crf_layer(self) -> CRF:
        return find_crf(self)

    def compute_loss(
        self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None, training: bool = True
    ) -> Any:
        """Mean over the batch of the CRF negative log-likelihood of ``y``, plus layer losses."""
        mask = ops.not_equal(x["words"], PAD_ID)
        nll = self.crf_layer().negative_log_likelihood(y_pred, y, mask)  # [B]
        if sample_weight is not None:
            nll = nll * ops.reshape(ops.cast(sample_weight, nll.dtype), (-1,))
        loss = ops.mean(nll)
        if self.losses:
            loss = loss + ops.sum(ops.stack([ops.cast(extra, loss.dtype) for extra in self.losses]))
        return loss


def without_training_state(model: CRFTagger) -> CRFTagger:
    """An uncompiled copy of ``model``: the same layers and weights, no optimizer.

    What a bundle saves: a compiled model's ``.keras`` file also holds the
    optimizer's state (Adam's two moments per weight, 2/3 of the file), which
    tagging never reads.
    """
    copy = CRFTagger.from_config(model.get_config())
    copy.set_weights(model.get_weights())
    return copy


def find_crf(model: keras.Model) -> CRF:
    """The model's single :class:`CRF` layer."""
    found = [layer for layer in model.layers if isinstance(layer, CRF)]
    if len(found) != 1:
        raise ValueError(f"expected one CRF layer in {model.name}, found {len(found)}")
    return found[0]


# -- building ----------------------------------------------------------------------------


def _lstm(units: int, config: TaggerConfig, name: str) -> keras.layers.LSTM:
    # Keep the cuDNN conditions: default activations, use_bias, no unroll.
    return keras.layers.LSTM(units, return_sequences=True, recurrent_dropout=config.recurrent_dropout, name=name)


def build_tagger(
    config: TaggerConfig,
    vocab: Vocabulary,
    vectors: WordVectors | None = None,
    *,
    name: str = "tagger",
) -> CRFTagger:
    """Build the (untrained) training model.

    Args:
        config: the hyper-parameters.
        vocab: word, character and tag ids (K = ``len(vocab.tags)``).
        vectors: the pretrained vector table when ``config.vectors`` is set
            (loaded from that source when not given); only its width D
            shapes the model, the table itself stays outside it.

    Returns:
        A :class:`CRFTagger` taking ``{name: array for name in input_names(config)}``
        (``words`` int32 ``[B, T]``, ``chars`` int32 ``[B, T, C]``, ``casing``
        int32 ``[B, T]``, ``vectors`` float32 ``[B, T, D]``) and returning
        emissions float32 ``[B, T, K]``.
    """
    num_tags = len(vocab.tags)
    if num_tags < 1:
        raise ValueError("the vocabulary has no tags")
    inputs = {"words": keras.Input(shape=(None,), dtype="int32", name="words")}
    if config.use_chars:
        inputs["chars"] = keras.Input(shape=(None, None), dtype="int32", name="chars")
    if config.use_casing:
        inputs["casing"] = keras.Input(shape=(None,), dtype="int32", name="casing")
    if config.vectors:
        vectors = vectors if vectors is not None else load_vectors(config.vectors)
        inputs["vectors"] = keras.Input(shape=(None, vectors.dim), dtype="float32", name="vectors")
    mask = PaddingMask(name="padding_mask")(inputs["words"])

    word_ids = inputs["words"]
    if config.word_dropout > 0:
        word_ids = WordDropout(config.word_dropout, seed=config.seed, name="word_dropout")(word_ids)
    word_embedding = keras.layers.Embedding(len(vocab.words), config.word_dim, mask_zero=True, name="word_embedding")
    features = [word_embedding(word_ids)]
    if config.vectors:
        features.append(inputs["vectors"])
    if config.use_chars:
        char_cnn = CharCNN(
            len(vocab.chars),
            config.char_dim,
            config.char_filters,
            config.char_kernel_size,
            config.char_activation,
            name="char_cnn",
        )
        features.append(char_cnn(inputs["chars"]))
    if config.use_casing:
        features.append(
            keras.layers.Embedding(NUM_CASING_CLASSES, config.casing_dim, name="casing_embedding")(inputs["casing"])
        )
    x = features[0] if len(features) == 1 else keras.layers.Concatenate(name="token_features")(features)
    if config.embedding_dropout > 0:
        x = keras.layers.Dropout(config.embedding_dropout, name="embedding_dropout")(x)

    for n, units in enumerate(config.lstm_units):
        x = keras.layers.Bidirectional(_lstm(units, config, f"lstm_{n}"), name=f"bilstm_{n}")(x, mask=mask)
        if config.lstm_dropout > 0:
            x = keras.layers.Dropout(config.lstm_dropout, name=f"bilstm_{n}_dropout")(x)
    for n, units in enumerate(config.forward_lstm_units):
        x = _lstm(units, config, f"forward_lstm_{n}")(x, mask=mask)
    if config.hidden_units is not None:
        hidden = num_tags if config.hidden_units == "num_tags" else config.hidden_units
        x = keras.layers.Dense(hidden, activation=config.hidden_activation, name="hidden")(x)
    emissions = keras.layers.Dense(num_tags, name="emissions")(x)
    outputs = CRF(num_tags, name="crf")(emissions, mask=mask)
    model = CRFTagger(inputs=inputs, outputs=outputs, name=name)
    if config.vectors and config.word_init_from_vectors:
        _init_from_vectors(word_embedding, vocab, vectors)
    return model


def _init_from_vectors(embedding: keras.layers.Embedding, vocab: Vocabulary, vectors: WordVectors) -> None:
    """Start each training word's trainable embedding from its pretrained vector (the first D columns)."""
    (matrix,) = embedding.get_weights()
    dim = min(vectors.dim, matrix.shape[1])
    rows = vectors.rows(vocab.words[2:])
    known = np.flatnonzero(rows) + 2
    matrix[known, :dim] = vectors.matrix[rows[rows > 0], :dim]
    embedding.set_weights([matrix])


def encode_sentences(
    config: TaggerConfig,
    vocab: Vocabulary,
    sentences: Sequence[Sequence[str]],
    tags: Sequence[Sequence[str]] | None = None,
    *,
    pad_to: int | None = None,
    vectors: WordVectors | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """:func:`nerbatch.model.features.encode_batch` with the inputs and
    ``max_word_length`` of ``config``: ``(inputs, tag_ids or None)``."""
    return encode_batch(
        sentences,
        vocab,
        tags,
        max_word_length=config.max_word_length,
        pad_to=pad_to,
        include=input_names(config),
        vectors=vectors,
    )


def load_tagger(path: str | Path) -> CRFTagger:
    """Load a saved training model with ``safe_mode=True`` (no code in the file is run).

    Importing this module registers the custom layers the file names, which
    ``keras.saving.load_model`` needs; this function makes sure of it.
    """
    model = keras.saving.load_model(path, safe_mode=True)
    if not isinstance(model, CRFTagger):
        raise TypeError(f"{path} holds a {type(model).__name__}, not a CRFTagger")
    return model


# -- inference ---------------------------------------------------------------------------


def build_decoder(model: keras.Model, *, all_marginals: bool = False) -> keras.Model:
    """The inference model: same inputs, Viterbi path and confidences out.

    Shares the layers (and weights) of ``model``. Dropout and word dropout are
    off at inference, and Viterbi and forward-backward run inside the
    backend's compiled predict function.

    Returns:
        A model returning ``{"tag_ids": int32 [B, T], "tag_marginals": float32
        [B, T]}``: the best path (0 at padding) and the marginal probability of
        each chosen tag (0 at padding); with ``all_marginals`` also
        ``"marginals": float32 [B, T, K]``.
    """
    mask = PaddingMask(name="decoder_padding_mask")(model.input["words"])
    decoded = CRFDecode(find_crf(model), name="crf_decode")(model.output, mask=mask)
    keys = ("tag_ids", "tag_marginals") + (("marginals",) if all_marginals else ())
    return keras.Model(model.input, {k: decoded[k] for k in keys}, name=f"{model.name}_decoder")


def is_decoder(model: keras.Model) -> bool:
    return isinstance(model.output, dict) and "tag_ids" in model.output


def select_inputs(model: keras.Model, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The entries of ``inputs`` that ``model`` declares (Keras rejects extra keys)."""
    missing = [k for k in model.input if k not in inputs]
    if missing:
        raise KeyError(f"{model.name} needs inputs {missing}")
    return {k: inputs[k] for k in model.input}


def predict_tags(
    model: keras.Model, inputs: dict[str, np.ndarray], *, batch_size: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Decode a batch: ``(tag_ids int32 [B, T], tag_marginals float32 [B, T])``.

    ``model`` is a decoder from :func:`build_decoder` or a training model (a
    decoder is then built on each call: build one once for repeated use).
    Extra keys in ``inputs`` are ignored.
    """
    decoder = model if is_decoder(model) else build_decoder(model)
    x = select_inputs(decoder, inputs)
    if len(x["words"]) <= batch_size:
        out = decoder.predict_on_batch(x)
    else:
        out = decoder.predict(x, batch_size=batch_size, verbose=0)
    return np.asarray(out["tag_ids"], dtype=np.int32), np.asarray(out["tag_marginals"], dtype=np.float32)
