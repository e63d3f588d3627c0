"""A document dump made from a split of a prepared corpus, so the pipeline can
show tagging end to end when the user has no dump at hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from nerbatch.scoring import load_split

NO_SPACE_BEFORE = {".", ",", ";", ":", "?", "!", "%", ")", "'s", "n't", "'"}


def detokenize(words: list[str]) -> str:
    """Rough inverse of PTB tokenisation: a space between words except before punctuation."""
    text = ""
    for w in words:
        text += w if not text or w in NO_SPACE_BEFORE else " " + w
    return text


def write_demo_dump(prepared_sentences: str | Path, out_file: str | Path, *, split: str = "test",
                    sentences_per_document: int = 5) -> Path:
    """Write ``doc_id``, ``text`` Parquet from the sentences of ``split``."""
    words, _ = load_split(prepared_sentences, split)
    docs = [
        {"doc_id": f"{split}-{i // sentences_per_document:06d}",
         "text": " ".join(detokenize(w) for w in words[i : i + sentences_per_document])}
        for i in range(0, len(words), sentences_per_document)
    ]
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(docs, columns=["doc_id", "text"]).to_parquet(out_file, index=False)
    return out_file
