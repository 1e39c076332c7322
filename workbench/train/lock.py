"""One process at a time per run folder: ``workbench train`` and ``workbench export`` lock it.

The lock is an advisory ``flock`` on ``RUN/.lock``, which also records who holds it (process id,
host, command, start time). The operating system drops it when the holder exits, however it
exits, so a killed run never leaves a stale lock behind. A second process asking for the folder
gets :class:`RunLockedError` naming the holder, before it writes anything.

On systems without ``fcntl`` (Windows) the lock is a no-op.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError"]

LOCK_NAME = ".lock"


class RunLockedError(RuntimeError):
    """The run folder is in use by another process (the message names it)."""


class RunLock:
    """``with RunLock(folder, "workbench train"):`` — or ``acquire()`` / ``release()``."""

    def __init__(self, folder: str | Path, what: str) -> None:
        self.folder, self.what = Path(folder), what
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.folder / LOCK_NAME

    def acquire(self) -> RunLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _describe(os.read(fd, 4096))
            os.close(fd)
            raise RunLockedError(
                f"{self.folder} is in use by {holder}; wait for it to end, or use another folder"
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": self.what,
                "argv": sys.argv[1:], "since": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:  # a full or read-only disk: the lock goes with the descriptor
                pass
            os.close(fd)  # drops the flock

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw.decode() or "{}")
    except (UnicodeDecodeError, json.JSONDecodeError):
        info = {}
    if not info:
        return "another process"
    me = (
        " (this Python process: finish or close() it first)"
        if info.get("pid") == os.getpid()
        else ""
    )
    return (
        f"`{info.get('command', '?')}` (process {info.get('pid', '?')} on {info.get('host', '?')}, "
        f"since {info.get('since', '?')}){me}"
    )
