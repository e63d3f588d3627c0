"""From a line frame (see ``lines.py``) to token rows: sentence ids, token
positions, and the reject decision. Vectorised over Arrow arrays: this runs
once per input line.

Reject policy: a sentence with a bad line in it (unparseable, empty word,
invalid tag) is a wrong training example, so the *whole sentence* goes to
``rejects/``: the bad lines with their own reason, the sentence's other tokens
with ``"in a sentence with a rejected line (line N)"``. An unparseable line
cannot open a sentence, so it belongs to the sentence in progress. Lines
before the first sentence marker of a file are rejected too. Every token of
the input thus ends up in exactly one of ``sentences/`` and ``rejects/``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from nerbatch.tables import REJECT_SCHEMA, TOKEN_SCHEMA

#: Valid tags: ``O`` or a prefix of IOB1/IOB2/IOBES/BILOU and a non-empty type.
TAG_PATTERN = r"^(O|[BIESLU]-\S+)$"

#: One row per input line: the token-table contract, then where the line came from
#: and, for a rejected line, why (the reject-table columns).
ROW_SCHEMA = pa.schema([*TOKEN_SCHEMA, *REJECT_SCHEMA])


def empty_rows() -> pd.DataFrame:
    return ROW_SCHEMA.empty_table().to_pandas()


def _bool(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def sentence_starts(frame: pa.Table, mode: str) -> np.ndarray:
    """Boolean per row: does this row start a new sentence?

    ``first-token``: the key cell is non-empty. ``every-token``: the key differs
    from the key of the previous keyed row. Unparseable rows carry no key and
    never start a sentence; undecodable rows keep their key (see ``lines.py``).
    """
    key = frame.column("key")
    has_key = _bool(pc.and_(pc.is_valid(key), pc.not_equal(key, "")))
    if mode == "first-token":
        return has_key
    keyed = np.flatnonzero(has_key)
    codes = pc.dictionary_encode(key.take(pa.array(keyed))).combine_chunks().indices.to_numpy(zero_copy_only=False)
    changed = np.ones(len(keyed), dtype=bool)
    changed[1:] = codes[1:] != codes[:-1]
    starts = np.zeros(frame.num_rows, dtype=bool)
    starts[keyed[changed]] = True
    return starts


def assemble_rows(frame: pa.Table, mode: str, label: str) -> pd.DataFrame:
    """Token rows for whole sentences; ``reason`` is null for kept tokens.

    ``frame`` is a line frame that begins at a sentence start (or at the top of
    a file). Returns a frame with the columns of ``ROW_SCHEMA``; sentence ids are
    ``<label>#<sentence key>``.
    """
    n = frame.num_rows
    if n == 0:
        return empty_rows()
    starts = sentence_starts(frame, mode)
    ordinal = np.cumsum(starts)  # 0 = before the first sentence marker
    word, tag = frame.column("word"), frame.column("tag")
    reason = frame.column("reason").to_numpy(zero_copy_only=False).astype(object)
    parsed = reason == None  # noqa: E711 (element-wise)

    empty_word = parsed & ~_bool(pc.not_equal(pc.utf8_trim(word, " \t\r\n"), ""))
    reason[empty_word] = "empty word"
    bad_tag = parsed & ~empty_word & ~_bool(pc.match_substring_regex(tag, TAG_PATTERN))
    for i in np.flatnonzero(bad_tag):
        t = tag[i].as_py()
        reason[i] = f"invalid tag {t!r}" if t else "missing tag"
    if mode == "every-token":
        no_key = parsed & ~_bool(pc.not_equal(frame.column("key"), "")) & (reason == None)  # noqa: E711
        reason[no_key] = "empty sentence key"
    orphan = ordinal == 0
    reason[orphan & (reason == None)] = "line before the first sentence marker"  # noqa: E711

    line = frame.column("line").to_numpy()
    is_bad = reason != None  # noqa: E711
    if is_bad.any():
        # The first bad line of each spoiled sentence says why its other tokens went.
        never = np.iinfo(np.int64).max
        first_bad = np.full(ordinal[-1] + 1, never, dtype=np.int64)
        np.minimum.at(first_bad, ordinal[is_bad], line[is_bad])
        row_first_bad = first_bad[ordinal]
        for i in np.flatnonzero((row_first_bad != never) & ~is_bad & ~orphan):
            reason[i] = f"in a sentence with a rejected line (line {row_first_bad[i]})"

    start_idx = np.flatnonzero(starts)
    ids = pa.array([f"{label}#{k}" for k in frame.column("key").take(pa.array(start_idx)).to_pylist()], pa.string())
    sentence_index = ordinal - 1
    sentence_id = ids.take(pa.array(sentence_index, mask=orphan)) if len(ids) else pa.nulls(n, pa.string())
    first_row = np.concatenate(([0], start_idx))[ordinal]
    token_index = (np.arange(n) - first_row).astype(np.int32)

    text = frame.column("raw")
    rejected_parsed = np.flatnonzero((reason != None) & parsed)  # noqa: E711
    if len(rejected_parsed):
        texts = text.to_numpy(zero_copy_only=False).astype(object)
        keys = frame.column("key")
        for i in rejected_parsed:
            texts[i] = f"{keys[i].as_py() or ''},{word[i].as_py()},{tag[i].as_py()}"
        text = pa.array(texts, pa.string())
    table = pa.table(
        {
            "sentence_id": sentence_id,
            "token_index": pa.array(token_index),
            "word": word,
            "tag": tag,
            "source_file": pa.array([label], pa.string()).take(pa.array(np.zeros(n, dtype=np.int64))),
            "line": frame.column("line"),
            "reason": pa.array(reason, pa.string()),
            "text": text,
        },
        schema=ROW_SCHEMA,
    )
    return table.to_pandas()
