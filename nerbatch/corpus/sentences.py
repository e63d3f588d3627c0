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
from pydantic import BaseModel, ConfigDict, model_validator

from nerbatch.tables import SENTENCE_SCHEMA, SPLITS


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


def stable_bucket(sentence_id: str) -> float:
    """A number in [0, 1) from a keyed-free BLAKE2b hash of the id.

    It depends on nothing but the id: not on partitioning, file order, the
    Python process (unlike ``hash``), or library versions.
    """
    digest = hashlib.blake2b(sentence_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def split_for(sentence_ids: pd.Series, fractions: SplitFractions) -> np.ndarray:
    """``train``/``validation``/``test`` per id, from :func:`stable_bucket`."""
    buckets = np.fromiter((stable_bucket(s) for s in sentence_ids), dtype=np.float64, count=len(sentence_ids))
    edges = [fractions.train, fractions.train + fractions.validation]
    return np.array(SPLITS, dtype=object)[np.searchsorted(edges, buckets, side="right")]


def empty_sentences() -> pd.DataFrame:
    return SENTENCE_SCHEMA.empty_table().to_pandas()


def group_partition(
    tokens: pd.DataFrame, fractions: SplitFractions, fixed_splits: Mapping[str, str]
) -> pd.DataFrame:
    """Token rows of whole sentences, in order -> one row per sentence.

    Takes columns ``sentence_id``, ``token_index``, ``word``, ``tag``; returns
    the sentence dataset columns (``SENTENCE_SCHEMA``). ``fixed_splits`` maps a
    file label (the sentence id prefix before ``#``) to the split of all its
    sentences.
    """
    if tokens.empty:
        return empty_sentences()
    token_index = tokens["token_index"].to_numpy()
    starts = np.flatnonzero(token_index == 0)
    offsets = pa.array(np.append(starts, len(tokens)).astype(np.int32))
    # pa.array on Arrow-backed string columns is zero-copy; no Python objects per token.
    words = pa.ListArray.from_arrays(offsets, pa.array(tokens["word"], pa.string()))
    tags = pa.ListArray.from_arrays(offsets, pa.array(tokens["tag"], pa.string()))
    ids = tokens["sentence_id"].iloc[starts].astype(str).reset_index(drop=True)
    split = split_for(ids, fractions)
    for label, fixed in fixed_splits.items():
        split[ids.str.startswith(label + "#").to_numpy()] = fixed
    table = pa.table(
        {
            "sentence_id": pa.array(ids, pa.string()),
            "words": words,
            "tags": tags,
            "n_tokens": pa.array(np.diff(np.append(starts, len(tokens))).astype(np.int32)),
            "split": pa.array(split, pa.string()),
        },
        schema=SENTENCE_SCHEMA,
    )
    # Plain pandas dtypes (lists as object columns): ArrowDtype list columns
    # write pandas metadata that pandas itself cannot read back.
    return table.to_pandas()


def group_sentences(
    tokens: dd.DataFrame,
    fractions: SplitFractions = SplitFractions(),
    fixed_splits: Mapping[str, str] | None = None,
) -> dd.DataFrame:
    """The sentence dataset from a sentence-aligned token table (lazy)."""
    return tokens.map_partitions(
        group_partition, fractions, dict(fixed_splits or {}), meta=empty_sentences(), enforce_metadata=False
    )
