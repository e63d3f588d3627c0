"""``tag``: document dumps -> entities (and tokens) as one committed date partition.

One Dask task per input partition reads its documents, tokenises them, tags
every sentence with the bundle's model (loaded once per worker process), and
writes its part files into the run's staging folder, named by partition index.
When every task is done the driver validates the parts, writes the manifest and
publishes the date atomically (``nerbatch.outputs``). A task that is re-run (a
lost worker) rewrites the same file names, so the published partition holds
each document's rows exactly once.

Entity confidence is the smallest CRF marginal over the entity's tokens.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import dask
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from nerbatch.bundle import read_manifest
from nerbatch.documents import (
    DocumentOptions,
    DocumentPart,
    find_first_occurrences,
    fingerprint_inputs,
    plan_documents,
    read_part,
    split_rejects,
)
from nerbatch.errors import NerbatchError
from nerbatch.outputs import (
    RUN_ID_PATTERN,
    Manifest,
    PartFile,
    PublishError,
    RunInfo,
    begin_partition,
    commit_partition,
    compute_fingerprint,
    date_lock,
    is_already_done,
    read_committed_manifest,
    write_part,
)
from nerbatch.tables import ENTITY_SCHEMA, TAGGED_TOKEN_SCHEMA

log = logging.getLogger(__name__)


class TagOptions(BaseModel):
    """Everything ``tag`` can be told (the CLI and the flows build this)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    date: dt.date = Field(default_factory=dt.date.today)
    # Default: derived from the date and the fingerprint (reruns give identical rows).
    run_id: str | None = Field(None, pattern=RUN_ID_PATTERN, description="letters, digits, . _ - (a folder name)")
    force: bool = False
    write_tokens: bool = True
    documents: DocumentOptions = DocumentOptions()
    batch_size: int = Field(512, ge=1, description="most sentences per model batch")
    max_tokens: int = Field(32_768, ge=1, description="most padded tokens per model batch (memory bound)")
    lock_timeout: float = Field(3600, ge=0, description="seconds to wait while another run holds the same date")

    def output_options(self) -> dict:
        """The options that change the output rows: part of the fingerprint."""
        return {"write_tokens": self.write_tokens, "documents": self.documents.model_dump(mode="json")}


class TagSummary(BaseModel):
    date: str
    status: Literal["written", "skipped"]
    output_root: str
    model_version: str
    run_id: str
    commit_id: str
    documents: int
    sentences: int
    tokens: int
    entities: int
    entities_by_label: dict[str, int]
    rejects: int
    rejects_by_reason: dict[str, int]
    seconds: float
    stage_seconds: dict[str, float] = {}

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds else 0.0

    def summary(self, force_option: str = "--force") -> str:
        """What the run did, for a person. ``force_option`` is how the caller spells
        "redo a done date": ``--force`` on the command line, ``options={"force": true}``
        as a Prefect parameter."""
        if self.status == "skipped":
            return (f"tag {self.date}: already done with the same inputs and model {self.model_version} "
                    f"(commit {self.commit_id}: {self.documents:,} documents, {self.entities:,} entities); "
                    f"nothing written. Use {force_option} to redo it.")
        labels = ", ".join(f"{k} {v:,}" for k, v in sorted(self.entities_by_label.items())) or "none"
        lines = [
            f"tag {self.date}: {self.documents:,} documents, {self.sentences:,} sentences, {self.tokens:,} tokens "
            f"in {self.seconds:.1f}s ({self.tokens_per_second:,.0f} tokens/s) -> {self.output_root}",
            f"  entities {self.entities:,}: {labels}",
            f"  rejects {self.rejects:,}" + (": " + ", ".join(f"{k} {v:,}" for k, v in self.rejects_by_reason.items())
                                             if self.rejects else ""),
            f"  model {self.model_version}, run {self.run_id}, commit {self.commit_id}",
        ]
        return "\n".join(lines)


# -- per worker -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=2)
def _worker_predictor(bundle_dir: str, version: str, batch_size: int, max_tokens: int):
    """The bundle's predictor, loaded once per worker process and reused across
    partitions (a cache keyed by version, so a new model is never served stale)."""
    from nerbatch.bundle import load_bundle

    bundle = load_bundle(bundle_dir)
    if bundle.version != version:
        raise PublishError(f"{bundle_dir} changed during the run ({version} -> {bundle.version}); run again")
    return bundle.predictor(batch_size=batch_size, max_tokens=max_tokens)


@functools.lru_cache(maxsize=1)
def _worker_tokenizer():
    from nerbatch.tokenize import Tokenizer

    return Tokenizer()


@dataclass
class PartitionResult:
    """What one tagging task wrote and counted (small: it travels to the driver)."""

    parts: list[PartFile]
    documents: int
    sentences: int
    tokens: int
    entities_by_label: Counter
    rejects_by_reason: Counter
    seconds: dict[str, float]


def tag_partition(
    indexed: tuple[int, DocumentPart],
    *,
    options: TagOptions,
    first_seen: dict,
    bundle_dir: str,
    model_version: str,
    run_id: str,
    staging,
) -> PartitionResult:
    """Read, tokenise, tag and write one input partition; return its part files and counts."""
    from nerbatch.inference import entities_of
    from nerbatch.tokenize import document_sentences

    index, part = indexed
    clock = {"read": 0.0, "tokenize": 0.0, "model": 0.0, "write": 0.0}
    t0 = time.perf_counter()
    documents, rejects = split_rejects(read_part(part, options.documents, first_seen))
    t1 = time.perf_counter()
    clock["read"] = t1 - t0

    tokenizer = _worker_tokenizer()
    doc_sentences = [
        document_sentences(text, upstream, tokenizer) for text, upstream in zip(documents["text"], documents["sentences"])
    ]
    t2 = time.perf_counter()
    clock["tokenize"] = t2 - t1

    predictor = _worker_predictor(bundle_dir, model_version, options.batch_size, options.max_tokens)
    flat = [s.tokens for sentences in doc_sentences for s in sentences]
    tagged = iter(predictor.tag(flat))
    t3 = time.perf_counter()
    clock["model"] = t3 - t2

    entities: dict[str, list] = {name: [] for name in ENTITY_SCHEMA.names}
    tokens: dict[str, list] = {name: [] for name in TAGGED_TOKEN_SCHEMA.names}
    n_tokens = 0
    for doc_id, text, sentences in zip(documents["doc_id"], documents["text"], doc_sentences):
        for sentence_index, sentence in enumerate(sentences):
            result = next(tagged)
            n_tokens += len(sentence)
            for entity, confidence in entities_of(result):
                start, end = sentence.char_span(entity.start, entity.end)
                for name, value in zip(
                    ENTITY_SCHEMA.names,
                    (doc_id, sentence_index, start, end, text[start:end], entity.type, confidence, model_version, run_id),
                ):
                    entities[name].append(value)
            if options.write_tokens:
                k = len(sentence)
                tokens["doc_id"] += [doc_id] * k
                tokens["sentence_index"] += [sentence_index] * k
                tokens["token_index"] += range(k)
                tokens["token"] += sentence.tokens
                tokens["start_char"] += sentence.starts
                tokens["end_char"] += sentence.ends
                tokens["tag"] += result.tags
                tokens["confidence"] += result.confidences.tolist()
    entity_table = pa.table(entities, schema=ENTITY_SCHEMA)
    parts = [
        write_part(staging, "entities", index, entity_table),
        write_part(staging, "rejects", index, rejects.reset_index(drop=True)),
    ]
    if options.write_tokens:
        parts.append(write_part(staging, "tokens", index, pa.table(tokens, schema=TAGGED_TOKEN_SCHEMA)))
    clock["write"] = time.perf_counter() - t3
    return PartitionResult(
        parts=parts,
        documents=len(documents),
        sentences=len(flat),
        tokens=n_tokens,
        entities_by_label=Counter(entities["label"]),
        rejects_by_reason=Counter(rejects["reason"].astype(str)),
        seconds=clock,
    )


def tag_partition_or_refusal(indexed: tuple[int, DocumentPart], **kwargs) -> PartitionResult | NerbatchError:
    """:func:`tag_partition`, with a refusal (bad input, an unusable bundle) returned
    instead of raised. Dask treats a raised exception as a crash and logs it on the
    worker ("Compute Failed" and a traceback); a refusal is the user's business, and
    the driver raises it as one line. Worker logs stay for real crashes."""
    try:
        return tag_partition(indexed, **kwargs)
    except NerbatchError as exc:
        return exc


# -- the run ----------------------------------------------------------------------------------


def default_run_id(date: dt.date, fingerprint: str) -> str:
    """Deterministic: the same inputs and model on the same date give identical rows."""
    return f"tag-{date.isoformat()}-{fingerprint[:12]}"


def tag_documents(
    inputs: Sequence[str],
    bundle_dir: str | Path,
    out_root: str | Path,
    options: TagOptions = TagOptions(),
    *,
    compute: Callable[..., tuple] = dask.compute,
) -> TagSummary:
    """Tag document dumps into the ``dt=<date>`` partition of ``out_root``, exactly once.

    Skips (returns ``status="skipped"``) when the date is already committed with
    the same inputs, model and options, unless ``options.force``. Runs on the
    current Dask scheduler; ``compute`` runs the graph (the CLI adds a progress bar).
    """
    started = time.perf_counter()
    bundle_dir = str(Path(bundle_dir).absolute())
    model_version = read_manifest(bundle_dir)["model_version"]
    input_files = fingerprint_inputs(list(inputs))
    fingerprint = compute_fingerprint(input_files, model_version, options.output_options())
    run_id = options.run_id or default_run_id(options.date, fingerprint)
    fingerprint_seconds = time.perf_counter() - started
    # One run per date at a time (a nightly run and a backfill of the same date): the
    # second waits, then finds the date done (skipped) or replaces it as a whole.
    with date_lock(out_root, options.date, timeout=options.lock_timeout, on_wait=log.warning):
        if not options.force and is_already_done(out_root, options.date, fingerprint):
            manifest = read_committed_manifest(out_root, options.date)
            return _summary(manifest, out_root, "skipped", time.perf_counter() - started)
        info = RunInfo(inputs=input_files, model_version=model_version, options=options.output_options(),
                       timings={"fingerprint": fingerprint_seconds})
        manifest, results, stage_seconds = _tag_and_commit(inputs, bundle_dir, out_root, options, run_id, info, compute)
    summary = _summary(manifest, out_root, "written", time.perf_counter() - started, results)
    return summary.model_copy(update={"stage_seconds": stage_seconds})


def _tag_and_commit(
    inputs: Sequence[str], bundle_dir: str, out_root: str | Path, options: TagOptions, run_id: str, info: RunInfo,
    compute: Callable[..., tuple],
) -> tuple[Manifest, Sequence[PartitionResult], dict[str, float]]:
    """Tag every partition of ``inputs`` into a fresh staging folder and commit it
    with ``info``, its timings extended by the per-stage seconds of the tasks.
    Returns the manifest, the partition results and those stage seconds."""
    parts = plan_documents(list(inputs), options.documents)
    first_seen = find_first_occurrences(parts, options.documents) if len(parts) > 1 else {}
    staging = begin_partition(out_root, options.date, run_id)
    task = dask.delayed(tag_partition_or_refusal, pure=True)
    tasks = [
        task(indexed, options=options, first_seen=first_seen, bundle_dir=bundle_dir, model_version=info.model_version,
             run_id=run_id, staging=staging, dask_key_name=f"tag-partition-{run_id}-{indexed[0]}")
        for indexed in enumerate(parts)
    ]
    outcomes = compute(*tasks)
    refusals = [r for r in outcomes if isinstance(r, NerbatchError)]
    if refusals:
        raise refusals[0]
    results: Sequence[PartitionResult] = outcomes
    written: list[PartFile] = [p for r in results for p in r.parts]
    stage_seconds: Counter = Counter(info.timings)
    for r in results:
        stage_seconds.update(r.seconds)
    info = info.model_copy(update={"timings": {k: round(v, 3) for k, v in stage_seconds.items()},
                                   "counts": run_counts(results)})
    return commit_partition(staging, written, info), results, info.timings


def run_counts(results: Sequence[PartitionResult]) -> dict:
    """The counts of a run (as :class:`TagSummary` fields), recorded in its manifest."""
    labels: Counter = Counter()
    reasons: Counter = Counter()
    for r in results:
        labels.update(r.entities_by_label)
        reasons.update(r.rejects_by_reason)
    return {
        "documents": sum(r.documents for r in results), "sentences": sum(r.sentences for r in results),
        "tokens": sum(r.tokens for r in results), "entities": sum(labels.values()),
        "entities_by_label": dict(sorted(labels.items())), "rejects": sum(reasons.values()),
        "rejects_by_reason": dict(sorted(reasons.items())),
    }


def recorded_counts(manifest: Manifest) -> dict:
    """The counts the committed run recorded; for a manifest written before they were
    recorded, the row counts of its datasets (documents and sentences unknown: 0)."""
    if manifest.counts:
        return manifest.counts
    return {"documents": 0, "sentences": 0, "tokens": manifest.rows("tokens"), "entities": manifest.rows("entities"),
            "entities_by_label": {}, "rejects": manifest.rows("rejects"), "rejects_by_reason": {}}


def _summary(
    manifest: Manifest, out_root, status, seconds: float, results: Sequence[PartitionResult] | None = None
) -> TagSummary:
    # skipped: what the committed run recorded
    counts = recorded_counts(manifest) if results is None else run_counts(results)
    return TagSummary(
        date=manifest.date, status=status, output_root=str(out_root), model_version=manifest.model_version,
        run_id=manifest.run_id, commit_id=manifest.commit_id, seconds=seconds, **counts,
    )
