"""The data contracts (README: "Data contracts") as Arrow schemas: one place to read them."""

from __future__ import annotations

import pyarrow as pa

SPLITS = ("train", "validation", "test")

#: What every corpus reader yields, one row per token, in order.
TOKEN_SCHEMA = pa.schema(
    [
        ("sentence_id", pa.string()),
        ("token_index", pa.int32()),
        ("word", pa.string()),
        ("tag", pa.string()),
    ]
)

#: The sentence dataset written by ``prepare`` (``sentences/``).
SENTENCE_SCHEMA = pa.schema(
    [
        ("sentence_id", pa.string()),
        ("words", pa.list_(pa.string())),
        ("tags", pa.list_(pa.string())),
        ("n_tokens", pa.int32()),
        ("split", pa.string()),
    ]
)

#: Input lines that could not be used, kept aside with where they came from.
REJECT_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("line", pa.int64()),
        ("reason", pa.string()),
        ("text", pa.string()),
    ]
)

#: Tagged outputs (``entities/``), one row per predicted entity.
ENTITY_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("sentence_index", pa.int32()),
        ("start_char", pa.int64()),
        ("end_char", pa.int64()),
        ("text", pa.string()),
        ("label", pa.string()),
        ("confidence", pa.float32()),
        ("model_version", pa.string()),
        ("run_id", pa.string()),
    ]
)

#: Optional per-token tagged output (``tokens/``).
TAGGED_TOKEN_SCHEMA = pa.schema(
    [
        ("doc_id", pa.string()),
        ("sentence_index", pa.int32()),
        ("token_index", pa.int32()),
        ("token", pa.string()),
        ("start_char", pa.int64()),
        ("end_char", pa.int64()),
        ("tag", pa.string()),
        ("confidence", pa.float32()),
    ]
)

#: Documents set aside by the tag job (``rejects/``), one row per bad document or
#: input row: where it came from (``row`` as in ``nerbatch.documents``), why, and
#: its text (undecodable bytes as ``\xNN``) kept aside.
DOCUMENT_REJECT_SCHEMA = pa.schema(
    [
        ("source_file", pa.string()),
        ("row", pa.int64()),
        ("doc_id", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("text", pa.string()),
    ]
)
