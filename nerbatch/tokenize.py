"""Raw text -> sentences -> tokens, with exact character offsets into the original text.

Why NLTK (Punkt + the Treebank-style ``NLTKWordTokenizer``) and not something else:
the tagger is trained on GMB / CoNLL text, which is tokenised the Penn Treebank way
(punctuation split off, possessive 's and n't split, "Mr." kept whole), and NLTK's
word tokenizer is the maintained reference implementation of exactly those rules.
NLTK is already a dependency, is pure Python, needs no model download (Punkt runs
*untrained* here, with a short abbreviation list) and is released regularly. spaCy
would add a heavy install and a statistical model to download and pin, for a
tokenisation further from PTB; syntok has had no release since 2022; a home-made
regex would be one more tokenizer to get wrong on quotes, clitics and abbreviations.
NLTK's ``span_tokenize`` is not used as is (it aligns quotes in a text-wide pass):
this module aligns each sentence itself. The word tokenizer rewrites a double quote
as two backticks or two apostrophes; the token text returned here is always the
original substring ``text[start:end]``.

Two things differ from calling NLTK naively, for speed and robustness:

- NLTK 3.10 routes every pattern through its ReDoS guard (``nltk.redos``: the
  ``regex`` engine plus a CPU-time limit of 5 s per call). The wrapper is slow, and
  Punkt's single ``finditer`` over a whole document counts the Python work between
  matches (and other threads' CPU time) against that limit, so a 5 MB document on a
  busy worker could raise ``TimeoutError``. NLTK's own patterns are fixed, not
  caller-supplied, so :class:`Tokenizer` recompiles the very same sources with the
  same ``regex`` engine, without the limit: identical tokens, about 1.4x faster.
- A sentence longer than ``chunk_chars`` is word-tokenised in pieces cut at
  whitespace between two word characters, where none of NLTK's rules can see across
  the cut, so the tokens are the same as for the whole sentence while every regex
  call stays small. The sentence itself is never cut: a too-long sentence is tagged
  whole.

A blank line always ends a sentence (headlines and list items have no period).
Offsets are indices into the Python ``str`` (Unicode code points), end exclusive.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import regex
from nltk.tokenize import NLTKWordTokenizer
from nltk.tokenize.punkt import PunktLanguageVars, PunktParameters, PunktSentenceTokenizer

logger = logging.getLogger(__name__)

#: Lower-cased abbreviations (without the final period) that must not end a sentence.
#: Untrained Punkt knows none; these are the frequent ones in English news text.
ABBREVIATIONS: frozenset[str] = frozenset(
    {
        # titles
        "mr", "mrs", "ms", "messrs", "mme", "dr", "prof", "sr", "jr", "st", "rev",
        "hon", "pres", "gov", "sen", "rep", "gen", "lt", "col", "maj", "capt", "cmdr",
        "adm", "sgt", "cpl", "pvt", "amb", "supt", "insp", "fr", "mt",
        # organisations and places
        "inc", "ltd", "co", "corp", "bros", "plc", "dept", "univ", "assn", "ave",
        "blvd", "rd", "ft", "u.s", "u.s.a", "u.k", "u.n", "e.u", "d.c", "n.y", "l.a",
        "a.p",
        # months and days (not "may", "sun", "sat": they are words)
        "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov",
        "dec", "mon", "tue", "tues", "wed", "thu", "thur", "thurs", "fri",
        # other
        "no", "nos", "vs", "etc", "e.g", "i.e", "approx", "est", "fig", "vol", "pp",
        "a.m", "p.m", "ph.d", "cf", "al",
    }
)  # fmt: skip

#: Lower-cased words that, capitalised after an abbreviation, start a new sentence
#: ("... Apple Inc. The company ..."). Punkt's "frequent sentence starter" heuristic.
SENTENCE_STARTERS: frozenset[str] = frozenset(
    {
        "the", "a", "an", "he", "she", "it", "they", "we", "i", "you", "his", "her",
        "their", "its", "our", "this", "that", "these", "those", "there", "but",
        "and", "in", "on", "at", "for", "after", "before", "when", "while", "if",
        "as", "however", "meanwhile", "also", "then", "so", "some", "many", "most",
        "what", "why", "how", "who", "officials", "police",
    }
)  # fmt: skip

# A blank line (two newlines with only spaces/tabs between) always ends a sentence:
# headlines and list items carry no final period.
_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# Where a long sentence may be cut for word tokenisation: whitespace between two
# word characters. No NLTK rule matches across such a point (see module docstring).
# Compiled with ``regex`` because NLTK's rules use that engine's idea of \s and \w.
_SAFE_CUT = regex.compile(r"(?<=\w)\s+(?=\w)")
_NON_SPACE = re.compile(r"\S+")
# The forms a double quote can take in the text, for tokens NLTK rewrote to `` / ''.
_QUOTE_FORMS = ('"', "''", "``")


@dataclass(frozen=True, slots=True)
class Sentence:
    """One sentence: tokens and their ``[start, end)`` offsets in the document text."""

    tokens: list[str]
    starts: list[int]
    ends: list[int]

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def start(self) -> int:
        return self.starts[0]

    @property
    def end(self) -> int:
        return self.ends[-1]

    def char_span(self, first: int, stop: int) -> tuple[int, int]:
        """``[start, end)`` character offsets of tokens ``first`` to ``stop - 1``
        (an entity's ``start``/``end`` token indices) in the document text."""
        return self.starts[first], self.ends[stop - 1]


def _untimed(pattern: object) -> object:
    """An NLTK ``TimedPattern`` recompiled from its source, with its flags, minus the timeout."""
    source = getattr(pattern, "pattern", None)
    if isinstance(pattern, (re.Pattern, regex.Pattern)) or not isinstance(source, str):
        return pattern
    return regex.compile(source, getattr(pattern, "flags", 0))


class _UntimedWordTokenizer(NLTKWordTokenizer):
    """NLTK's word tokenizer with its own patterns, compiled without NLTK's timeout wrapper.

    ``NLTKWordTokenizer.tokenize`` reads the patterns through ``self``, so instance
    attributes replace the class ones; the rules themselves are untouched.
    """

    def __init__(self) -> None:
        super().__init__()
        for name in ("STARTING_QUOTES", "ENDING_QUOTES", "PUNCTUATION", "CONVERT_PARENTHESES"):
            rules = getattr(NLTKWordTokenizer, name, None)
            if rules is not None:
                setattr(self, name, [(_untimed(rx), sub) for rx, sub in rules])
        for name in ("PARENS_BRACKETS", "DOUBLE_DASHES"):
            rule = getattr(NLTKWordTokenizer, name, None)
            if rule is not None:
                setattr(self, name, (_untimed(rule[0]), rule[1]))


class _UntimedPunktLanguageVars(PunktLanguageVars):
    """Punkt's English settings with its patterns compiled without NLTK's timeout wrapper.

    Punkt runs one ``finditer`` over the whole text, and NLTK's guard gives that
    iteration 5 s of CPU time *including the Python work between matches* (and other
    threads' work): a 5 MB document on a busy worker would raise ``TimeoutError``.
    """

    def __init__(self) -> None:
        super().__init__()
        self.re_boundary_realignment = _untimed(PunktLanguageVars.re_boundary_realignment)
        self._re_period_context = _untimed(super().period_context_re())
        self._re_word_tokenizer = _untimed(super()._word_tokenizer_re())


class _AlignmentError(ValueError):
    """A token returned by NLTK is not found in the text (should never happen)."""


class Tokenizer:
    """Sentence splitter plus PTB word tokenizer; create one per worker and reuse it.

    Construction compiles the patterns (a few ms); :meth:`tokenize` keeps no state
    between calls apart from this counter:
    ``alignment_fallbacks`` counts chunks where a token could not be aligned and
    whitespace splitting was used instead (a defensive path; expected to stay 0).
    """

    def __init__(
        self,
        *,
        abbreviations: Iterable[str] = ABBREVIATIONS,
        sentence_starters: Iterable[str] = SENTENCE_STARTERS,
        split_paragraphs: bool = True,
        chunk_chars: int = 10_000,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be positive")
        params = PunktParameters()
        params.abbrev_types = {a.lower().rstrip(".") for a in abbreviations}
        params.sent_starters = {w.lower() for w in sentence_starters}
        self._sentences = PunktSentenceTokenizer(params, lang_vars=_UntimedPunktLanguageVars())
        self._words = _UntimedWordTokenizer()
        self._split_paragraphs = split_paragraphs
        self._chunk_chars = chunk_chars
        self.alignment_fallbacks = 0

    def tokenize(self, text: str) -> list[Sentence]:
        """Sentences of ``text`` with tokens and exact offsets; ``[]`` for blank text.

        Every token satisfies ``text[start:end] == token``; offsets strictly increase
        and never overlap; every non-whitespace character belongs to exactly one token.
        """
        sentences = []
        for start, end in self.sentence_spans(text):
            tokens, starts, ends = self.word_spans(text, start, end)
            if tokens:
                sentences.append(Sentence(tokens, starts, ends))
        return sentences

    def sentence_spans(self, text: str) -> list[tuple[int, int]]:
        """``[start, end)`` spans of the sentences in ``text`` (paragraphs, then Punkt)."""
        spans: list[tuple[int, int]] = []
        for par_start, par_end in self._paragraph_spans(text):
            paragraph = text[par_start:par_end]
            spans.extend(
                (par_start + s, par_start + e)
                for s, e in self._sentences.span_tokenize(paragraph)
                if e > s
            )
        return spans

    def word_spans(self, text: str, start: int, end: int) -> tuple[list[str], list[int], list[int]]:
        """PTB tokens of ``text[start:end]`` with offsets into ``text``."""
        tokens: list[str] = []
        starts: list[int] = []
        ends: list[int] = []
        for chunk_start, chunk_end in self._chunks(text, start, end):
            chunk = text[chunk_start:chunk_end]
            words = self._words.tokenize(chunk)
            mark = len(tokens)
            try:
                _align(words, chunk, chunk_start, tokens, starts, ends)
            except _AlignmentError:
                self.alignment_fallbacks += 1
                logger.warning("token alignment failed; whitespace-splitting %d chars", len(chunk))
                del tokens[mark:], starts[mark:], ends[mark:]
                for match in _NON_SPACE.finditer(chunk):
                    tokens.append(match.group())
                    starts.append(chunk_start + match.start())
                    ends.append(chunk_start + match.end())
        return tokens, starts, ends

    def _paragraph_spans(self, text: str) -> list[tuple[int, int]]:
        if not self._split_paragraphs:
            return [(0, len(text))]
        spans = []
        position = 0
        for match in _PARAGRAPH_BREAK.finditer(text):
            spans.append((position, match.start()))
            position = match.end()
        spans.append((position, len(text)))
        return [(s, e) for s, e in spans if e > s]

    def _chunks(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """Cut ``[start, end)`` into pieces of about ``chunk_chars`` at safe points."""
        chunks = []
        while end - start > self._chunk_chars:
            cut = _SAFE_CUT.search(text, start + self._chunk_chars, end)
            if cut is None:
                break
            chunks.append((start, cut.start()))
            start = cut.end()
        chunks.append((start, end))
        return chunks


def _align(
    words: Sequence[str],
    text: str,
    base: int,
    tokens: list[str],
    starts: list[int],
    ends: list[int],
) -> None:
    """Append the original text, start and end (``+ base``) of each of ``words``.

    Consumes ``text`` left to right. NLTK only deletes whitespace and rewrites double
    quotes (``"``, ``''``, ``````) as ```` `` ```` / ``''``, so each word is the next
    occurrence of itself, and a rewritten quote is the next occurrence of any quote form.
    """
    find = text.find
    point = 0
    for word in words:
        if word == "``" or word == "''":
            start, point = _next_quote(text, point)
            word = text[start:point]
        else:
            start = find(word, point)
            point = start + len(word)
        if start < 0:
            raise _AlignmentError(word)
        tokens.append(word)
        starts.append(base + start)
        ends.append(base + point)


def _next_quote(text: str, point: int) -> tuple[int, int]:
    """Start and end of the first ``"``, ``''`` or ```````` at or after ``point``."""
    best, best_length = -1, 0
    for form in _QUOTE_FORMS:
        # Later forms only need searching up to the best hit so far.
        found = text.find(form, point, best + len(form) if best >= 0 else len(text))
        if found >= 0 and (best < 0 or found < best):
            best, best_length = found, len(form)
    return best, best + best_length


def tokenize_document(text: str, tokenizer: Tokenizer | None = None) -> list[Sentence]:
    """Sentences of ``text``; pass a long-lived ``tokenizer`` when calling in a loop."""
    return (tokenizer or Tokenizer()).tokenize(text)


def document_sentences(text: str, pretokenized: object, tokenizer: Tokenizer) -> list[Sentence]:
    """The sentences of one row of a documents frame (``nerbatch.documents``).

    ``pretokenized`` is the row's ``sentences`` value: a list of token lists for a
    document tokenised upstream (kept as given), or a missing value (``None`` /
    ``pd.NA``, which is what the frame holds for raw text), in which case ``text``
    is tokenised with ``tokenizer``.
    """
    if isinstance(pretokenized, (list, tuple)):
        return pretokenized_sentences(pretokenized)
    return tokenizer.tokenize(text)


def join_pretokenized(sentences: Sequence[Sequence[str]]) -> str:
    """The text of a pre-tokenised document: all tokens joined by single spaces.

    Sentences are joined by a single space too, so offsets do not depend on sentence
    boundaries; :func:`pretokenized_sentences` gives the matching offsets.
    """
    return " ".join(token for sentence in sentences for token in sentence)


def pretokenized_sentences(sentences: Sequence[Sequence[str]]) -> list[Sentence]:
    """Offsets of upstream tokens over :func:`join_pretokenized` of the same sentences.

    Tokens are kept exactly as given (they are not re-tokenised); empty sentences are
    dropped. Raises ``ValueError`` for an empty token (it would have no span).
    """
    result = []
    position = 0
    for sentence in sentences:
        if not sentence:
            continue
        starts, ends = [], []
        for token in sentence:
            if not token:
                raise ValueError("a pre-tokenised token is empty")
            starts.append(position)
            position += len(token)
            ends.append(position)
            position += 1  # the joining space
        result.append(Sentence(list(sentence), starts, ends))
    return result
