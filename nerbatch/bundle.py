"""The model bundle: everything needed to tag, in one directory.

::

    BUNDLE/
      model.keras      the training model without optimizer state (loads with safe_mode=True)
      vocab.json       words, chars, tags
      vectors.npy, vector_words.txt
                       the pretrained vector table, when the model takes one
      config.json      every hyper-parameter (tagger + training) and versions
      metrics.json     validation and test scores, calibration
      history.json     per-epoch loss and validation P/R/F1
      report.md, *.png human-readable report
      smoke.json       a few sentences and the tags this model gave them
      bundle.json      version id and the SHA-256 of every file

The version id is a content hash of ``model.keras``, ``vocab.json``,
``config.json`` and the vector table; every tagged output row carries it. Loading checks the file
hashes, re-derives the version id from the files, and re-tags the smoke
sentences, so a corrupted or edited bundle or a library upgrade that changes
predictions fails loudly instead of tagging quietly wrong. The hashes prove
integrity, not origin (nothing is signed); ``safe_mode`` is the defence
against a malicious model file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nerbatch import __version__
from nerbatch.checksums import file_sha256
from nerbatch.errors import NerbatchError
from nerbatch.model.vectors import VECTOR_WORDS_FILE, VECTORS_FILE
from nerbatch.staging import replace_directory, staging_dir_for
from nerbatch.vocab import Vocabulary

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.json"
CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.json"
HISTORY_FILE = "history.json"
SMOKE_FILE = "smoke.json"
MANIFEST_FILE = "bundle.json"
VERSIONED_FILES = (MODEL_FILE, VOCAB_FILE, CONFIG_FILE, VECTORS_FILE, VECTOR_WORDS_FILE)


class BundleError(NerbatchError):
    """A bundle is missing, incomplete, altered, or predicts differently than when saved."""


def content_version(folder: Path) -> str:
    """The version id of the bundle files in ``folder``: a hash of the hashes of
    the ``VERSIONED_FILES`` it holds (in that order, so an optional file changes
    nothing for bundles without it). Written by :func:`write_bundle`, re-derived
    by :func:`load_bundle`."""
    hashes = [file_sha256(folder / name)[1] for name in VERSIONED_FILES if (folder / name).exists()]
    return "m-" + hashlib.sha256("".join(hashes).encode()).hexdigest()[:12]


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False, default=str), encoding="utf-8")


def write_bundle(
    out_dir: str | Path,
    *,
    model,
    vocab: Vocabulary,
    config: dict,
    metrics: dict,
    history: list[dict],
    smoke: list[dict],
    vectors=None,
    extra_files: callable | None = None,
) -> str:
    """Write a bundle atomically and return its version id.

    ``vectors`` is the model's :class:`~nerbatch.model.vectors.WordVectors`
    table (None for a model without one); it is written into the bundle.
    ``smoke`` is a list of ``{"words": [...], "tags": [...]}`` predicted by
    ``model`` now; ``extra_files(staging_dir, version)`` may add files (the
    report) before the bundle is swapped in.
    """
    from nerbatch.model.backend import load_keras
    from nerbatch.model.tagger import without_training_state

    keras = load_keras()

    out_dir = Path(out_dir)
    staging = staging_dir_for(out_dir)
    staging.mkdir()
    try:
        without_training_state(model).save(staging / MODEL_FILE)
        vocab.save(staging / VOCAB_FILE)
        _write_json(staging / CONFIG_FILE, config)
        if vectors is not None:
            vectors.save(staging)
        version = content_version(staging)
        _write_json(staging / METRICS_FILE, {"model_version": version, **metrics})
        _write_json(staging / HISTORY_FILE, history)
        _write_json(staging / SMOKE_FILE, smoke)
        if extra_files is not None:
            extra_files(staging, version)
        files = sorted(p.name for p in staging.iterdir() if p.is_file())
        _write_json(
            staging / MANIFEST_FILE,
            {
                "model_version": version,
                "created_at": datetime.now(UTC).isoformat(),
                "nerbatch_version": __version__,
                "keras_version": keras.__version__,
                "keras_backend": keras.backend.backend(),
                "files": {name: file_sha256(staging / name)[1] for name in files},
            },
        )
        replace_directory(staging, out_dir)
    except BaseException:
        import shutil

        shutil.rmtree(staging, ignore_errors=True)
        raise
    return version


@dataclass
class Bundle:
    path: Path
    version: str
    vocab: Vocabulary
    config: dict
    model: Any  # the training model (CRFTagger)
    decoder: Any  # the inference model
    vectors: Any = None  # the WordVectors table, when the model takes one

    def predictor(self, *, batch_size: int = 128, max_tokens: int = 8192):
        from nerbatch.inference import Predictor
        from nerbatch.model.tagger import TaggerConfig, input_names

        tagger = TaggerConfig(**self.config["tagger"])
        return Predictor(
            self.decoder, self.vocab, input_names(tagger), max_word_length=tagger.max_word_length,
            vectors=self.vectors, batch_size=batch_size, max_tokens=max_tokens,
        )


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    manifest = path / MANIFEST_FILE
    if not path.exists():
        raise BundleError(f"{path}: the model bundle does not exist")
    if not manifest.exists():
        raise BundleError(f"{path}: not a model bundle (no {MANIFEST_FILE})")
    return json.loads(manifest.read_text(encoding="utf-8"))


def _load_model_safely(path: Path):
    """The bundle's model, loaded with ``safe_mode=True``; a file Keras refuses (a
    Lambda layer, i.e. code) or cannot read is one :class:`BundleError`."""
    import zipfile

    from nerbatch.model.tagger import load_tagger

    try:
        return load_tagger(path / MODEL_FILE)
    except (ValueError, TypeError, OSError, KeyError, zipfile.BadZipFile) as exc:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if "safe_mode" in str(exc) or "Lambda" in str(exc):
            raise BundleError(f"{path}: {MODEL_FILE} cannot be loaded safely: it holds code (a Lambda layer or "
                              "similar) that safe_mode refuses to run; use a bundle written by nerbatch train") from None
        raise BundleError(f"{path}: {MODEL_FILE} cannot be loaded ({first_line})") from None


def load_bundle(path: str | Path, *, verify: bool = True) -> Bundle:
    """Load a bundle; with ``verify``, check file hashes and the smoke predictions."""
    from nerbatch.model.tagger import build_decoder
    from nerbatch.model.vectors import WordVectors

    path = Path(path)
    manifest = read_manifest(path)
    if verify:
        for name, expected in manifest["files"].items():
            if not (path / name).exists():
                raise BundleError(f"{path}: {name} is missing")
            if file_sha256(path / name)[1] != expected:
                raise BundleError(f"{path}: {name} does not match its hash in {MANIFEST_FILE}")
        # The hashes in bundle.json can be rewritten along with the files; the version id
        # every output row carries cannot, without the change showing here.
        derived = content_version(path)
        if derived != manifest["model_version"]:
            raise BundleError(
                f"{path}: its files give version {derived}, not {manifest['model_version']} as "
                f"{MANIFEST_FILE} says: the model, vocabulary, config or vectors were changed after it was written"
            )
    model = _load_model_safely(path)
    config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    vectors_source = config["tagger"].get("vectors")
    bundle = Bundle(
        path=path,
        version=manifest["model_version"],
        vocab=Vocabulary.load(path / VOCAB_FILE),
        config=config,
        model=model,
        decoder=build_decoder(model),
        # From the bundle's own copy: the source's file or package need not exist here.
        vectors=WordVectors.load(path, vectors_source) if vectors_source else None,
    )
    if verify:
        smoke = json.loads((path / SMOKE_FILE).read_text(encoding="utf-8"))
        if smoke:
            got = bundle.predictor().tag([s["words"] for s in smoke])
            for s, g in zip(smoke, got):
                if g.tags != s["tags"]:
                    raise BundleError(
                        f"{path}: the model tags {' '.join(s['words'][:8])!r}... differently than when it was saved; "
                        "check the Keras/TensorFlow versions against bundle.json"
                    )
    return bundle
