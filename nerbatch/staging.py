"""Make a directory appear complete or not at all: build it in a staging
sibling, then swap it in with renames (atomic on one POSIX file system).

Swapping replaces the whole target, so :func:`check_replaceable` decides first
whether the target may go: the one rule for every command and flow that
writes a directory as a whole (``prepare``, ``train``)."""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterable
from pathlib import Path

from nerbatch.errors import OutputDirectoryError


def staging_dir_for(target: Path) -> Path:
    """A fresh, unique sibling of ``target`` to build the new version in."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputDirectoryError(f"{target}: cannot create the folder it goes in ({_why(exc)})") from None
    return target.parent / f".{target.name}.staging-{uuid.uuid4().hex[:8]}"


def make_staging_dir(target: Path) -> Path:
    """Create and return a fresh staging sibling of ``target``; a folder that cannot
    be written (read-only, no permission) is one :class:`OutputDirectoryError`."""
    staging = staging_dir_for(target)
    try:
        staging.mkdir()
    except OSError as exc:
        raise OutputDirectoryError(f"{target}: cannot write in {target.parent} ({_why(exc)})") from None
    return staging


def check_writable(target: Path) -> None:
    """Fail now, with one :class:`OutputDirectoryError`, if a staging sibling of
    ``target`` cannot be created (before hours of work that would end there)."""
    make_staging_dir(target).rmdir()


def _why(exc: OSError) -> str:
    return exc.strerror or exc.__class__.__name__


def replace_directory(staging: Path, target: Path) -> None:
    """Swap ``staging`` in for ``target``: the old one is renamed aside first,
    then removed, so ``target`` is always either the old or the new whole.

    Callers check ``target`` with :func:`check_replaceable` before any work."""
    trash = None
    try:
        if target.exists():
            trash = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(trash)
        staging.rename(target)
    except OSError as exc:  # a mount point, a busy folder, a read-only file system
        if trash is not None and trash.exists() and not target.exists():
            trash.rename(target)  # the old version stays where it was
        raise OutputDirectoryError(f"{target}: cannot be replaced ({_why(exc)})") from None
    if trash is not None:
        shutil.rmtree(trash, ignore_errors=True)


def _is_within(path: Path, folder: Path) -> bool:
    """Is ``path`` ``folder`` itself or somewhere below it (both resolved)?"""
    return path == folder or folder in path.parents


def _is_own_output(target: Path, marker: str) -> bool:
    """Does ``target`` hold the ``marker`` file that the command writes (a JSON
    object naming the nerbatch version), i.e. is it our own earlier output?"""
    try:
        content = json.loads((target / marker).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and "nerbatch_version" in content


def local_paths(inputs: Iterable[str | os.PathLike]) -> list[Path]:
    """The inputs that are local paths (``file://`` included), resolved; URLs of
    other file systems cannot be inside a local output folder and are left out."""
    paths = []
    for item in inputs:
        text = os.fspath(item)
        if "://" in text:
            protocol, _, rest = text.partition("://")
            if protocol != "file":
                continue
            text = rest
        paths.append(Path(text).expanduser().resolve())
    return paths


def check_replaceable(
    target: str | os.PathLike,
    *,
    marker: str,
    command: str,
    inputs: Iterable[str | os.PathLike] = (),
    overwrite: bool = False,
    option: str = "--out",
    overwrite_option: str | None = "--overwrite",
) -> None:
    """Refuse, before any work, an output directory that replacing would destroy
    data in. Raises :class:`OutputDirectoryError` (one line naming the path and
    the way out); touches nothing.

    ``target`` may be replaced when it does not exist, is an empty directory, or
    holds ``marker`` (our own earlier output of ``command``: ``prepare_report.json``,
    ``bundle.json``); any other directory only with ``overwrite``. Never, even
    with ``overwrite``: a file; ``/``, ``$HOME``, the current directory or a
    folder above one of them; a folder holding one of ``inputs``. ``option`` and
    ``overwrite_option`` name the caller's ways out in the message (None: no
    overwrite option to offer).
    """
    given = Path(target).expanduser()
    if not given.exists() and not given.is_symlink():
        return
    if not given.is_dir():
        raise OutputDirectoryError(f"{given}: is a file, not an output folder; give {option} a folder name")
    resolved = given.resolve()
    protected = {Path("/"): "the root folder", Path.cwd().resolve(): "the current folder"}
    try:
        protected[Path.home().resolve()] = "your home folder"
    except RuntimeError:  # no HOME and no password entry: no home folder to protect
        pass
    for folder, what in protected.items():
        if _is_within(folder, resolved):
            where = what if folder == resolved else f"a folder above {what} ({folder})"
            raise OutputDirectoryError(
                f"{given}: is {where}; {command} replaces its output folder as a whole, so give {option} a new folder"
            )
    for path in local_paths(inputs):
        if _is_within(path, resolved):
            raise OutputDirectoryError(
                f"{given}: holds the input {path}; {command} replaces its output folder as a whole, "
                f"so give {option} another folder"
            )
    if overwrite or _is_own_output(resolved, marker):
        return
    try:
        empty = next(resolved.iterdir(), None) is None
    except OSError as exc:
        raise OutputDirectoryError(f"{given}: cannot be read ({_why(exc)})") from None
    if not empty:
        overwriting = (f", or pass {overwrite_option} (in a flow: overwrite=true) to replace it and all it holds"
                       if overwrite_option else "")
        raise OutputDirectoryError(
            f"{given}: exists and is not an earlier {command} output (no {marker}); give {option} a new folder{overwriting}"
        )
