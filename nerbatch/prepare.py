"""``prepare``: token-labelled corpora -> sentence dataset, rejects, vocabulary
and a report, in one output directory.

Output layout::

    OUT/
      sentences/part-00000.parquet ...   sentence_id, words, tags, n_tokens, split
      rejects/part-00000.parquet ...     source_file, line, reason, text
      vocab.json                         words (with counts), chars, tags
      prepare_report.json                counts, rejects, lengths, OOV rates

The directory appears complete or not at all: everything is written to a
staging sibling and swapped in at the end.
"""

from __future__ import annotations

import re
import shutil
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import dask
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

from nerbatch import __version__
from nerbatch.corpus.layouts import CorpusFormat
from nerbatch.corpus.readers import DEFAULT_BLOCKSIZE, CorpusPiece, expand_paths, read_corpus, read_piece
from nerbatch.corpus.sentences import SplitFractions, group_sentence_table
from nerbatch.corpus.statistics import MAX_EXAMPLES, CorpusCounts, count_partition, merge_counts
from nerbatch.errors import InputError, StrictModeError
from nerbatch.staging import check_replaceable, make_staging_dir, replace_directory
from nerbatch.tables import REJECT_SCHEMA, SPLITS, TOKEN_SCHEMA
from nerbatch.vocab import Vocabulary

SENTENCES_DIR = "sentences"
REJECTS_DIR = "rejects"
VOCAB_FILE = "vocab.json"
REPORT_FILE = "prepare_report.json"


class PrepareOptions(BaseModel):
    """Everything ``prepare`` can be told (the CLI and the flow build this)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format: CorpusFormat = CorpusFormat.AUTO
    encoding: str | None = None  # default: the layout's (latin-1 for GMB/tutorial, else utf-8)
    sentence_column: str | None = None
    word_column: str | None = None
    tag_column: str | None = None
    sentence_marker: Literal["first-token", "every-token"] | None = None
    conll_tag_column: int = -1
    delimiter: str = ","
    blocksize: int | None = DEFAULT_BLOCKSIZE
    strict: bool = False
    splits: SplitFractions = SplitFractions()
    #: split name -> paths/globs whose sentences all go to that split
    split_files: dict[Literal["train", "validation", "test"], list[str]] = Field(default_factory=dict)
    min_count: int = 1
    max_vocab_size: int | None = None


class PrepareReport(BaseModel):
    output_dir: str
    files: list[dict]
    notes: list[str]
    tokens_read: int
    tokens_kept: int
    tokens_rejected: int
    rejects_by_reason: dict[str, int]
    sentences: dict[str, int]
    tokens: dict[str, int]
    tag_counts: dict[str, int]
    tags_missing_from_train: list[str]
    sentence_length: dict[str, int]
    vocab: dict[str, int]
    oov_rate: dict[str, float]
    seconds: float
    nerbatch_version: str = __version__

    def summary(self) -> str:
        """A short human-readable summary for the end of a CLI run."""
        s, t = self.sentences, self.tokens
        lines = [
            f"prepare: {len(self.files)} file(s) -> {self.output_dir} in {self.seconds:.1f}s",
            *(f"  {n}" for n in self.notes),
            f"  tokens read {self.tokens_read:,}; kept {self.tokens_kept:,}; rejected {self.tokens_rejected:,}",
            "  sentences " + ", ".join(f"{k} {s.get(k, 0):,} ({t.get(k, 0):,} tokens)" for k in SPLITS),
            "  sentence length " + ", ".join(f"{k} {v}" for k, v in self.sentence_length.items()),
            f"  vocabulary {self.vocab['words']:,} words, {self.vocab['chars']:,} chars, {self.vocab['tags']} tags",
            "  OOV rate " + ", ".join(f"{k} {v:.2%}" for k, v in self.oov_rate.items()),
        ]
        if self.rejects_by_reason:
            lines.append("  rejects: " + "; ".join(f"{r}: {n:,}" for r, n in self.rejects_by_reason.items()))
        if self.tags_missing_from_train:
            lines.append(f"  tags absent from the train split: {', '.join(self.tags_missing_from_train)}")
        return "\n".join(lines)


def _part_name(i: int) -> str:
    return f"part-{i:05d}.parquet"


def _reason_category(reason: str) -> str:
    """Group reasons that differ only by a line number or a quoted value."""
    return re.sub(r" \(line \d+\)$| '.*'$| \(byte \d+\)$|: .*$", "", reason)


def prepare_corpus(
    inputs: list[str],
    out_dir: str | Path,
    options: PrepareOptions = PrepareOptions(),
    *,
    overwrite: bool = False,
    compute: Callable[..., tuple] = dask.compute,
) -> PrepareReport:
    """Read, validate, group, split and count a corpus on the current Dask scheduler.

    ``out_dir`` is replaced as a whole, so it must be new, empty or an earlier
    ``prepare`` output (``overwrite`` allows any other folder; never a file, an
    input's folder, ``/``, ``$HOME`` or the current folder: see
    :func:`nerbatch.staging.check_replaceable`). ``compute`` runs the write graph
    (the CLI passes one with a progress bar). Raises :class:`InputError` for
    unusable inputs, :class:`OutputDirectoryError` for an output folder it may not
    replace, and :class:`StrictModeError` when ``options.strict`` and any line was
    rejected (nothing is written then).
    """
    started = time.perf_counter()
    out_dir = Path(out_dir)
    split_of: dict[str, str] = {}
    for split, patterns in options.split_files.items():
        for path in expand_paths(patterns):
            split_of[path] = split
    all_inputs = list(dict.fromkeys([*inputs, *split_of]))
    if not all_inputs:
        raise InputError("<inputs>", "no input files given")
    check_replaceable(out_dir, marker=REPORT_FILE, command="prepare", inputs=[*all_inputs, *expand_paths(all_inputs)],
                      overwrite=overwrite)
    layout_options = options.model_dump(
        include={"encoding", "sentence_column", "word_column", "tag_column", "sentence_marker", "conll_tag_column", "delimiter"}
    )
    read = read_corpus(all_inputs, fmt=options.format, blocksize=options.blocksize, split_of=split_of, **layout_options)
    fixed = {f.label: f.split for f in read.files if f.split}

    staging = make_staging_dir(out_dir)
    try:
        (staging / SENTENCES_DIR).mkdir()
        (staging / REJECTS_DIR).mkdir()
        # One task per piece reads, groups, writes and counts it, in Arrow throughout.
        write = dask.delayed(write_piece)
        written = [write(number, piece, str(staging), options.splits, fixed) for number, piece in enumerate(read.pieces)]
        (counts,) = compute(_merged(written))
        n_rejects = sum(counts.rejects.values())
        if options.strict and n_rejects:
            where = "; ".join(f"{f}:{line}: {reason}" for f, line, reason in counts.reject_examples)
            raise StrictModeError(f"--strict: {n_rejects:,} rejected line(s), e.g. {where}")
        if n_rejects == 0:  # keep rejects/ a readable (empty) dataset
            pq.write_table(REJECT_SCHEMA.empty_table(), staging / REJECTS_DIR / _part_name(0))
        vocab = build_vocabulary(counts, options.min_count, options.max_vocab_size)
        vocab.save(staging / VOCAB_FILE)
        report = _report(out_dir, read, counts, vocab, time.perf_counter() - started)
        (staging / REPORT_FILE).write_text(report.model_dump_json(indent=1), encoding="utf-8")
        replace_directory(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return report


def write_piece(
    number: int, piece: CorpusPiece, staging: str, fractions: SplitFractions, fixed: dict[str, str]
) -> CorpusCounts:
    """Read one piece of the corpus, group its tokens into sentences, write its
    sentences and rejects as ``part-<number>.parquet`` (so a retried task
    overwrites its own file), and return its counts."""
    rows = read_piece(piece)
    bad = rows.column("reason").is_valid()
    any_bad = rows.column("reason").null_count < rows.num_rows
    kept = rows.filter(pc.invert(bad)) if any_bad else rows
    sentences = group_sentence_table(kept.select(TOKEN_SCHEMA.names), fractions, fixed)
    pq.write_table(sentences, Path(staging) / SENTENCES_DIR / _part_name(number))
    counts = count_partition(sentences)
    if any_bad:
        rejects = rows.filter(bad).select(REJECT_SCHEMA.names)
        pq.write_table(rejects, Path(staging) / REJECTS_DIR / _part_name(number))
        counts.rejects = Counter(_reason_category(r) for r in rejects.column("reason").to_pylist())
        counts.reject_examples = list(zip(*(rejects.column(c).slice(0, MAX_EXAMPLES).to_pylist()
                                            for c in ("source_file", "line", "reason"))))
    return counts


def _merged(parts: list, split_every: int = 16):
    """A tree of lazy :func:`merge_counts` calls: the driver receives one merged
    result, however many pieces there are."""
    merge = dask.delayed(merge_counts)
    while len(parts) > 1:
        parts = [merge(parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0] if parts else merge([])


def build_vocabulary(counts: CorpusCounts, min_count: int = 1, max_size: int | None = None) -> Vocabulary:
    """The vocabulary of the train split: words (by count), their characters, tags."""
    words = counts.words["train"]
    chars: Counter = Counter()
    for word, n in words.items():
        for ch in word:
            chars[ch] += n
    return Vocabulary.from_counts(words, chars, counts.tags["train"], min_count=min_count, max_size=max_size)


def oov_rate(words: Counter, vocab: Vocabulary) -> float:
    """Share of tokens (not types) whose word has no id of its own."""
    total = sum(words.values())
    unknown = sum(n for w, n in words.items() if not vocab.has_word(w))
    return unknown / total if total else 0.0


def _report(out_dir: Path, read, counts: CorpusCounts, vocab: Vocabulary, seconds: float) -> PrepareReport:
    tag_counts: Counter = Counter()
    for s in SPLITS:
        tag_counts += counts.tags[s]
    kept = sum(counts.tokens.values())
    n_rejects = sum(counts.rejects.values())
    return PrepareReport(
        output_dir=str(out_dir),
        files=[{"path": f.path, "label": f.label, "format": f.format.value, "encoding": f.layout.encoding,
                "bytes": f.size, "split": f.split} for f in read.files],
        notes=read.notes,
        tokens_read=kept + n_rejects,
        tokens_kept=kept,
        tokens_rejected=n_rejects,
        rejects_by_reason=dict(counts.rejects.most_common()),
        sentences={s: counts.sentences.get(s, 0) for s in SPLITS},
        tokens={s: counts.tokens.get(s, 0) for s in SPLITS},
        tag_counts=dict(tag_counts.most_common()),
        tags_missing_from_train=sorted(set(tag_counts) - set(vocab.tags)),
        sentence_length=counts.length_percentiles(),
        vocab={"words": len(vocab.words), "chars": len(vocab.chars), "tags": len(vocab.tags)},
        oov_rate={s: oov_rate(counts.words[s], vocab) for s in ("validation", "test")},
        seconds=round(seconds, 3),
    )
