"""The tagger: CRF layer (``crf``), input features (``features``), pretrained
vectors (``vectors``), model building and decoding (``tagger``).

Names are imported lazily, so ``nerbatch.model.features`` (numpy only) can be
used by data workers without importing Keras and its backend.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "CRF": "crf",
    "CRFDecode": "crf",
    "Casing": "features",
    "INPUT_NAMES": "features",
    "encode_batch": "features",
    "encode_inputs": "features",
    "encode_tags": "features",
    "WordVectors": "vectors",
    "load_vectors": "vectors",
    "CRFTagger": "tagger",
    "TaggerConfig": "tagger",
    "build_decoder": "tagger",
    "build_tagger": "tagger",
    "encode_sentences": "tagger",
    "load_tagger": "tagger",
    "input_names": "tagger",
    "predict_tags": "tagger",
    "select_inputs": "tagger",
}

__all__ = tuple(sorted(_EXPORTS))


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
