"""Exactly-once date partitions: publish, replace, skip, crash at every step, recover."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from nerbatch.documents import InputFile
from nerbatch.outputs import (
    DATASETS,
    PUBLISHING,
    PublishError,
    RunInfo,
    begin_partition,
    clean_stale_staging,
    commit_partition,
    compute_fingerprint,
    date_lock,
    is_already_done,
    manifest_path,
    part_name,
    published_commit,
    published_dir,
    read_committed_manifest,
    recover_partition,
    write_part,
)
from nerbatch.tables import ENTITY_SCHEMA

DATE = "2026-11-24"
INPUTS = [InputFile(path="/in/a.csv", size=10, sha256="a" * 64), InputFile(path="/in/b.csv", size=20, sha256="b" * 64)]


class Crash(Exception):
    """Stands for the process dying at a given step."""


def entities(version: str, part: int, n: int = 3) -> pa.Table:
    return pa.table(
        {
            "doc_id": [f"{version}-p{part}-d{i}" for i in range(n)],
            "sentence_index": pa.array([0] * n, pa.int32()),
            "start_char": pa.array(range(n), pa.int32()),  # cast to int64 on write
            "end_char": pa.array(range(1, n + 1), pa.int64()),
            "text": ["x"] * n,
            "label": ["PER"] * n,
            "confidence": [0.5] * n,  # float64, cast to float32
            "model_version": [version] * n,
            "run_id": ["run"] * n,
        }
    )


def tokens(version: str, part: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "doc_id": [f"{version}-p{part}"],
            "sentence_index": [0],
            "token_index": [0],
            "token": ["x"],
            "start_char": [0],
            "end_char": [1],
            "tag": ["O"],
            "confidence": [0.9],
        }
    )


def rejects(version: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source_file": ["/in/a.csv"],
            "row": [2],
            "doc_id": [f"{version}-bad"],
            "reason": ["empty_text"],
            "detail": ["d"],
            "text": [""],
        }
    )


def info(version: str) -> RunInfo:
    return RunInfo(inputs=INPUTS, model_version=version, options={"batch_size": 32}, timings={"tag_seconds": 1.5})


def publish(root: Path, version: str, *, with_tokens: bool = False, hook=None, date: str = DATE):
    staging = begin_partition(root, date, f"run-{version}")
    parts = [write_part(staging, "entities", i, entities(version, i)) for i in range(2)]
    parts.append(write_part(staging, "rejects", 0, rejects(version)))
    if with_tokens:
        parts.append(write_part(staging, "tokens", 0, tokens(version, 0)))
    return commit_partition(staging, parts, info(version), expected_rows={"entities": 6, "rejects": 1}, hook=hook)


def visible(root: Path, dataset: str, date: str = DATE) -> set[str] | None:
    """Doc ids a reader sees for ``date`` (hive partitioning), or None if no partition."""
    folder = root / dataset
    if not folder.exists():
        return None
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table()
    frame = table.to_pandas()
    if frame.empty or date not in set(frame["dt"].astype(str)):
        return None
    return set(frame.loc[frame["dt"].astype(str) == date, "doc_id"])


def expected(version: str) -> dict[str, set[str] | None]:
    return {
        "entities": {f"{version}-p{p}-d{i}" for p in range(2) for i in range(3)},
        "rejects": {f"{version}-bad"},
        "tokens": {f"{version}-p0"} if version == "v1" else None,
    }


def leftovers(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for base in ("_staging", "_trash") for p in (root / base).rglob("*"))


# -- publish, replace, skip ----------------------------------------------------------------


def test_publish_layout_manifest_and_readers(tmp_path: Path) -> None:
    manifest = publish(tmp_path, "v1", with_tokens=True)
    assert sorted(p.name for p in (tmp_path / "entities" / f"dt={DATE}").iterdir()) == [
        "_SUCCESS",
        "part-00000.parquet",
        "part-00001.parquet",
    ]
    assert leftovers(tmp_path) == []
    assert read_committed_manifest(tmp_path, DATE) == manifest
    on_disk = json.loads(manifest_path(tmp_path, DATE).read_text())
    assert on_disk["commit_id"] == manifest.commit_id and manifest.commit_id.startswith("run-v1-")
    assert {d: e.rows for d, e in manifest.datasets.items()} == {"entities": 6, "rejects": 1, "tokens": 1}
    assert [f.name for f in manifest.datasets["entities"].files] == ["part-00000.parquet", "part-00001.parquet"]
    assert manifest.inputs == INPUTS and manifest.model_version == "v1" and manifest.run_id == "run-v1"
    assert manifest.fingerprint == info("v1").fingerprint
    assert manifest.timings["tag_seconds"] == 1.5 and "begin_to_commit_seconds" in manifest.timings
    assert manifest.nerbatch_version and pd.Timestamp(manifest.created_at).tzinfo is not None
    for dataset in ("entities", "rejects", "tokens"):
        assert published_commit(tmp_path, dataset, DATE) == manifest.commit_id
    # Plain pandas sees the committed rows with the hive partition column.
    frame = pd.read_parquet(tmp_path / "entities")
    assert len(frame) == 6 and set(frame["dt"].astype(str)) == {DATE}
    assert frame["confidence"].dtype == "float32"
    table = ds.dataset(tmp_path / "entities", format="parquet", partitioning="hive").to_table()
    assert table.schema.field("start_char").type == pa.int64()


def test_rerun_replaces_the_partition_as_a_unit(tmp_path: Path) -> None:
    publish(tmp_path, "v1", with_tokens=True)
    publish(tmp_path, "v0", date="2026-11-23")
    publish(tmp_path, "v2")
    for dataset in DATASETS:
        assert visible(tmp_path, dataset) == expected("v2")[dataset]
    assert not published_dir(tmp_path, "tokens", DATE).exists()  # v2 has no tokens
    assert visible(tmp_path, "entities", "2026-11-23") == expected("v0")["entities"]  # other dates untouched
    assert len(pd.read_parquet(tmp_path / "entities")) == 12  # same rows once, never twice
    assert read_committed_manifest(tmp_path, DATE).model_version == "v2"
    assert leftovers(tmp_path) == []


def test_skip_decision_uses_fingerprint_and_published_files(tmp_path: Path) -> None:
    assert not is_already_done(tmp_path, DATE, info("v1").fingerprint)
    publish(tmp_path, "v1")
    assert is_already_done(tmp_path, DATE, info("v1").fingerprint)
    assert not is_already_done(tmp_path, DATE, info("v2").fingerprint)
    (published_dir(tmp_path, "entities", DATE) / "part-00001.parquet").unlink()  # deleted by hand
    assert not is_already_done(tmp_path, DATE, info("v1").fingerprint)


def test_fingerprint_ignores_paths_and_order_but_not_content_model_or_options() -> None:
    base = compute_fingerprint(INPUTS, "m1", {"a": 1, "b": 2})
    moved = [InputFile(path="/elsewhere/x", size=f.size, sha256=f.sha256) for f in reversed(INPUTS)]
    assert compute_fingerprint(moved, "m1", {"b": 2, "a": 1}) == base
    assert compute_fingerprint(INPUTS[:1], "m1", {"a": 1, "b": 2}) != base
    assert compute_fingerprint(INPUTS, "m2", {"a": 1, "b": 2}) != base
    assert compute_fingerprint(INPUTS, "m1", {"a": 1, "b": 3}) != base


def test_part_names_are_deterministic(tmp_path: Path) -> None:
    names = []
    for _ in range(2):
        staging = begin_partition(tmp_path, DATE, "run")
        parts = [write_part(staging, "entities", i, entities("v", i, 1)) for i in (7, 0, 3)]
        commit_partition(staging, parts, info("v"))
        names.append(sorted(p.name for p in published_dir(tmp_path, "entities", DATE).glob("*.parquet")))
    assert names[0] == names[1] == ["part-00000.parquet", "part-00003.parquet", "part-00007.parquet"]
    assert part_name(12) == "part-00012.parquet"


# -- crashes -------------------------------------------------------------------------------

STEPS = [
    "validated",
    "manifest_staged",
    "staged",
    "intent_written",
    "trashed:entities",
    "moved:entities",
    "trashed:rejects",
    "moved:rejects",
    "trashed:tokens",  # v1 had tokens, v2 has none
    "manifest_published",
    "intent_removed",
    "cleaned",
]
DECIDED = STEPS.index("intent_written")


def assert_whole_versions(root: Path, gap: str | None = None) -> None:
    """Each dataset shows exactly one version's rows (or, mid-swap, no partition)."""
    for dataset in DATASETS:
        seen = visible(root, dataset)
        allowed = [expected("v1")[dataset], expected("v2")[dataset]]
        assert seen in allowed or (seen is None and dataset == gap), (dataset, seen)


@pytest.mark.parametrize("step", STEPS)
def test_crash_at_any_step_leaves_whole_versions_and_rerun_completes(tmp_path: Path, step: str) -> None:
    publish(tmp_path, "v1", with_tokens=True)

    def crash(at: str) -> None:
        if at == step:
            raise Crash(at)

    with pytest.raises(Crash):
        publish(tmp_path, "v2", hook=crash)
    assert_whole_versions(tmp_path, gap=step.split(":")[1] if step.startswith("trashed:") else None)

    # The next run first completes a decided publish, or keeps the old version.
    decided = STEPS.index(step) >= DECIDED
    assert is_already_done(tmp_path, DATE, info("v2").fingerprint) == decided
    state = "v2" if decided else "v1"
    for dataset in DATASETS:
        assert visible(tmp_path, dataset) == expected(state)[dataset]
    assert read_committed_manifest(tmp_path, DATE).model_version == state
    assert not (tmp_path / "_staging" / f"dt={DATE}" / PUBLISHING).exists()

    publish(tmp_path, "v2")  # the rerun
    for dataset in DATASETS:
        assert visible(tmp_path, dataset) == expected("v2")[dataset]
    assert leftovers(tmp_path) == []


@pytest.mark.parametrize("nth", [1, 2, 3, 4, 5])
def test_failing_rename_at_nth_call_is_recovered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, nth: int) -> None:
    publish(tmp_path, "v1", with_tokens=True)
    real_rename = os.rename
    calls = []

    def failing_rename(src, dst):
        calls.append(src)
        if len(calls) == nth:
            raise OSError("simulated crash in rename")
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", failing_rename)
    with pytest.raises(OSError, match="simulated"):
        publish(tmp_path, "v2")
    monkeypatch.setattr(os, "rename", real_rename)
    # A failed rename did not happen: the dataset it would have moved in is absent.
    assert_whole_versions(tmp_path, gap=[None, "entities", None, "rejects", None][nth - 1])
    # Renames happen only after the decision, so the rerun rolls v2 forward.
    assert is_already_done(tmp_path, DATE, info("v2").fingerprint)
    for dataset in DATASETS:
        assert visible(tmp_path, dataset) == expected("v2")[dataset]
    assert leftovers(tmp_path) == []


def test_lost_staging_after_decision_rolls_back_to_the_old_version(tmp_path: Path) -> None:
    publish(tmp_path, "v1", with_tokens=True)

    def crash(at: str) -> None:
        if at == "moved:entities":
            raise Crash(at)

    with pytest.raises(Crash):
        publish(tmp_path, "v2", hook=crash)
    attempt = (tmp_path / "_staging" / f"dt={DATE}" / PUBLISHING).read_text()
    shutil.rmtree(tmp_path / "_staging" / f"dt={DATE}" / attempt)  # deleted by hand
    assert recover_partition(tmp_path, DATE).model_version == "v1"
    for dataset in DATASETS:
        assert visible(tmp_path, dataset) == expected("v1")[dataset]
    assert leftovers(tmp_path) == []


# -- validation, schemas, staging hygiene -------------------------------------------------------


def test_validation_failures_publish_nothing(tmp_path: Path) -> None:
    publish(tmp_path, "v1")
    staging = begin_partition(tmp_path, DATE, "bad")
    good = write_part(staging, "entities", 0, entities("v2", 0))
    with pytest.raises(PublishError, match="expected"):
        commit_partition(staging, [good], info("v2"), expected_rows={"entities": 4})
    with pytest.raises(PublishError, match="footer says 3 rows, writer said 5"):
        commit_partition(staging, [type(good)(**{**good.__dict__, "rows": 5})], info("v2"))
    write_part(staging, "entities", 1, entities("v2", 1))  # written but not reported
    with pytest.raises(PublishError, match="differ from the reported parts"):
        commit_partition(staging, [good], info("v2"))
    assert visible(tmp_path, "entities") == expected("v1")["entities"]
    assert read_committed_manifest(tmp_path, DATE).model_version == "v1"


def test_a_failed_validation_leaves_no_publish_decision_and_recovery_keeps_the_previous_commit(tmp_path: Path) -> None:
    first = publish(tmp_path, "v1")
    staging = begin_partition(tmp_path, DATE, "bad")
    parts = [write_part(staging, "entities", i, entities("v2", i)) for i in range(2)]
    write_part(staging, "rejects", 0, rejects("v2"))  # written but never reported: validation must fail
    with pytest.raises(PublishError, match="differ from the reported parts"):
        commit_partition(staging, parts, info("v2"), expected_rows={"entities": 6})
    # Nothing says "publish this attempt": no decision marker, no staged manifest or _SUCCESS...
    assert not (tmp_path / "_staging" / f"dt={DATE}" / PUBLISHING).exists()
    assert not (staging.path / "_manifest.json").exists() and not (staging.path / "_SUCCESS").exists()
    # ...so the next run's recovery keeps v1 rather than rolling the failed batch forward.
    assert recover_partition(tmp_path, DATE).commit_id == first.commit_id
    assert is_already_done(tmp_path, DATE, info("v1").fingerprint)
    for dataset in ("entities", "rejects"):
        assert published_commit(tmp_path, dataset, DATE) == first.commit_id
        assert visible(tmp_path, dataset) == expected("v1")[dataset]
    second = begin_partition(tmp_path, DATE, "next")  # a new attempt clears the failed one
    assert not staging.path.exists() and second.path.exists()
    assert read_committed_manifest(tmp_path, DATE).commit_id == first.commit_id


def test_write_part_enforces_the_dataset_schema(tmp_path: Path) -> None:
    staging = begin_partition(tmp_path, DATE, "run")
    with pytest.raises(ValueError, match=r"missing \['label'\]"):
        write_part(staging, "entities", 0, entities("v", 0).drop_columns(["label"]))
    with pytest.raises(ValueError, match="unexpected"):
        write_part(staging, "rejects", 0, rejects("v").assign(extra=1))
    with pytest.raises(ValueError, match="unknown dataset"):
        write_part(staging, "entity", 0, entities("v", 0))
    part = write_part(staging, "entities", 0, entities("v", 0).select(list(reversed(ENTITY_SCHEMA.names))))
    assert pq.read_schema(staging.path / "entities" / part.name).equals(ENTITY_SCHEMA, check_metadata=False)


def test_begin_removes_stale_attempts_and_readers_skip_underscore_and_dot_files(tmp_path: Path) -> None:
    publish(tmp_path, "v1")
    crashed = begin_partition(tmp_path, DATE, "crashed")
    write_part(crashed, "entities", 0, entities("junk", 0))
    # Junk a reader must ignore, inside the dataset folder itself.
    folder = published_dir(tmp_path, "entities", DATE)
    (folder / ".part-00009.parquet.1234.tmp").write_bytes(b"half a file")
    (tmp_path / "entities" / "_staging_probe").mkdir()
    pq.write_table(pa.table({"other": [1]}), tmp_path / "entities" / "_staging_probe" / "x.parquet")
    assert visible(tmp_path, "entities") == expected("v1")["entities"]
    assert len(pd.read_parquet(tmp_path / "entities")) == 6

    fresh = begin_partition(tmp_path, DATE, "fresh")
    assert not crashed.path.exists() and fresh.path.exists()
    assert clean_stale_staging(tmp_path, DATE) == [fresh.path]


def test_arguments_are_checked(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        begin_partition(tmp_path, "2026-13-01", "run")
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        begin_partition(tmp_path, "20261124", "run")
    with pytest.raises(ValueError, match="run_id"):
        begin_partition(tmp_path, DATE, "../escape")
    with pytest.raises(ValueError, match="local"):
        begin_partition("s3://bucket/out", DATE, "run")
    assert read_committed_manifest(tmp_path, DATE) is None


# -- one run per date ----------------------------------------------------------------------


def test_date_lock_makes_a_second_run_wait_and_names_the_holder(tmp_path: Path) -> None:
    events: list[str] = []
    with date_lock(tmp_path, DATE):
        with pytest.raises(PublishError, match=rf"{DATE} is locked by pid {os.getpid()} on "):
            with date_lock(tmp_path, DATE, timeout=0):
                pass
        with date_lock(tmp_path, "2026-11-25", timeout=0):  # other dates are free
            pass

        def second() -> None:
            with date_lock(tmp_path, DATE, timeout=30, on_wait=events.append):
                events.append("acquired")

        waiter = threading.Thread(target=second)
        waiter.start()
        time.sleep(0.5)
        [waiting] = events  # told once, while the lock is held
        assert waiting.startswith(f"{DATE} is locked by pid {os.getpid()} on ") and waiting.endswith("; waiting")
        events.append("released")
    waiter.join(timeout=30)
    assert events[1:] == ["released", "acquired"]


def test_date_lock_of_a_killed_process_is_free_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from nerbatch.outputs import date_lock\n"
         f"with date_lock({str(tmp_path)!r}, {DATE!r}):\n    print('held', flush=True); time.sleep(600)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(PublishError, match="locked by pid"):
            with date_lock(tmp_path, DATE, timeout=0):
                pass
    finally:
        holder.kill()
        holder.wait()
    with date_lock(tmp_path, DATE, timeout=0):  # no stale lock after a crash
        pass


def test_tag_documents_waits_for_the_date_lock_and_gives_up_after_its_timeout(tmp_path: Path) -> None:
    """The tagging run itself takes the date lock (not only the library's lock function):
    held here, a run of the same date waits ``lock_timeout`` and then refuses, having
    written nothing. No model is needed: the lock comes before any tagging."""
    import datetime as dt

    from nerbatch.tag import TagOptions, tag_documents

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "bundle.json").write_text(json.dumps({"model_version": "m-000000000000", "files": {}}))
    pd.DataFrame({"doc_id": ["d1"], "text": ["Angela Merkel visited Paris."]}).to_parquet(tmp_path / "dump.parquet")
    out = tmp_path / "out"
    options = TagOptions(date=dt.date.fromisoformat(DATE), lock_timeout=1.5)
    with date_lock(out, DATE):
        started = time.monotonic()
        with pytest.raises(PublishError, match=rf"{DATE} is locked by pid {os.getpid()} .* \(waited 2s\)"):
            tag_documents([str(tmp_path / "dump.parquet")], bundle, out, options)
        waited = time.monotonic() - started
    assert 1.5 <= waited < 10
    assert sorted(p.name for p in out.iterdir()) == ["_locks"]  # nothing staged, nothing published
