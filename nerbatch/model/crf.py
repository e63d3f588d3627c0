"""A linear-chain conditional random field written with ``keras.ops`` only.

Shapes used throughout: ``B`` batch, ``T`` time steps (padded length), ``K``
number of tags.

Masks are boolean ``[B, T]`` and *right-padded*: each row is some ones followed
by zeros (a row of zeros is an empty sequence). Every recursion runs over all
``T`` steps and a masked step carries its state through unchanged, so padding
never changes a result, whatever the padded steps' emissions hold. Scanning all
``T`` steps (rather than ``T - 1`` after a separate first step) also keeps every
scan non-empty, which the PyTorch backend's ``ops.scan`` requires.

The functions at module level are pure: they take the parameters
(``transitions [K, K]``, ``start [K]``, ``end [K]``) as arguments, so tests and
other code can call them without a layer. :class:`CRF` holds the parameters
and forwards to them.

Score of a tag path ``y`` of length ``n``::

    start[y_0] + sum_t emissions[t, y_t] + sum_{t>0} transitions[y_{t-1}, y_t] + end[y_{n-1}]
"""

from __future__ import annotations

from typing import Any

from nerbatch.model.backend import load_keras

keras = load_keras()  # not `import keras`: nerbatch starts the backend in one place
ops = keras.ops

#: Stand-in for -inf in max/argmax recursions: finite, so no inf - inf = nan.
_NEG_LARGE = -1e9


def _prepare(emissions: Any, mask: Any | None) -> tuple[Any, Any]:
    """Cast emissions to float32, build a mask if none, zero padded emissions.

    Zeroing padded steps keeps NaN/inf garbage there out of the arithmetic
    (``where`` would otherwise pass NaN gradients back through them).

    Returns ``emissions`` float32 ``[B, T, K]`` and ``mask`` bool ``[B, T]``.
    """
    emissions = ops.cast(emissions, "float32")
    if mask is None:
        mask = ops.ones(ops.shape(emissions)[:2], dtype="bool")
    mask = ops.cast(mask, "bool")
    emissions = ops.where(mask[:, :, None], emissions, ops.zeros_like(emissions))
    return emissions, mask


def _num_tags(emissions: Any) -> int:
    """K, which must be known when the graph is built (the scans slice by it)."""
    num_tags = emissions.shape[-1]
    if num_tags is None:
        raise ValueError("the number of tags (last axis of emissions) must be static")
    return int(num_tags)


def _time_major(x: Any) -> Any:
    """``[B, T, ...]`` -> ``[T, B, ...]`` (``ops.scan`` iterates over axis 0)."""
    perm = [1, 0] + list(range(2, len(x.shape)))
    return ops.transpose(x, perm)


def _batch_major(x: Any) -> Any:
    """``[T, B, ...]`` -> ``[B, T, ...]``."""
    return _time_major(x)


def _scan_inputs(emissions: Any, mask: Any) -> Any:
    """Per-step scan inputs packed in one float32 tensor ``[T, B, K + 2]``.

    Channels: the K emissions, then the step's validity (1/0), then 1 at step 0
    only (where ``start`` replaces a transition). One tensor rather than a
    tuple because Keras 3.15's TensorFlow ``scan`` fails on several ``xs``
    when the time dimension is unknown (as it is in a retraced predict function).
    """
    steps = ops.arange(ops.shape(emissions)[1], dtype="int32")
    first = ops.cast(ops.equal(steps, 0), "float32")[None, :, None]  # [1, T, 1]
    packed = ops.concatenate(
        [
            emissions,
            ops.cast(mask, "float32")[:, :, None],
            ops.broadcast_to(first, ops.shape(emissions[:, :, :1])),
        ],
        axis=2,
    )
    return _time_major(packed)


def _unpack_step(x: Any, num_tags: int) -> tuple[Any, Any, Any]:
    """One step of :func:`_scan_inputs`: emission ``[B, K]``, valid ``[B]``, first (``[B]``, all equal)."""
    return x[:, :num_tags], x[:, num_tags] > 0.5, x[:, num_tags + 1] > 0.5


def sequence_lengths(mask: Any) -> Any:
    """int32 ``[B]``: number of valid steps of each row of a ``[B, T]`` mask."""
    return ops.sum(ops.cast(mask, "int32"), axis=1)


def forward_scores(emissions: Any, mask: Any | None, transitions: Any, start: Any) -> Any:
    """Forward (alpha) log-scores of every prefix.

    ``alpha[b, t, j]`` is the log-sum of the scores of all paths over the valid
    steps ``0..t`` of row ``b`` that end in tag ``j`` (``end`` not included).
    At a padded step the previous alpha is carried through.

    Args:
        emissions: float ``[B, T, K]``.
        mask: bool ``[B, T]`` or None (all valid).
        transitions: float ``[K, K]``, ``transitions[i, j]`` scores ``i -> j``.
        start: float ``[K]``.

    Returns:
        float32 ``[B, T, K]``.
    """
    emissions, mask = _prepare(emissions, mask)
    transitions = ops.cast(transitions, "float32")
    start = ops.cast(start, "float32")
    num_tags = _num_tags(emissions)

    def step(alpha: Any, x: Any) -> tuple[Any, Any]:
        emission, valid, first = _unpack_step(x, num_tags)
        # [B, K, 1] + [K, K] -> logsumexp over the previous tag i.
        moved = ops.logsumexp(alpha[:, :, None] + transitions[None, :, :], axis=1)
        candidate = ops.where(first[:, None], start[None, :], moved) + emission
        alpha = ops.where(valid[:, None], candidate, alpha)
        return alpha, alpha

    init = ops.zeros_like(emissions[:, 0, :])
    _, alphas = ops.scan(step, init, _scan_inputs(emissions, mask))
    return _batch_major(alphas)


def backward_scores(emissions: Any, mask: Any | None, transitions: Any, end: Any) -> Any:
    """Backward (beta) log-scores of every suffix.

    ``beta[b, t, i]`` is the log-sum of the scores of all continuations of a
    path that is in tag ``i`` at step ``t``: the steps after ``t`` and ``end``.
    At and after the last valid step ``beta = end``.

    Args:
        emissions: float ``[B, T, K]``.
        mask: bool ``[B, T]`` or None (all valid).
        transitions: float ``[K, K]``.
        end: float ``[K]``.

    Returns:
        float32 ``[B, T, K]``.
    """
    emissions, mask = _prepare(emissions, mask)
    transitions = ops.cast(transitions, "float32")
    end = ops.cast(end, "float32")
    # Step t needs the emission and mask of step t + 1; past the end, nothing.
    next_emissions = ops.concatenate([emissions[:, 1:, :], ops.zeros_like(emissions[:, :1, :])], axis=1)
    next_valid = ops.concatenate([mask[:, 1:], ops.zeros_like(mask[:, :1])], axis=1)
    num_tags = _num_tags(emissions)

    def step(beta: Any, x: Any) -> tuple[Any, Any]:
        emission, valid, _ = _unpack_step(x, num_tags)  # of step t + 1
        # transitions[i, j] + emission[j] + beta[j], logsumexp over next tag j.
        moved = ops.logsumexp(transitions[None, :, :] + (emission + beta)[:, None, :], axis=2)
        beta = ops.where(valid[:, None], moved, beta)
        return beta, beta

    init = ops.broadcast_to(end[None, :], ops.shape(emissions[:, 0, :]))
    _, betas = ops.scan(step, init, _scan_inputs(next_emissions, next_valid), reverse=True)
    return _batch_major(betas)


def log_partition(emissions: Any, mask: Any | None, transitions: Any, start: Any, end: Any) -> Any:
    """Log of the sum of the scores of all tag paths (log Z).

    Args:
        emissions: float ``[B, T, K]``.
        mask: bool ``[B, T]`` (right-padded) or None.
        transitions: float ``[K, K]``; start, end: float ``[K]``.

    Returns:
        float32 ``[B]``; 0 for an empty row.
    """
    emissions, mask = _prepare(emissions, mask)
    return _log_partition_from_alphas(forward_scores(emissions, mask, transitions, start), mask, end)


def _log_partition_from_alphas(alphas: Any, mask: Any, end: Any) -> Any:
    """float32 ``[B]`` log Z from forward scores ``[B, T, K]``; 0 for an empty row."""
    # A masked step carries alpha, so the last step holds the last valid one.
    log_z = ops.logsumexp(alphas[:, -1, :] + ops.cast(end, "float32")[None, :], axis=1)
    return ops.where(sequence_lengths(mask) > 0, log_z, ops.zeros_like(log_z))


def path_score(emissions: Any, tags: Any, mask: Any | None, transitions: Any, start: Any, end: Any) -> Any:
    """Score of the given tag path of each row.

    Args:
        emissions: float ``[B, T, K]``.
        tags: int ``[B, T]``; values at padded steps are ignored.
        mask: bool ``[B, T]`` (right-padded) or None.
        transitions: float ``[K, K]``; start, end: float ``[K]``.

    Returns:
        float32 ``[B]``; 0 for an empty row.
    """
    emissions, mask = _prepare(emissions, mask)
    transitions = ops.cast(transitions, "float32")
    num_tags = _num_tags(emissions)
    valid = ops.cast(mask, "float32")
    # Padded steps may hold any value (-100, say); index them as tag 0.
    tags = ops.where(mask, ops.cast(tags, "int32"), ops.zeros_like(tags, dtype="int32"))

    unary = ops.take_along_axis(emissions, tags[:, :, None], axis=2)[:, :, 0]
    score = ops.sum(unary * valid, axis=1)

    pair_index = tags[:, :-1] * num_tags + tags[:, 1:]
    pair = ops.take(ops.reshape(transitions, (-1,)), pair_index)
    # Right padding: step t valid implies step t - 1 valid.
    score = score + ops.sum(pair * valid[:, 1:], axis=1)

    lengths = sequence_lengths(mask)
    score = score + ops.take(ops.cast(start, "float32"), tags[:, 0]) * valid[:, 0]
    last = ops.take_along_axis(tags, ops.maximum(lengths - 1, 0)[:, None], axis=1)[:, 0]
    score = score + ops.take(ops.cast(end, "float32"), last) * valid[:, 0]
    return score


def log_likelihood(emissions: Any, tags: Any, mask: Any | None, transitions: Any, start: Any, end: Any) -> Any:
    """Log-probability of ``tags`` under the CRF: ``path_score - log_partition``.

    Args:
        emissions: float ``[B, T, K]``.
        tags: int ``[B, T]``.
        mask: bool ``[B, T]`` (right-padded) or None.
        transitions: float ``[K, K]``; start, end: float ``[K]``.

    Returns:
        float32 ``[B]`` (<= 0; 0 for an empty row).
    """
    return path_score(emissions, tags, mask, transitions, start, end) - log_partition(
        emissions, mask, transitions, start, end
    )


def marginals(emissions: Any, mask: Any | None, transitions: Any, start: Any, end: Any) -> Any:
    """Per-step tag marginals ``P(y_t = k | x)`` by forward-backward.

    Args:
        emissions: float ``[B, T, K]``.
        mask: bool ``[B, T]`` (right-padded) or None.
        transitions: float ``[K, K]``; start, end: float ``[K]``.

    Returns:
        float32 ``[B, T, K]``: rows sum to 1 at valid steps, 0 at padded ones.
    """
    emissions, mask = _prepare(emissions, mask)
    alphas = forward_scores(emissions, mask, transitions, start)
    betas = backward_scores(emissions, mask, transitions, end)
    log_z = _log_partition_from_alphas(alphas, mask, end)
    # alpha + beta - log Z rounds in float32 (by ~1e-4 when scores are large),
    # which can lift a near-certain marginal above 1.
    probs = ops.clip(ops.exp(alphas + betas - log_z[:, None, None]), 0.0, 1.0)
    return ops.where(mask[:, :, None], probs, ops.zeros_like(probs))


def viterbi_decode(emissions: Any, mask: Any | None, transitions: Any, start: Any, end: Any) -> tuple[Any, Any]:
    """Best tag path of each row.

    Args:
        emissions: float ``[B, T, K]``.
        mask: bool ``[B, T]`` (right-padded) or None.
        transitions: float ``[K, K]``; start, end: float ``[K]``.

    Returns:
        ``(tags, score)``: int32 ``[B, T]`` (0 at padded steps) and the best
        path's score, float32 ``[B]`` (0 for an empty row).
    """
    emissions, mask = _prepare(emissions, mask)
    transitions = ops.cast(transitions, "float32")
    start = ops.cast(start, "float32")
    end = ops.cast(end, "float32")
    num_tags = _num_tags(emissions)
    batch_tags = ops.shape(emissions[:, 0, :])
    # Backpointer of a step that does not move: each tag points to itself.
    stay = ops.broadcast_to(ops.arange(num_tags, dtype="int32")[None, :], batch_tags)

    def forward(carry: tuple[Any, Any], x: Any) -> tuple[Any, Any]:
        score, _ = carry
        emission, valid, first = _unpack_step(x, num_tags)
        candidates = score[:, :, None] + transitions[None, :, :]  # [B, K(prev), K(next)]
        moved = ops.where(first[:, None], start[None, :], ops.max(candidates, axis=1)) + emission
        pointer = ops.where(first[:, None], stay, ops.cast(ops.argmax(candidates, axis=1), "int32"))
        score = ops.where(valid[:, None], moved, score)
        pointer = ops.where(valid[:, None], pointer, stay)
        # The TensorFlow backend's scan needs outputs shaped like the carry.
        return (score, pointer), (score, pointer)

    init = (ops.full(batch_tags, _NEG_LARGE, dtype="float32"), stay)
    (score, _), (_, pointers) = ops.scan(forward, init, _scan_inputs(emissions, mask))

    final = score + end[None, :]
    last_tag = ops.cast(ops.argmax(final, axis=1), "int32")
    best = ops.max(final, axis=1)

    def backtrack(tag: Any, pointer: Any) -> tuple[Any, Any]:
        previous = ops.take_along_axis(pointer, tag[:, None], axis=1)[:, 0]
        return previous, tag

    _, path = ops.scan(backtrack, last_tag, pointers, reverse=True)
    tags = ops.where(mask, _batch_major(path), ops.zeros_like(mask, dtype="int32"))
    non_empty = sequence_lengths(mask) > 0
    return tags, ops.where(non_empty, best, ops.zeros_like(best))


@keras.saving.register_keras_serializable(package="nerbatch")
class CRF(keras.layers.Layer):
    """Linear-chain CRF over per-token tag scores (emissions).

    The layer owns ``transitions [K, K]``, ``start_transitions [K]`` and
    ``end_transitions [K]``. Its call returns the emissions unchanged, so a
    training model outputs them and its loss calls
    :meth:`negative_log_likelihood`; :class:`CRFDecode` decodes with the same
    parameters at inference.

    Args:
        num_tags: K.
        transitions_initializer: initialiser of the three parameter tensors.
        transitions_regularizer: optional regulariser of ``transitions``.

    Call args:
        emissions: float ``[B, T, K]``. Returned as they are; the mask passes through.
    """

    def __init__(
        self,
        num_tags: int,
        transitions_initializer: Any = "zeros",
        transitions_regularizer: Any = None,
        **kwargs: Any,
    ) -> None:
        # float32 even under a mixed-precision policy: the recursions sum many
        # log-scores, and float16 would round the transitions (as Keras
        # recommends for a softmax output layer).
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if num_tags < 1:
            raise ValueError(f"num_tags must be positive, got {num_tags}")
        self.num_tags = int(num_tags)
        self.transitions_initializer = keras.initializers.get(transitions_initializer)
        self.transitions_regularizer = keras.regularizers.get(transitions_regularizer)
        self.supports_masking = True

    def build(self, input_shape: tuple) -> None:
        if input_shape[-1] is not None and input_shape[-1] != self.num_tags:
            raise ValueError(f"CRF expects {self.num_tags} scores per token, got input shape {input_shape}")
        k = self.num_tags
        self.transitions = self.add_weight(
            name="transitions",
            shape=(k, k),
            initializer=self.transitions_initializer,
            regularizer=self.transitions_regularizer,
        )
        self.start_transitions = self.add_weight(
            name="start_transitions", shape=(k,), initializer=self.transitions_initializer
        )
        self.end_transitions = self.add_weight(
            name="end_transitions", shape=(k,), initializer=self.transitions_initializer
        )

    def call(self, emissions: Any, mask: Any | None = None) -> Any:
        return emissions

    def compute_mask(self, inputs: Any, mask: Any | None = None) -> Any:
        return mask

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return input_shape

    # -- the CRF computations with this layer's parameters -------------------------
    def parameters(self) -> tuple[Any, Any, Any]:
        """``(transitions [K, K], start [K], end [K])``."""
        return self.transitions, self.start_transitions, self.end_transitions

    def negative_log_likelihood(self, emissions: Any, tags: Any, mask: Any | None = None) -> Any:
        """float32 ``[B]``: ``-log P(tags | emissions)`` of each row (a loss).

        emissions float ``[B, T, K]``, tags int ``[B, T]``, mask bool ``[B, T]``.
        """
        return -log_likelihood(emissions, tags, mask, *self.parameters())

    def viterbi_decode(self, emissions: Any, mask: Any | None = None) -> Any:
        """int32 ``[B, T]``: the best tag path (0 at padded steps)."""
        tags, _ = viterbi_decode(emissions, mask, *self.parameters())
        return tags

    def marginals(self, emissions: Any, mask: Any | None = None) -> Any:
        """float32 ``[B, T, K]``: per-step tag marginals (0 at padded steps)."""
        return marginals(emissions, mask, *self.parameters())

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            {
                "num_tags": self.num_tags,
                "transitions_initializer": keras.initializers.serialize(self.transitions_initializer),
                "transitions_regularizer": keras.regularizers.serialize(self.transitions_regularizer),
            }
        )
        return config


@keras.saving.register_keras_serializable(package="nerbatch")
class CRFDecode(keras.layers.Layer):
    """Viterbi path and marginals, with the parameters of a :class:`CRF` layer.

    A layer of its own because Keras graphs cannot call one layer twice with
    different output structures; it holds the CRF as a sublayer, so the
    parameters are the same variables, not copies.

    Args:
        crf: the trained CRF layer (or its serialised config when loading).

    Call args:
        emissions: float ``[B, T, K]``.
        mask: bool ``[B, T]``, right-padded; the Keras mask when not given;
            None means every step is valid.

    Returns:
        ``{"tag_ids": int32 [B, T], "tag_marginals": float32 [B, T],
        "marginals": float32 [B, T, K]}``: the Viterbi path, the marginal
        probability of each chosen tag, and all marginals; 0 at padded steps.
    """

    def __init__(self, crf: CRF | dict, **kwargs: Any) -> None:
        kwargs.setdefault("dtype", "float32")  # as for CRF
        super().__init__(**kwargs)
        self.crf = crf if isinstance(crf, CRF) else keras.layers.deserialize(crf)

    def build(self, input_shape: tuple) -> None:
        if not self.crf.built:
            self.crf.build(input_shape)

    def call(self, emissions: Any, mask: Any | None = None) -> dict[str, Any]:
        tag_ids = self.crf.viterbi_decode(emissions, mask)
        probs = self.crf.marginals(emissions, mask)
        # probs is 0 at padded steps, so the chosen marginal is too.
        chosen = ops.take_along_axis(probs, tag_ids[:, :, None], axis=2)[:, :, 0]
        return {"tag_ids": tag_ids, "tag_marginals": chosen, "marginals": probs}

    def compute_mask(self, inputs: Any, mask: Any | None = None) -> None:
        return None

    def compute_output_spec(self, emissions: Any, mask: Any | None = None) -> dict[str, Any]:
        batch_time = tuple(emissions.shape[:2])
        return {
            "tag_ids": keras.KerasTensor(batch_time, dtype="int32"),
            "tag_marginals": keras.KerasTensor(batch_time, dtype="float32"),
            "marginals": keras.KerasTensor(batch_time + (self.crf.num_tags,), dtype="float32"),
        }

    def get_config(self) -> dict:
        return {**super().get_config(), "crf": keras.layers.serialize(self.crf)}
