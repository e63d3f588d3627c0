"""Document dumps for tagging: read them, and set bad documents aside with a reason.

Inputs are one or many files (paths, globs or fsspec URLs; sorted per glob, the
same file listed twice is read once) in Parquet, CSV or JSON Lines (``.csv`` and
``.jsonl`` may be compressed, e.g. ``.csv.gz``). Each file has one of two layouts:

- **documents**: one row per document, an id column and a text column.
- **tokens**: a token table tokenised upstream (``word``, ``token_index`` and a
  ``doc_id`` and/or ``sentence_id`` column, no tags). There is no raw text: a
  document's text is its tokens joined by single spaces
  (:func:`nerbatch.tokenize.join_pretokenized`) and character offsets refer to
  that text. Sentences come from ``sentence_id`` (a document without it is one
  sentence; without ``doc_id`` every sentence is a document); tokens are ordered by
  ``token_index``, sentences by first appearance. The tokens are kept as given in
  the ``sentences`` column and must not be re-tokenised.

``row`` says where a document came from, 1-based: the line where the record starts
for CSV (the header is line 1) and JSON Lines, the row in the file for Parquet; for
a token table, that of the document's first token.

Partitions: one per Parquet row group (one per file for Parquet token tables), one
per CSV or JSON Lines file, which is read whole: split very large dumps into
several files or write Parquet with bounded row groups.

Bad input never stops a run: it becomes a reject row (see :class:`RejectReason`).
Duplicate ids: the first occurrence in input order (files in the order given, then
``row``) is kept and the later ones are rejected, across all files of one
:func:`read_documents` call (an extra pass over the ids); :func:`read_part` alone
only sees its own partition. A file-level problem (missing, empty, unreadable, a
required column missing) raises :class:`DocumentInputError` naming the file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

import dask.dataframe as dd
import fsspec
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from nerbatch.checksums import file_sha256
from nerbatch.corpus.readers import expand_paths
from nerbatch.errors import InputError, reading
from nerbatch.tokenize import join_pretokenized

#: Columns of a documents frame (what the tagger consumes).
DOCUMENT_COLUMNS = ["doc_id", "text", "source_file", "row", "sentences"]
#: Columns of a rejects frame; the order of ``tables.DOCUMENT_REJECT_SCHEMA``.
REJECT_COLUMNS = ["source_file", "row", "doc_id", "reason", "detail", "text"]
#: Columns of what the readers return: documents and rejects together.
READ_COLUMNS = [*DOCUMENT_COLUMNS, "reason", "detail"]

_COMPRESSIONS = (".gz", ".bz2", ".xz", ".zst")
# An Arrow list type, not ``object``: Dask would turn an object column into strings.
SENTENCES_DTYPE = pd.ArrowDtype(pa.list_(pa.list_(pa.string())))
# Order of a row in the whole input, for "first occurrence": file index * 2**40 + row.
_ROW_BITS = 40
# Python's csv module refuses fields above 128 KiB by default; a 5 MB document must
# be read whole. This is a process-wide setting: it is only ever raised.
_CSV_FIELD_LIMIT = 2**31 - 1

Format = Literal["auto", "parquet", "csv", "jsonl"]
Layout = Literal["auto", "documents", "tokens"]


class DocumentInputError(InputError):
    """A whole document dump file cannot be used: missing, empty, unreadable, or lacking a column."""


class RejectReason(str, Enum):
    """Why a document (or an input row) was set aside."""

    NULL_ID = "null_id"  # missing, null or blank id
    EMPTY_TEXT = "empty_text"  # missing, null, empty or whitespace-only text
    INVALID_UTF8 = "invalid_utf8"  # undecodable bytes (or a lone surrogate in JSON) in a used field
    MALFORMED_ROW = "malformed_row"  # wrong number of CSV fields, bad JSON, wrong value type
    DUPLICATE_ID = "duplicate_id"  # an id seen earlier in the input
    TOO_LONG = "too_long"  # text longer than ``max_text_chars`` (off by default)
    INVALID_TOKENS = "invalid_tokens"  # token table: bad or missing token / index / sentence id


class DocumentOptions(BaseModel):
    """How to read document dumps. Column names are the user's, never the code's."""

    model_config = ConfigDict(frozen=True)

    id_column: str = "doc_id"
    text_column: str = "text"
    fmt: Format = "auto"  # "auto": from the file extension
    layout: Layout = "auto"  # "auto": documents, unless there is no text column but a word / token index one
    sentence_column: str = "sentence_id"
    token_index_column: str = "token_index"
    word_column: str = "word"
    csv_delimiter: str = Field(default=",", min_length=1, max_length=1)
    max_text_chars: int | None = Field(default=None, ge=1)  # None: no size cap


class InputFile(BaseModel):
    """An input file as recorded in manifests."""

    model_config = ConfigDict(frozen=True)

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class DocumentPart:
    """One partition to read: a whole file, or one Parquet row group of it."""

    path: str
    file_index: int  # position in the run's list of files: the order of "first occurrence"
    fmt: Literal["parquet", "csv", "jsonl"]
    layout: Layout  # "auto" only for JSON Lines, decided when the file is read
    row_group: int | None = None
    first_row: int = 1  # 1-based row number (in the file) of the part's first row


# -- planning (driver side, cheap) ---------------------------------------------


Paths = str | os.PathLike | Sequence[str | os.PathLike]


def plan_documents(paths: Paths, options: DocumentOptions) -> list[DocumentPart]:
    """The partitions to read, after checking each file exists, is not empty and has the columns.

    Parquet footers and CSV headers are read here, so a missing column fails before
    any work starts; JSON Lines files are checked when read.
    """
    parts: list[DocumentPart] = []
    for file_index, path in enumerate(_expand(paths)):
        fmt = _format_of(path, options.fmt)
        _check_not_empty(path)
        if fmt == "parquet":
            parts.extend(_plan_parquet(path, file_index, options))
        elif fmt == "csv":
            header = _csv_header(path, options.csv_delimiter)
            parts.append(DocumentPart(path, file_index, fmt, _layout_of(path, header, options)))
        else:
            parts.append(DocumentPart(path, file_index, fmt, options.layout))
    return parts


def _expand(paths: Paths) -> list[str]:
    items = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    if not items:
        raise ValueError("no input paths given")
    try:
        return expand_paths(items)
    except InputError as exc:
        raise DocumentInputError(exc.path, exc.message, exc.line) from None


def _format_of(path: str, fmt: Format) -> Literal["parquet", "csv", "jsonl"]:
    if fmt != "auto":
        return fmt
    name = path.lower()
    for suffix in _COMPRESSIONS:
        name = name.removesuffix(suffix)
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    if name.endswith(".csv"):
        return "csv"
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    raise DocumentInputError(path, "cannot tell the format from the file name; give fmt='parquet', 'csv' or 'jsonl'")


def _check_not_empty(path: str) -> None:
    with reading(path, error=DocumentInputError):
        fs, fs_path = fsspec.core.url_to_fs(path)
        size = fs.size(fs_path)
    if not size:
        raise DocumentInputError(path, "file is empty")


def _layout_of(path: str, columns: Sequence[str], options: DocumentOptions) -> Layout:
    """Check the required columns are there and say which layout the file has."""
    names = set(columns)
    layout = options.layout
    if layout == "auto":  # a token table has no text column but a word or token index one
        looks_tokenised = bool({options.word_column, options.token_index_column} & names)
        layout = "tokens" if options.text_column not in names and looks_tokenised else "documents"
    if layout == "documents":
        missing = [c for c in (options.id_column, options.text_column) if c not in names]
    else:
        missing = [c for c in (options.word_column, options.token_index_column) if c not in names]
        if not {options.id_column, options.sentence_column} & names:
            missing.append(f"{options.id_column} or {options.sentence_column}")
    if missing:
        shown = ", ".join(repr(c) for c in missing)
        raise DocumentInputError(path, f"missing required column {shown} (columns: {', '.join(columns)})")
    return layout


def _plan_parquet(path: str, file_index: int, options: DocumentOptions) -> list[DocumentPart]:
    try:
        with fsspec.open(path, "rb") as f:
            metadata = pq.ParquetFile(f).metadata
    except (OSError, pa.ArrowException) as exc:
        raise DocumentInputError(path, f"not a readable Parquet file ({exc})") from None
    layout = _layout_of(path, metadata.schema.to_arrow_schema().names, options)
    if layout == "tokens":  # a document may span row groups: read the file whole
        return [DocumentPart(path, file_index, "parquet", layout)] if metadata.num_rows else []
    parts = []
    first_row = 1
    for group in range(metadata.num_row_groups):
        n_rows = metadata.row_group(group).num_rows
        if n_rows:
            parts.append(DocumentPart(path, file_index, "parquet", layout, group, first_row))
        first_row += n_rows
    return parts


# -- reading one partition (worker side) ---------------------------------------


@dataclass
class _Rows:
    """Raw rows of one partition: values of the used columns, or why the row is bad."""

    columns: list[str]  # the used columns present in the file
    row: list[int] = field(default_factory=list)
    values: list[dict[str, Any]] = field(default_factory=list)
    problem: list[tuple[RejectReason, str] | None] = field(default_factory=list)
    raw: list[str | None] = field(default_factory=list)  # the row's text, kept aside if bad

    def add(
        self,
        row: int,
        values: dict[str, Any],
        problem: tuple[RejectReason, str] | None = None,
        raw: str | None = None,
    ) -> None:
        self.row.append(row)
        self.values.append(values)
        self.problem.append(problem)
        self.raw.append(raw)


@dataclass
class _Out:
    """Builds the frame :func:`read_part` returns."""

    source_file: str
    columns: dict[str, list[Any]] = field(default_factory=lambda: {c: [] for c in READ_COLUMNS})

    def accept(self, row: int, doc_id: str, text: str, sentences: list[list[str]] | None = None) -> None:
        self._add(row, doc_id, text, sentences, None, None)

    def reject(
        self, row: int, reason: RejectReason, detail: str, doc_id: str | None = None, text: str | None = None
    ) -> None:
        self._add(row, doc_id, text, None, reason.value, detail)

    def _add(
        self,
        row: int,
        doc_id: str | None,
        text: str | None,
        sentences: list[list[str]] | None,
        reason: str | None,
        detail: str | None,
    ) -> None:
        for name, value in zip(
            READ_COLUMNS, (doc_id, text, self.source_file, row, sentences, reason, detail), strict=True
        ):
            self.columns[name].append(value)

    def frame(self) -> pd.DataFrame:
        return _typed(pd.DataFrame(self.columns, columns=READ_COLUMNS))


def read_part(part: DocumentPart, options: DocumentOptions, first_seen: FirstSeen | None = None) -> pd.DataFrame:
    """Read one partition: documents and rejects together, in input order.

    Returns columns ``doc_id`` (string), ``text`` (string), ``source_file``
    (string), ``row`` (int64), ``sentences`` (:data:`SENTENCES_DTYPE`, Arrow
    ``list<list<string>>``: null for raw text, else the upstream tokens as a list
    of sentences; an element reads back as a Python list of lists), ``reason``
    (string, ``<NA>`` for an accepted document, else a :class:`RejectReason` value)
    and ``detail`` (string: a human-readable explanation for rejects).

    An id repeated within the partition is rejected after its first occurrence;
    ``first_seen`` (from :func:`find_first_occurrences`) extends that to the run.
    """
    rows = _read_rows(part, options)
    # CSV and Parquet were checked when planned; JSON Lines has no header to check.
    layout = _layout_of(part.path, rows.columns, options) if part.fmt == "jsonl" else part.layout
    out = _Out(part.path)
    if layout == "documents":
        _documents(rows, options, out)
    else:
        _token_documents(rows, options, out)
    frame = _reject_too_long(out.frame(), options.max_text_chars)
    return _reject_duplicates(frame, part.file_index, first_seen or {})


def _read_rows(part: DocumentPart, options: DocumentOptions) -> _Rows:
    with reading(part.path, error=DocumentInputError, also=(pa.ArrowException,)):  # e.g. a truncated .gz or Parquet
        if part.fmt == "parquet":
            return _parquet_rows(part, options)
        if part.fmt == "csv":
            return _csv_rows(part.path, options)
        return _jsonl_rows(part.path, options)


def _used_columns(options: DocumentOptions) -> list[str]:
    names = (options.id_column, options.text_column, options.sentence_column)
    return list(dict.fromkeys([*names, options.token_index_column, options.word_column]))


def _parquet_rows(part: DocumentPart, options: DocumentOptions) -> _Rows:
    with fsspec.open(part.path, "rb") as f:
        parquet = pq.ParquetFile(f)
        present = [c for c in _used_columns(options) if c in parquet.schema_arrow.names]
        if part.row_group is None:
            table = parquet.read(columns=present)
        else:
            table = parquet.read_row_group(part.row_group, columns=present)
    rows = _Rows(present)
    columns = {name: _parquet_values(table.column(name)) for name in present}
    for i in range(table.num_rows):
        values = {name: columns[name][i] for name in present}
        rows.add(part.first_row + i, values, _invalid_text(values), None)
    for i, values in enumerate(rows.values):  # keep the bad row's text aside, escaped
        if rows.problem[i] is not None:
            rows.raw[i] = _printable(json.dumps(values, ensure_ascii=False, default=str))
    return rows


def _parquet_values(column: pa.ChunkedArray) -> list[Any]:
    """Python values of a column; text that is not valid UTF-8 comes back surrogate-escaped."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            column.validate(full=True)
            return column.to_pylist()
        except pa.ArrowInvalid:  # Parquet writers do not all validate UTF-8
            column = column.cast(pa.large_binary() if pa.types.is_large_string(kind) else pa.binary())
            kind = column.type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return [None if b is None else b.decode("utf-8", "surrogateescape") for b in column.to_pylist()]
    return column.to_pylist()


def _open_text(path: str) -> io.TextIOWrapper:
    # surrogateescape: bad bytes survive decoding, so one bad row does not stop the file.
    binary = fsspec.open(path, "rb", compression="infer").open()
    return io.TextIOWrapper(binary, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _csv_records(path: str, delimiter: str) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """``(start line, fields, error)`` for each non-blank record of a CSV file."""
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    with _open_text(path) as stream:
        reader = csv.reader(stream, delimiter=delimiter)
        while True:
            start = reader.line_num + 1
            try:
                record = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start, None, str(exc)
                if reader.line_num < start:  # no progress: give up on the rest
                    return
                continue
            if record:
                yield start, record, None


def _csv_header(path: str, delimiter: str) -> list[str]:
    with reading(path, error=DocumentInputError):  # includes a corrupt .gz
        for _, record, error in _csv_records(path, delimiter):
            if error is not None:
                raise DocumentInputError(path, f"the header cannot be parsed ({error})", 1)
            return [name.strip() for name in record or []]
    raise DocumentInputError(path, "file has no header line")


def _csv_rows(path: str, options: DocumentOptions) -> _Rows:
    records = _csv_records(path, options.csv_delimiter)
    header: list[str] | None = None
    rows: _Rows | None = None
    for line, record, error in records:
        if header is None:
            if record is None:
                raise DocumentInputError(path, f"the header cannot be parsed ({error})", line)
            header = [name.strip() for name in record]
            index = {name: header.index(name) for name in _used_columns(options) if name in header}
            rows = _Rows(list(index))
            continue
        assert rows is not None
        if record is None:
            rows.add(line, {}, (RejectReason.MALFORMED_ROW, f"CSV error: {error}"))
            continue
        raw = options.csv_delimiter.join(record)
        if len(record) != len(header):
            problem = (RejectReason.MALFORMED_ROW, f"expected {len(header)} fields, found {len(record)}")
            rows.add(line, {}, problem, _printable(raw))
            continue
        values = {name: record[i] for name, i in index.items()}
        problem = _invalid_text(values)
        rows.add(line, values, problem, _printable(raw) if problem else None)
    if rows is None:
        raise DocumentInputError(path, "file has no header line")
    return rows


def _jsonl_rows(path: str, options: DocumentOptions) -> _Rows:
    used = _used_columns(options)
    rows = _Rows([])
    seen: dict[str, None] = {}
    objects = 0
    with fsspec.open(path, "rb", compression="infer") as f:
        for line, data in enumerate(f, start=1):
            data = data.strip()
            if not data:
                continue
            try:
                obj = json.loads(data.decode("utf-8"))
            except UnicodeDecodeError as exc:
                detail = f"invalid UTF-8 byte 0x{data[exc.start]:02X} at byte {exc.start}"
                rows.add(line, {}, (RejectReason.INVALID_UTF8, detail), data.decode("utf-8", "backslashreplace"))
                continue
            except json.JSONDecodeError as exc:
                rows.add(line, {}, (RejectReason.MALFORMED_ROW, f"invalid JSON: {exc.msg}"), data.decode("utf-8"))
                continue
            if not isinstance(obj, dict):
                rows.add(line, {}, (RejectReason.MALFORMED_ROW, "not a JSON object"), data.decode("utf-8"))
                continue
            objects += 1
            values = {name: obj[name] for name in used if name in obj}
            seen.update(dict.fromkeys(values))
            problem = _invalid_text(values)
            rows.add(line, values, problem, _printable(data.decode("utf-8")) if problem else None)
    if rows.row and not objects:
        raise DocumentInputError(path, "no line is a JSON object: not a JSON Lines file")
    rows.columns = [name for name in used if name in seen]
    return rows


def _invalid_text(values: Mapping[str, Any]) -> tuple[RejectReason, str] | None:
    """The first used field holding text that is not valid Unicode, if any."""
    for name, value in values.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                bad = value[exc.start]
                if "\udc80" <= bad <= "\udcff":  # an undecodable byte, escaped by surrogateescape
                    what = f"byte 0x{ord(bad) - 0xDC00:02X}"
                else:
                    what = f"lone surrogate U+{ord(bad):04X}"
                return RejectReason.INVALID_UTF8, f"invalid UTF-8 ({what}) in column {name!r} at character {exc.start}"
    return None


def _printable(text: str) -> str:
    """``text`` with undecodable bytes as ``\\xNN`` and lone surrogates as ``\\udNNN``."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _as_id(value: Any) -> str | None:
    """A document id as a string; ``None`` if missing or blank. Raises TypeError for other types."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise TypeError(f"id is a {type(value).__name__}, not a string or integer")
    text = str(value)
    return text if text.strip() else None


def _documents(rows: _Rows, options: DocumentOptions, out: _Out) -> None:
    for row, values, problem, raw in zip(rows.row, rows.values, rows.problem, rows.raw, strict=True):
        if problem is not None:
            out.reject(row, problem[0], problem[1], _safe_id(values.get(options.id_column)), raw)
            continue
        text = values.get(options.text_column)
        try:
            doc_id = _as_id(values.get(options.id_column))
        except TypeError as exc:
            out.reject(row, RejectReason.MALFORMED_ROW, str(exc), None, _text_or_none(text))
            continue
        if text is not None and not isinstance(text, str):
            out.reject(row, RejectReason.MALFORMED_ROW, f"text is a {type(text).__name__}, not a string", doc_id)
        elif doc_id is None:
            out.reject(row, RejectReason.NULL_ID, "the id is missing or blank", None, text)
        elif text is None or not text.strip():
            out.reject(row, RejectReason.EMPTY_TEXT, "the text is missing, empty or only whitespace", doc_id, text)
        else:
            out.accept(row, doc_id, text)


def _safe_id(value: Any) -> str | None:
    try:
        doc_id = _as_id(value)
    except TypeError:
        return None
    return None if doc_id is None else _printable(doc_id)


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


@dataclass
class _TokenDoc:
    first_row: int
    sentences: dict[str, list[tuple[int, str]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _token_documents(rows: _Rows, options: DocumentOptions, out: _Out) -> None:
    """Group token rows into documents (first appearance order) and check them."""
    doc_column = options.id_column if options.id_column in rows.columns else options.sentence_column
    sentence_column = options.sentence_column if options.sentence_column in rows.columns else None
    docs: dict[str, _TokenDoc] = {}
    for row, values, problem, raw in zip(rows.row, rows.values, rows.problem, rows.raw, strict=True):
        doc_id = _safe_id(values.get(doc_column))
        if problem is not None:
            out.reject(row, problem[0], problem[1], doc_id, raw)
            if doc_id is not None:  # the document misses a token: set it aside too
                docs.setdefault(doc_id, _TokenDoc(row)).problems.append(f"row {row}: {problem[0].value}")
            continue
        if doc_id is None:
            word = _text_or_none(values.get(options.word_column))
            out.reject(row, RejectReason.NULL_ID, f"the {doc_column} is missing or blank", None, word)
            continue
        doc = docs.setdefault(doc_id, _TokenDoc(row))
        sentence = _safe_id(values.get(sentence_column)) if sentence_column else ""
        word = values.get(options.word_column)
        index = _token_index(values.get(options.token_index_column))
        if sentence is None:
            doc.problems.append(f"row {row}: no {sentence_column}")
        elif index is None:
            doc.problems.append(f"row {row}: {options.token_index_column} is not an integer")
        elif not isinstance(word, str) or not word:
            doc.problems.append(f"row {row}: {options.word_column} is missing or empty")
        else:
            doc.sentences.setdefault(sentence, []).append((index, word))
    for doc_id, doc in docs.items():
        sentences = [[word for _, word in sorted(tokens, key=lambda t: t[0])] for tokens in doc.sentences.values()]
        for key, tokens in doc.sentences.items():
            indexes = [i for i, _ in tokens]
            if len(set(indexes)) != len(indexes):
                doc.problems.append(f"sentence {key!r}: repeated {options.token_index_column}")
        if doc.problems:
            detail = "; ".join(doc.problems[:5])
            if len(doc.problems) > 5:
                detail += f"; and {len(doc.problems) - 5} more"
            out.reject(doc.first_row, RejectReason.INVALID_TOKENS, detail, doc_id, join_pretokenized(sentences))
        elif sentences:
            out.accept(doc.first_row, doc_id, join_pretokenized(sentences), sentences)


def _token_index(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for name in ("doc_id", "text", "source_file", "reason", "detail"):
        frame[name] = frame[name].astype("string")
    frame["row"] = frame["row"].astype("int64")
    frame["sentences"] = pd.Series(pd.array(frame["sentences"].tolist(), dtype=SENTENCES_DTYPE), index=frame.index)
    return frame


def empty_read_frame() -> pd.DataFrame:
    """A frame with the columns and dtypes of :func:`read_part`, and no rows."""
    return _typed(pd.DataFrame({c: [] for c in READ_COLUMNS}, columns=READ_COLUMNS))


def _reject_too_long(frame: pd.DataFrame, max_chars: int | None) -> pd.DataFrame:
    if max_chars is None:
        return frame
    too_long = (frame["reason"].isna() & (frame["text"].str.len() > max_chars)).fillna(False)
    if too_long.any():
        frame = frame.copy()
        frame.loc[too_long, "reason"] = RejectReason.TOO_LONG.value
        lengths = frame.loc[too_long, "text"].str.len()
        frame.loc[too_long, "detail"] = [f"{n} characters, more than the cap of {max_chars}" for n in lengths]
    return frame


#: For ids seen more than once in a run: ``doc_id -> (file_index, row, source_file)`` of
#: the occurrence that is kept (the first in input order).
FirstSeen = Mapping[str, tuple[int, int, str]]


def _reject_duplicates(frame: pd.DataFrame, file_index: int, first_seen: FirstSeen) -> pd.DataFrame:
    """Reject accepted rows whose id was kept earlier: in ``first_seen``, else in this frame."""
    kept: dict[str, tuple[int, int, str]] = {}
    losers: list[int] = []
    details: list[str] = []
    accepted = frame["reason"].isna().to_numpy()
    for i, (doc_id, row, source) in enumerate(zip(frame["doc_id"], frame["row"], frame["source_file"], strict=True)):
        if not accepted[i]:
            continue
        here = (file_index, int(row), source)
        winner = first_seen.get(doc_id) or kept.setdefault(doc_id, here)
        if winner[:2] != here[:2]:
            losers.append(i)
            details.append(f"duplicate of the document at {winner[2]} row {winner[1]}")
    if not losers:
        return frame
    frame = frame.copy()
    frame.iloc[losers, frame.columns.get_loc("reason")] = RejectReason.DUPLICATE_ID.value
    frame.iloc[losers, frame.columns.get_loc("detail")] = details
    return frame


# -- the whole run ---------------------------------------------------------------


def read_documents(
    paths: Paths,
    options: DocumentOptions | None = None,
    *,
    dedupe: Literal["run", "partition"] = "run",
) -> dd.DataFrame:
    """All documents and rejects of a run as a Dask DataFrame (columns of :func:`read_part`).

    ``dedupe="run"`` rejects an id seen earlier in any file of this call; it costs
    one extra pass over the input, computed here (eagerly, see
    :func:`find_first_occurrences`). ``"partition"`` only
    compares ids within a partition. Raises :class:`DocumentInputError` for a file
    that cannot be used (missing, empty, unreadable, a required column missing).
    """
    options = options or DocumentOptions()
    parts = plan_documents(paths, options)
    meta = empty_read_frame()
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    first_seen = find_first_occurrences(parts, options) if dedupe == "run" else {}
    return dd.from_map(
        read_part,
        parts,
        options=options,
        first_seen=first_seen,
        meta=meta,
        label="read-documents",
        enforce_metadata=False,
    )


def find_first_occurrences(parts: Sequence[DocumentPart], options: DocumentOptions) -> dict[str, tuple[int, int, str]]:
    """For each id accepted in more than one partition: where its first occurrence is.

    One Dask pass over the input (computed now); only repeated ids reach the driver.
    Returns ``doc_id -> (file_index, row, source_file)``.
    """
    paths = {part.file_index: part.path for part in parts}
    frame = dd.from_map(read_part, parts, options=options, meta=empty_read_frame(), enforce_metadata=False)
    accepted = frame[frame["reason"].isna()][["doc_id", "source_file", "row"]]
    order = {path: index for index, path in paths.items()}
    ordinals = accepted.map_partitions(_with_ordinal, order, meta={"doc_id": "string", "ordinal": "int64"})
    stats = ordinals.groupby("doc_id")["ordinal"].agg(["min", "count"])
    repeated = stats[stats["count"] > 1]["min"].compute()
    first_seen = {}
    for doc_id, ordinal in repeated.items():
        file_index, row = divmod(int(ordinal), 1 << _ROW_BITS)
        first_seen[str(doc_id)] = (file_index, row, paths[file_index])
    return first_seen


def _with_ordinal(frame: pd.DataFrame, order: Mapping[str, int]) -> pd.DataFrame:
    ordinal = [(order[s] << _ROW_BITS) + int(r) for s, r in zip(frame["source_file"], frame["row"], strict=True)]
    return pd.DataFrame({"doc_id": frame["doc_id"], "ordinal": pd.array(ordinal, dtype="int64")}, index=frame.index)


Frame = pd.DataFrame | dd.DataFrame


def split_rejects(frame: Frame) -> tuple[Frame, Frame]:
    """``(documents, rejects)`` from a frame of :func:`read_part` / :func:`read_documents`.

    ``documents`` has :data:`DOCUMENT_COLUMNS` (doc_id, text, source_file, row,
    sentences); ``rejects`` has :data:`REJECT_COLUMNS` (source_file, row, doc_id,
    reason, detail, text), the columns of ``tables.DOCUMENT_REJECT_SCHEMA``.
    Works on pandas and Dask frames alike.
    """
    bad = ~frame["reason"].isna()
    return frame[~bad][DOCUMENT_COLUMNS], frame[bad][REJECT_COLUMNS]


# -- fingerprints ------------------------------------------------------------------


def fingerprint_inputs(paths: Paths) -> list[InputFile]:
    """Size and SHA-256 of each input file (globs expanded), hashed in 1 MiB blocks."""
    files = []
    for path in _expand(paths):
        with reading(path, error=DocumentInputError):
            size, sha256 = file_sha256(path)
        files.append(InputFile(path=path, size=size, sha256=sha256))
    return files
