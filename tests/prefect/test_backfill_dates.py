"""Finding the dates of an archive, on local paths and on an fsspec file system."""

from __future__ import annotations

import datetime as dt

import fsspec
import pytest

from flows.backfill import dates_between, dates_in_archive
from nerbatch.errors import InputError


def test_archive_dates_on_local_paths(tmp_path):
    for folder in ("2026-11-01", "2026-11-03", "notes"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.parquet").touch()
    (tmp_path / "2026-11-02").mkdir()  # a date without matching files
    expected = [dt.date(2026, 11, 1), dt.date(2026, 11, 3)]
    assert dates_in_archive(f"{tmp_path}/{{date}}/*.parquet") == expected
    assert dates_in_archive(f"file://{tmp_path}/{{date}}/*.parquet") == expected


def test_archive_dates_on_an_object_store_like_file_system():
    memory = fsspec.filesystem("memory")
    memory.pipe("/nerbatch-test-bucket/dumps/2026-10-09.jsonl", b"{}")
    memory.pipe("/nerbatch-test-bucket/dumps/readme.txt", b"")
    try:
        assert dates_in_archive("memory://nerbatch-test-bucket/dumps/{date}.jsonl") == [dt.date(2026, 10, 9)]
    finally:
        memory.rm("/nerbatch-test-bucket", recursive=True)


def test_an_archive_without_dates_is_an_error_not_an_empty_success(tmp_path):
    with pytest.raises(InputError, match="no files for any date"):
        dates_in_archive(f"{tmp_path}/{{date}}/*.parquet")
    with pytest.raises(ValueError, match="placeholder"):
        dates_in_archive(f"{tmp_path}/*.parquet")


def test_dates_between_is_inclusive_and_ordered():
    assert dates_between(dt.date(2026, 3, 28), dt.date(2026, 3, 30)) == [
        dt.date(2026, 3, 28), dt.date(2026, 3, 29), dt.date(2026, 3, 30)]
    with pytest.raises(ValueError, match="before"):
        dates_between(dt.date(2026, 3, 30), dt.date(2026, 3, 28))
