"""The ``nerbatch`` command line. Each command parses options into the same
option models the flows use and calls the same library function."""

from __future__ import annotations

import sys
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


def _compute_with_progress(client, show: bool):
    """A ``compute`` for library calls: Dask futures with a text progress bar."""
    from distributed import progress

    def compute(*collections):
        futures = client.compute(list(collections))
        if show:
            progress(futures)
            print(file=sys.stderr)
        return tuple(client.gather(futures))

    return compute


@app.command()
def prepare(
    inputs: Annotated[list[str], typer.Argument(help="Files, globs or fsspec URLs of token-labelled corpora.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory (replaced as a whole).")],
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
    blocksize: Annotated[str, typer.Option(help="Bytes per read block, e.g. 8MB, or 'none' for one per file.")] = "8MB",
    strict: Annotated[bool, typer.Option("--strict", help="Fail (and write nothing) if any line is rejected.")] = False,
    dask_address: Annotated[Optional[str], typer.Option(envvar="DASK_SCHEDULER_ADDRESS", help="Use this Dask scheduler instead of a LocalCluster.")] = None,
    workers: Annotated[Optional[int], typer.Option(help="LocalCluster worker processes (default: one per core).")] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
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
        with dask_client(dask_address, n_workers=workers) as client:
            report = prepare_corpus(inputs, out, options, compute=_compute_with_progress(client, progress))
    except NerbatchError as exc:
        _fail(exc)
    print(report.summary())


if __name__ == "__main__":
    app()
