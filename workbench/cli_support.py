"""The command line's error boundary and argument checks, shared by every sub-command.

``run_guarded(name, fn, debug)`` runs one sub-command and turns what a user can cause — the
workbench's own errors (``ValueError`` / ``KeyError`` / ``OSError`` subclasses with messages that
name the file and the fix, ``ChecksumError``, ``TrainingDiverged``, ...) and the common OS errors
(missing file, permission denied, full disk) — into one line ``workbench NAME: error: ...`` and
a non-zero exit. Anything else is a bug: one line saying so. ``--debug`` re-raises, so the stack
is shown. Warnings print as ``workbench: warning: ...`` (no source line).

The ``argparse`` types (``output_file``, ``output_dir``, ``json_object``, ...) check values when
the command line is parsed, i.e. before any work: an unwritable ``--json`` path fails in
milliseconds, not after the evaluation it was meant to record.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

EXIT_ERROR, EXIT_INTERRUPTED = 1, 130

_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write somewhere else",
    errno.EDQUOT: "the disk quota is exhausted: free some space or write somewhere else",
    errno.EACCES: "permission denied: choose a path you may write, or fix its permissions",
    errno.EPERM: "operation not permitted: choose a path you may write",
    errno.EROFS: "the file system is read-only: write somewhere else",
    errno.ENOENT: "no such file or folder: check the path",
    errno.EISDIR: "is a folder: pass a file path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: check the path",
    errno.EMFILE: "too many open files: lower --workers",
    errno.ENOMEM: "out of memory: lower --batch-size or --workers",
}


def _user_errors() -> tuple[type[BaseException], ...]:
    """Exception types whose message is written for the user (imported lazily: they are light)."""
    from workbench.device import DeviceUnavailableError
    from workbench.models.base import CheckpointMismatchError
    from workbench.pretrained import ChecksumError
    from workbench.train.lock import RunLockedError

    types: list[type[BaseException]] = [
        ValueError,  # ConfigError, FileNameError, CheckpointError, ResumeMismatchError, ...
        LookupError,  # KeyError: unknown weights / model / layout names
        ChecksumError,
        CheckpointMismatchError,
        DeviceUnavailableError,
        RunLockedError,
    ]
    if "workbench.train.trainer" in sys.modules:  # imported only by the commands that train
        from workbench.train.trainer import EvaluationFailed, TrainingDiverged

        types += [TrainingDiverged, EvaluationFailed]
    return tuple(types)


def describe(exc: BaseException) -> str | None:
    """The one-line message for an error a user can cause; ``None`` for a bug."""
    if isinstance(exc, OSError):
        if exc.errno is None or exc.errno not in _OS_HINTS:  # the workbench's own, or rare
            text = str(exc) if exc.errno is None else f"{exc.strerror or exc}"
        else:
            text = _OS_HINTS[exc.errno]
        where = exc.filename if exc.errno is not None and exc.filename else None
        return f"{where}: {text}" if where else text
    if isinstance(exc, _user_errors()):
        if isinstance(exc, KeyError) and exc.args:
            return str(exc.args[0])  # KeyError's str() adds quotes
        return str(exc) or type(exc).__name__
    return None


@contextlib.contextmanager
def _plain_warnings() -> Iterator[None]:
    """``workbench: warning: MESSAGE`` instead of Python's ``file:line: UserWarning: ...``."""
    old = warnings.formatwarning

    def fmt(message: Any, category: Any, filename: str, lineno: int, line: Any = None) -> str:
        return f"workbench: warning: {message}\n"

    warnings.formatwarning = fmt  # type: ignore[assignment]
    try:
        yield
    finally:
        warnings.formatwarning = old


def run_guarded(name: str, fn: Callable[[], int | None], debug: bool = False) -> int:
    """Run sub-command ``name``; user errors -> one line on stderr + exit 1 (see module doc)."""
    if debug:
        return int(fn() or 0)
    try:
        with _plain_warnings():
            return int(fn() or 0)
    except KeyboardInterrupt:
        print(f"\nworkbench {name}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as e:
        message = describe(e)
        if message is None:
            message = (
                f"internal error ({type(e).__name__}: {e}); this is a bug in the workbench: "
                f"rerun with --debug to see where, and report it"
            )
        print(f"workbench {name}: error: {message}", file=sys.stderr)
        return EXIT_ERROR


# -- argparse types: checked while parsing, before any work -----------------------------------
def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_writable(value: str, folder: bool) -> Path:
    path = Path(value).expanduser()
    if not value:
        raise argparse.ArgumentTypeError("empty path")
    if path.exists():
        if folder and not path.is_dir():
            raise argparse.ArgumentTypeError(f"{path} exists and is a file; pass a folder")
        if not folder and path.is_dir():
            raise argparse.ArgumentTypeError(f"{path} is a folder; pass a file path")
        target = path
    else:
        target = _nearest_existing(path.absolute().parent)
        if not target.is_dir():
            raise argparse.ArgumentTypeError(
                f"{target} is a file, so {path} cannot be created; pass another path"
            )
    if not os.access(target, os.W_OK):
        raise argparse.ArgumentTypeError(f"{target} is not writable; pass a path you may write")
    return path


def output_file(value: str) -> str:
    """A file path that can be written (its folder may still have to be created)."""
    _check_writable(value, folder=False)
    return value


def output_dir(value: str) -> str:
    """A folder that exists and is writable, or can be created."""
    _check_writable(value, folder=True)
    return value


def json_object(value: str) -> dict[str, Any]:
    """A JSON object given on the command line, e.g. ``'{"width": 32}'``."""
    try:
        obj = json.loads(value)
    except json.JSONDecodeError as e:
        raise argparse.ArgumentTypeError(
            f"not valid JSON ({e.msg} at character {e.pos}): {value!r}; write an object such "
            f"as '{{\"width\": 32}}' (double quotes, in single quotes for the shell)"
        ) from None
    if not isinstance(obj, dict):
        raise argparse.ArgumentTypeError(
            f"{value!r} is a JSON {type(obj).__name__}; need an object such as '{{\"width\": 32}}'"
        )
    return obj


def non_negative_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 0:
        raise argparse.ArgumentTypeError(f"{n}: need 0 or more")
    return n


def non_negative_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not 0 <= x < float("inf"):
        raise argparse.ArgumentTypeError(f"{value}: need a finite number >= 0")
    return x


def positive_int(value: str) -> int:
    n = non_negative_int(value)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: need 1 or more")
    return n


def positive_float(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
    if not x > 0:
        raise argparse.ArgumentTypeError(f"{value}: need a positive number")
    return x


def role_weights(value: str) -> tuple[str, str]:
    """``ROLE=NAME_OR_PATH`` (``workbench figures --weights``) as ``(role, name_or_path)``."""
    role, sep, weights = value.partition("=")
    if not sep or not role or not weights:
        raise argparse.ArgumentTypeError(
            f"{value!r}: write ROLE=NAME_OR_PATH, e.g. bot=bot_r18w16_256 or "
            f"bot=logs/market1501/model_final.pth (roles: workbench figures --list)"
        )
    return role.strip(), weights.strip()


def figure_formats(value: str) -> tuple[str, ...]:
    """``pdf,png,svg`` (``workbench figures --format``) as a tuple, checked."""
    from workbench.viz.figures.style import check_formats

    try:
        return check_formats(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
