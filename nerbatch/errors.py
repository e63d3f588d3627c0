"""Errors meant for the user: one clear message naming the file (and line)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class NerbatchError(Exception):
    """Base class for errors the CLI prints as a one-line message, no traceback."""


class InputError(NerbatchError):
    """An input file is missing, unreadable, empty, or lacks a required column."""

    def __init__(self, path: str, message: str, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.message = message
        where = f"{path}:{line}" if line is not None else path
        super().__init__(f"{where}: {message}")

    def __reduce__(self):
        # Picklable with its own arguments, so it crosses from a Dask worker intact.
        return (type(self), (self.path, self.message, self.line))


class StrictModeError(NerbatchError):
    """``--strict`` was given and the input had rejected lines."""


@contextmanager
def reading(
    path: str, *, error: type[InputError] = InputError, also: tuple[type[BaseException], ...] = ()
) -> Iterator[None]:
    """Turn the ways reading ``path`` fails (missing, unreadable, truncated, plus any
    exception type in ``also``) into one ``error`` naming the file, no traceback."""
    try:
        yield
    except FileNotFoundError:
        raise error(path, "file not found") from None
    except (OSError, EOFError, *also) as exc:
        raise error(path, f"cannot be read ({exc.__class__.__name__}: {exc})") from None


class OutputDirectoryError(NerbatchError):
    """An output directory cannot be (re)placed without destroying something that
    is not ours: a file, a folder with other content, an input, ``/``, ``$HOME``,
    the current directory; or it cannot be written at all."""
