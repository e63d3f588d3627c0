"""Parse a byte range of whole lines into a *line frame* (an Arrow table), one
row per non-blank line.

Line frame columns: ``line`` (int64, physical 1-based line number in the file),
``key`` (sentence cell; None when the line could not be parsed), ``word``,
``tag``, ``reason`` (None when the line parsed; else why it is rejected) and
``raw`` (the line's text for rejected lines). Blank lines are not rows; their
count is returned beside the frame.

CSV lines go through pyarrow's parser (the only one that handles a bad first
line of a block: given a malformed first line, pandas' C and python engines
infer an implicit index and shift every column of the block, silently; pandas
issue #47490); we check that rows map one-to-one onto
physical lines and fall back to a line-by-line parse when they don't (bad
quoting that swallows newlines, undecodable bytes), so every reject carries
its exact line number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from nerbatch.corpus.layouts import ConllLayout

LINE_FRAME_SCHEMA = pa.schema(
    [("line", pa.int64()), ("key", pa.string()), ("word", pa.string()), ("tag", pa.string()),
     ("reason", pa.string()), ("raw", pa.string())]
)
DOCSTART = "-DOCSTART-"


@dataclass(frozen=True)
class CsvColumns:
    """Positions of the needed columns in a delimited file with ``width`` fields."""

    width: int
    sentence: int
    word: int
    tag: int
    delimiter: str = ","
    encoding: str = "utf-8"


@dataclass
class ParsedLines:
    frame: pa.Table  # LINE_FRAME_SCHEMA
    n_lines: int  # physical lines in the range, blank ones included
    n_blank: int


def line_spans(data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive, without ``\\r\\n``) byte offsets of each physical line."""
    buf = np.frombuffer(data, dtype=np.uint8)
    newlines = np.flatnonzero(buf == 10)
    starts = np.concatenate(([0], newlines + 1))
    ends = np.concatenate((newlines, [len(data)]))
    if len(data) == 0 or data.endswith(b"\n"):
        starts, ends = starts[:-1], ends[:-1]
    has_cr = (ends > starts) & (buf[np.maximum(ends - 1, 0)] == 13) if len(buf) else np.zeros(0, bool)
    ends = ends - has_cr.astype(ends.dtype)
    return starts, ends


def _empty_frame() -> pa.Table:
    return LINE_FRAME_SCHEMA.empty_table()


def parse_csv_lines(data: bytes, first_line: int, at_start: bool, cols: CsvColumns) -> ParsedLines:
    """Parse whole CSV lines (no header) starting at physical line ``first_line``.

    ``at_start`` is unused: CSV rows say themselves whether they start a sentence.
    """
    starts, ends = line_spans(data)
    nonblank = np.flatnonzero(ends > starts)
    n_lines, n_blank = len(starts), len(starts) - len(nonblank)
    if len(nonblank) == 0:
        return ParsedLines(_empty_frame(), n_lines, n_blank)
    columns = _parse_csv_fast(data, cols, len(nonblank))
    if columns is None:
        columns = _parse_csv_by_line(data, starts[nonblank], ends[nonblank], cols)
    reason = columns["reason"]
    raw = pa.nulls(len(nonblank), pa.string())
    if reason.null_count < len(reason):
        # The raw text of a rejected line, decoded leniently so it can always be shown.
        bad = np.flatnonzero(reason.is_valid().to_numpy(zero_copy_only=False))
        texts = np.full(len(nonblank), None, dtype=object)
        texts[bad] = [data[starts[i]:ends[i]].decode(cols.encoding, errors="backslashreplace") for i in nonblank[bad]]
        raw = pa.array(texts, pa.string())
    frame = pa.table(
        {"line": pa.array(first_line + nonblank, pa.int64()), **columns, "raw": raw}, schema=LINE_FRAME_SCHEMA
    )
    return ParsedLines(frame, n_lines, n_blank)


def _parse_csv_fast(data: bytes, cols: CsvColumns, n_rows: int) -> dict[str, pa.Array] | None:
    """pyarrow parse; None when rows do not map one-to-one onto non-blank lines.

    Returns Arrow arrays ``key``, ``word``, ``tag``, ``reason`` with one entry per
    non-blank line (fields null where the line was rejected).
    """
    invalid: list[tuple[int, str]] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, f"expected {row.expected_columns} fields, found {row.actual_columns}"))
        return "skip"

    names = [f"c{i}" for i in range(cols.width)]
    wanted = {cols.sentence: "key", cols.word: "word", cols.tag: "tag"}
    try:
        table = pacsv.read_csv(
            io.BytesIO(data),
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, encoding=cols.encoding),
            parse_options=pacsv.ParseOptions(
                delimiter=cols.delimiter, invalid_row_handler=on_invalid, ignore_empty_lines=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={names[i]: pa.string() for i in wanted},
                include_columns=[names[i] for i in sorted(wanted)],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError):
        return None  # undecodable bytes or a structural problem: go line by line
    if table.num_rows + len(invalid) != n_rows:
        return None  # a quote swallowed newlines: line numbers would be off
    reasons = np.full(n_rows, None, dtype=object)
    if invalid:
        # Spread the parsed rows over all lines, leaving nulls on the rejected ones.
        positions = np.full(n_rows, -1, dtype=np.int64)
        for number, why in invalid:
            reasons[number - 1] = why
        valid = np.flatnonzero(reasons == None)  # noqa: E711 (element-wise)
        positions[valid] = np.arange(len(valid))
        index = pa.array(positions, mask=positions < 0)
        table = table.take(index)
    columns = {name: table.column(names[i]).combine_chunks() for i, name in wanted.items()}
    return {"key": columns["key"], "word": columns["word"], "tag": columns["tag"], "reason": pa.array(reasons, pa.string())}


def _parse_csv_by_line(data: bytes, starts: np.ndarray, ends: np.ndarray, cols: CsvColumns) -> dict[str, pa.Array]:
    """Slow, exact path: each physical line parsed on its own."""
    rows: list[tuple] = []
    for s, e in zip(starts, ends):
        raw = data[s:e]
        try:
            text, reason = raw.decode(cols.encoding), None
        except UnicodeDecodeError as exc:
            # Rejected, but its (usually readable) sentence key still says which sentence it is in.
            text, reason = raw.decode(cols.encoding, errors="replace"), f"not valid {cols.encoding} (byte {exc.start + 1})"
        try:
            fields = next(csv.reader([text], delimiter=cols.delimiter, strict=True))
        except csv.Error as exc:
            rows.append((None, None, None, f"malformed CSV line, bad quoting ({exc})", None))
            continue
        if len(fields) != cols.width:
            rows.append((None, None, None, reason or f"expected {cols.width} fields, found {len(fields)}", None))
        elif reason:
            rows.append((fields[cols.sentence], None, None, reason, None))
        else:
            rows.append((fields[cols.sentence], fields[cols.word], fields[cols.tag], None, None))
    key, word, tag, reason, _ = zip(*rows) if rows else ((),) * 5
    return {n: pa.array(v, pa.string()) for n, v in (("key", key), ("word", word), ("tag", tag), ("reason", reason))}


def parse_conll_lines(data: bytes, first_line: int, at_start: bool, layout: ConllLayout) -> ParsedLines:
    """Parse CoNLL lines. Blank lines and ``-DOCSTART-`` lines end a sentence.

    ``at_start`` says whether ``data`` begins at a sentence start (after a blank
    line or at the top of the file); mid-file byte blocks pass False.

    The sentence key of a CoNLL sentence is the line number of its first token
    (``L<line>``), filled in here so that sentence grouping can treat CoNLL like
    a ``first-token`` layout. Columns are split on whitespace as ``str.split``
    does. Vectorised over Arrow arrays; a range with undecodable bytes goes
    line by line so that only the bad lines are rejected.
    """
    try:
        text = data.decode(layout.encoding)
    except UnicodeDecodeError:
        return _parse_conll_by_line(data, first_line, at_start, layout)
    utf8 = text.encode("utf-8")
    starts, _ = line_spans(utf8)
    n_lines = len(starts)
    if n_lines == 0:
        return ParsedLines(_empty_frame(), 0, 0)
    # One string per physical line, newline included (splitting drops it).
    offsets = pa.py_buffer(np.append(starts, len(utf8)).astype(np.int64))
    lines = pa.LargeStringArray.from_buffers(n_lines, offsets, pa.py_buffer(utf8))
    # Trimmed first: Arrow, unlike str.split, keeps empty fields at the ends.
    trimmed = pc.utf8_trim_whitespace(lines)
    fields = pc.utf8_split_whitespace(trimmed)
    blank = pc.equal(pc.binary_length(trimmed), 0).to_numpy(zero_copy_only=False)
    separator = blank | pc.starts_with(lines, DOCSTART).to_numpy(zero_copy_only=False)
    previous_separator = np.concatenate(([at_start], separator[:-1]))
    rows = np.flatnonzero(~separator)
    line = first_line + rows
    word, tag, reason, raw = _conll_columns(fields.take(pa.array(rows)), layout)
    key = pc.if_else(
        pa.array(previous_separator[rows]),
        pc.binary_join_element_wise("L", pa.array(line).cast(pa.string()), ""),
        "",
    )
    frame = pa.table(
        {"line": pa.array(line, pa.int64()), "key": key, "word": word, "tag": tag, "reason": reason, "raw": raw},
        schema=LINE_FRAME_SCHEMA,
    )
    return ParsedLines(frame, n_lines, n_lines - len(rows))


def _conll_columns(fields: pa.Array, layout: ConllLayout) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """``word``, ``tag``, ``reason`` and ``raw`` (string arrays) from the fields
    of each non-blank line (a list array); word and tag are null on rejected lines."""
    n = pc.list_value_length(fields).to_numpy(zero_copy_only=False)
    word_at, tag_at = (np.where(c < 0, n + c, c) for c in (layout.word_column, layout.tag_column))
    too_few = n < 2
    missing = ~too_few & ((tag_at < 0) | (tag_at >= n) | (word_at < 0) | (word_at >= n))
    ok = ~(too_few | missing)
    # Flat positions of each line's word and tag among all lines' fields.
    first_field = fields.offsets.to_numpy()[:-1]
    values = pc.list_flatten(fields)
    word = values.take(pa.array(first_field + word_at, mask=~ok)).cast(pa.string())
    tag = values.take(pa.array(first_field + tag_at, mask=~ok)).cast(pa.string())
    if ok.all():
        return word, tag, pa.nulls(len(n), pa.string()), pa.nulls(len(n), pa.string())
    reason = np.full(len(n), None, dtype=object)
    reason[too_few] = [f"expected at least 2 columns, found {k}" for k in n[too_few]]
    reason[missing] = [f"no column {layout.tag_column} in a line of {k}" for k in n[missing]]
    raw = np.full(len(n), None, dtype=object)
    bad = np.flatnonzero(~ok)
    raw[bad] = [" ".join(f) for f in fields.take(pa.array(bad)).to_pylist()]
    return word, tag, pa.array(reason, pa.string()), pa.array(raw, pa.string())


def _parse_conll_by_line(data: bytes, first_line: int, at_start: bool, layout: ConllLayout) -> ParsedLines:
    """Slow, exact path of :func:`parse_conll_lines`: each physical line on its own."""
    starts, ends = line_spans(data)
    rows: list[tuple] = []
    n_blank = 0
    at_sentence_start = at_start
    for i, (s, e) in enumerate(zip(starts, ends)):
        line_no = first_line + i
        raw = data[s:e]
        try:
            fields, reason = raw.decode(layout.encoding).split(), None
        except UnicodeDecodeError as exc:
            fields, reason = [None], f"not valid {layout.encoding} (byte {exc.start + 1})"
        if not fields or raw.startswith(DOCSTART.encode()):
            n_blank += 1
            at_sentence_start = True
            continue
        key = f"L{line_no}" if at_sentence_start else ""
        at_sentence_start = False
        if reason:
            rows.append((line_no, key, None, None, reason, raw.decode(layout.encoding, errors="backslashreplace")))
            continue
        text = " ".join(fields)
        if len(fields) < 2:
            rows.append((line_no, key, None, None, f"expected at least 2 columns, found {len(fields)}", text))
            continue
        try:
            word, tag = fields[layout.word_column], fields[layout.tag_column]
        except IndexError:
            rows.append((line_no, key, None, None, f"no column {layout.tag_column} in a line of {len(fields)}", text))
            continue
        rows.append((line_no, key, word, tag, None, None))
    columns = list(zip(*rows)) if rows else [[] for _ in LINE_FRAME_SCHEMA]
    frame = pa.table(dict(zip(LINE_FRAME_SCHEMA.names, columns)), schema=LINE_FRAME_SCHEMA)
    return ParsedLines(frame, len(starts), n_blank)
