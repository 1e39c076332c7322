"""Run-folder lock: a second holder is refused naming the first; release frees the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli_support import describe
from workbench.train.lock import RunLock, RunLockedError


def test_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    first = RunLock(tmp_path / "run", "workbench train").acquire()
    with pytest.raises(RunLockedError, match=r"in use by `workbench train` \(process \d+") as e:
        RunLock(tmp_path / "run", "workbench export").acquire()
    assert describe(e.value) is not None  # the CLI prints it as one line, not as a bug
    first.release()
    with RunLock(tmp_path / "run", "workbench export") as again:
        assert again.held
    assert not again.held
