"""Split files into byte blocks of whole lines, then move block edges onto
sentence starts, so that every partition holds whole sentences.

Pass 1 (``scan_block``, one Dask task per byte block) counts a block's lines
and parses just enough of its head to find its first sentence start; the
driver then makes that start the partition edge (``align_blocks``). Pass 2
parses the aligned ranges. Grouping tokens into sentences is then local to
each partition: no shuffle, and a sentence that spans any number of byte
blocks is still whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow as pa
from fsspec.utils import seek_delimiter

from nerbatch.corpus.lines import ParsedLines, line_spans
from nerbatch.corpus.tokens import has_sentence_key, sentence_starts
from nerbatch.errors import reading

#: Parses whole lines ``(data, first_line, at_sentence_start) -> ParsedLines``.
LineParser = Callable[[bytes, int, bool], ParsedLines]


@dataclass(frozen=True)
class ByteRange:
    path: str
    start: int
    end: int


@dataclass(frozen=True)
class BlockScan:
    """What pass 1 learned about one byte block."""

    n_lines: int
    # (line offset in block, byte offset in file) of the first row that starts a
    # sentence judging by this block alone (for every-token layouts, not counting
    # the first keyed row, whose status depends on the previous block).
    first_start: tuple[int, int] | None
    first_key: tuple[int, int, str] | None  # (line offset, byte offset, key) of the first keyed row
    last_key: str | None  # key of the last keyed row (every-token layouts only)


@dataclass(frozen=True)
class AlignedBlock:
    """A byte range of one file that begins at a sentence start (or the data start)."""

    path: str
    start: int
    end: int
    first_line: int  # physical 1-based line number of the range's first line


def plan_byte_ranges(path: str, data_start: int, size: int, blocksize: int | None) -> list[ByteRange]:
    """Line-aligned byte ranges covering ``[data_start, size)``."""
    if blocksize is None or size - data_start <= blocksize:
        return [ByteRange(path, data_start, size)]
    edges = [data_start]
    with fsspec.open(path, "rb") as f:
        offset = data_start + blocksize
        while offset < size:
            f.seek(offset)
            seek_delimiter(f, b"\n", 2**16)
            edge = f.tell()
            if edge >= size:
                break
            if edge > edges[-1]:
                edges.append(edge)
            offset = max(edge, offset) + blocksize
    edges.append(size)
    return [ByteRange(path, a, b) for a, b in zip(edges[:-1], edges[1:])]


def read_range(path: str, start: int, end: int) -> bytes:
    with reading(path), fsspec.open(path, "rb") as f:
        f.seek(start)
        return f.read(end - start)


def count_lines(data: bytes) -> int:
    """Physical lines in ``data`` (a last line without a newline counts)."""
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def scan_block(block: ByteRange, parse: LineParser, mode: str, at_start: bool, window: int) -> BlockScan:
    """Pass 1 on one byte block (line numbers relative to the block).

    Only the block's edges matter here, so only ``window`` bytes at its head
    (and, for ``every-token`` layouts, at its tail) are parsed, widened until
    they hold what is looked for: pass 1 costs a read and a line count, not a
    second parse of the corpus.
    """
    data = read_range(block.path, block.start, block.end)
    n_lines = count_lines(data)
    first_start = first_key = None
    size = window
    while True:
        head = data[:_line_end(data, size)]
        first_start, first_key = _first_start(parse(head, 0, at_start).frame, mode, head, block.start)
        if first_start is not None or len(head) == len(data):
            break
        size *= 4
    last_key = _last_key(data, parse, window) if mode == "every-token" else None
    return BlockScan(n_lines, first_start, first_key, last_key)


def _line_end(data: bytes, size: int) -> int:
    """The end of the line that byte ``size`` is in (all of ``data`` past its end)."""
    if size >= len(data):
        return len(data)
    newline = data.find(b"\n", size - 1)
    return len(data) if newline < 0 else newline + 1


def _first_start(
    frame: pa.Table, mode: str, head: bytes, offset: int
) -> tuple[tuple[int, int] | None, tuple[int, int, str] | None]:
    """``(first_start, first_key)`` of :class:`BlockScan` from the line frame of
    the block's first lines; byte offsets in the file start at ``offset``."""
    if frame.num_rows == 0:
        return None, None
    line_offsets = frame.column("line").to_numpy()
    starts_b, _ = line_spans(head)
    keyed = has_sentence_key(frame)

    def at(row: int) -> tuple[int, int]:
        off = int(line_offsets[row])
        return off, offset + int(starts_b[off])

    first_key = None
    if keyed.any():
        i = int(keyed.argmax())
        first_key = (*at(i), frame.column("key")[i].as_py())
    candidates = sentence_starts(frame, mode).nonzero()[0]
    if mode == "every-token" and first_key is not None:
        candidates = candidates[candidates != keyed.argmax()]
    return (at(int(candidates[0])) if len(candidates) else None), first_key


def _last_key(data: bytes, parse: LineParser, window: int) -> str | None:
    """The sentence key of the block's last keyed row, parsing the block from
    its tail (from a line start ``window`` bytes before the end, widened as needed)."""
    size = window
    while True:
        start = 0 if size >= len(data) else data.find(b"\n", len(data) - size - 1) + 1
        frame = parse(data[start:], 0, False).frame
        keyed = np.flatnonzero(has_sentence_key(frame)) if frame.num_rows else np.zeros(0, dtype=np.int64)
        if len(keyed):
            return frame.column("key")[int(keyed[-1])].as_py()
        if start == 0:
            return None
        size *= 4


def align_blocks(
    ranges: list[ByteRange], scans: list[BlockScan], mode: str, data_first_line: int
) -> list[AlignedBlock]:
    """Move the edges of one file's byte ranges onto sentence starts.

    A range with no sentence start in it is merged into the previous one.
    """
    aligned: list[AlignedBlock] = []
    line = data_first_line
    current_start, current_line = ranges[0].start, data_first_line
    previous_key: str | None = None
    for i, (rng, scan) in enumerate(zip(ranges, scans)):
        if i > 0:
            edge = scan.first_start
            if mode == "every-token" and scan.first_key is not None and scan.first_key[2] != previous_key:
                edge = scan.first_key[:2]
            if edge is not None:
                offset_lines, byte = edge
                aligned.append(AlignedBlock(rng.path, current_start, byte, current_line))
                current_start, current_line = byte, line + offset_lines
        if scan.last_key is not None:
            previous_key = scan.last_key
        line += scan.n_lines
    aligned.append(AlignedBlock(ranges[-1].path, current_start, ranges[-1].end, current_line))
    return [b for b in aligned if b.end > b.start]
