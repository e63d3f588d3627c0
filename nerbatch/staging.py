"""Make a directory appear complete or not at all: build it in a staging
sibling, then swap it in with renames (atomic on one POSIX file system)."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path


def staging_dir_for(target: Path) -> Path:
    """A fresh, unique sibling of ``target`` to build the new version in."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:8]}"


def replace_directory(staging: Path, target: Path) -> None:
    """Swap ``staging`` in for ``target``: the old one is renamed aside first,
    then removed, so ``target`` is always either the old or the new whole."""
    trash = None
    if target.exists():
        trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        target.rename(trash)
    staging.rename(target)
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)
