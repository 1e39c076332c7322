"""The notebook output filter: outputs never reach a commit, and autosave never dirties a clone.

``make notebook-filter`` (run by the venv setup) configures nbstripout as git's clean filter for
the ``*.ipynb`` files that ``.gitattributes`` names. The tests set up a temporary repository with
the same ``.gitattributes`` and the same make target, and check what git stores.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(ROOT.glob("notebooks/*.ipynb")) + sorted(ROOT.glob("tests/**/*.ipynb"))

pytest.importorskip("nbstripout", reason="nbstripout is a dev dependency (pip install -e '.[dev]')")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


def _with_outputs(path: Path) -> dict:
    """A committed notebook as JupyterLab saves it after a run: counts, outputs, metadata."""
    nb = json.loads(path.read_text())
    for n, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        cell["execution_count"] = n + 1
        cell["outputs"] = [
            {"output_type": "stream", "name": "stdout", "text": [f"output of cell {n}\n"]},
            {
                "output_type": "display_data",
                "metadata": {},
                "data": {"image/png": "iVBORw0KGgo=", "text/plain": ["<Figure>"]},
            },
        ]
        cell["metadata"]["execution"] = {"iopub.execute_input": "2026-12-06T03:00:00Z"}
    nb["metadata"]["language_info"] = {"name": "python", "version": "3.11.7"}
    return nb


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository set up as `make` sets up a clone: .gitattributes + the filter target."""
    if shutil.which("git") is None or shutil.which("make") is None:
        pytest.skip("needs git and make")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "config", "user.email", "test@example.com")
    _git(tmp_path, "config", "user.name", "test")
    shutil.copy(ROOT / ".gitattributes", tmp_path / ".gitattributes")
    subprocess.run(
        ["make", "-f", str(ROOT / "Makefile"), "notebook-filter", f"PY={sys.executable}"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )
    return tmp_path


def test_committed_notebooks_are_already_stripped(repo: Path):
    """The clean filter leaves every committed notebook as it is, so turning the filter on
    changes nothing in a clean clone (the filter's own flags, in one nbstripout run)."""
    assert NOTEBOOKS, "no notebooks found"
    clean = shlex.split(_git(repo, "config", "filter.nbstripout.clean"))
    result = subprocess.run(
        [*clean, "--verify", *map(str, NOTEBOOKS)], capture_output=True, text=True
    )
    assert result.returncode == 0, f"notebooks with outputs or run metadata:\n{result.stdout}"
    # nbstripout writes a final newline: a notebook without one would show a one-byte diff
    assert all(path.read_bytes().endswith(b"}\n") for path in NOTEBOOKS)


def test_git_add_stores_a_notebook_without_outputs(repo: Path):
    source = ROOT / "notebooks" / "05_gradcam_of_a_pair.ipynb"
    run = _with_outputs(source)
    (repo / "nb.ipynb").write_text(json.dumps(run, indent=1) + "\n")
    _git(repo, "add", "nb.ipynb", ".gitattributes")
    stored = json.loads(_git(repo, "show", ":nb.ipynb"))
    code = [c for c in stored["cells"] if c["cell_type"] == "code"]
    assert code and all(c["outputs"] == [] and c["execution_count"] is None for c in code)
    assert all("execution" not in c["metadata"] for c in code)
    assert "language_info" not in stored["metadata"]
    # the cells' sources and ids are kept: what is stored is the committed notebook
    assert stored["cells"] == json.loads(source.read_text())["cells"]
    # the working copy keeps its outputs (the filter only changes what git stores)
    assert json.loads((repo / "nb.ipynb").read_text())["cells"][1]["outputs"]


def test_a_run_saved_over_a_committed_notebook_changes_nothing_in_git(repo: Path):
    """Autosave after a run: no diff, nothing to stage. (``git status`` lists the file until the
    next ``git add``, which stages nothing: git compares sizes before it runs the filter.)"""
    source = ROOT / "notebooks" / "12_faithfulness.ipynb"
    shutil.copy(source, repo / "nb.ipynb")
    _git(repo, "add", "nb.ipynb", ".gitattributes")
    _git(repo, "commit", "-q", "-m", "a notebook")
    (repo / "nb.ipynb").write_text(json.dumps(_with_outputs(source), indent=1) + "\n")
    assert _git(repo, "diff") == ""
    _git(repo, "add", "-A")
    assert _git(repo, "diff", "--cached", "--name-only") == ""
    assert _git(repo, "status", "--porcelain") == ""
    assert "output of cell" in (repo / "nb.ipynb").read_text()  # the run is still on disk
    # a real edit is still seen
    edited = _with_outputs(source)
    edited["cells"][0]["source"] = ["# 12 · edited\n"]
    (repo / "nb.ipynb").write_text(json.dumps(edited, indent=1) + "\n")
    assert _git(repo, "diff", "--name-only").strip() == "nb.ipynb"
