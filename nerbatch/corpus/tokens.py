"""From a line frame (see ``lines.py``) to token rows: sentence ids, token
positions, and the reject decision.

Reject policy: a sentence with a bad line in it (unparseable, empty word,
invalid tag) is a wrong training example, so the *whole sentence* goes to
``rejects/``: the bad lines with their own reason, the sentence's other tokens
with ``"in a sentence with a rejected line (line N)"``. Lines before the first
sentence marker of a file are rejected too. Every token of the input thus ends
up in exactly one of ``sentences/`` and ``rejects/``.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from nerbatch.corpus.layouts import CsvLayout

#: Valid tags: ``O`` or a prefix of IOB1/IOB2/IOBES/BILOU and a non-empty type.
TAG_PATTERN = re.compile(r"^(O|[BIESLU]-\S+)$")

ROW_COLUMNS = ["sentence_id", "token_index", "word", "tag", "source_file", "line", "reason", "text"]
ROW_DTYPES = {
    "sentence_id": "string",
    "token_index": "int32",
    "word": "string",
    "tag": "string",
    "source_file": "string",
    "line": "int64",
    "reason": "string",
    "text": "string",
}


def empty_rows() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series([], dtype=t) for c, t in ROW_DTYPES.items()})


def sentence_starts(frame: pd.DataFrame, marker: CsvLayout | str) -> np.ndarray:
    """Boolean per row: does this row start a new sentence?

    ``first-token``: the key cell is non-empty. ``every-token``: the key differs
    from the key of the previous keyed row. Unparseable rows carry no key and
    never start a sentence; undecodable rows keep their key (see ``lines.py``).
    """
    mode = marker if isinstance(marker, str) else marker.sentence_marker
    key = frame["key"].astype("string")
    has_key = (key.notna() & (key != "")).to_numpy(dtype=bool)
    if mode == "first-token":
        return has_key
    keyed = key[has_key]
    changed = (keyed != keyed.shift()).fillna(True).to_numpy(dtype=bool)
    starts = np.zeros(len(key), dtype=bool)
    starts[np.flatnonzero(has_key)[changed]] = True
    return starts


def assemble_rows(frame: pd.DataFrame, mode: str, source_file: str, label: str) -> pd.DataFrame:
    """Token rows for whole sentences; ``reason`` is null for kept tokens.

    ``frame`` is a line frame that begins at a sentence start (or at the top of
    a file). Returns columns ``ROW_COLUMNS``.
    """
    n = len(frame)
    if n == 0:
        return empty_rows()
    starts = sentence_starts(frame, mode)
    ordinal = np.cumsum(starts)  # 0 = before the first sentence marker
    word = frame["word"].to_numpy(dtype=object)
    tag = frame["tag"].to_numpy(dtype=object)
    reason = frame["reason"].to_numpy(dtype=object).copy()
    parsed = np.array([r is None for r in reason], dtype=bool)

    # Only ASCII blanks count as empty: U+0085 (cp1252 "…" read as latin-1) is a real token.
    empty_word = parsed & np.array([w is None or w.strip(" \t\r\n") == "" for w in word], dtype=bool)
    reason[empty_word] = "empty word"
    bad_tag = parsed & ~empty_word & np.array([t is None or TAG_PATTERN.match(t) is None for t in tag], dtype=bool)
    for i in np.flatnonzero(bad_tag):
        reason[i] = f"invalid tag {tag[i]!r}" if tag[i] else "missing tag"
    if mode == "every-token":
        no_key = parsed & np.array([k is None or k == "" for k in frame["key"].to_numpy(dtype=object)], dtype=bool)
        reason[no_key & np.array([r is None for r in reason])] = "empty sentence key"
    orphan = ordinal == 0
    reason[orphan & np.array([r is None for r in reason])] = "line before the first sentence marker"

    line = frame["line"].to_numpy(dtype=np.int64)
    is_bad = np.array([r is not None for r in reason], dtype=bool)
    # The first bad line of each spoiled sentence, to say why its other tokens went.
    first_bad_line = pd.Series(np.where(is_bad, line, np.iinfo(np.int64).max)).groupby(ordinal).transform("min").to_numpy()
    spoiled = (first_bad_line != np.iinfo(np.int64).max) & ~is_bad & ~orphan
    for i in np.flatnonzero(spoiled):
        reason[i] = f"in a sentence with a rejected line (line {first_bad_line[i]})"

    start_idx = np.flatnonzero(starts)
    sentence_key = np.empty(n, dtype=object)
    sentence_key[:] = None
    if len(start_idx):
        keys = frame["key"].to_numpy(dtype=object)[start_idx]
        sentence_key[~orphan] = keys[ordinal[~orphan] - 1]
    sentence_id = np.array([None if k is None else f"{label}#{k}" for k in sentence_key], dtype=object)
    # Position within the sentence: row offset from the sentence's first row.
    first_row = np.concatenate(([0], start_idx))[ordinal]
    token_index = (np.arange(n) - first_row).astype(np.int32)

    text = frame["raw"].to_numpy(dtype=object).copy()
    rejected_parsed = np.flatnonzero(np.array([r is not None for r in reason]) & parsed)
    for i in rejected_parsed:
        text[i] = f"{frame['key'].iat[i] or ''},{word[i]},{tag[i]}"
    rows = pd.DataFrame(
        {
            "sentence_id": sentence_id,
            "token_index": token_index,
            "word": word,
            "tag": tag,
            "source_file": source_file,
            "line": line,
            "reason": reason,
            "text": text,
        }
    )
    return rows.astype(ROW_DTYPES)
