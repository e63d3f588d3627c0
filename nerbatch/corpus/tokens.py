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
import pyarrow as pa
import pyarrow.compute as pc

from nerbatch.tables import REJECT_SCHEMA, TOKEN_SCHEMA

#: Valid tags: ``O`` or a prefix of IOB1/IOB2/IOBES/BILOU and a non-empty type.
TAG_PATTERN = r"^(O|[BIESLU]-\S+)$"

#: One row per input line: the token-table contract, then where the line came from
#: and, for a rejected line, why (the reject-table columns).
ROW_SCHEMA = pa.schema([*TOKEN_SCHEMA, *REJECT_SCHEMA])


def _bool(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return pc.fill_null(array, False).to_numpy(zero_copy_only=False)


def has_sentence_key(frame: pa.Table) -> np.ndarray:
    """Boolean per row of a line frame: is its ``key`` cell non-null and non-empty?"""
    key = frame.column("key")
    return _bool(pc.and_(pc.is_valid(key), pc.not_equal(key, "")))


def sentence_starts(frame: pa.Table, mode: str) -> np.ndarray:
    """Boolean per row: does this row start a new sentence?

    ``first-token``: the key cell is non-empty. ``every-token``: the key differs
    from the key of the previous keyed row. Unparseable rows carry no key and
    never start a sentence; undecodable rows keep their key (see ``lines.py``).
    """
    has_key = has_sentence_key(frame)
    if mode == "first-token":
        return has_key
    keyed = np.flatnonzero(has_key)
    codes = pc.dictionary_encode(frame.column("key").take(pa.array(keyed))).combine_chunks().indices.to_numpy(zero_copy_only=False)
    changed = np.ones(len(keyed), dtype=bool)
    changed[1:] = codes[1:] != codes[:-1]
    starts = np.zeros(frame.num_rows, dtype=bool)
    starts[keyed[changed]] = True
    return starts


def assemble_rows(frame: pa.Table, mode: str, label: str) -> pa.Table:
    """Token rows for whole sentences; ``reason`` is null for kept tokens.

    ``frame`` is a line frame that begins at a sentence start (or at the top of
    a file). Returns an Arrow table with the columns of ``ROW_SCHEMA``; sentence
    ids are ``<label>#<sentence key>``.
    """
    n = frame.num_rows
    if n == 0:
        return ROW_SCHEMA.empty_table()
    starts = sentence_starts(frame, mode)
    ordinal = np.cumsum(starts)  # 0 = before the first sentence marker
    reason = _reject_reasons(frame, mode, ordinal)
    line = frame.column("line").to_numpy()
    text = frame.column("raw")
    if reason is not None:
        _spread_to_sentences(reason, ordinal, line)
        text = _rejected_texts(frame, reason)

    start_idx = np.flatnonzero(starts)
    keys = frame.column("key").take(pa.array(start_idx))
    ids = pc.binary_join_element_wise(label + "#", keys, "")
    orphan = ordinal == 0
    sentence_id = ids.take(pa.array(ordinal - 1, mask=orphan)) if len(ids) else pa.nulls(n, pa.string())
    first_row = np.concatenate(([0], start_idx))[ordinal]
    token_index = (np.arange(n) - first_row).astype(np.int32)
    return pa.table(
        {
            "sentence_id": sentence_id,
            "token_index": pa.array(token_index),
            "word": frame.column("word"),
            "tag": frame.column("tag"),
            "source_file": pa.repeat(label, n),
            "line": frame.column("line"),
            "reason": pa.nulls(n, pa.string()) if reason is None else pa.array(reason, pa.string()),
            "text": text,
        },
        schema=ROW_SCHEMA,
    )


def _reject_reasons(frame: pa.Table, mode: str, ordinal: np.ndarray) -> np.ndarray | None:
    """Why each line is rejected (object array, None where kept), or None when
    every line is kept: the common case costs a few vectorised checks."""
    word, tag = frame.column("word"), frame.column("tag")
    parse_reason = frame.column("reason")
    parsed = ~_bool(pc.is_valid(parse_reason))
    empty_word = parsed & ~_bool(pc.not_equal(pc.utf8_trim(word, " \t\r\n"), ""))
    # A NUL byte is never part of a real word (a binary or broken file): as bad as an empty word.
    nul = parsed & ~empty_word & (_bool(pc.match_substring(word, "\x00")) | _bool(pc.match_substring(tag, "\x00")))
    # Few distinct tags: check the regex once per distinct tag.
    encoded = pc.dictionary_encode(tag).combine_chunks()
    valid_tag = np.append(_bool(pc.match_substring_regex(encoded.dictionary, TAG_PATTERN)), False)
    tag_ok = valid_tag[pc.fill_null(encoded.indices, len(encoded.dictionary)).to_numpy()]  # null tag: not ok
    bad_tag = parsed & ~empty_word & ~nul & ~tag_ok
    no_key = parsed & ~_bool(pc.not_equal(frame.column("key"), "")) if mode == "every-token" else np.zeros(len(parsed), bool)
    orphan = ordinal == 0
    if parsed.all() and not (empty_word.any() or nul.any() or bad_tag.any() or no_key.any() or orphan.any()):
        return None
    reason = parse_reason.to_numpy(zero_copy_only=False).astype(object)
    reason[empty_word] = "empty word"
    reason[nul] = "NUL character in the word or tag"
    for i in np.flatnonzero(bad_tag):
        t = tag[i].as_py()
        reason[i] = f"invalid tag {t!r}" if t else "missing tag"
    reason[no_key & (reason == None)] = "empty sentence key"  # noqa: E711 (element-wise)
    reason[orphan & (reason == None)] = "line before the first sentence marker"  # noqa: E711
    return reason


def _spread_to_sentences(reason: np.ndarray, ordinal: np.ndarray, line: np.ndarray) -> None:
    """Reject the other tokens of every sentence with a bad line (in place); the
    first bad line of each spoiled sentence says why its other tokens went."""
    is_bad = reason != None  # noqa: E711 (element-wise)
    never = np.iinfo(np.int64).max
    first_bad = np.full(ordinal[-1] + 1, never, dtype=np.int64)
    np.minimum.at(first_bad, ordinal[is_bad], line[is_bad])
    row_first_bad = first_bad[ordinal]
    for i in np.flatnonzero((row_first_bad != never) & ~is_bad & (ordinal > 0)):
        reason[i] = f"in a sentence with a rejected line (line {row_first_bad[i]})"


def _rejected_texts(frame: pa.Table, reason: np.ndarray) -> pa.Array:
    """The ``text`` column: the raw line of unparseable lines (from the parser),
    ``key,word,tag`` for parsed lines that were rejected."""
    texts = frame.column("raw").to_numpy(zero_copy_only=False).astype(object)
    parsed = ~_bool(pc.is_valid(frame.column("reason")))
    keys, word, tag = frame.column("key"), frame.column("word"), frame.column("tag")
    for i in np.flatnonzero((reason != None) & parsed):  # noqa: E711 (element-wise)
        texts[i] = f"{keys[i].as_py() or ''},{word[i].as_py()},{tag[i].as_py()}"
    return pa.array(texts, pa.string())
