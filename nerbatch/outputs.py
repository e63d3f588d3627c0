"""Exactly-once publishing of date partitions: stage, validate, commit, rename.

Layout under an output root (a local or POSIX-mounted directory; rename must be
atomic, which object stores do not offer)::

    entities/dt=2026-11-24/part-00000.parquet ...  _SUCCESS
    tokens/dt=2026-11-24/...                        (optional dataset)
    rejects/dt=2026-11-24/...
    _manifests/dt=2026-11-24.json                   the commit record, written last
    _staging/dt=2026-11-24/<run_id>-<uuid8>/        one per attempt, never reused
    _staging/dt=2026-11-24/_PUBLISHING              names the attempt being published
    _trash/dt=2026-11-24/<attempt>/<dataset>/       previous versions, removed after
    (``_staging/`` and ``_trash/`` are removed once empty: a finished run leaves neither)

Readers (``pd.read_parquet(root / "entities")``, pyarrow datasets with hive
partitioning) ignore files and folders whose names start with ``_`` or ``.``, so
``_SUCCESS``, temporary files and the ``_``-folders at the root never leak into
reads.

Protocol (:func:`begin_partition`, :func:`write_part`, :func:`commit_partition`):

1. Every attempt writes into its own staging folder. Each part is written to a
   hidden temporary file and renamed to ``part-NNNNN.parquet``, named after the
   input partition index, so reruns produce the same names.
2. Commit validates the staged files against what the writers reported (names and
   row counts from the Parquet footers, schemas from ``nerbatch.tables``), then
   writes ``_manifest.json`` and ``_SUCCESS`` inside staging. Up to here nothing
   visible has changed.
3. ``_PUBLISHING`` is written (atomically): from now on the attempt is decided and
   any later run rolls it *forward*. For each dataset, the published folder (if
   any) is renamed into ``_trash``, then the staged folder is renamed into place
   (a dataset the new version lacks is only moved to the trash: the partition is
   replaced as a unit). Then ``_manifests/dt=….json`` is replaced atomically,
   ``_PUBLISHING`` removed, staging and trash deleted.

Each dataset folder appears whole (one rename) with a ``_SUCCESS`` naming its
commit; the manifest, written last, says which commit is current. A reader
therefore never sees half a dataset partition. Between the two renames of one
dataset its partition is briefly absent, and while the datasets are renamed one
after the other, ``entities`` can already be new while ``rejects`` is still old:
a reader that needs all datasets of a date from one run compares their
``_SUCCESS`` commit ids with the manifest (:func:`published_commit`).

A crash at any point leaves either the old version, or a decided publish that
:func:`recover_partition` completes (``begin_partition`` and
:func:`is_already_done` call it first), so a rerun always ends with one complete
version. One run at a time per date: :func:`date_lock` (``_locks/dt=….lock``, an
advisory ``flock`` the kernel releases when its holder dies) serialises runs of the
same date, so a nightly run and a backfill of that date never interleave.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict

import nerbatch
from nerbatch.documents import InputFile
from nerbatch.errors import OutputDirectoryError
from nerbatch.tables import DOCUMENT_REJECT_SCHEMA, ENTITY_SCHEMA, TAGGED_TOKEN_SCHEMA

#: The datasets of a date partition and the schema each part file must have.
DATASETS: Mapping[str, pa.Schema] = MappingProxyType(
    {"entities": ENTITY_SCHEMA, "tokens": TAGGED_TOKEN_SCHEMA, "rejects": DOCUMENT_REJECT_SCHEMA}
)

MANIFEST_FORMAT = 1
SUCCESS = "_SUCCESS"
STAGED_MANIFEST = "_manifest.json"
PUBLISHING = "_PUBLISHING"

#: A hook is called with the name of each step just after it completes (tests raise
#: there to simulate a crash). Steps: "validated", "manifest_staged", "staged",
#: "intent_written", "trashed:<dataset>", "moved:<dataset>", "manifest_published",
#: "intent_removed", "cleaned".
Hook = Callable[[str], None]

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"  # a folder-name-safe run id


class PublishError(RuntimeError):
    """Staged output does not match what was written, or a publish cannot be completed."""


@dataclass(frozen=True)
class Staging:
    """One attempt at a date partition; picklable, so workers can call :func:`write_part`."""

    root: Path
    date: str  # YYYY-MM-DD
    run_id: str
    attempt: str  # "<run_id>-<uuid8>": the commit id once published
    started: float  # time.time() at begin

    @property
    def path(self) -> Path:
        return _staging_dir(self.root, self.date) / self.attempt


@dataclass(frozen=True)
class PartFile:
    """What :func:`write_part` wrote; hand all of them to :func:`commit_partition`."""

    dataset: str
    index: int
    name: str
    rows: int
    bytes: int


class FileEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    rows: int
    bytes: int


class DatasetEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    rows: int
    files: list[FileEntry]


class RunInfo(BaseModel):
    """What a run was made of: the inputs of its fingerprint, plus timings."""

    model_config = ConfigDict(frozen=True)

    inputs: list[InputFile]
    model_version: str
    options: dict[str, Any] = {}  # tagging options that change the output (JSON values)
    timings: dict[str, float] = {}  # seconds per step, as measured by the caller
    counts: dict[str, Any] = {}  # what the run counted (documents, sentences, ...; JSON values)

    @property
    def fingerprint(self) -> str:
        return compute_fingerprint(self.inputs, self.model_version, self.options)


class Manifest(BaseModel):
    """The commit record of one date partition (``_manifests/dt=<date>.json``)."""

    model_config = ConfigDict(frozen=True)

    format_version: int = MANIFEST_FORMAT
    date: str
    run_id: str
    commit_id: str
    fingerprint: str
    model_version: str
    options: dict[str, Any]
    inputs: list[InputFile]
    datasets: dict[str, DatasetEntry]
    timings: dict[str, float]
    created_at: str  # ISO 8601, UTC
    nerbatch_version: str
    # What the committed run counted, so that a skipped rerun reports the same numbers
    # (documents and sentences are not row counts of any dataset). Empty in manifests
    # written before it was recorded.
    counts: dict[str, Any] = {}

    def rows(self, dataset: str) -> int:
        entry = self.datasets.get(dataset)
        return entry.rows if entry else 0


def compute_fingerprint(inputs: Sequence[InputFile], model_version: str, options: Mapping[str, Any]) -> str:
    """SHA-256 of the sorted input checksums, the model version and the tagging options.

    Paths are left out on purpose: moving or renaming unchanged inputs does not make a
    date "new". ``options`` must be JSON-serialisable (sorted keys make it stable).
    """
    payload = {
        "inputs": sorted(f.sha256 for f in inputs),
        "model_version": model_version,
        "options": options,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# -- paths ---------------------------------------------------------------------------


def _partition(date: str) -> str:
    return f"dt={date}"


def _staging_dir(root: Path, date: str) -> Path:
    return root / "_staging" / _partition(date)


def _trash_dir(root: Path, date: str) -> Path:
    return root / "_trash" / _partition(date)


def manifest_path(root: str | os.PathLike, date: str | dt.date) -> Path:
    """Where the committed manifest of ``date`` lives."""
    return Path(root) / "_manifests" / f"{_partition(_date_text(date))}.json"


def published_dir(root: str | os.PathLike, dataset: str, date: str | dt.date) -> Path:
    """The published folder of one dataset for one date (may not exist)."""
    return Path(root) / dataset / _partition(_date_text(date))


def part_name(index: int) -> str:
    """The file name of part ``index``: the same index always gives the same name."""
    if index < 0:
        raise ValueError("a part index cannot be negative")
    return f"part-{index:05d}.parquet"


def _date_text(date: str | dt.date) -> str:
    text = date.isoformat() if isinstance(date, dt.date) else str(date)
    try:
        if dt.date.fromisoformat(text).isoformat() == text:
            return text
    except ValueError:
        pass
    raise ValueError(f"not a YYYY-MM-DD date: {date!r}")


def _root(root: str | os.PathLike) -> Path:
    text = os.fspath(root)
    if "://" in text and not text.startswith("file://"):
        raise ValueError(f"{text}: publishing needs a local or POSIX-mounted directory (atomic rename)")
    return Path(text.removeprefix("file://")).absolute()


# -- small durable file operations -------------------------------------------------------


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # e.g. Windows cannot open directories
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _make_dirs(path: Path, *, exist_ok: bool = True) -> None:
    """``mkdir -p``, tolerating a run of another date that removes an empty
    ``_staging/`` or ``_trash/`` between the creation of a parent and its child."""
    for attempt in range(3):
        try:
            path.mkdir(parents=True, exist_ok=exist_ok)
            return
        except FileNotFoundError:
            if attempt == 2:
                raise


def _move(source: Path, target: Path) -> None:
    """Rename a folder (atomic on one filesystem); ``target`` must not exist."""
    _make_dirs(target.parent)
    os.rename(source, target)
    _fsync_dir(target.parent)
    _fsync_dir(source.parent)


def _call(hook: Hook | None, step: str) -> None:
    if hook is not None:
        hook(step)


# -- the protocol ------------------------------------------------------------------------


@contextmanager
def date_lock(
    root: str | os.PathLike,
    date: str | dt.date,
    *,
    timeout: float = 3600.0,
    on_wait: Callable[[str], None] | None = None,
) -> Iterator[None]:
    """Hold the exclusive lock of ``date`` under ``root`` for the block: one run per date.

    An advisory ``flock`` on ``_locks/dt=<date>.lock``. The kernel releases it when
    the holding process exits, killed or not, so a crash never leaves a stale lock.
    A second run waits (``on_wait`` is told who holds it) up to ``timeout`` seconds,
    then raises :class:`PublishError`. Works where the publishing renames do: local
    and POSIX-mounted file systems.
    """
    base = _root(root)
    date_text = _date_text(date)
    path = base / "_locks" / f"{_partition(date_text)}.lock"
    try:  # the first write under the output root: an unwritable root shows here
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+", encoding="utf-8")
    except OSError as exc:
        raise OutputDirectoryError(f"{base}: cannot write the output here ({exc.strerror or type(exc).__name__}: "
                                   f"{exc.filename or path})") from None
    with handle:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "another run"
                if time.monotonic() >= deadline:
                    raise PublishError(f"{path}: {date_text} is locked by {holder} (waited {timeout:.0f}s)") from None
                if on_wait:
                    on_wait(f"{date_text} is locked by {holder}; waiting")
                    on_wait = None  # say it once
                time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
        try:
            handle.seek(0)
            handle.truncate()
            now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            handle.write(f"pid {os.getpid()} on {socket.gethostname()} since {now}\n")
            handle.flush()
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def begin_partition(root: str | os.PathLike, date: str | dt.date, run_id: str) -> Staging:
    """Start an attempt at ``date``: finish any interrupted publish, clear stale staging,
    and create a fresh staging folder ``_staging/dt=<date>/<run_id>-<uuid8>/``."""
    if not re.match(RUN_ID_PATTERN, run_id):
        raise ValueError(f"run_id must be 1-128 characters of A-Z a-z 0-9 . _ - (starting with a letter or digit): {run_id!r}")
    base = _root(root)
    date_text = _date_text(date)
    recover_partition(base, date_text)
    clean_stale_staging(base, date_text)
    staging = Staging(base, date_text, run_id, f"{run_id}-{uuid.uuid4().hex[:8]}", time.time())
    _make_dirs(staging.path, exist_ok=False)
    return staging


def write_part(staging: Staging, dataset: str, index: int, table: pa.Table | pd.DataFrame) -> PartFile:
    """Write one part file of ``dataset`` into staging, atomically, as ``part-<index>.parquet``.

    ``table`` must have exactly the columns of ``DATASETS[dataset]`` (any order; types
    are cast safely, so int32 offsets or float64 confidences are fine). Writing the
    same index again (a retried task) replaces the file.
    """
    schema = _schema(dataset)
    table = _conform(table, schema, dataset)
    folder = staging.path / dataset
    folder.mkdir(parents=True, exist_ok=True)
    name = part_name(index)
    tmp = folder / f".{name}.{uuid.uuid4().hex[:8]}.tmp"
    with open(tmp, "wb") as f:
        pq.write_table(table, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / name)
    return PartFile(dataset, index, name, table.num_rows, (folder / name).stat().st_size)


def _schema(dataset: str) -> pa.Schema:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(f"unknown dataset {dataset!r}; expected one of {sorted(DATASETS)}") from None


def _conform(table: pa.Table | pd.DataFrame, schema: pa.Schema, dataset: str) -> pa.Table:
    names = list(table.columns) if isinstance(table, pd.DataFrame) else table.column_names
    missing = [n for n in schema.names if n not in names]
    extra = [n for n in names if n not in schema.names]
    if missing or extra:
        raise ValueError(f"{dataset}: columns do not match its schema (missing {missing}, unexpected {extra})")
    if isinstance(table, pd.DataFrame):
        return pa.Table.from_pandas(table, schema=schema, preserve_index=False)
    return table.select(schema.names).cast(schema)


def commit_partition(
    staging: Staging,
    parts: Sequence[PartFile],
    info: RunInfo,
    *,
    expected_rows: Mapping[str, int] | None = None,
    hook: Hook | None = None,
) -> Manifest:
    """Validate the staged parts, write the manifest, and publish the partition.

    ``parts`` are all :class:`PartFile` results of :func:`write_part` for this
    attempt; ``expected_rows`` (optional) are row totals per dataset known from
    elsewhere (e.g. counted rejects). Raises :class:`PublishError` if the staged
    files differ from ``parts`` or from the expected counts; nothing is published then.
    """
    started = time.time()
    datasets = _validate(staging, parts, expected_rows or {})
    _call(hook, "validated")
    manifest = Manifest(
        date=staging.date,
        run_id=staging.run_id,
        commit_id=staging.attempt,
        fingerprint=info.fingerprint,
        model_version=info.model_version,
        options=info.options,
        inputs=info.inputs,
        datasets=datasets,
        timings={
            **info.timings,
            "begin_to_commit_seconds": round(started - staging.started, 3),
            "validate_seconds": round(time.time() - started, 3),
        },
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        nerbatch_version=nerbatch.__version__,
        counts=info.counts,
    )
    stamp = json.dumps({"commit_id": staging.attempt, "run_id": staging.run_id, "date": staging.date}).encode()
    for dataset in datasets:
        _write_atomic(staging.path / dataset / SUCCESS, stamp)
    _write_atomic(staging.path / STAGED_MANIFEST, manifest.model_dump_json(indent=2).encode())
    _call(hook, "manifest_staged")
    _write_atomic(staging.path / SUCCESS, stamp)
    _call(hook, "staged")
    # The decision point: once _PUBLISHING names this attempt, recovery rolls it forward.
    _write_atomic(_staging_dir(staging.root, staging.date) / PUBLISHING, staging.attempt.encode())
    _call(hook, "intent_written")
    _publish(staging.root, staging.date, staging.attempt, manifest, hook)
    return manifest


def _validate(staging: Staging, parts: Sequence[PartFile], expected_rows: Mapping[str, int]) -> dict[str, DatasetEntry]:
    if not staging.path.is_dir():
        raise PublishError(f"{staging.path}: staging folder is gone (cleaned by another attempt?)")
    reported: dict[str, dict[str, PartFile]] = {}
    for part in parts:
        _schema(part.dataset)
        if part.name in reported.setdefault(part.dataset, {}):
            raise PublishError(f"{part.dataset}/{part.name} reported twice")
        reported[part.dataset][part.name] = part
    unknown = sorted(p.name for p in staging.path.iterdir() if p.is_dir() and p.name not in DATASETS)
    if unknown:
        raise PublishError(f"{staging.path}: unexpected folders {unknown}")
    entries: dict[str, DatasetEntry] = {}
    for dataset in sorted(DATASETS):
        folder = staging.path / dataset
        for leftover in _children(folder):
            if leftover.name.startswith(".") and leftover.name.endswith(".tmp"):
                leftover.unlink()  # a writer that died mid-file; never part of the output
        # _SUCCESS may already be there if a commit of this staging is retried.
        on_disk = sorted(p.name for p in _children(folder) if not p.name.startswith(("_", ".")))
        expected = sorted(reported.get(dataset, {}))
        if on_disk != expected:
            raise PublishError(f"{dataset}: staged files {on_disk} differ from the reported parts {expected}")
        files = []
        for name in expected:
            metadata = pq.read_metadata(folder / name)
            if metadata.num_rows != reported[dataset][name].rows:
                said = reported[dataset][name].rows
                raise PublishError(f"{dataset}/{name}: footer says {metadata.num_rows} rows, writer said {said}")
            if not metadata.schema.to_arrow_schema().equals(DATASETS[dataset], check_metadata=False):
                raise PublishError(f"{dataset}/{name}: schema differs from nerbatch.tables")
            files.append(FileEntry(name=name, rows=metadata.num_rows, bytes=(folder / name).stat().st_size))
        total = sum(f.rows for f in files)
        if dataset in expected_rows and expected_rows[dataset] != total:
            raise PublishError(f"{dataset}: {total} rows staged, {expected_rows[dataset]} expected")
        if files:
            entries[dataset] = DatasetEntry(rows=total, files=files)
    missing = [d for d, n in expected_rows.items() if n and d not in entries]
    if missing:
        raise PublishError(f"no parts staged for {missing}")
    return entries


def _children(folder: Path) -> list[Path]:
    return list(folder.iterdir()) if folder.is_dir() else []


def _publish(root: Path, date: str, attempt: str, manifest: Manifest, hook: Hook | None) -> None:
    """Move a decided attempt into place. Idempotent: every step checks what is done."""
    staged = _staging_dir(root, date) / attempt
    trash = _trash_dir(root, date) / attempt
    for dataset in sorted(DATASETS):
        final = published_dir(root, dataset, date)
        source = staged / dataset
        if dataset not in manifest.datasets:
            if final.exists():  # the new version has no such dataset: drop the old one
                _move(final, trash / dataset)
                _call(hook, f"trashed:{dataset}")
            continue
        if source.is_dir():
            if final.exists():
                _move(final, trash / dataset)
                _call(hook, f"trashed:{dataset}")
            _move(source, final)
            _call(hook, f"moved:{dataset}")
        elif published_commit(root, dataset, date) != attempt:
            raise PublishError(f"{final}: expected commit {attempt}, and the staged copy is gone")
    _write_atomic(manifest_path(root, date), manifest.model_dump_json(indent=2).encode())
    _call(hook, "manifest_published")
    (_staging_dir(root, date) / PUBLISHING).unlink()
    _fsync_dir(_staging_dir(root, date))
    _call(hook, "intent_removed")
    shutil.rmtree(staged, ignore_errors=True)
    shutil.rmtree(_trash_dir(root, date), ignore_errors=True)
    _remove_if_empty(_staging_dir(root, date))
    # A successful run leaves only the layout readers know (no empty _staging/ or _trash/).
    _remove_if_empty(root / "_staging")
    _remove_if_empty(root / "_trash")
    _call(hook, "cleaned")


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty (another attempt's leftovers) or already gone
        pass


def published_commit(root: str | os.PathLike, dataset: str, date: str | dt.date) -> str | None:
    """The commit id in a published dataset folder's ``_SUCCESS``, or ``None``."""
    try:
        stamp = json.loads((published_dir(root, dataset, date) / SUCCESS).read_text())
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError):
        return None
    return stamp.get("commit_id")


def recover_partition(root: str | os.PathLike, date: str | dt.date) -> Manifest | None:
    """Finish a publish of ``date`` that a crash interrupted; return the committed manifest.

    If ``_PUBLISHING`` names an attempt whose staging still holds its manifest, the
    publish is rolled forward. If that staging is gone (deleted by hand), it is rolled
    back: the attempt's dataset folders go to the trash and the previous ones return.
    Without ``_PUBLISHING`` nothing visible is touched. Safe to call any time no other
    attempt for ``date`` is running.
    """
    base = _root(root)
    date_text = _date_text(date)
    intent = _staging_dir(base, date_text) / PUBLISHING
    if intent.exists():
        attempt = intent.read_text().strip()
        staged_manifest = _staging_dir(base, date_text) / attempt / STAGED_MANIFEST
        committed = read_committed_manifest(base, date_text)
        if committed is not None and committed.commit_id == attempt:  # only the clean-up was left
            intent.unlink()
            clean_stale_staging(base, date_text)
        elif staged_manifest.exists():
            manifest = Manifest.model_validate_json(staged_manifest.read_text())
            _publish(base, date_text, attempt, manifest, None)
        else:
            _roll_back(base, date_text, attempt)
    return read_committed_manifest(base, date_text)


def _roll_back(root: Path, date: str, attempt: str) -> None:
    trash = _trash_dir(root, date) / attempt
    for dataset in sorted(DATASETS):
        final = published_dir(root, dataset, date)
        if published_commit(root, dataset, date) == attempt:
            _move(final, trash.with_name(f"{attempt}-rolled-back") / dataset)
        if not final.exists() and (trash / dataset).is_dir():
            _move(trash / dataset, final)
    (_staging_dir(root, date) / PUBLISHING).unlink()
    shutil.rmtree(_trash_dir(root, date), ignore_errors=True)
    _remove_if_empty(_staging_dir(root, date))


def clean_stale_staging(root: str | os.PathLike, date: str | dt.date) -> list[Path]:
    """Remove leftover attempts and trash of ``date``; returns what was removed.

    Keeps the attempt named by ``_PUBLISHING`` (call :func:`recover_partition`
    first). Never call it while another attempt for ``date`` is running.
    """
    base = _root(root)
    date_text = _date_text(date)
    staging = _staging_dir(base, date_text)
    intent = staging / PUBLISHING
    keep = intent.read_text().strip() if intent.exists() else None
    removed = []
    for child in sorted(staging.iterdir()) if staging.is_dir() else []:
        if child.name not in (PUBLISHING, keep):
            shutil.rmtree(child) if child.is_dir() else child.unlink()
            removed.append(child)
    trash = _trash_dir(base, date_text)
    if keep is None and trash.exists():
        shutil.rmtree(trash)
        removed.append(trash)
    for tmp in manifest_path(base, date_text).parent.glob(f".{_partition(date_text)}.json.*.tmp"):
        tmp.unlink()  # a manifest write that a crash interrupted
        removed.append(tmp)
    _remove_if_empty(staging)
    return removed


def read_committed_manifest(root: str | os.PathLike, date: str | dt.date) -> Manifest | None:
    """The manifest of the committed version of ``date``, or ``None`` if never committed.

    Read-only: a publish interrupted by a crash is reported as the previous commit
    until :func:`recover_partition` completes it.
    """
    path = manifest_path(_root(root), date)
    try:
        return Manifest.model_validate_json(path.read_text())
    except FileNotFoundError:
        return None


def is_already_done(root: str | os.PathLike, date: str | dt.date, fingerprint: str) -> bool:
    """Whether ``date`` is committed with this ``fingerprint`` and its files are all there.

    Completes an interrupted publish first (:func:`recover_partition`), so a run that
    crashed after deciding its publish counts as done. Files deleted or altered by
    hand (missing, another size, another commit in ``_SUCCESS``) make it not done.
    """
    base = _root(root)
    manifest = recover_partition(base, date)
    if manifest is None or manifest.fingerprint != fingerprint:
        return False
    for dataset in DATASETS:
        folder = published_dir(base, dataset, date)
        entry = manifest.datasets.get(dataset)
        if entry is None:
            if folder.exists():
                return False
            continue
        if published_commit(base, dataset, date) != manifest.commit_id:
            return False
        for file in entry.files:
            try:
                if (folder / file.name).stat().st_size != file.bytes:
                    return False
            except FileNotFoundError:
                return False
    return True
