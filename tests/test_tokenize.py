"""Tokenisation: exact offsets on random texts, PTB behaviour, sentence splits."""

from __future__ import annotations

import random
import time

import pytest
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

from nerbatch.tokenize import (
    ABBREVIATIONS,
    SENTENCE_STARTERS,
    Sentence,
    Tokenizer,
    document_sentences,
    join_pretokenized,
    pretokenized_sentences,
    tokenize_document,
)

WORDS = [
    "the", "The", "Police", "London", "Iraq", "U.S.", "Mr.", "Dr.", "e.g.", "etc.",
    "Inc.", "J.", "don't", "can't", "cannot", "I'm", "we've", "y'all", "'tis",
    "gonna", "O'Neil", "Britain's", "James'", "rock'n'roll", "3.5", "10,000",
    "$42.10", "3.5%", "e-mail", "café", "naïve", "Zürich", "São", "東京", "北京市",
    "😀", "👍🏽", "e\u0301", "Ωmega", "привет", "مرحبا", "word_with_underscore",
    "http://x.org/a?b=c", "a@b.com", "#tag", "C++", "AT&T", "1990s", "'90s",
]  # fmt: skip
PUNCT = [
    ".", ",", ";", ":", "!", "?", "...", "--", "-", "(", ")", "[", "]", "{", "}",
    "<", ">", "$", "%", "&", "#", "@", "*", "/", "\\", "–", "—", "…", "'", "`",
]  # fmt: skip
QUOTES = ['"', "''", "``", "“", "”", "‘", "’", "«", "»", "„", "'''", '""']
SPACES = [
    " ", " ", " ", " ", "  ", "\t", "\n", "\r\n", "\n\n", " \n \n ", "\u00a0",
    "\u3000", "\u2009", "\x0b", "\x0c", "\x1c", "\u2028", "",
]  # fmt: skip


def random_text(rng: random.Random, n_items: int) -> str:
    parts = []
    for _ in range(n_items):
        roll = rng.random()
        pool = WORDS if roll < 0.6 else PUNCT if roll < 0.85 else QUOTES
        parts.append(rng.choice(pool))
        parts.append(rng.choice(SPACES))
    return "".join(parts)


def check_offsets(text: str, sentences: list[Sentence]) -> None:
    """The invariants every tokenisation must satisfy."""
    previous_end = 0
    covered = []
    for sentence in sentences:
        assert len(sentence.tokens) == len(sentence.starts) == len(sentence.ends) > 0
        for token, start, end in zip(sentence.tokens, sentence.starts, sentence.ends, strict=True):
            assert previous_end <= start < end, (token, start, end)
            assert text[start:end] == token
            assert not any(ch.isspace() for ch in token), repr(token)
            covered.append(token)
            previous_end = end
    # Nothing is dropped: the tokens are exactly the non-whitespace text.
    assert "".join(covered) == "".join(text.split())


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer()


def quote_normalised(tokens: list[str]) -> list[str]:
    return ["<q>" if t in ('"', "``", "''") else t for t in tokens]


def test_random_texts_have_exact_offsets_and_match_nltk(tokenizer: Tokenizer) -> None:
    rng = random.Random(20261124)
    stock = NLTKWordTokenizer()
    for _ in range(300):
        text = random_text(rng, rng.randint(0, 60))
        sentences = tokenizer.tokenize(text)
        check_offsets(text, sentences)
        # Same tokens as NLTK's own word tokenizer on each sentence (quotes aside,
        # which NLTK rewrites and this module returns verbatim).
        for (start, end), sentence in zip(tokenizer.sentence_spans(text), sentences, strict=False):
            assert quote_normalised(sentence.tokens) == quote_normalised(
                stock.tokenize(text[start:end])
            )
    assert tokenizer.alignment_fallbacks == 0


def test_sentence_spans_match_stock_punkt() -> None:
    rng = random.Random(7)
    params = PunktParameters()
    params.abbrev_types = set(ABBREVIATIONS)
    params.sent_starters = set(SENTENCE_STARTERS)
    stock = PunktSentenceTokenizer(params)
    ours = Tokenizer(split_paragraphs=False)
    for _ in range(200):
        text = random_text(rng, rng.randint(0, 80))
        assert ours.sentence_spans(text) == [(s, e) for s, e in stock.span_tokenize(text) if e > s]


def test_chunked_long_sentences_tokenise_like_whole_ones() -> None:
    rng = random.Random(11)
    whole = Tokenizer(chunk_chars=10**9)
    chunked = Tokenizer(chunk_chars=16)
    for _ in range(150):
        text = random_text(rng, rng.randint(20, 120))
        assert chunked.tokenize(text) == whole.tokenize(text)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [
        ("Britain's army didn't go.", ["Britain", "'s", "army", "did", "n't", "go", "."]),
        ("I can't, you cannot.", ["I", "ca", "n't", ",", "you", "can", "not", "."]),
        ("We've seen James' car.", ["We", "'ve", "seen", "James", "'", "car", "."]),
        ("It cost $3.88 (roughly).", ["It", "cost", "$", "3.88", "(", "roughly", ")", "."]),
        ("Wait... really?", ["Wait", "...", "really", "?"]),
        ("A -- B; C: d!", ["A", "--", "B", ";", "C", ":", "d", "!"]),
        ("Mr. Smith of the U.S. Army", ["Mr.", "Smith", "of", "the", "U.S.", "Army"]),
        ('He said "no" today.', ["He", "said", '"', "no", '"', "today", "."]),
        ("He said ''no'' and ``yes''.", ["He", "said", "''", "no", "''", "and", "``", "yes", "''", "."]),
        ('"Quoted," he said.', ['"', "Quoted", ",", '"', "he", "said", "."]),
    ],
)
def test_penn_treebank_behaviour(tokenizer: Tokenizer, text: str, tokens: list[str]) -> None:
    sentences = tokenizer.tokenize(text)
    assert [t for s in sentences for t in s.tokens] == tokens
    check_offsets(text, sentences)


def test_quote_tokens_are_the_original_characters(tokenizer: Tokenizer) -> None:
    text = 'She wrote "A" and \'\'B\'\' then "C".'
    (sentence,) = tokenizer.tokenize(text)
    quotes = [(t, s) for t, s in zip(sentence.tokens, sentence.starts) if "'" in t or '"' in t]
    assert quotes == [('"', 10), ('"', 12), ("''", 18), ("''", 21), ('"', 29), ('"', 31)]


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("Hello there. How are you? Fine!", ["Hello there.", "How are you?", "Fine!"]),
        ("Mr. Smith met Dr. Jones. They talked.", ["Mr. Smith met Dr. Jones.", "They talked."]),
        ("The U.S. economy grew 3.5% in 2006. Then it fell.", ["The U.S. economy grew 3.5% in 2006.", "Then it fell."]),
        ("He joined Apple Inc. The company grew.", ["He joined Apple Inc.", "The company grew."]),
        ("J. R. R. Tolkien wrote it. See e.g. the notes.", ["J. R. R. Tolkien wrote it.", "See e.g. the notes."]),
        ('"Stop." He left. (It was late.) Then rain.', ['"Stop."', "He left.", "(It was late.)", "Then rain."]),
        ("A headline\n\nThe body starts here.", ["A headline", "The body starts here."]),
        ("One line\nstill the same sentence.", ["One line\nstill the same sentence."]),
    ],
)
def test_sentence_splits(tokenizer: Tokenizer, text: str, sentences: list[str]) -> None:
    spans = tokenizer.sentence_spans(text)
    assert [text[s:e] for s, e in spans] == sentences
    assert [(s.start, s.end) for s in tokenizer.tokenize(text)] == spans


@pytest.mark.parametrize("text", ["", " ", "\n\n\t ", "\u3000\u00a0", "\r\n" * 50])
def test_blank_text_has_no_sentences(tokenizer: Tokenizer, text: str) -> None:
    assert tokenizer.tokenize(text) == []
    assert tokenize_document(text) == []


def test_unicode_offsets_are_code_points(tokenizer: Tokenizer) -> None:
    text = "Café 😀 in 東京, naïve 👍🏽!\tZürich."
    sentences = tokenizer.tokenize(text)
    check_offsets(text, sentences)
    tokens = [t for s in sentences for t in s.tokens]
    assert tokens == ["Café", "😀", "in", "東京", ",", "naïve", "👍🏽", "!", "Zürich", "."]
    assert sentences[0].starts[1] == 5  # one code point per accent / emoji


def test_long_text_without_punctuation_is_one_whole_sentence_in_linear_time(
    tokenizer: Tokenizer,
) -> None:
    rng = random.Random(3)
    words = ["alpha", "beta", "gamma", "delta", "Zeta", "eta"]

    def timed(n: int) -> tuple[float, int]:
        text = " ".join(rng.choice(words) for _ in range(n))
        started = time.process_time()
        sentences = tokenizer.tokenize(text)
        assert len(sentences) == 1 and sentences[0].end == len(text)
        return time.process_time() - started, len(sentences[0])

    small, n_small = timed(20_000)
    large, n_large = timed(160_000)
    assert (n_small, n_large) == (20_000, 160_000)
    # 8x the text must not cost anywhere near 64x (quadratic); allow noise.
    assert large < 8 * 3 * max(small, 0.01)


def test_five_megabyte_document(tokenizer: Tokenizer) -> None:
    # Long words keep the token count (and the test) small; tokens/s is measured
    # separately. What matters here is 5 MB through Punkt and the chunker at once.
    paragraph = (
        "Internationalisation representatives (intergovernmental) reconsidered "
        'counterproductive "characterisations" thereafter. Mr. Constantinopolitan\'s '
        "responsibilities weren't straightforwardly extraordinary.\n"
    )
    text = paragraph * (5_000_000 // len(paragraph) + 1)
    started = time.process_time()
    sentences = tokenizer.tokenize(text)
    elapsed = time.process_time() - started
    assert len(text) > 5_000_000
    assert len(sentences) == 2 * text.count("\n")
    assert sum(len(s) for s in sentences) == 21 * text.count("\n")
    assert sentences[-1].end == len(text.rstrip())
    assert elapsed < 30  # about 3 s on one core; generous for shared CI machines
    spot = sentences[len(sentences) // 2]
    assert [text[s:e] for s, e in zip(spot.starts, spot.ends)] == spot.tokens


def test_pretokenised_offsets_follow_the_joined_text() -> None:
    sentences = [["New York", "is", "big", "."], [], ["Yes", "!"]]
    text = join_pretokenized(sentences)
    assert text == "New York is big . Yes !"
    result = pretokenized_sentences(sentences)
    assert [s.tokens for s in result] == [["New York", "is", "big", "."], ["Yes", "!"]]
    for sentence in result:
        assert [text[s:e] for s, e in zip(sentence.starts, sentence.ends)] == sentence.tokens
    with pytest.raises(ValueError, match="empty"):
        pretokenized_sentences([["a", ""]])


def test_document_sentences_follow_the_frame_row(tokenizer: Tokenizer) -> None:
    import pandas as pd

    assert document_sentences("Hi there. Bye.", pd.NA, tokenizer) == tokenizer.tokenize("Hi there. Bye.")
    assert document_sentences("Hi there. Bye.", None, tokenizer) == tokenizer.tokenize("Hi there. Bye.")
    upstream = [["Hi", "there."], ["Bye."]]
    result = document_sentences(join_pretokenized(upstream), upstream, tokenizer)
    assert [s.tokens for s in result] == upstream  # not re-tokenised: "there." stays whole


def test_tokenizer_rejects_bad_chunk_size() -> None:
    with pytest.raises(ValueError):
        Tokenizer(chunk_chars=0)
