"""ner-pipeline: prepare -> train -> evaluate -> tag, end to end on one cluster."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact

from flows.runners import dask_task_runner
from flows.tasks import prepare_task, tag_date_task
from flows.train import submit_training
from nerbatch.prepare import PrepareOptions
from nerbatch.tag import TagOptions
from nerbatch.train import TrainConfig, vectors_override


@task(name="evaluate")
def evaluate_task(bundle_dir: str, prepared_dir: str, split: str = "test") -> dict:
    """Reload the bundle as a consumer would (hashes and smoke check) and score it."""
    from nerbatch.scoring import describe_unknown_tags, evaluate_bundle

    # The model was trained on this very prepare output: a gold tag it does not know
    # occurs only outside the train split (prepare reports it); score, and say so.
    _, result = evaluate_bundle(bundle_dir, prepared_dir, split, allow_unknown_tags=True)
    logger = get_run_logger()
    if result.unknown_gold_tags:
        logger.warning("%s split: %s; their entities count as missed", split, describe_unknown_tags(result.unknown_gold_tags))
    logger.info("%s\n%s", split, result.scores.format_table())
    return {"split": split, "f1": result.scores.f1, "ece": result.calibration.ece}


@task(name="demo-dump")
def demo_dump_task(prepared_dir: str, out_file: str) -> str:
    from nerbatch.demo import write_demo_dump

    return str(write_demo_dump(Path(prepared_dir) / "sentences", out_file))


@flow(name="ner-pipeline-run")
def _pipeline(corpus: list[str], work_dir: str, documents: str | None, date: dt.date, prepare: PrepareOptions,
              train: TrainConfig, gpu: bool) -> dict:
    logger = get_run_logger()
    work = Path(work_dir).absolute()
    prepared, bundle, out_root = str(work / "prepared"), str(work / "model"), str(work / "tagged")
    prepare_task.submit(corpus, prepared, prepare).result()
    trained = submit_training(prepared, bundle, train, gpu).result()
    evaluation = evaluate_task.submit(bundle, prepared).result()
    if documents is None:  # no dump given: tag the held-out test sentences as raw text
        documents = str(work / "demo-dump" / "{date}" / "docs.parquet")
        demo_dump_task.submit(prepared, documents.format(date=date.isoformat())).result()
    summary = tag_date_task.submit(documents, date, bundle, out_root, TagOptions(date=date)).result()
    where = {
        "model_report": f"{bundle}/report.md",
        "model_version": trained["model_version"],
        "test_f1": round(evaluation["f1"], 4),
        "entities": f"{out_root}/entities/dt={date}",
        "tokens": f"{out_root}/tokens/dt={date}",
        "manifest": f"{out_root}/_manifests/dt={date}.json",
    }
    create_markdown_artifact(key="ner-pipeline", markdown="# ner-pipeline\n\n" + "\n".join(
        f"- **{k}**: `{v}`" for k, v in where.items()), description="Where the outputs are")
    logger.info("model report: %s (test entity F1 %.4f)", where["model_report"], evaluation["f1"])
    logger.info("tagged outputs: %s (%d entities in %d documents)", where["entities"], summary.entities,
                summary.documents)
    return where


@flow(name="ner-pipeline")
def ner_pipeline(
    corpus: list[str],
    work_dir: str = "runs/pipeline",
    documents: str | None = None,
    date: dt.date | None = None,
    prepare: PrepareOptions = PrepareOptions(),
    train: TrainConfig = TrainConfig(),
    gpu: bool = False,
    dask_address: str | None = None,
) -> dict:
    """Prepare ``corpus``, train, evaluate, then tag ``documents`` (a location
    template with ``{date}``; default: the test split as raw text) for ``date``."""
    date = date or dt.date.today()
    runner = dask_task_runner(dask_address)
    return _pipeline.with_options(task_runner=runner)(corpus, work_dir, documents, date, prepare, train, gpu)


CORPUS_HELP = (
    "A corpus is a token-labelled file: one word per row with its entity tag (IOB), in sentences. "
    "The usual one is the Kaggle \"Annotated Corpus for Named Entity Recognition\" (ner_dataset.csv, "
    "https://www.kaggle.com/datasets/abhinavwalia95/entity-annotated-corpus); download it and pass its path: "
    "scripts/run-main.sh PATH/TO/ner_dataset.csv (or set NERBATCH_DATA=PATH/TO/ner_dataset.csv)."
)


def check_corpus(corpus: list[str]) -> str | None:
    """Why ``corpus`` cannot be read, with what a corpus is and where to get one;
    None when every path or glob names at least one file. Checked before Prefect
    or Dask start, so a missing corpus costs a second, not a server start-up."""
    from fsspec.core import url_to_fs

    from nerbatch.corpus.readers import expand_paths
    from nerbatch.errors import InputError

    try:
        for path in expand_paths(corpus):
            if not url_to_fs(path)[0].exists(path):
                raise InputError(path, "file not found")
    except InputError as exc:
        return f"error: {exc} (no corpus there)\n{CORPUS_HELP}"
    return None


def check_work_dir(work_dir: str, corpus: list[str]) -> str | None:
    """Why the pipeline may not replace its output folders under ``work_dir``
    (``prepared/``, ``model/``: see :func:`nerbatch.staging.check_replaceable`), or None."""
    from nerbatch.bundle import MANIFEST_FILE
    from nerbatch.errors import OutputDirectoryError
    from nerbatch.prepare import REPORT_FILE
    from nerbatch.staging import check_replaceable

    work = Path(work_dir).absolute()
    try:
        check_replaceable(work / "prepared", marker=REPORT_FILE, command="prepare", inputs=corpus,
                          option="--work-dir", overwrite_option=None)
        check_replaceable(work / "model", marker=MANIFEST_FILE, command="train", inputs=[work / "prepared"],
                          option="--work-dir", overwrite_option=None)
    except OutputDirectoryError as exc:
        return f"error: {exc}"
    return None


def main() -> None:
    """``python -m flows.pipeline CORPUS... [--work-dir DIR] [--preset P] [--epochs N] [--vectors SOURCE|none]``"""
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=ner_pipeline.__doc__)
    parser.add_argument("corpus", nargs="+", help="token-labelled corpus files, globs or URLs")
    parser.add_argument("--work-dir", default="runs/pipeline")
    parser.add_argument("--documents", default=None, help="dump location with {date}; default: the test split as text")
    parser.add_argument("--date", type=dt.date.fromisoformat, default=None)
    parser.add_argument("--preset", default="default", choices=["default", "seed", "tiny"])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--vectors", default=None, help="pretrained vectors (glove-6b-50d, a text file, or none); default: the preset's")
    parser.add_argument("--dask-address", default=None)
    args = parser.parse_args()
    problem = check_corpus(args.corpus) or check_work_dir(args.work_dir, args.corpus)
    if problem:
        print(problem, file=sys.stderr)
        raise SystemExit(2)
    from nerbatch.errors import NerbatchError

    try:
        where = ner_pipeline(
            corpus=args.corpus, work_dir=args.work_dir, documents=args.documents, date=args.date,
            train=TrainConfig(preset=args.preset, epochs=args.epochs, tagger=vectors_override(args.vectors)),
            dask_address=args.dask_address,
        )
    except NerbatchError as exc:  # bad input: the flow logged it as one line; no traceback here either
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    print("\nmodel report:   " + where["model_report"] + f"  (test entity F1 {where['test_f1']})")
    print("tagged entities: " + where["entities"])
    print("tagged tokens:   " + where["tokens"])
    print("manifest:        " + where["manifest"])


if __name__ == "__main__":
    main()
