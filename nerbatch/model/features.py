"""Sentences (lists of words) to the tagger's input arrays.

A batch is padded to its longest sentence (dynamic padding) unless ``pad_to``
asks for a fixed length. The inputs are::

    words   int32 [B, T]     word ids; 0 = padding, 1 = unknown
    chars   int32 [B, T, C]  character ids of each word; C = longest word in the
                             batch, at most ``max_word_length``
    casing  int32 [B, T]     a :class:`Casing` class; 0 = padding
    vectors float32 [B, T, D] the pretrained vector of each word (zeros for
                             padding and for words the table lacks), when the
                             model uses a :class:`~nerbatch.model.vectors.WordVectors` table

Word lookup: the word as written, else its lowercase form, else unknown. The
character view of a long word is cut to ``max_word_length`` characters; the
word keeps its own word id, so nothing about the token is lost but the tail of
its spelling.

The work is done once per *distinct* word of the batch (``pandas.factorize``
finds them in C), and the per-token arrays are filled by numpy indexing, so
the cost per token is a few array operations, not Python calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import IntEnum

import numpy as np
import pandas as pd

from nerbatch.model.vectors import WordVectors
from nerbatch.vocab import PAD_ID, UNK_ID, Vocabulary

DEFAULT_MAX_WORD_LENGTH = 20
INPUT_NAMES = ("words", "chars", "casing", "vectors")


class Casing(IntEnum):
    """Shape of a word's spelling, an input of its own (0 is padding)."""

    PAD = 0
    LOWER = 1  # "house"
    UPPER_INITIAL = 2  # "London", "I"
    ALL_CAPS = 3  # "NATO"
    MIXED = 4  # "iPhone", "McDonald"
    HAS_DIGIT = 5  # "2024", "A4", "3rd"
    OTHER = 6  # punctuation, symbols


NUM_CASING_CLASSES = len(Casing)


def casing_class(word: str) -> Casing:
    """The :class:`Casing` of one word."""
    if any(c.isdigit() for c in word):
        return Casing.HAS_DIGIT
    letters = [c for c in word if c.isalpha()]
    if not letters:
        return Casing.OTHER
    if word.islower():
        return Casing.LOWER
    if word.isupper():
        return Casing.ALL_CAPS if len(letters) > 1 else Casing.UPPER_INITIAL
    first = letters[0]
    rest = word[word.index(first) + 1 :]
    if first.isupper() and rest == rest.lower():
        return Casing.UPPER_INITIAL
    return Casing.MIXED


def word_ids(words: Sequence[str], vocab: Vocabulary) -> np.ndarray:
    """int32 [U]: id of each distinct word: as written, else lowercase, else unknown."""
    ids = vocab.word_ids
    out = np.empty(len(words), dtype=np.int32)
    for n, word in enumerate(words):
        found = ids.get(word)
        if found is None:
            found = ids.get(word.lower(), UNK_ID)
        # A literal "<pad>" token in the text must not look like padding.
        out[n] = UNK_ID if found == PAD_ID else found
    return out


def _char_matrix(words: Sequence[str], vocab: Vocabulary, width: int) -> np.ndarray:
    """int32 [U, width]: character ids of each distinct word, cut to ``width``, 0-padded."""
    cut = [w[:width] for w in words]
    lengths = np.fromiter((len(w) for w in cut), dtype=np.int64, count=len(cut))
    out = np.zeros((len(cut), width), dtype=np.int32)
    if lengths.sum() == 0:
        return out
    # One UTF-32 decode of all the characters, then one lookup per distinct character.
    codepoints = np.frombuffer("".join(cut).encode("utf-32-le"), dtype=np.uint32)
    distinct, inverse = np.unique(codepoints, return_inverse=True)
    ids = np.fromiter((vocab.char_id(chr(int(c))) for c in distinct), dtype=np.int32, count=len(distinct))
    rows = np.repeat(np.arange(len(cut)), lengths)
    cols = np.arange(len(codepoints)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    out[rows, cols] = ids[inverse]
    return out


def _positions(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of every token of the flattened batch."""
    rows = np.repeat(np.arange(len(lengths)), lengths)
    cols = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return rows, cols


def _padded_length(lengths: np.ndarray, pad_to: int | None) -> int:
    longest = int(lengths.max(initial=0))
    if pad_to is None:
        # At least one step, so a batch of empty sentences still has a shape the model takes.
        return max(longest, 1)
    if longest > pad_to:
        raise ValueError(f"a sentence has {longest} tokens, more than pad_to={pad_to}; nothing is truncated")
    return pad_to


def encode_inputs(
    sentences: Sequence[Sequence[str]],
    vocab: Vocabulary,
    *,
    max_word_length: int = DEFAULT_MAX_WORD_LENGTH,
    pad_to: int | None = None,
    include: Sequence[str] = ("words", "chars", "casing"),
    vectors: WordVectors | None = None,
) -> dict[str, np.ndarray]:
    """The model inputs of a batch of sentences.

    Args:
        sentences: B sentences, each a sequence of words.
        vocab: the vocabulary the model was built with.
        max_word_length: most characters of a word the char encoder sees.
        pad_to: pad to this many steps instead of the longest sentence; a
            longer sentence raises ValueError (never truncated).
        include: which inputs to build: a model takes exactly the ones it
            declares (``nerbatch.model.tagger.input_names``), and a Keras
            model given an extra key fails.
        vectors: the pretrained vector table, needed when ``include`` has ``vectors``.

    Returns:
        ``{"words": int32 [B, T], "chars": int32 [B, T, C], "casing": int32 [B, T],
        "vectors": float32 [B, T, D]}`` (the keys in ``include``) with
        ``T = max(1, longest sentence)`` (or ``pad_to``) and
        ``C = max(1, min(longest word, max_word_length))``.
    """
    if max_word_length < 1:
        raise ValueError("max_word_length must be at least 1")
    unknown = set(include) - set(INPUT_NAMES)
    if unknown:
        raise ValueError(f"unknown inputs {sorted(unknown)}; known: {INPUT_NAMES}")
    if "vectors" in include and vectors is None:
        raise ValueError("the model takes pretrained vectors: pass the WordVectors table")
    lengths = np.fromiter((len(s) for s in sentences), dtype=np.int64, count=len(sentences))
    steps = _padded_length(lengths, pad_to)
    flat = np.empty(int(lengths.sum()), dtype=object)
    flat[:] = [w for s in sentences for w in s]
    codes, distinct = pd.factorize(flat, use_na_sentinel=False)
    distinct = [str(w) for w in distinct]
    width = max(1, min(max((len(w) for w in distinct), default=0), max_word_length))

    rows, cols = _positions(lengths)
    batch = len(sentences)
    out: dict[str, np.ndarray] = {}
    if "words" in include:
        out["words"] = np.zeros((batch, steps), dtype=np.int32)
        out["words"][rows, cols] = word_ids(distinct, vocab)[codes]
    if "chars" in include:
        out["chars"] = np.zeros((batch, steps, width), dtype=np.int32)
        out["chars"][rows, cols] = _char_matrix(distinct, vocab, width)[codes]
    if "casing" in include:
        classes = np.fromiter((casing_class(w) for w in distinct), dtype=np.int32, count=len(distinct))
        out["casing"] = np.zeros((batch, steps), dtype=np.int32)
        out["casing"][rows, cols] = classes[codes]
    if "vectors" in include:
        out["vectors"] = np.zeros((batch, steps, vectors.dim), dtype=np.float32)
        out["vectors"][rows, cols] = vectors.lookup(distinct)[codes]
    return out


def encode_tags(tags: Sequence[Sequence[str]], vocab: Vocabulary, *, pad_to: int | None = None) -> np.ndarray:
    """int32 ``[B, T]`` tag ids (0 at padded steps), padded like :func:`encode_inputs`.

    Raises KeyError for a tag the vocabulary does not know.
    """
    lengths = np.fromiter((len(s) for s in tags), dtype=np.int64, count=len(tags))
    steps = _padded_length(lengths, pad_to)
    flat = np.empty(int(lengths.sum()), dtype=object)
    flat[:] = [t for s in tags for t in s]
    codes, distinct = pd.factorize(flat, use_na_sentinel=False)
    ids = np.fromiter((vocab.tag_id(t) for t in distinct), dtype=np.int32, count=len(distinct))
    out = np.zeros((len(tags), steps), dtype=np.int32)
    rows, cols = _positions(lengths)
    out[rows, cols] = ids[codes]
    return out


def encode_batch(
    sentences: Sequence[Sequence[str]],
    vocab: Vocabulary,
    tags: Sequence[Sequence[str]] | None = None,
    *,
    max_word_length: int = DEFAULT_MAX_WORD_LENGTH,
    pad_to: int | None = None,
    include: Sequence[str] = ("words", "chars", "casing"),
    vectors: WordVectors | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """``(inputs, tag_ids)`` ready for ``model.fit``: see :func:`encode_inputs`.

    ``tag_ids`` is int32 ``[B, T]`` (0 at padded steps) or None when ``tags``
    is None. Each tag sequence must be as long as its sentence.
    """
    if tags is not None and (
        len(tags) != len(sentences) or any(len(w) != len(t) for w, t in zip(sentences, tags, strict=True))
    ):
        raise ValueError("every tag sequence must be as long as its sentence")
    inputs = encode_inputs(
        sentences, vocab, max_word_length=max_word_length, pad_to=pad_to, include=include, vectors=vectors
    )
    if tags is None:
        return inputs, None
    return inputs, encode_tags(tags, vocab, pad_to=pad_to)
