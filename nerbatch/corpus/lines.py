"""Parse a byte range of whole lines into a *line frame*, one row per non-blank line.

Line frame columns: ``line`` (int64, physical 1-based line number in the file),
``key`` (sentence cell; None when the line could not be parsed), ``word``,
``tag``, ``reason`` (None when the line parsed; else why it is rejected) and
``raw`` (the line's text for rejected lines). Blank lines are not rows; their
count is returned beside the frame.

CSV lines go through pyarrow's parser (the only one that handles a bad first
line of a block, see the field notes); we check that rows map one-to-one onto
physical lines and fall back to a line-by-line parse when they don't (bad
quoting that swallows newlines, undecodable bytes), so every reject carries
its exact line number.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from nerbatch.corpus.layouts import ConllLayout

LINE_FRAME_COLUMNS = ["line", "key", "word", "tag", "reason", "raw"]
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
    frame: pd.DataFrame
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


def _empty_frame() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype="int64" if c == "line" else object) for c in LINE_FRAME_COLUMNS})


def parse_csv_lines(data: bytes, first_line: int, at_start: bool, cols: CsvColumns) -> ParsedLines:
    """Parse whole CSV lines (no header) starting at physical line ``first_line``.

    ``at_start`` is unused: CSV rows say themselves whether they start a sentence.
    """
    starts, ends = line_spans(data)
    nonblank = np.flatnonzero(ends > starts)
    n_lines, n_blank = len(starts), len(starts) - len(nonblank)
    if len(nonblank) == 0:
        return ParsedLines(_empty_frame(), n_lines, n_blank)
    frame = _parse_csv_fast(data, cols, len(nonblank))
    if frame is None:
        frame = _parse_csv_by_line(data, starts[nonblank], ends[nonblank], cols)
    frame.insert(0, "line", (first_line + nonblank).astype("int64"))
    bad = frame["reason"].notna().to_numpy()
    if bad.any():
        # The raw text of a rejected line, decoded leniently so it can always be shown.
        idx = nonblank[bad]
        frame.loc[bad, "raw"] = [
            data[s:e].decode(cols.encoding, errors="backslashreplace") for s, e in zip(starts[idx], ends[idx])
        ]
    return ParsedLines(frame[LINE_FRAME_COLUMNS], n_lines, n_blank)


def _parse_csv_fast(data: bytes, cols: CsvColumns, n_rows: int) -> pd.DataFrame | None:
    """pyarrow parse; None when rows do not map one-to-one onto non-blank lines."""
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
    valid = np.ones(n_rows, dtype=bool)
    reason = np.full(n_rows, None, dtype=object)
    for number, why in invalid:
        valid[number - 1] = False
        reason[number - 1] = why
    columns = {"key": None, "word": None, "tag": None}
    for i, name in wanted.items():
        column = np.full(n_rows, None, dtype=object)
        column[valid] = table.column(names[i]).to_numpy(zero_copy_only=False)
        columns[name] = column
    # dtype=object throughout: pandas 3 would otherwise infer ``str`` and turn None into NaN.
    return pd.DataFrame({**columns, "reason": reason, "raw": np.full(n_rows, None, dtype=object)}, dtype=object)


def _parse_csv_by_line(data: bytes, starts: np.ndarray, ends: np.ndarray, cols: CsvColumns) -> pd.DataFrame:
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
    return pd.DataFrame(rows, columns=["key", "word", "tag", "reason", "raw"], dtype=object)


def parse_conll_lines(data: bytes, first_line: int, at_start: bool, layout: ConllLayout) -> ParsedLines:
    """Parse CoNLL lines. Blank lines and ``-DOCSTART-`` lines end a sentence.

    ``at_start`` says whether ``data`` begins at a sentence start (after a blank
    line or at the top of the file); mid-file byte blocks pass False.

    The sentence key of a CoNLL sentence is the line number of its first token
    (``L<line>``), filled in here so that sentence grouping can treat CoNLL like
    a ``first-token`` layout.
    """
    starts, ends = line_spans(data)
    rows: list[tuple] = []
    n_blank = 0
    at_sentence_start = at_start
    for i, (s, e) in enumerate(zip(starts, ends)):
        line_no = first_line + i
        raw = data[s:e]
        if not raw.strip() or raw.startswith(DOCSTART.encode()):
            n_blank += 1
            at_sentence_start = True
            continue
        key = f"L{line_no}" if at_sentence_start else ""
        at_sentence_start = False
        try:
            fields = raw.decode(layout.encoding).split()
        except UnicodeDecodeError as exc:
            rows.append((line_no, key, None, None, f"not valid {layout.encoding} (byte {exc.start + 1})",
                         raw.decode(layout.encoding, errors="backslashreplace")))
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
    frame = pd.DataFrame(rows, columns=LINE_FRAME_COLUMNS, dtype=object) if rows else _empty_frame()
    frame["line"] = frame["line"].astype("int64")
    return ParsedLines(frame, len(starts), n_blank)
