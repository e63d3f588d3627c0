"""GloVe / word2vec text files to an embedding matrix aligned with the vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nerbatch.model.pretrained import load_word_vectors
from nerbatch.vocab import PAD_ID, UNK_ID, Vocabulary

# Counts make the ids: Paris=2, the=3, london=4, Zork=5, Paris's twin "paris" is not in the vocabulary.
VOCAB = Vocabulary.from_counts({"Paris": 50, "the": 40, "london": 30, "Zork": 20}, {"a": 1}, ["O"])

LINES = [
    "the 0.1 0.2 0.3",
    "paris 1.0 1.0 1.0",
    "Paris 2.0 2.0 2.0",  # the exact form wins over the lowercase one
    "london -1.0 0.5 0.25",
    "unused 9 9 9",
    "broken 1.0",  # too few numbers
    "new york 0.5 0.5 0.5",  # a "word" with a space
]


def _write(tmp_path: Path, lines: list[str], name: str = "vectors.txt") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_glove_file_is_aligned_with_the_vocabulary(tmp_path: Path) -> None:
    found = load_word_vectors(_write(tmp_path, LINES), VOCAB, seed=1)
    m = found.matrix
    assert m.dtype == np.float32 and m.shape == (len(VOCAB.words), 3) and found.dim == 3
    np.testing.assert_array_equal(m[PAD_ID], 0.0)
    np.testing.assert_allclose(m[VOCAB.word_id("Paris")], [2.0, 2.0, 2.0])
    np.testing.assert_allclose(m[VOCAB.word_id("the")], [0.1, 0.2, 0.3])
    np.testing.assert_allclose(m[VOCAB.word_id("london")], [-1.0, 0.5, 0.25])
    # Not in the file: random, nonzero, at the spread of the vectors found.
    zork, unk = m[VOCAB.word_id("Zork")], m[UNK_ID]
    assert np.all(zork != 0) and np.all(unk != 0) and not np.allclose(zork, unk)
    assert (found.found, found.found_exact, found.total) == (3, 3, 4)
    assert found.coverage == pytest.approx(0.75)
    assert found.token_coverage == pytest.approx(120 / 140)
    assert found.malformed_lines == 1


def test_lowercase_fallback_and_word2vec_header(tmp_path: Path) -> None:
    lines = ["3 3", "paris 1 2 3", "zork 4 5 6", "THE 7 8 9"]
    found = load_word_vectors(_write(tmp_path, lines), VOCAB)
    np.testing.assert_allclose(found.matrix[VOCAB.word_id("Paris")], [1, 2, 3])
    np.testing.assert_allclose(found.matrix[VOCAB.word_id("Zork")], [4, 5, 6])
    # Only vocabulary words fall back to lowercase, not the file's words: "THE" matches nothing.
    assert not np.allclose(found.matrix[VOCAB.word_id("the")], [7, 8, 9])
    assert (found.found, found.found_exact) == (2, 0)
    assert found.malformed_lines == 0


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    found = load_word_vectors(_write(tmp_path, ["", "the 1 2", "", "london 3 4"]), VOCAB)
    assert found.dim == 2 and found.found == 2 and found.malformed_lines == 0


def test_same_seed_same_random_rows(tmp_path: Path) -> None:
    path = _write(tmp_path, LINES)
    a = load_word_vectors(path, VOCAB, seed=3).matrix
    b = load_word_vectors(path, VOCAB, seed=3).matrix
    c = load_word_vectors(path, VOCAB, seed=4).matrix
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a[VOCAB.word_id("Zork")], c[VOCAB.word_id("Zork")])


def test_oov_scale_is_used(tmp_path: Path) -> None:
    found = load_word_vectors(_write(tmp_path, LINES), VOCAB, oov_scale=1e-6)
    assert np.abs(found.matrix[VOCAB.word_id("Zork")]).max() < 1e-4


def test_empty_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no word vectors"):
        load_word_vectors(_write(tmp_path, [], "empty.txt"), VOCAB)


def test_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    from nerbatch.errors import InputError

    with pytest.raises(InputError, match=r"glove\.6B\.100d\.txt: pretrained vectors file not found"):
        load_word_vectors(tmp_path / "glove.6B.100d.txt", VOCAB)
