"""SHA-256 of whole files (local paths or any fsspec URL), read in 1 MiB blocks,
for the bundle's file hashes and the tagging manifests' input fingerprints."""

from __future__ import annotations

import hashlib
from os import PathLike

import fsspec

_BLOCK = 1 << 20


def file_sha256(path: str | PathLike) -> tuple[int, str]:
    """``(size in bytes, hex SHA-256)`` of the file at ``path``; OSError if unreadable."""
    digest = hashlib.sha256()
    size = 0
    with fsspec.open(str(path), "rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()
