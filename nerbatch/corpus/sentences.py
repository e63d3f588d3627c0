"""Group the token table into sentences and assign each sentence a split.

Readers yield partitions that hold whole sentences in order (see
``blocks.py``), so grouping is a partition-local pass with no shuffle: a new
sentence begins wherever ``token_index`` is 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, model_validator

from nerbatch.tables import SENTENCE_SCHEMA, SPLITS, TOKEN_SCHEMA


class SplitFractions(BaseModel):
    """Share of sentences per split when assigned by hash (must sum to 1)."""

    model_config = ConfigDict(frozen=True)

    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1

    @model_validator(mode="after")
    def _sums_to_one(self) -> SplitFractions:
        if min(self.train, self.validation, self.test) < 0 or abs(self.train + self.validation + self.test - 1) > 1e-9:
            raise ValueError("split fractions must be >= 0 and sum to 1")
        return self


def stable_buckets(sentence_ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """A number in [0, 1) per id: its unkeyed 8-byte BLAKE2b digest (UTF-8 bytes
    in, big-endian integer out) over 2**64.

    It depends on nothing but the id: not on partitioning, file order, the
    Python process (unlike ``hash``), or library versions.
    """
    blake2b = hashlib.blake2b
    digests = b"".join([blake2b(i, digest_size=8).digest() for i in sentence_ids.cast(pa.binary()).to_pylist()])
    return np.frombuffer(digests, dtype=">u8") / 2**64


def split_for(sentence_ids: pa.Array | pa.ChunkedArray, fractions: SplitFractions) -> np.ndarray:
    """``train``/``validation``/``test`` per id, from :func:`stable_buckets`."""
    edges = [fractions.train, fractions.train + fractions.validation]
    return np.array(SPLITS, dtype=object)[np.searchsorted(edges, stable_buckets(sentence_ids), side="right")]


def group_sentence_table(
    tokens: pa.Table, fractions: SplitFractions, fixed_splits: Mapping[str, str]
) -> pa.Table:
    """Token rows of whole sentences, in order -> one row per sentence.

    Takes columns ``sentence_id``, ``token_index``, ``word``, ``tag``; returns
    the sentence dataset (``SENTENCE_SCHEMA``). ``fixed_splits`` maps a file
    label (the sentence id prefix before ``#``) to the split of all its
    sentences.
    """
    if tokens.num_rows == 0:
        return SENTENCE_SCHEMA.empty_table()
    n = tokens.num_rows
    starts = np.flatnonzero(tokens.column("token_index").to_numpy() == 0)
    bounds = np.append(starts, n).astype(np.int32)
    offsets = pa.array(bounds)
    words = pa.ListArray.from_arrays(offsets, tokens.column("word").combine_chunks())
    tags = pa.ListArray.from_arrays(offsets, tokens.column("tag").combine_chunks())
    ids = tokens.column("sentence_id").take(pa.array(starts))
    split = split_for(ids, fractions)
    for label, fixed in fixed_splits.items():
        split[pc.starts_with(ids, label + "#").to_numpy(zero_copy_only=False)] = fixed
    return pa.table(
        {"sentence_id": ids, "words": words, "tags": tags, "n_tokens": pa.array(np.diff(bounds)),
         "split": pa.array(split, pa.string())},
        schema=SENTENCE_SCHEMA,
    )


def group_partition(
    tokens: pd.DataFrame, fractions: SplitFractions, fixed_splits: Mapping[str, str]
) -> pd.DataFrame:
    """:func:`group_sentence_table` for one pandas partition of the token table."""
    table = pa.Table.from_pandas(tokens[list(TOKEN_SCHEMA.names)], schema=TOKEN_SCHEMA, preserve_index=False)
    # Plain pandas dtypes (lists as object columns): ArrowDtype list columns
    # write pandas metadata that pandas itself cannot read back.
    return group_sentence_table(table, fractions, fixed_splits).to_pandas()


def group_sentences(
    tokens: dd.DataFrame,
    fractions: SplitFractions = SplitFractions(),
    fixed_splits: Mapping[str, str] | None = None,
) -> dd.DataFrame:
    """The sentence dataset from a sentence-aligned token table (lazy)."""
    return tokens.map_partitions(
        group_partition, fractions, dict(fixed_splits or {}), meta=SENTENCE_SCHEMA.empty_table().to_pandas(), enforce_metadata=False
    )
