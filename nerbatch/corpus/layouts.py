"""Input formats and how to recognise them.

A *layout* says where the sentence key, the word and the tag are in a file and
how sentences are marked. Names of columns come from here and from the user's
options, never from the code that parses.
"""

from __future__ import annotations

import codecs
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


#: Byte-order marks of encodings whose lines cannot be found by their bytes.
WIDE_BOMS = {codecs.BOM_UTF32_LE: "UTF-32", codecs.BOM_UTF32_BE: "UTF-32", codecs.BOM_UTF16_LE: "UTF-16",
             codecs.BOM_UTF16_BE: "UTF-16"}


def bom_length(head: bytes) -> int:
    """Length of a UTF-8 byte-order mark at the start of ``head`` (0 without one)."""
    return len(codecs.BOM_UTF8) if head.startswith(codecs.BOM_UTF8) else 0


def refuse_wide_bom(path: str, head: bytes) -> None:
    """One clear error for a file that starts with a UTF-16 or UTF-32 byte-order mark."""
    for bom, name in WIDE_BOMS.items():
        if head.startswith(bom):
            raise InputError(path, f"file is {name} (it starts with a {name} byte-order mark); "
                                   f"convert it to UTF-8 first, e.g. iconv -f {name} -t UTF-8")


def check_encoding(path: str, encoding: str) -> None:
    """Refuse, with one line naming the file, an encoding Python does not know or
    one the readers cannot use: they find lines, fields and blocks by their bytes,
    so the encoding must write newlines and delimiters as ASCII does (UTF-8,
    latin-1, cp1252 ... but not UTF-16 or UTF-32)."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(path, f"unknown encoding {encoding!r}") from None
    if not "\n,;\t |".encode(encoding, errors="replace").endswith(b"\n,;\t |"):  # endswith: utf-8-sig adds a BOM
        raise InputError(path, f"encoding {encoding} is not supported (lines are split on their bytes); "
                               f"convert the file to UTF-8 first, e.g. iconv -f {encoding} -t UTF-8")


def read_head(path: str, n_bytes: int = 64 * 1024) -> bytes:
    """The first bytes of a file, with a clear error if it cannot be opened."""
    with reading(path, also=(ValueError,)), fsspec.open(path, "rb") as f:
        return f.read(n_bytes)


def read_header(path: str, encoding: str, delimiter: str = ",") -> list[str]:
    """Column names from the first line of a delimited file."""
    head = read_head(path)
    head = head[bom_length(head):]
    if not head.strip():
        raise InputError(path, "file is empty")
    first_line = head.split(b"\n", 1)[0].rstrip(b"\r")
    text = first_line.decode(encoding, errors="replace")
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
    refuse_wide_bom(path, head)
    head = head[bom_length(head):]
    if not head.strip():
        raise InputError(path, "file is empty")
    first = head.split(b"\n", 1)[0].decode("latin-1").strip()
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
