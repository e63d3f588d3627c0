"""Input formats and how to recognise them.

A *layout* says where the sentence key, the word and the tag are in a file and
how sentences are marked. Names of columns come from here and from the user's
options, never from the code that parses.
"""

from __future__ import annotations

import csv
import io
from enum import Enum
from typing import Literal

import fsspec
from pydantic import BaseModel, ConfigDict

from nerbatch.errors import InputError, reading


class CorpusFormat(str, Enum):
    AUTO = "auto"
    GMB = "gmb"  # Kaggle ner_dataset.csv: "Sentence #, Word, POS, Tag"
    TUTORIAL = "tutorial"  # ner.csv: index column, sentence_idx, word, tag, junk columns
    CONLL = "conll"  # whitespace columns, blank line between sentences
    CSV = "csv"  # any CSV token table, with a column mapping
    PARQUET = "parquet"  # any Parquet token table, with a column mapping


class CsvLayout(BaseModel):
    """Where things are in a delimited token table.

    ``sentence_marker``:
      - ``"first-token"``: the sentence column is filled only on a sentence's first
        token (GMB); an empty cell continues the current sentence.
      - ``"every-token"``: every row carries its sentence key; a sentence is a
        contiguous run of rows with the same key (tutorial layout).
    """

    model_config = ConfigDict(frozen=True)

    sentence_column: str
    word_column: str
    tag_column: str
    sentence_marker: Literal["first-token", "every-token"] = "every-token"
    encoding: str = "utf-8"
    delimiter: str = ","


class ConllLayout(BaseModel):
    """CoNLL column files: one token per line, blank line between sentences."""

    model_config = ConfigDict(frozen=True)

    word_column: int = 0
    tag_column: int = -1  # default: the last column
    encoding: str = "utf-8"


GMB_LAYOUT = CsvLayout(
    sentence_column="Sentence #",
    word_column="Word",
    tag_column="Tag",
    sentence_marker="first-token",
    encoding="latin-1",
)
TUTORIAL_LAYOUT = CsvLayout(
    sentence_column="sentence_idx",
    word_column="word",
    tag_column="tag",
    sentence_marker="every-token",
    encoding="latin-1",
)


def read_head(path: str, n_bytes: int = 64 * 1024) -> bytes:
    """The first bytes of a file, with a clear error if it cannot be opened."""
    with reading(path, also=(ValueError,)), fsspec.open(path, "rb") as f:
        return f.read(n_bytes)


def read_header(path: str, encoding: str, delimiter: str = ",") -> list[str]:
    """Column names from the first line of a delimited file."""
    head = read_head(path)
    if not head.strip():
        raise InputError(path, "file is empty")
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    text = first_line.decode(encoding, errors="replace").lstrip("\ufeff")
    return next(csv.reader(io.StringIO(text), delimiter=delimiter))


def detect_format(path: str) -> CorpusFormat:
    """Guess the format of one corpus file from its name and first lines.

    Order of evidence: a ``.parquet`` suffix; a header with the GMB columns; a
    header with the tutorial columns; otherwise, lines that split on whitespace
    into a constant number (>= 2) of columns with blank lines between sentences
    (CoNLL). Anything else must be given explicitly with ``--format csv`` and a
    column mapping.
    """
    lowered = path.lower()
    if lowered.endswith((".parquet", ".pq")):
        return CorpusFormat.PARQUET
    head = read_head(path)
    if not head.strip():
        raise InputError(path, "file is empty")
    first = head.split(b"\n", 1)[0].decode("latin-1").lstrip("\ufeff").strip()
    if "," in first:
        header = next(csv.reader(io.StringIO(first)))
        names = set(header)
        if {GMB_LAYOUT.sentence_column, GMB_LAYOUT.word_column, GMB_LAYOUT.tag_column} <= names:
            return CorpusFormat.GMB
        if {TUTORIAL_LAYOUT.sentence_column, TUTORIAL_LAYOUT.word_column, TUTORIAL_LAYOUT.tag_column} <= names:
            return CorpusFormat.TUTORIAL
    lines = [ln for ln in head.decode("latin-1").splitlines()[:200] if ln.strip()]
    widths = {len(ln.split()) for ln in lines[:-1] or lines}
    if len(widths) == 1 and min(widths) >= 2 and "," not in first:
        return CorpusFormat.CONLL
    raise InputError(
        path,
        "cannot tell the format from the first lines; give --format "
        "(gmb, tutorial, conll, csv with --sentence-column/--word-column/--tag-column, parquet)",
    )
