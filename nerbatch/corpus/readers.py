"""Readers: token-labelled files in, the token table (``nerbatch.tables.TOKEN_SCHEMA``) out, as Dask
dataframes.

Every reader returns a :class:`TokenRead`: ``tokens`` (``sentence_id``,
``token_index``, ``word``, ``tag``), ``rejects`` (``source_file``, ``line``,
``reason``, ``text``) and the files it read. Partitions hold whole sentences
in input order (see ``blocks.py``), which ``group_sentences`` relies on.
"""

from __future__ import annotations

import codecs
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import dask
import dask.dataframe as dd
import fsspec
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import get_fs_token_paths

from nerbatch.corpus.blocks import AlignedBlock, align_blocks, plan_byte_ranges, read_range, scan_block
from nerbatch.corpus.layouts import (
    GMB_LAYOUT,
    TUTORIAL_LAYOUT,
    ConllLayout,
    CorpusFormat,
    CsvLayout,
    bom_length,
    check_encoding,
    detect_format,
    read_head,
    read_header,
    refuse_wide_bom,
)
from nerbatch.corpus.lines import CsvColumns, parse_conll_lines, parse_csv_lines
from nerbatch.corpus.tokens import ROW_SCHEMA, assemble_rows
from nerbatch.errors import InputError
from nerbatch.tables import REJECT_SCHEMA

DEFAULT_BLOCKSIZE = 8 * 2**20
COMPRESSED_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zip")


@dataclass(frozen=True)
class CorpusFile:
    """One input file and how it is read."""

    path: str
    label: str  # prefix of its sentence ids: the file name (plus parent folders where names clash)
    format: CorpusFormat
    layout: CsvLayout | ConllLayout
    size: int
    split: str | None = None  # a whole file assigned to one split (--split-file)


#: One partition's worth of input: an aligned byte block of a file, or (None) a whole Parquet file.
CorpusPiece = tuple[CorpusFile, AlignedBlock | None]


@dataclass
class TokenRead:
    files: list[CorpusFile]
    pieces: list[CorpusPiece]  # in input order; read one with read_piece
    notes: list[str] = field(default_factory=list)

    @property
    def rows(self) -> dd.DataFrame:
        """Every non-blank line, one partition per piece: token columns +
        ``source_file``, ``line``, ``reason``, ``text`` (``ROW_SCHEMA``)."""
        meta = ROW_SCHEMA.empty_table().to_pandas()
        return dd.from_map(_read_piece_frame, self.pieces, meta=meta, label="read-corpus", enforce_metadata=False)

    @property
    def tokens(self) -> dd.DataFrame:
        """The token table: kept tokens only."""
        kept = self.rows[self.rows["reason"].isna()]
        return kept[["sentence_id", "token_index", "word", "tag"]]

    @property
    def rejects(self) -> dd.DataFrame:
        bad = self.rows[~self.rows["reason"].isna()]
        return bad[list(REJECT_SCHEMA.names)]


def expand_paths(inputs: Sequence[str] | str) -> list[str]:
    """Paths, globs or fsspec URLs -> a sorted, de-duplicated list of files."""
    if isinstance(inputs, str):
        inputs = [inputs]
    found: list[str] = []
    for item in inputs:
        fs, _, paths = get_fs_token_paths(item)
        protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if not paths:
            raise InputError(item, "no file matches")
        for p in sorted(paths):
            if fs.isdir(p):
                raise InputError(item, "is a directory; give files or a glob")
            found.append(p if protocol == "file" else f"{protocol}://{p}")
    return list(dict.fromkeys(found))


def file_labels(paths: Sequence[str]) -> dict[str, str]:
    """Short, unique labels: each file's name, with as many parent folders as it takes
    to tell apart inputs that share a name (``a/part.csv``, ``b/part.csv``).

    Labels prefix sentence ids, and splits hash sentence ids, so a label must not
    depend on the other inputs: adding a file (or moving the corpus folder) never
    changes the ids, and therefore the splits, of files with other names.
    """
    parts = {p: p.split("://", 1)[-1].rstrip("/").split("/") for p in paths}
    depth = dict.fromkeys(paths, 1)
    while True:
        labels = {p: "/".join(parts[p][-depth[p]:]) for p in paths}
        uses = Counter(labels.values())
        clashing = [p for p in paths if uses[labels[p]] > 1]
        growing = [p for p in clashing if depth[p] < len(parts[p])]
        if not growing:
            # Only the same path under two protocols is left: those keep their whole URL.
            return {**labels, **{p: p for p in clashing}}
        for p in growing:
            depth[p] += 1


def resolve_layout(
    path: str,
    fmt: CorpusFormat,
    *,
    encoding: str | None = None,
    sentence_column: str | None = None,
    word_column: str | None = None,
    tag_column: str | None = None,
    sentence_marker: str | None = None,
    conll_tag_column: int = -1,
    delimiter: str = ",",
) -> CsvLayout | ConllLayout:
    """The layout of one file from its format and the user's column options."""
    overrides = {
        k: v
        for k, v in dict(
            sentence_column=sentence_column,
            word_column=word_column,
            tag_column=tag_column,
            sentence_marker=sentence_marker,
            encoding=encoding,
        ).items()
        if v is not None
    }
    if encoding:
        check_encoding(path, encoding)
        if codecs.lookup(encoding).name == "utf-8-sig":
            overrides["encoding"] = "utf-8"  # the readers skip a UTF-8 byte-order mark themselves
    if fmt is CorpusFormat.GMB:
        return GMB_LAYOUT.model_copy(update=overrides)
    if fmt is CorpusFormat.TUTORIAL:
        return TUTORIAL_LAYOUT.model_copy(update=overrides)
    if fmt is CorpusFormat.CONLL:
        return ConllLayout(tag_column=conll_tag_column, encoding=overrides.get("encoding", "utf-8"))
    missing = [n for n in ("sentence_column", "word_column", "tag_column") if n not in overrides]
    if missing:
        raise InputError(path, f"format {fmt.value} needs the column mapping: " + ", ".join("--" + m.replace("_", "-") for m in missing))
    return CsvLayout(delimiter=delimiter, **overrides)


def read_corpus(
    inputs: Sequence[str] | str,
    *,
    fmt: CorpusFormat | str = CorpusFormat.AUTO,
    blocksize: int | None = DEFAULT_BLOCKSIZE,
    split_of: dict[str, str] | None = None,
    **layout_options,
) -> TokenRead:
    """Read token-labelled files of one format (or ``auto``: detected per file).

    ``layout_options`` are those of :func:`resolve_layout` (encoding, column
    mapping, CoNLL tag column). ``split_of`` maps a path to the split its whole
    content belongs to. Pass 1 (finding sentence starts in each byte block) runs
    on the current Dask scheduler before this returns; the returned frames are
    lazy.
    """
    fmt = CorpusFormat(fmt)
    paths = expand_paths(inputs)
    labels = file_labels(paths)
    files: list[CorpusFile] = []
    notes: list[str] = []
    for path in paths:
        if layout_options.get("encoding"):  # before detection, which reads the head as latin-1
            check_encoding(path, layout_options["encoding"])
        file_fmt = detect_format(path) if fmt is CorpusFormat.AUTO else fmt
        if fmt is CorpusFormat.AUTO:
            notes.append(f"{labels[path]}: format {file_fmt.value} (detected)")
        options = layout_options
        if file_fmt is CorpusFormat.PARQUET and not options.get("sentence_column"):
            options = {"sentence_column": "sentence_id", "word_column": "word", "tag_column": "tag", **options}
        head = b"" if file_fmt is CorpusFormat.PARQUET or path.lower().endswith(COMPRESSED_SUFFIXES) else read_head(path, 4)
        refuse_wide_bom(path, head)
        if bom_length(head) and not options.get("encoding"):
            # A UTF-8 byte-order mark says the encoding louder than the format's default (latin-1).
            options = {**options, "encoding": "utf-8"}
            notes.append(f"{labels[path]}: encoding utf-8 (byte-order mark)")
        layout = resolve_layout(path, file_fmt, **options)
        if file_fmt is not CorpusFormat.PARQUET:
            check_encoding(path, layout.encoding)
        fs, _, (plain,) = get_fs_token_paths(path)
        files.append(CorpusFile(path, labels[path], file_fmt, layout, int(fs.size(plain)), (split_of or {}).get(path)))

    pieces: list[CorpusPiece] = []
    for f, blocks in zip(files, _plan_blocks(files, blocksize)):
        pieces.extend((f, b) for b in blocks)
    return TokenRead(files=files, pieces=pieces, notes=notes)


def _line_parser(f: CorpusFile):
    if isinstance(f.layout, ConllLayout):
        return partial(parse_conll_lines, layout=f.layout)
    return partial(parse_csv_lines, cols=_csv_columns(f))


def _csv_columns(f: CorpusFile) -> CsvColumns:
    layout = f.layout
    assert isinstance(layout, CsvLayout)
    header = read_header(f.path, layout.encoding, layout.delimiter)
    positions = {}
    for role in ("sentence_column", "word_column", "tag_column"):
        name = getattr(layout, role)
        if name not in header:
            raise InputError(f.path, f"missing required column {name!r} (header has {header})", line=1)
        positions[role] = header.index(name)
    return CsvColumns(
        width=len(header),
        sentence=positions["sentence_column"],
        word=positions["word_column"],
        tag=positions["tag_column"],
        delimiter=layout.delimiter,
        encoding=layout.encoding,
    )


def _header_length(path: str) -> int:
    with fsspec.open(path, "rb") as fh:
        return len(fh.readline())


def _has_data_after(path: str, start: int, size: int, probe: int = 64 * 1024) -> bool:
    """Is there anything but whitespace from byte ``start`` on? (Only the first
    ``probe`` bytes are looked at: a longer tail counts as data.)"""
    if start >= size:
        return False
    if size - start > probe:
        return True
    return bool(read_range(path, start, size).strip())


def _plan_blocks(files: list[CorpusFile], blocksize: int | None) -> list[list[AlignedBlock | None]]:
    """Pass 1 for every splittable file, as one Dask computation."""
    plans: list = []
    tasks = []
    for f in files:
        if f.format is CorpusFormat.PARQUET:
            plans.append(None)
            continue
        if f.size == 0:
            raise InputError(f.path, "file is empty")
        compressed = f.path.lower().endswith(COMPRESSED_SUFFIXES)
        is_csv = isinstance(f.layout, CsvLayout)
        if compressed:
            data_start = 0
        else:  # after the header line of a CSV, after a UTF-8 byte-order mark of a CoNLL file
            data_start = _header_length(f.path) if is_csv else bom_length(read_head(f.path, 3))
        if is_csv and not compressed and not _has_data_after(f.path, data_start, f.size):
            raise InputError(f.path, "file has a header but no token lines (as good as empty)")
        first_line = 2 if is_csv else 1
        if compressed:
            plans.append((None, data_start, first_line))
            continue
        ranges = plan_byte_ranges(f.path, data_start, f.size, blocksize)
        mode = f.layout.sentence_marker if is_csv else "first-token"
        parse = _line_parser(f)
        window = max(1, (blocksize or DEFAULT_BLOCKSIZE) // 16)
        scans = [dask.delayed(scan_block, pure=True)(r, parse, mode, i == 0, window) for i, r in enumerate(ranges)]
        plans.append((ranges, mode, first_line))
        tasks.append(scans)
    computed = iter(dask.compute(*tasks)) if tasks else iter(())
    out: list[list[AlignedBlock | None]] = []
    for f, plan in zip(files, plans):
        if plan is None:
            out.append([None])
        elif plan[0] is None:
            out.append([AlignedBlock(f.path, -1, -1, plan[2])])  # whole (compressed) file
        else:
            ranges, mode, first_line = plan
            out.append(align_blocks(ranges, list(next(computed)), mode, first_line))
    return out


def _read_piece_frame(piece: CorpusPiece) -> pd.DataFrame:
    return read_piece(piece).to_pandas()


def read_piece(piece: CorpusPiece) -> pa.Table:
    """Pass 2: one aligned block (or one Parquet file) -> token rows (``ROW_SCHEMA``)."""
    f, block = piece
    if block is None:
        return _read_parquet_file(f)
    if block.start < 0:  # a compressed file is read whole
        with fsspec.open(f.path, "rb", compression="infer") as fh:
            data = fh.read()
        data = data[bom_length(data):]
        if isinstance(f.layout, CsvLayout):
            data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    else:
        data = read_range(f.path, block.start, block.end)
    parsed = _line_parser(f)(data, block.first_line, True)
    mode = f.layout.sentence_marker if isinstance(f.layout, CsvLayout) else "first-token"
    return assemble_rows(parsed.frame, mode, f.label)


def _read_parquet_file(f: CorpusFile) -> pa.Table:
    layout = f.layout
    assert isinstance(layout, CsvLayout)
    wanted = [layout.sentence_column, layout.word_column, layout.tag_column]
    with fsspec.open(f.path, "rb") as fh:
        try:
            parquet = pq.ParquetFile(fh)
        except (pa.ArrowException, OSError) as exc:  # not Parquet, truncated, unreadable
            raise InputError(f.path, f"not a readable Parquet file ({exc})") from None
        schema_names = parquet.schema_arrow.names
        missing = [c for c in wanted if c not in schema_names]
        if missing:
            raise InputError(f.path, f"missing required column(s) {missing} (has {schema_names})")
        table = parquet.read(columns=wanted)
    n = table.num_rows
    if n == 0:
        raise InputError(f.path, "Parquet file has no rows (as good as empty)")
    frame = pa.table(
        {
            "line": pa.array(np.arange(1, n + 1, dtype=np.int64)),  # row number in the file
            "key": table.column(layout.sentence_column).cast(pa.string()),
            "word": table.column(layout.word_column).cast(pa.string()),
            "tag": table.column(layout.tag_column).cast(pa.string()),
            "reason": pa.nulls(n, pa.string()),
            "raw": pa.nulls(n, pa.string()),
        }
    )
    return assemble_rows(frame, layout.sentence_marker, f.label)
