"""Split files into byte blocks of whole lines, then move block edges onto
sentence starts, so that every partition holds whole sentences.

Pass 1 (``scan_block``, one Dask task per byte block) parses a block and
reports how many lines it has and where sentences start in it; the driver then
chooses, for each block, the first sentence start as the partition edge
(``align_blocks``). Pass 2 parses the aligned ranges. Grouping tokens into
sentences is then local to each partition: no shuffle, and a sentence that
spans any number of byte blocks is still whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import fsspec
import numpy as np
import pyarrow.compute as pc
from fsspec.utils import seek_delimiter

from nerbatch.corpus.lines import ParsedLines, line_spans
from nerbatch.corpus.tokens import sentence_starts
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
    last_key: str | None


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


def scan_block(block: ByteRange, parse: LineParser, mode: str, at_start: bool) -> BlockScan:
    """Pass 1 on one byte block (line numbers relative to the block)."""
    data = read_range(block.path, block.start, block.end)
    starts_b, _ = line_spans(data)
    parsed = parse(data, 0, at_start)
    frame = parsed.frame
    if frame.num_rows == 0:
        return BlockScan(parsed.n_lines, None, None, None)
    line_offsets = frame.column("line").to_numpy()
    starts = sentence_starts(frame, mode)
    keys = frame.column("key")
    keyed = pc.fill_null(pc.and_(pc.is_valid(keys), pc.not_equal(keys, "")), False).to_numpy(zero_copy_only=False)

    def at(row: int) -> tuple[int, int]:
        off = int(line_offsets[row])
        return off, block.start + int(starts_b[off])

    first_key = last_key = None
    if keyed.any():
        i = int(keyed.argmax())
        first_key = (*at(i), keys[i].as_py())
        last_key = keys[int(np.flatnonzero(keyed)[-1])].as_py()
    candidates = starts.nonzero()[0]
    if mode == "every-token" and first_key is not None:
        candidates = candidates[candidates != keyed.argmax()]
    first_start = at(int(candidates[0])) if len(candidates) else None
    return BlockScan(parsed.n_lines, first_start, first_key, last_key)


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
