"""Train the tagger on a prepared corpus and write a model bundle.

Batches stream from the sentence dataset, bucketed by length and padded to
their own longest sentence; the loop is explicit (``train_on_batch``) so shapes
may change from batch to batch, validation entity F1 drives early stopping, and
the best weights are kept. On a GPU worker TensorFlow places the model on the
GPU with no code change (the LSTMs keep the cuDNN conditions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from nerbatch import __version__
from nerbatch.batching import count_split, resolve_prepared, stream_batches
from nerbatch.bundle import MANIFEST_FILE, write_bundle
from nerbatch.errors import InputError
from nerbatch.evaluate import score_entities
from nerbatch.inference import Predictor
from nerbatch.scoring import evaluate_split, load_split
from nerbatch.staging import check_replaceable, check_writable
from nerbatch.vocab import UNK_ID, Vocabulary
from nerbatch.weight_averaging import WeightAverage

log = logging.getLogger(__name__)


class TrainConfig(BaseModel):
    """Training hyper-parameters; ``tagger`` overrides fields of the preset's TaggerConfig."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    preset: Literal["default", "seed", "tiny"] = "default"
    tagger: dict[str, Any] = Field(default_factory=dict)
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(16, ge=1)  # 16 beat 32 and 8 on GMB validation F1
    learning_rate: float = Field(1e-3, gt=0)
    clipnorm: float | None = Field(5.0, gt=0)
    learning_rate_decay: float = Field(0.0, ge=0, description="epoch e trains at learning_rate / (1 + decay * (e - 1))")
    # The average of the last ~1/(1 - momentum) steps' weights generalises better than the last step's
    # (Polyak averaging): +0.5 validation and test F1 points on GMB, mean of three seeds.
    weight_averaging: float | None = Field(
        0.999, gt=0, lt=1, description="momentum of the moving average of the weights that is validated and kept; None: off"
    )
    patience: int = Field(5, ge=1, description="epochs without a better validation F1 before stopping")
    seed: int = 42
    bucket_batches: int = Field(64, ge=1, description="batches per length bucket (memory bound of the stream)")
    pad_to: int | None = Field(None, description="pad every batch to this length (the tutorial's 140) instead of dynamically")
    mixed_precision: bool = False
    max_batches_per_epoch: int | None = Field(None, ge=1, description="for smoke runs")

    def tagger_config(self):
        from nerbatch.model.tagger import TaggerConfig

        return TaggerConfig.preset(self.preset, **{"seed": self.seed, **self.tagger})


def vectors_override(source: str | None) -> dict[str, str | None]:
    """The tagger override for a ``--vectors`` option: ``{}`` (the preset's) for None, no vectors for "none"."""
    if source is None:
        return {}
    return {"vectors": None if source.lower() == "none" else source}


@dataclass
class TrainResult:
    bundle_dir: Path
    model_version: str
    history: list[dict]
    metrics: dict
    seconds: float

    @property
    def test_f1(self) -> float:
        return self.metrics["test"]["scores"]["f1"]


def train_tagger(
    prepared: str | Path,
    bundle_dir: str | Path,
    config: TrainConfig = TrainConfig(),
    *,
    on_epoch: Callable[[dict], None] | None = None,
    progress: bool = False,
    overwrite: bool = False,
    cores: int | None = None,
) -> TrainResult:
    """Train on the ``train`` split, early-stop on ``validation`` entity F1,
    evaluate on ``validation`` and ``test``, and write the bundle.

    ``bundle_dir`` is replaced as a whole, so before any work it must be new,
    empty or an earlier bundle (``overwrite``: any other folder, never a file,
    an input's folder, ``/``, ``$HOME`` or the current folder).

    ``cores``: TensorFlow's thread pools (default: every core of this machine, also in
    a Dask worker process that runs with one thread; see
    :func:`nerbatch.model.backend.dedicate_cores`)."""
    from nerbatch.model.backend import dedicate_cores, load_keras, machine_cores
    from nerbatch.model.tagger import build_decoder, build_tagger, encode_sentences, input_names
    from nerbatch.model.vectors import BUILTIN_SOURCES, load_vectors

    started = time.perf_counter()
    tagger_config = config.tagger_config()
    vectors_file = tagger_config.vectors if tagger_config.vectors not in (None, *BUILTIN_SOURCES) else None
    inputs = [prepared, *([vectors_file] if vectors_file else [])]
    check_replaceable(bundle_dir, marker=MANIFEST_FILE, command="train", inputs=inputs, overwrite=overwrite)
    check_writable(Path(bundle_dir))
    sentences_dir, vocab_path = resolve_prepared(prepared)
    vocab = Vocabulary.load(vocab_path)
    n_train, n_train_tokens = count_split(sentences_dir, "train")
    if n_train == 0:
        raise InputError(str(sentences_dir), "the train split is empty")
    keras = load_keras()
    log.info("training with %d TensorFlow threads", dedicate_cores(cores or machine_cores()))
    keras.utils.set_random_seed(config.seed)
    keys = input_names(tagger_config)
    vectors = load_vectors(tagger_config.vectors) if tagger_config.vectors else None
    if vectors is not None:
        log.info("pretrained vectors %s: %s words x %d", vectors.source, f"{len(vectors):,}", vectors.dim)
    with global_dtype_policy("mixed_float16" if config.mixed_precision else None):
        model = build_tagger(tagger_config, vocab, vectors)
    # No XLA: with dynamic padding every new batch length would trigger a recompile on a GPU.
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=config.learning_rate, clipnorm=config.clipnorm),
        jit_compile=False,
    )
    predictor = Predictor(
        build_decoder(model), vocab, keys, max_word_length=tagger_config.max_word_length, vectors=vectors
    )
    val_words, val_tags = load_split(sentences_dir, "validation")

    averaging = WeightAverage(model.trainable_variables, config.weight_averaging) if config.weight_averaging else None
    history: list[dict] = []
    best_f1, best_epoch, best_weights = -1.0, 0, None
    batches_per_epoch = -(-n_train // config.batch_size)
    if config.max_batches_per_epoch:
        batches_per_epoch = min(batches_per_epoch, config.max_batches_per_epoch)
    for epoch in range(1, config.epochs + 1):
        epoch_started = time.perf_counter()
        model.optimizer.learning_rate = config.learning_rate / (1 + config.learning_rate_decay * (epoch - 1))
        losses = []
        batches = stream_batches(
            sentences_dir, "train", batch_size=config.batch_size, bucket_batches_count=config.bucket_batches,
            seed=config.seed + epoch,
        )
        with _progress_bar(progress, f"epoch {epoch}", batches_per_epoch) as advance:
            for step, batch in enumerate(batches):
                if config.max_batches_per_epoch and step >= config.max_batches_per_epoch:
                    break
                x, y = encode_sentences(
                    tagger_config, vocab, batch.words, batch.tags, pad_to=config.pad_to, vectors=vectors
                )
                losses.append(float(np.asarray(model.train_on_batch(x, y))))
                if averaging is not None:
                    averaging.update()
                advance()
        train_seconds = time.perf_counter() - epoch_started
        loss = float(np.mean(losses)) if losses else float("nan")
        # With weight averaging, the averaged weights are the ones validated and kept;
        # training goes on from the trained ones.
        with averaging.applied() if averaging is not None else nullcontext():
            val = score_entities(val_tags, [t.tags for t in predictor.tag(val_words)]) if val_words else None
            f1 = val.f1 if val else -loss  # no validation split: early stopping and best weights follow the loss
            if f1 > best_f1:
                best_f1, best_epoch, best_weights = f1, epoch, model.get_weights()
        row = {"epoch": epoch, "learning_rate": float(np.asarray(model.optimizer.learning_rate)), "loss": loss}
        if val:
            row.update(val_precision=val.precision, val_recall=val.recall, val_f1=val.f1)
        row["seconds"] = round(train_seconds, 3)
        history.append(row)
        log.info("%s", describe_epoch(row))
        if on_epoch:
            on_epoch(row)
        if epoch - best_epoch >= config.patience:
            log.info("early stop: no better validation F1 since epoch %d", best_epoch)
            break
    if best_weights is not None:
        model.set_weights(best_weights)

    evaluations = {s: evaluate_split(predictor, sentences_dir, s) for s in ("validation", "test")}
    metrics = {
        "headline": "test entity F1 (conlleval)",
        "best_epoch": best_epoch,
        **{s: e.to_dict() for s, e in evaluations.items()},
    }
    smoke_words = val_words[:8] or [list(w) for w in load_split(sentences_dir, "train")[0][:8]]
    smoke = [{"words": w, "tags": t.tags} for w, t in zip(smoke_words, predictor.tag(smoke_words))]
    full_config = {
        "tagger": tagger_config.model_dump(mode="json"),
        "training": config.model_dump(mode="json"),
        "data": {
            "sentences": str(sentences_dir), "train_sentences": n_train, "train_tokens": n_train_tokens,
            **({"vectors": vectors_summary(vectors, vocab, val_words)} if vectors is not None else {}),
        },
        "nerbatch_version": __version__,
        "keras_backend": keras.backend.backend(),
    }

    def write_report_files(staging: Path, version: str) -> None:
        from nerbatch.report import write_report

        write_report(
            staging,
            history=history,
            validation=evaluations["validation"].scores,
            test=evaluations["test"].scores,
            confusion=evaluations["test"].confusion,
            calibration=evaluations["test"].calibration,
            config=full_config,
            model_version=version,
            dataset_summary=full_config["data"],
        )

    version = write_bundle(
        bundle_dir, model=model, vocab=vocab, config=full_config, metrics=metrics, history=history, smoke=smoke,
        vectors=vectors, extra_files=write_report_files,
    )
    return TrainResult(Path(bundle_dir), version, history, metrics, time.perf_counter() - started)


def vectors_summary(vectors, vocab: Vocabulary, validation: list[list[str]]) -> dict:
    """How much the vector table covers: training words and tokens, and the validation
    tokens that the trainable embedding has never seen (``<unk>`` to it)."""
    from nerbatch.model.features import word_ids
    from nerbatch.model.vectors import coverage

    train = coverage(vectors, vocab.words[2:], vocab.word_counts[2:])
    tokens = [w for sentence in validation for w in sentence]
    # The model's own lookup decides what is unseen (as written, else lowercase).
    unseen = [w for w, i in zip(tokens, word_ids(tokens, vocab)) if i == UNK_ID]
    return {
        "source": vectors.source,
        "words": len(vectors),
        "dim": vectors.dim,
        "train_word_coverage": round(train["words"], 4),
        "train_token_coverage": round(train["tokens"], 4),
        "validation_unseen_tokens": len(unseen),
        "validation_unseen_tokens_with_vector": round(coverage(vectors, unseen, [1] * len(unseen))["tokens"], 4),
    }


def describe_epoch(row: dict) -> str:
    """One line for a ``history.json`` row: ``epoch 3: loss 2.8582, val P/R/F1 0.8103/0.8016/0.8059 (21.3s)``."""
    if "val_f1" in row:
        val = f"val P/R/F1 {row['val_precision']:.4f}/{row['val_recall']:.4f}/{row['val_f1']:.4f}"
    else:
        val = "no validation split"
    return f"epoch {row['epoch']}: loss {row['loss']:.4f}, {val} ({row['seconds']:.1f}s)"


@contextmanager
def global_dtype_policy(name: str | None) -> Iterator[None]:
    """Layers built inside use the Keras dtype policy ``name`` (None: leave it);
    the process-wide policy is restored after, so later models are not affected."""
    from nerbatch.model.backend import load_keras

    keras = load_keras()

    previous = keras.mixed_precision.global_policy()
    if name:
        keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


@contextmanager
def _progress_bar(show: bool, description: str, total: int) -> Iterator[Callable[[], None]]:
    """A rich progress bar for one epoch; yields the function that advances it (a no-op when not shown)."""
    if not show:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as progress:
        task = progress.add_task(description, total=total)
        yield lambda: progress.advance(task)
