"""Sentences to input arrays: ids, padding, casing, characters, tags."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from nerbatch.model.features import Casing, casing_class, encode_batch, encode_inputs, encode_tags
from nerbatch.vocab import PAD_ID, UNK_ID, Vocabulary


def _vocab(sentences: list[list[str]], tags: list[str] = ("O", "B-PER", "I-PER", "B-LOC")) -> Vocabulary:
    words = Counter(w for s in sentences for w in s)
    chars = Counter(c for s in sentences for w in s for c in w)
    return Vocabulary.from_counts(words, chars, tags)


VOCAB = _vocab([["Paris", "is", "big", "paris", "london", "UN", "x"]])


def test_ids_padding_and_shapes() -> None:
    inputs = encode_inputs([["Paris", "is", "big"], ["is"]], VOCAB)
    assert set(inputs) == {"words", "chars", "casing"}
    assert all(a.dtype == np.int32 for a in inputs.values())
    assert inputs["words"].shape == (2, 3) and inputs["casing"].shape == (2, 3)
    assert inputs["chars"].shape == (2, 3, 5)  # longest word "Paris"
    np.testing.assert_array_equal(
        inputs["words"][0], [VOCAB.word_id("Paris"), VOCAB.word_id("is"), VOCAB.word_id("big")]
    )
    np.testing.assert_array_equal(inputs["words"][1], [VOCAB.word_id("is"), PAD_ID, PAD_ID])
    np.testing.assert_array_equal(inputs["casing"][1], [Casing.LOWER, Casing.PAD, Casing.PAD])
    np.testing.assert_array_equal(inputs["chars"][1, 1:], 0)
    np.testing.assert_array_equal(inputs["chars"][1, 0], [VOCAB.char_id("i"), VOCAB.char_id("s"), 0, 0, 0])


def test_word_lookup_exact_then_lowercase_then_unknown() -> None:
    words = encode_inputs([["Paris", "paris", "London", "LONDON", "Berlin", "<pad>", "<unk>"]], VOCAB)["words"][0]
    assert words[0] == VOCAB.word_id("Paris") != words[1] == VOCAB.word_id("paris")
    assert words[2] == words[3] == VOCAB.word_id("london")
    # An unknown word, and literal special tokens, never read as padding.
    np.testing.assert_array_equal(words[4:], [UNK_ID, UNK_ID, UNK_ID])


@pytest.mark.parametrize(
    "word,expected",
    [
        ("house", Casing.LOWER),
        ("London", Casing.UPPER_INITIAL),
        ("I", Casing.UPPER_INITIAL),
        ("NATO", Casing.ALL_CAPS),
        ("U.S.", Casing.ALL_CAPS),
        ("iPhone", Casing.MIXED),
        ("McDonald", Casing.MIXED),
        ("2024", Casing.HAS_DIGIT),
        ("3rd", Casing.HAS_DIGIT),
        (",", Casing.OTHER),
        ("--", Casing.OTHER),
        ("", Casing.OTHER),
        ("'s", Casing.LOWER),
        ("Élysée", Casing.UPPER_INITIAL),
    ],
)
def test_casing_classes(word: str, expected: Casing) -> None:
    assert casing_class(word) == expected


def test_chars_are_cut_but_the_word_keeps_its_id() -> None:
    long_word = "Supercalifragilistic"
    vocab = _vocab([[long_word, "ab"]])
    inputs = encode_inputs([[long_word, "ab"]], vocab, max_word_length=4)
    assert inputs["chars"].shape == (1, 2, 4)
    np.testing.assert_array_equal(inputs["chars"][0, 0], [vocab.char_id(c) for c in "Supe"])
    np.testing.assert_array_equal(inputs["chars"][0, 1], [vocab.char_id("a"), vocab.char_id("b"), 0, 0])
    assert inputs["words"][0, 0] == vocab.word_id(long_word)


def test_unknown_characters_and_non_latin_text() -> None:
    inputs = encode_inputs([["Zürich", "東京"]], VOCAB)
    assert inputs["chars"].shape == (1, 2, 6)
    zurich = inputs["chars"][0, 0]
    assert zurich[1] == UNK_ID and zurich[0] == UNK_ID  # neither "Z" nor "ü" is in the vocabulary
    assert zurich[2] == VOCAB.char_id("r") != UNK_ID
    np.testing.assert_array_equal(inputs["chars"][0, 1], [UNK_ID, UNK_ID, 0, 0, 0, 0])


def test_pad_to_fixes_the_length_and_never_truncates() -> None:
    inputs = encode_inputs([["is", "big"]], VOCAB, pad_to=6)
    assert inputs["words"].shape == (1, 6) and inputs["chars"].shape == (1, 6, 3)
    with pytest.raises(ValueError, match="nothing is truncated"):
        encode_inputs([["is"] * 7], VOCAB, pad_to=6)


def test_empty_sentences_and_empty_batch() -> None:
    inputs = encode_inputs([[], ["is"]], VOCAB)
    assert inputs["words"].shape == (2, 1)
    np.testing.assert_array_equal(inputs["words"][:, 0], [PAD_ID, VOCAB.word_id("is")])
    empty = encode_inputs([], VOCAB)
    assert empty["words"].shape == (0, 1) and empty["chars"].shape == (0, 1, 1)


def test_include_selects_inputs() -> None:
    inputs = encode_inputs([["is"]], VOCAB, include=("words",))
    assert list(inputs) == ["words"]
    with pytest.raises(ValueError, match="unknown inputs"):
        encode_inputs([["is"]], VOCAB, include=("words", "shape"))


def test_tags_are_encoded_and_checked() -> None:
    x, y = encode_batch([["Paris", "is"], ["x"]], VOCAB, [["B-LOC", "O"], ["B-PER"]])
    assert y.dtype == np.int32 and y.shape == x["words"].shape
    np.testing.assert_array_equal(y, [[VOCAB.tag_id("B-LOC"), VOCAB.tag_id("O")], [VOCAB.tag_id("B-PER"), 0]])
    assert encode_batch([["x"]], VOCAB)[1] is None
    with pytest.raises(ValueError, match="as long as"):
        encode_batch([["Paris", "is"]], VOCAB, [["O"]])
    with pytest.raises(KeyError):
        encode_tags([["B-ORG"]], VOCAB)


def _reference(sentences: list[list[str]], vocab: Vocabulary, max_word_length: int) -> dict[str, np.ndarray]:
    """A plain per-token loop: what the vectorised encoder must equal."""
    steps = max(1, max((len(s) for s in sentences), default=0))
    width = max(1, min(max((len(w) for s in sentences for w in s), default=0), max_word_length))
    words = np.zeros((len(sentences), steps), np.int32)
    chars = np.zeros((len(sentences), steps, width), np.int32)
    casing = np.zeros((len(sentences), steps), np.int32)
    for b, sentence in enumerate(sentences):
        for t, word in enumerate(sentence):
            wid = vocab.word_ids.get(word, vocab.word_ids.get(word.lower(), UNK_ID))
            words[b, t] = UNK_ID if wid == PAD_ID else wid
            casing[b, t] = casing_class(word)
            for c, char in enumerate(word[:width]):
                chars[b, t, c] = vocab.char_id(char)
    return {"words": words, "chars": chars, "casing": casing}


def test_matches_a_per_token_loop_on_random_text() -> None:
    rng = np.random.default_rng(0)
    alphabet = list("abcXYZ19.-é")
    lexicon = ["".join(rng.choice(alphabet, size=rng.integers(0, 9))) for _ in range(60)]
    sentences = [[str(rng.choice(lexicon)) for _ in range(rng.integers(0, 12))] for _ in range(40)]
    vocab = _vocab(sentences[:20])  # the rest brings unknown words
    got = encode_inputs(sentences, vocab, max_word_length=5)
    want = _reference(sentences, vocab, 5)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
