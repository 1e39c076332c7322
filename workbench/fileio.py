"""Whole-file writes: a reader sees the old file or the new one, never a torn one.

``atomic_writer(path)`` opens a temporary file in the target's folder; on success it is fsynced,
given the mode an ordinary ``open(path, "w")`` would give (``0o666 & ~umask``; ``mkstemp``
alone gives 0600) and renamed over ``path``; on any failure (a full disk, Ctrl-C) it is removed
and ``path`` is untouched. Errors name the path being written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


def default_file_mode() -> int:
    """The mode ``open(..., "w")`` gives a new file under the current umask (usually 0644)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_writer(path: str | Path) -> Iterator[BinaryIO]:
    """``with atomic_writer(p) as f: f.write(...)``: ``p`` appears whole, or not at all."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        if e.errno is not None and e.filename is None:  # ENOSPC from write(): name the file
            raise OSError(e.errno, e.strerror, str(path)) from e
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_writer`)."""
    with atomic_writer(path) as f:
        f.write(text.encode("utf-8"))
