"""Pretrained word vectors (GloVe / word2vec text format) as an embedding matrix.

The file has one word a line followed by its D numbers, separated by spaces;
a word2vec file starts with a header line ``N D``, detected and skipped. A
vocabulary word takes the vector of the same word in the file, else of its
lowercase form (GloVe's vocabularies are lowercase), so a capitalised word and
its lowercase twin can start from the same vector and drift apart in training.
Words the file lacks, and ``<unk>``, start from random normal vectors with the
spread of the vectors found; the padding row is zero.

Only lines whose word the vocabulary wants are parsed as numbers, so reading a
multi-gigabyte file costs about one string split a line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nerbatch.errors import InputError
from nerbatch.vocab import PAD_ID, UNK_ID, Vocabulary


@dataclass(frozen=True)
class PretrainedEmbeddings:
    """An embedding matrix aligned with a vocabulary, and how much of it the file covered.

    Attributes:
        matrix: float32 ``[len(vocab.words), D]``; row ``i`` is word id ``i``.
        found: vocabulary words (excluding ``<pad>``/``<unk>``) given a vector
            from the file, exactly or through their lowercase form.
        found_exact: of those, the ones found as written.
        total: vocabulary words, excluding ``<pad>``/``<unk>``.
        found_tokens: training-corpus occurrences of the found words (from
            ``vocab.word_counts``).
        total_tokens: training-corpus occurrences of all vocabulary words.
        malformed_lines: lines skipped because they did not hold a word and D numbers.
    """

    matrix: np.ndarray
    found: int
    found_exact: int
    total: int
    found_tokens: int
    total_tokens: int
    malformed_lines: int

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def coverage(self) -> float:
        """Share of vocabulary words given a vector (0 for an empty vocabulary)."""
        return self.found / self.total if self.total else 0.0

    @property
    def token_coverage(self) -> float:
        """Share of training tokens whose word was given a vector."""
        return self.found_tokens / self.total_tokens if self.total_tokens else 0.0


def _is_header(fields: list[str]) -> bool:
    return len(fields) == 2 and all(f.isdigit() for f in fields)


def _wanted_rows(vocab: Vocabulary) -> tuple[dict[str, int], dict[str, list[int]]]:
    """Word -> id for exact matches, and lowercase form -> ids that may fall back to it."""
    exact = {w: i for i, w in enumerate(vocab.words) if i not in (PAD_ID, UNK_ID)}
    lowered: dict[str, list[int]] = {}
    for word, i in exact.items():
        lowered.setdefault(word.lower(), []).append(i)
    return exact, lowered


def load_word_vectors(
    path: str | Path,
    vocab: Vocabulary,
    *,
    seed: int = 0,
    oov_scale: float | None = None,
    encoding: str = "utf-8",
) -> PretrainedEmbeddings:
    """Read a GloVe / word2vec text file into a matrix aligned with ``vocab``.

    Args:
        path: the text file (optionally with a ``N D`` header line).
        vocab: whose word ids index the matrix rows.
        seed: seeds the random rows of words the file lacks.
        oov_scale: standard deviation of those rows; by default the standard
            deviation of the vectors found (0.1 when none was found).
        encoding: of the file; undecodable bytes are replaced, not fatal.

    Returns:
        :class:`PretrainedEmbeddings` with ``matrix`` float32 ``[V, D]``.

    Raises:
        InputError: the file does not exist.
        ValueError: the file holds no vector line at all.
    """
    if not Path(path).is_file():
        raise InputError(str(path), "pretrained vectors file not found")
    exact, lowered = _wanted_rows(vocab)
    exact_vectors: dict[int, np.ndarray] = {}
    lower_vectors: dict[int, np.ndarray] = {}
    dim: int | None = None
    malformed = 0
    with open(path, encoding=encoding, errors="replace") as lines:
        for number, line in enumerate(lines):
            if not line.strip():
                continue
            fields = line.rstrip("\n").rstrip(" ").split(" ")
            if number == 0 and _is_header(fields):
                dim = int(fields[1])
                continue
            if dim is None:
                dim = len(fields) - 1
            if len(fields) < dim + 1 or dim < 1:
                malformed += 1
                continue
            # Some GloVe files hold "words" with spaces in them: the last D fields are numbers.
            word = " ".join(fields[:-dim])
            row = exact.get(word)
            fallback = lowered.get(word, ())
            if row is None and not fallback:
                continue
            try:
                vector = np.asarray(fields[-dim:], dtype=np.float32)
            except ValueError:
                malformed += 1
                continue
            if row is not None:
                exact_vectors[row] = vector
            for i in fallback:
                lower_vectors.setdefault(i, vector)
    if dim is None or dim < 1:
        raise ValueError(f"{path}: no word vectors found")
    return _assemble(vocab, dim, exact_vectors, lower_vectors, seed, oov_scale, malformed)


def _assemble(
    vocab: Vocabulary,
    dim: int,
    exact_vectors: dict[int, np.ndarray],
    lower_vectors: dict[int, np.ndarray],
    seed: int,
    oov_scale: float | None,
    malformed: int,
) -> PretrainedEmbeddings:
    vectors = {**lower_vectors, **exact_vectors}  # an exact match wins over a lowercase one
    if oov_scale is None:
        oov_scale = float(np.std(np.stack(list(vectors.values())))) if vectors else 0.1
    rng = np.random.default_rng(seed)
    matrix = rng.normal(scale=oov_scale, size=(len(vocab.words), dim)).astype(np.float32)
    matrix[PAD_ID] = 0.0
    for row, vector in vectors.items():
        matrix[row] = vector
    counts = np.asarray(vocab.word_counts, dtype=np.int64)
    found_rows = np.fromiter(vectors.keys(), dtype=np.int64, count=len(vectors))
    return PretrainedEmbeddings(
        matrix=matrix,
        found=len(vectors),
        found_exact=len(exact_vectors),
        total=len(vocab.words) - 2,
        found_tokens=int(counts[found_rows].sum()),
        total_tokens=int(counts[2:].sum()),
        malformed_lines=malformed,
    )
