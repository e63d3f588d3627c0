"""Counts over the sentence dataset, computed partition by partition and
merged: words and tags per split, sentence lengths. Small enough to merge on
the driver whatever the corpus size (they grow with the vocabulary, not with
the number of tokens)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from nerbatch.tables import SPLITS

MAX_EXAMPLES = 5


@dataclass
class CorpusCounts:
    sentences: Counter = field(default_factory=Counter)  # split -> sentences
    tokens: Counter = field(default_factory=Counter)  # split -> tokens
    words: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})
    tags: dict[str, Counter] = field(default_factory=lambda: {s: Counter() for s in SPLITS})
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))  # bincount of n_tokens
    rejects: Counter = field(default_factory=Counter)  # reason category -> rejected lines
    reject_examples: list[tuple[str, int, str]] = field(default_factory=list)  # first few (file, line, reason)

    def update(self, other: CorpusCounts) -> None:
        """Add ``other``'s counts to these (in place: merging copies nothing)."""
        self.sentences.update(other.sentences)
        self.tokens.update(other.tokens)
        self.rejects.update(other.rejects)
        self.reject_examples = (self.reject_examples + other.reject_examples)[:MAX_EXAMPLES]
        for s in SPLITS:
            self.words[s].update(other.words[s])
            self.tags[s].update(other.tags[s])
        n = max(len(self.lengths), len(other.lengths))
        self.lengths = np.pad(self.lengths, (0, n - len(self.lengths))) + np.pad(other.lengths, (0, n - len(other.lengths)))

    def length_percentiles(self, qs: tuple[float, ...] = (50, 90, 95, 99)) -> dict[str, int]:
        total = int(self.lengths.sum())
        if total == 0:
            return {**{f"p{int(q)}": 0 for q in qs}, "max": 0}
        cum = np.cumsum(self.lengths)
        out = {f"p{int(q)}": int(np.searchsorted(cum, total * q / 100)) for q in qs}
        out["max"] = int(np.flatnonzero(self.lengths).max())
        return out


def _value_counts(values: pa.ChunkedArray | pa.Array) -> Counter:
    if len(values) == 0:
        return Counter()
    vc = pc.value_counts(values)
    return Counter(dict(zip(vc.field("values").to_pylist(), vc.field("counts").to_pylist())))


def count_partition(table: pa.Table) -> CorpusCounts:
    """Counts for one partition of the sentence dataset (``SENTENCE_SCHEMA`` columns)."""
    counts = CorpusCounts()
    split = table.column("split")
    for s in SPLITS:
        part = table.filter(pc.equal(split, s))
        if part.num_rows == 0:
            continue
        counts.sentences[s] = part.num_rows
        counts.tokens[s] = int(pc.sum(part.column("n_tokens")).as_py())
        counts.words[s] = _value_counts(pc.list_flatten(part.column("words")))
        counts.tags[s] = _value_counts(pc.list_flatten(part.column("tags")))
    lengths = table.column("n_tokens").to_numpy().astype(np.int64)
    counts.lengths = np.bincount(lengths) if len(lengths) else np.zeros(1, dtype=np.int64)
    return counts


def merge_counts(parts: Iterable[CorpusCounts]) -> CorpusCounts:
    total = CorpusCounts()
    for p in parts:
        total.update(p)
    return total
