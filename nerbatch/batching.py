"""Stream sentences from the sentence dataset and cut them into length-bucketed
batches, so that a batch is padded only to its own longest sentence and memory
stays bounded by one bucket whatever the corpus size."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.dataset as ds

from nerbatch.errors import InputError


@dataclass(frozen=True)
class Batch:
    """A batch of whole sentences: ``words[i]`` and ``tags[i]`` (None when unlabelled)."""

    words: list[list[str]]
    tags: list[list[str]] | None
    ids: list[str]


def resolve_prepared(path: str | Path) -> tuple[Path, Path]:
    """``(sentences_dir, vocab.json)`` from a ``prepare`` output dir or its ``sentences/``."""
    path = Path(path)
    if (path / "sentences").is_dir():
        sentences, vocab = path / "sentences", path / "vocab.json"
    else:
        sentences, vocab = path, path.parent / "vocab.json"
    if not sentences.is_dir():
        raise InputError(str(path), "no sentence dataset here (run `nerbatch prepare` first)")
    if not vocab.exists():
        raise InputError(str(vocab), "vocabulary not found next to the sentence dataset")
    return sentences, vocab


def sentence_dataset(sentences_dir: str | Path) -> ds.Dataset:
    path = Path(sentences_dir)
    if not path.exists():
        raise InputError(str(path), "sentence dataset not found (run `nerbatch prepare` first)")
    return ds.dataset(str(path), format="parquet")


def iter_split(
    sentences_dir: str | Path, split: str, *, chunk_rows: int = 8192, rng: np.random.Generator | None = None
) -> Iterator[tuple[list[str], list[list[str]], list[list[str]]]]:
    """``(ids, words, tags)`` chunks of one split, streamed from Parquet, file by
    file (in a shuffled file order when ``rng`` is given)."""
    fragments = sorted(sentence_dataset(sentences_dir).get_fragments(), key=lambda f: f.path)
    if rng is not None:
        rng.shuffle(fragments)
    for fragment in fragments:
        scanner = fragment.scanner(
            columns=["sentence_id", "words", "tags"], filter=pc.field("split") == split, batch_size=chunk_rows
        )
        for record_batch in scanner.to_batches():
            if record_batch.num_rows:
                cols = record_batch.to_pydict()
                yield cols["sentence_id"], cols["words"], cols["tags"]


def count_split(sentences_dir: str | Path, split: str) -> tuple[int, int]:
    """``(sentences, tokens)`` of one split, from the ``n_tokens`` column alone."""
    table = sentence_dataset(sentences_dir).to_table(columns=["n_tokens"], filter=pc.field("split") == split)
    return table.num_rows, int(pc.sum(table.column("n_tokens")).as_py() or 0)


def bucket_batches(
    ids: Sequence[str],
    words: Sequence[list[str]],
    tags: Sequence[list[str]] | None,
    *,
    batch_size: int = 32,
    max_tokens: int | None = None,
    rng: np.random.Generator | None = None,
) -> list[Batch]:
    """Sort a bucket of sentences by length and cut it into batches.

    A batch closes at ``batch_size`` sentences, or earlier when its padded size
    (sentences x longest) would pass ``max_tokens`` (a single sentence longer
    than the budget is a batch of its own: never truncated). With ``rng``, the
    order of sentences of equal length and the order of batches are shuffled.
    """
    lengths = np.fromiter((len(w) for w in words), dtype=np.int64, count=len(words))
    tiebreak = rng.random(len(words)) if rng is not None else np.arange(len(words))
    order = np.lexsort((tiebreak, lengths))
    batches: list[Batch] = []
    current: list[int] = []
    for i in order:
        longest = lengths[i]  # sorted ascending: the newest sentence is the longest
        if current and (
            len(current) >= batch_size or (max_tokens is not None and (len(current) + 1) * longest > max_tokens)
        ):
            batches.append(_batch(current, ids, words, tags))
            current = []
        current.append(int(i))
    if current:
        batches.append(_batch(current, ids, words, tags))
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _batch(index: list[int], ids, words, tags) -> Batch:
    return Batch(
        words=[words[i] for i in index],
        tags=None if tags is None else [tags[i] for i in index],
        ids=[ids[i] for i in index],
    )


def stream_batches(
    sentences_dir: str | Path,
    split: str,
    *,
    batch_size: int = 32,
    bucket_batches_count: int = 64,
    max_tokens: int | None = None,
    seed: int | None = None,
) -> Iterator[Batch]:
    """Length-bucketed batches of one split: a bucket holds ``bucket_batches_count``
    batches' worth of sentences, read from Parquet as a stream; with ``seed``, a
    shuffled order (different per call when the generator is reused)."""
    rng = np.random.default_rng(seed) if seed is not None else None
    bucket_rows = batch_size * bucket_batches_count
    pending_ids: list[str] = []
    pending_words: list[list[str]] = []
    pending_tags: list[list[str]] = []
    for ids, words, tags in iter_split(sentences_dir, split, chunk_rows=bucket_rows, rng=rng):
        pending_ids += ids
        pending_words += words
        pending_tags += tags
        while len(pending_ids) >= bucket_rows:
            yield from bucket_batches(
                pending_ids[:bucket_rows], pending_words[:bucket_rows], pending_tags[:bucket_rows],
                batch_size=batch_size, max_tokens=max_tokens, rng=rng,
            )
            del pending_ids[:bucket_rows], pending_words[:bucket_rows], pending_tags[:bucket_rows]
    if pending_ids:
        yield from bucket_batches(
            pending_ids, pending_words, pending_tags, batch_size=batch_size, max_tokens=max_tokens, rng=rng
        )
