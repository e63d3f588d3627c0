"""The ``nerbatch`` command line. Each command parses options into the same
option models the flows use and calls the same library function."""

from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console

from nerbatch.errors import NerbatchError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Batch named-entity recognition.")
err = Console(stderr=True, soft_wrap=True)


@app.callback()
def main() -> None:
    """Batch named-entity recognition: prepare, train, evaluate, predict, tag."""


def _fail(exc: Exception) -> None:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    raise typer.Exit(code=2)


PROGRESS_INTERVAL = 0.1  # seconds between progress updates streamed by the scheduler


def _compute_with_progress(client, show: bool | None):
    """A ``compute`` for library calls: Dask futures with a text progress bar on
    stderr (stdout is for the summary), by default only on a terminal."""
    from distributed import progress

    if show is None:
        show = sys.stderr.isatty()

    def compute(*collections):
        futures = client.compute(list(collections))
        if show:
            with contextlib.redirect_stdout(sys.stderr):  # where Dask's text bar writes
                progress(futures, interval=PROGRESS_INTERVAL)
            print(file=sys.stderr)
            # The scheduler streams progress until a write finds the bar gone; a
            # cluster closed before that cancels the stream and logs a traceback.
            time.sleep(2 * PROGRESS_INTERVAL)
        return tuple(client.gather(futures))

    return compute


@app.command()
def prepare(
    inputs: Annotated[list[str], typer.Argument(help="Files, globs or fsspec URLs of token-labelled corpora.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (replaced as a whole: new, empty or an earlier prepare output).")],
    format: Annotated[str, typer.Option("--format", help="auto, gmb, tutorial, conll, csv or parquet.")] = "auto",
    encoding: Annotated[Optional[str], typer.Option(help="Text encoding (default: latin-1 for gmb/tutorial, utf-8 otherwise).")] = None,
    sentence_column: Annotated[Optional[str], typer.Option(help="csv/parquet: the sentence key column.")] = None,
    word_column: Annotated[Optional[str], typer.Option(help="csv/parquet: the word column.")] = None,
    tag_column: Annotated[Optional[str], typer.Option(help="csv/parquet: the tag column.")] = None,
    sentence_marker: Annotated[Optional[str], typer.Option(help="'every-token' (key on every row) or 'first-token' (key on a sentence's first row only).")] = None,
    conll_tag_column: Annotated[int, typer.Option(help="conll: index of the tag column (default: last).")] = -1,
    delimiter: Annotated[str, typer.Option(help="csv: field delimiter.")] = ",",
    split_file: Annotated[list[str], typer.Option("--split-file", help="SPLIT=PATH: put all of PATH in SPLIT (train, validation, test). Repeatable.")] = [],
    train_fraction: Annotated[float, typer.Option(help="Hash-split share of train.")] = 0.8,
    validation_fraction: Annotated[float, typer.Option(help="Hash-split share of validation (test gets the rest).")] = 0.1,
    min_count: Annotated[int, typer.Option(help="Keep words seen at least this often in train.")] = 1,
    max_vocab_size: Annotated[Optional[int], typer.Option(help="Keep at most this many words.")] = None,
    blocksize: Annotated[str, typer.Option(help="Bytes per read block, e.g. 64MiB, or 'none' for one per file.")] = "8MiB",
    strict: Annotated[bool, typer.Option("--strict", help="Fail (and write nothing) if any line is rejected.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out even if it holds something else.")] = False,
    dask_address: Annotated[Optional[str], typer.Option(envvar="DASK_SCHEDULER_ADDRESS", help="Use this Dask scheduler instead of a LocalCluster.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="LocalCluster worker threads (default: one per core).")] = None,
    progress: Annotated[Optional[bool], typer.Option(help="Show a progress bar (default: on a terminal).")] = None,
) -> None:
    """Ingest token-labelled corpora: sentences, splits, vocabulary and a report."""
    from dask.utils import parse_bytes

    from nerbatch.cluster import dask_client
    from nerbatch.corpus.sentences import SplitFractions
    from nerbatch.prepare import PrepareOptions, prepare_corpus

    try:
        split_files: dict[str, list[str]] = {}
        for item in split_file:
            split, sep, path = item.partition("=")
            if not sep:
                raise typer.BadParameter(f"--split-file expects SPLIT=PATH, got {item!r}")
            split_files.setdefault(split, []).append(path)
        options = PrepareOptions(
            format=format,
            encoding=encoding,
            sentence_column=sentence_column,
            word_column=word_column,
            tag_column=tag_column,
            sentence_marker=sentence_marker,
            conll_tag_column=conll_tag_column,
            delimiter=delimiter,
            blocksize=None if blocksize.lower() == "none" else parse_bytes(blocksize),
            strict=strict,
            splits=SplitFractions(
                train=train_fraction, validation=validation_fraction, test=round(1 - train_fraction - validation_fraction, 12)
            ),
            split_files=split_files,
            min_count=min_count,
            max_vocab_size=max_vocab_size,
        )
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        _fail(exc)
    try:
        with dask_client(dask_address, n_workers=workers, threads=True) as client:
            report = prepare_corpus(inputs, out, options, overwrite=overwrite, compute=_compute_with_progress(client, progress))
    except NerbatchError as exc:
        _fail(exc)
    print(report.summary())


@app.command()
def train(
    prepared: Annotated[Path, typer.Argument(help="A `prepare` output directory (or its sentences/).")],
    out: Annotated[Path, typer.Option("--out", help="Bundle directory to write (replaced as a whole: new, empty or an earlier bundle).")],
    preset: Annotated[str, typer.Option(help="default, seed (the tutorial's network) or tiny.")] = "default",
    epochs: Annotated[int, typer.Option(help="Most epochs (early stopping on validation F1).")] = 30,
    batch_size: Annotated[int, typer.Option()] = 16,
    learning_rate: Annotated[float, typer.Option()] = 1e-3,
    clipnorm: Annotated[Optional[float], typer.Option(help="Gradient norm clipping (0 = off).")] = 5.0,
    learning_rate_decay: Annotated[float, typer.Option(help="Epoch e trains at learning-rate / (1 + decay * (e - 1)).")] = 0.0,
    weight_averaging: Annotated[
        float, typer.Option(help="Momentum of the moving average of the weights that is validated and kept (0 = off).")
    ] = 0.999,
    patience: Annotated[int, typer.Option(help="Epochs without improvement before stopping.")] = 5,
    seed: Annotated[int, typer.Option()] = 42,
    vectors: Annotated[
        Optional[str],
        typer.Option(help="Pretrained word vectors: glove-6b-50d, a GloVe/word2vec/fastText text file, or none (default: the preset's)."),
    ] = None,
    set_: Annotated[list[str], typer.Option("--set", help="Tagger hyper-parameter override KEY=JSON, e.g. --set lstm_units=[200]. Repeatable.")] = [],
    mixed_precision: Annotated[bool, typer.Option("--mixed-precision", help="float16 compute (GPU).")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar per epoch.")] = True,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace --out even if it holds something else.")] = False,
) -> None:
    """Train the BiLSTM-CRF and write a model bundle (model, vocab, config, metrics, report)."""
    import json
    import logging

    from nerbatch.train import TrainConfig, train_tagger, vectors_override

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        overrides = {}
        for item in set_:
            key, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
            try:
                overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                overrides[key] = value
        overrides.update(vectors_override(vectors))
        config = TrainConfig(
            preset=preset, tagger=overrides, epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            clipnorm=clipnorm or None, learning_rate_decay=learning_rate_decay,
            weight_averaging=weight_averaging or None, patience=patience, seed=seed, mixed_precision=mixed_precision,
        )
        config.tagger_config()  # reject bad overrides before any work
        result = train_tagger(prepared, out, config, progress=progress, overwrite=overwrite)
    except (NerbatchError, ValueError) as exc:
        _fail(exc)
    test = result.metrics["test"]["scores"]
    print(f"bundle {result.bundle_dir} (version {result.model_version}) in {result.seconds:.0f}s; "
          f"best epoch {result.metrics['best_epoch']}")
    print(f"test entity P/R/F1 {test['precision']:.4f}/{test['recall']:.4f}/{test['f1']:.4f}; "
          f"report: {result.bundle_dir / 'report.md'}")


@app.command()
def evaluate(
    bundle: Annotated[Path, typer.Argument(help="A model bundle directory.")],
    prepared: Annotated[Path, typer.Argument(help="A `prepare` output directory (or its sentences/).")],
    split: Annotated[str, typer.Option(help="train, validation or test.")] = "test",
    mode: Annotated[str, typer.Option(help="conlleval (IOB1/IOB2 as conlleval reads them) or strict (IOB2).")] = "conlleval",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write the scores here as JSON.")] = None,
    against: Annotated[
        Optional[Path],
        typer.Option(help="Another bundle (e.g. the one in production): also print the F1 difference with a 95% interval."),
    ] = None,
    allow_unknown_tags: Annotated[
        bool,
        typer.Option("--allow-unknown-tags", help="Score even if gold tags are unknown to the model (they count as missed)."),
    ] = False,
) -> None:
    """Score a bundle on a split: per-type table, entity P/R/F1, calibration.

    With --against, also the F1 difference to another bundle on the same split.
    """
    import json

    from nerbatch.scoring import evaluate_bundle
    from nerbatch.significance import paired_bootstrap_f1

    try:
        version, result = evaluate_bundle(bundle, prepared, split, mode=mode, allow_unknown_tags=allow_unknown_tags)
        other = (evaluate_bundle(against, prepared, split, mode=mode, allow_unknown_tags=allow_unknown_tags)
                 if against else None)
    except (NerbatchError, ValueError) as exc:  # ValueError: an unknown --mode, tags outside the strict scheme
        _fail(exc)
    if result.unknown_gold_tags:
        from nerbatch.scoring import describe_unknown_tags

        err.print(f"[bold yellow]warning:[/] {split} split: {describe_unknown_tags(result.unknown_gold_tags)}; "
                  "their entities count as missed", highlight=False)
    scores = result.scores
    print(f"{split} ({scores.n_sentences:,} sentences, {scores.n_tokens:,} tokens), model {version}, mode {mode}")
    print(scores.format_table())
    print(f"entity confidence: ECE {result.calibration.ece:.4f} over {result.calibration.n} predicted entities")
    print(f"token accuracy (real tokens only, not the headline): {scores.token_accuracy:.4f}; "
          f"excluding O/O tokens: {scores.token_accuracy_non_o:.4f}")
    report = {"model_version": version, **result.to_dict()}
    if other:
        other_version, other_result = other
        difference = paired_bootstrap_f1(result.gold, [result.predicted], [other_result.predicted], mode=mode)
        print(f"against {other_version} (F1 {other_result.scores.f1:.4f}): F1 difference in points "
              f"{difference.describe()} (95% interval, paired bootstrap over the sentences), {difference.verdict}")
        report["against"] = {"model_version": other_version, "scores": other_result.scores.to_dict(), "difference": difference.to_dict()}
    if json_out:
        json_out.write_text(json.dumps(report, indent=1))


def _predict_text(text: str | None, file: Path | None) -> str:
    """The text ``predict`` tags: the argument, standard input for ``-``, or ``--file``
    (an argument is limited by the OS to about 128 KiB; stdin and files are not)."""
    from nerbatch.errors import InputError, reading

    if (text is None) == (file is None):
        raise InputError("<text>", "give the text as an argument, '-' to read standard input, or --file PATH (one of them)")
    if file is not None:
        with reading(str(file), also=(UnicodeDecodeError,)):
            return file.read_text(encoding="utf-8")
    if text == "-":
        with reading("<stdin>", also=(UnicodeDecodeError,)):
            return sys.stdin.read()
    return text


@app.command()
def predict(
    bundle: Annotated[Path, typer.Argument(help="A model bundle directory.")],
    text: Annotated[Optional[str], typer.Argument(help="Raw text to tag; '-' reads standard input.")] = None,
    file: Annotated[Optional[Path], typer.Option("--file", help="Read the text from this file (UTF-8).")] = None,
) -> None:
    """Tag a piece of raw text and print its tokens and entities."""
    from rich.table import Table

    from nerbatch.bundle import load_bundle
    from nerbatch.inference import entities_of
    from nerbatch.tokenize import Tokenizer

    try:
        text = _predict_text(text, file)
        loaded = load_bundle(bundle)
    except NerbatchError as exc:
        _fail(exc)
    sentences = Tokenizer().tokenize(text)
    tagged = loaded.predictor().tag([s.tokens for s in sentences])
    table = Table("sentence", "start", "end", "text", "label", "confidence")
    for i, (sentence, t) in enumerate(zip(sentences, tagged)):
        print(" ".join(f"{w}/{tag}" for w, tag in zip(sentence.tokens, t.tags)))
        for entity, confidence in entities_of(t):
            start, end = sentence.char_span(entity.start, entity.end)
            table.add_row(str(i), str(start), str(end), text[start:end], entity.type, f"{confidence:.3f}")
    Console().print(table)


@app.command()
def tag(
    inputs: Annotated[list[str], typer.Argument(help="Document dumps: files, globs or fsspec URLs (Parquet, CSV, JSON Lines).")],
    model: Annotated[Path, typer.Option("--model", help="A model bundle directory.")],
    out: Annotated[Path, typer.Option("--out", help="Output root (entities/, tokens/, rejects/, _manifests/).")],
    date: Annotated[Optional[str], typer.Option(help="Run date YYYY-MM-DD (the output partition; default today).")] = None,
    text_column: Annotated[str, typer.Option(help="Column holding the document text.")] = "text",
    id_column: Annotated[str, typer.Option(help="Column holding the document id.")] = "doc_id",
    input_format: Annotated[str, typer.Option("--input-format", help="auto (from the extension), parquet, csv or jsonl.")] = "auto",
    tokens: Annotated[bool, typer.Option(help="Also write the per-token tokens/ dataset.")] = True,
    run_id: Annotated[Optional[str], typer.Option(help="Run id stamped on every row (default: derived from date + inputs + model).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Redo the date even if it was done with the same inputs and model.")] = False,
    dask_address: Annotated[Optional[str], typer.Option(envvar="DASK_SCHEDULER_ADDRESS", help="Use this Dask scheduler instead of a LocalCluster.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="LocalCluster worker processes (default: one per core).")] = None,
    progress: Annotated[Optional[bool], typer.Option(help="Show a progress bar (default: on a terminal).")] = None,
) -> None:
    """Tag document dumps into one exactly-once date partition of tagged Parquet."""
    import datetime as dt

    from nerbatch.cluster import dask_client
    from nerbatch.documents import DocumentOptions
    from nerbatch.outputs import PublishError
    from nerbatch.tag import TagOptions, tag_documents

    try:
        options = TagOptions(
            date=dt.date.fromisoformat(date) if date else dt.date.today(),
            run_id=run_id,
            force=force,
            write_tokens=tokens,
            documents=DocumentOptions(id_column=id_column, text_column=text_column, fmt=input_format),
        )
    except ValueError as exc:
        _fail(exc)
    try:
        with dask_client(dask_address, n_workers=workers) as client:
            summary = tag_documents(inputs, model, out, options, compute=_compute_with_progress(client, progress))
    except (NerbatchError, PublishError) as exc:
        _fail(exc)
    print(summary.summary())


if __name__ == "__main__":
    app()
