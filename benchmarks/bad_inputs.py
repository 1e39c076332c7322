"""Run every CLI sub-command against bad inputs; count how many end in a traceback.

    python benchmarks/bad_inputs.py --root after=. --root before=/tmp/checkout_of_older_commit

Each ``--root NAME=DIR`` is a checkout of the workbench; every case runs as a new user would,
``python -m workbench.cli ...`` with ``PYTHONPATH=DIR``, in its own scratch folder (so nothing of
the checkouts is written), and is classified as

    traceback   the stack was printed (``Traceback (most recent call last)`` on stderr)
    message     a non-zero exit without a stack
    accepted    exit 0: the bad input went through (a silent wrong result, or a harmless one)

Fixtures (a 12-identity synthetic dataset at 128x64, a one-epoch tiny run, damaged copies) are
built once under ``--work`` with the first root. Cases marked ``listed`` are the ones named in
issue 10; the others are extra. Prints one table row per case and the counts per root.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

TINY_MODEL = '{"backbone": "resnet18", "width": 8}'
TINY = ["--model-config", TINY_MODEL, "--height", "64", "--width", "32", "--batch-size", "16",
        "--workers", "0", "--eval-every", "0", "--max-steps", "2", "--quiet"]  # fmt: skip


@dataclass
class Case:
    name: str
    args: list[str]  # {W} = the case's scratch folder, {F} = the shared fixtures
    listed: bool = False  # named in issue 10
    setup: str | None = None  # name of a function below that prepares {W}
    env: dict[str, str] = field(default_factory=dict)


def cases() -> list[Case]:
    d, run = "{F}/data", "{F}/run"
    c = [
        # -- named in the issue ------------------------------------------------------------
        Case(
            "eval on an interrupted synth folder",
            [
                "eval",
                "--weights",
                "{F}/run/model.json",
                "--data",
                "{W}/partial",
                "--workers",
                "0",
                "--quiet",
            ],
            True,
            "partial",
        ),
        Case(
            "export over existing weights (default folder)",
            ["export", "--run", run, "--name", "bot_r18w16_synth", "--quiet"],
            True,
            "shipped_copy",
        ),
        Case(
            "export --name ../x",
            ["export", "--run", run, "--name", "../x", "--folder", "{W}/weights", "--quiet"],
            True,
        ),
        Case(
            "train --resume on other data",
            [
                "train",
                "--out",
                "{W}/run",
                "--data",
                "{F}/other",
                "--epochs",
                "2",
                "--resume",
                *TINY,
            ],
            True,
            "run_copy",
        ),
        Case(
            "train --epochs 0",
            ["train", "--out", "{W}/r", "--data", d, "--epochs", "0", *TINY],
            True,
        ),
        Case(
            "train --height 0",
            ["train", "--out", "{W}/r", "--data", d, "--epochs", "1", *TINY, "--height", "0"],
            True,
        ),
        Case(
            'config "lr": "fast"',
            ["train", "--out", "{W}/r", "--config", "{F}/lr_fast.json", "--data", d, *TINY],
            True,
        ),
        Case(
            "config flip_p=2",
            [
                "train",
                "--out",
                "{W}/r",
                "--config",
                "{F}/flip2.json",
                "--data",
                d,
                "--epochs",
                "1",
                *TINY,
            ],
            True,
        ),
        Case(
            "config pad=-3",
            [
                "train",
                "--out",
                "{W}/r",
                "--config",
                "{F}/pad-3.json",
                "--data",
                d,
                "--epochs",
                "1",
                *TINY,
            ],
            True,
        ),
        Case(
            "--resume a truncated checkpoint",
            ["train", "--out", "{W}/run", "--resume", *TINY],
            True,
            "truncated_ckpt",
        ),
        Case(
            "--resume a garbage checkpoint",
            ["train", "--out", "{W}/run", "--resume", *TINY],
            True,
            "garbage_ckpt",
        ),
        Case(
            "--model-config bad JSON",
            ["train", "--out", "{W}/r", "--data", d, "--model-config", "{width: 8}"],
            True,
        ),
        Case(
            "train --device foo",
            ["train", "--out", "{W}/r", "--data", d, *TINY, "--device", "foo"],
            True,
        ),
        Case(
            "eval --device foo",
            ["eval", "--weights", "{F}/run/model.json", "--data", d, "--device", "foo", "--quiet"],
            True,
        ),
        Case(
            "eval --json unwritable",
            [
                "eval",
                "--weights",
                "{F}/run/model.json",
                "--data",
                d,
                "--json",
                "{F}/afile/m.json",
                "--workers",
                "0",
                "--quiet",
            ],
            True,
        ),
        Case("--resume a missing run folder", ["train", "--out", "{W}/nope", "--resume"], True),
        Case(
            "data with a broken symlink",
            [
                "eval",
                "--weights",
                "{F}/run/model.json",
                "--data",
                "{W}/data",
                "--workers",
                "0",
                "--quiet",
            ],
            True,
            "broken_link",
        ),
        Case(
            "data with 0001.jpg and 0001.png",
            [
                "eval",
                "--weights",
                "{F}/run/model.json",
                "--data",
                "{W}/data",
                "--workers",
                "0",
                "--quiet",
            ],
            True,
            "doubled",
        ),
        Case(
            "a bad gallery image during eval",
            [
                "eval",
                "--weights",
                "{F}/run/model.json",
                "--data",
                "{W}/data",
                "--workers",
                "0",
                "--quiet",
            ],
            True,
            "bad_image",
        ),
        Case(
            "a non-card JSON beside the weights",
            ["eval", "--weights", "nosuch", "--data", d, "--quiet"],
            True,
            "stray_json",
            {"WORKBENCH_WEIGHTS": "{W}/weights"},
        ),
        Case(
            "train on a single identity",
            [
                "train",
                "--out",
                "{W}/r",
                "--data",
                "{W}/one",
                "--epochs",
                "1",
                *TINY,
                "--batch-size",
                "8",
            ],
            True,
            "one_identity",
        ),
        # -- extra -------------------------------------------------------------------------
        Case("synth --out is a file", ["synth", "--out", "{F}/afile", "--ids", "2"]),
        Case(
            "synth --out a foreign folder",
            ["synth", "--out", "{W}/mine", "--ids", "2"],
            setup="foreign_folder",
        ),
        Case("synth --ids 1", ["synth", "--out", "{W}/s", "--ids", "1"]),
        Case("synth --ids abc", ["synth", "--out", "{W}/s", "--ids", "abc"]),
        Case(
            "synth --width 20 --height 100",
            ["synth", "--out", "{W}/s", "--ids", "2", "--height", "100", "--width", "20"],
        ),
        Case("synth --workers 0", ["synth", "--out", "{W}/s", "--ids", "2", "--workers", "0"]),
        Case("synth --seed -5", ["synth", "--out", "{W}/s", "--ids", "2", "--seed", "-5"]),
        Case("synth --out under a file", ["synth", "--out", "{F}/afile/s", "--ids", "2"]),
        Case("train --data missing", ["train", "--out", "{W}/r", "--data", "{W}/nodata", *TINY]),
        Case("train --data is a file", ["train", "--out", "{W}/r", "--data", "{F}/afile", *TINY]),
        Case(
            "train --model nosuch",
            ["train", "--out", "{W}/r", "--data", d, "--model", "nosuch", *TINY],
        ),
        Case("train --config missing", ["train", "--out", "{W}/r", "--config", "{W}/none.json"]),
        Case("train --config not JSON", ["train", "--out", "{W}/r", "--config", "{F}/afile"]),
        Case(
            "train --config a JSON list", ["train", "--out", "{W}/r", "--config", "{F}/list.json"]
        ),
        Case(
            "train --config unknown key",
            ["train", "--out", "{W}/r", "--config", "{F}/unknown_key.json"],
        ),
        Case(
            "train --model-config unknown kwarg",
            ["train", "--out", "{W}/r", "--data", d, *TINY, "--model-config", '{"widht": 8}'],
        ),
        Case(
            "train --model-config a list",
            ["train", "--out", "{W}/r", "--data", d, *TINY, "--model-config", "[8]"],
        ),
        Case(
            "train --batch-size 6",
            ["train", "--out", "{W}/r", "--data", d, *TINY, "--batch-size", "6"],
        ),
        Case(
            "train --workers -1", ["train", "--out", "{W}/r", "--data", d, *TINY, "--workers", "-1"]
        ),
        Case(
            "train --epochs -3", ["train", "--out", "{W}/r", "--data", d, *TINY, "--epochs", "-3"]
        ),
        Case(
            "train into a finished run, no --resume",
            ["train", "--out", "{W}/run", "--data", d, *TINY],
            setup="run_copy",
        ),
        Case(
            "train --device cuda:7",
            ["train", "--out", "{W}/r", "--data", d, *TINY, "--device", "cuda:7"],
        ),
        Case("train --out is a file", ["train", "--out", "{F}/afile", "--data", d, *TINY]),
        Case(
            "eval --weights missing file", ["eval", "--weights", "{W}/m.safetensors", "--data", d]
        ),
        Case(
            "eval --weights card missing keys",
            ["eval", "--weights", "{F}/badcard.json", "--data", d],
        ),
        Case("eval --weights card is a list", ["eval", "--weights", "{F}/list.json", "--data", d]),
        Case(
            "eval --weights corrupted file",
            ["eval", "--weights", "{W}/w/model.json", "--data", d, "--quiet"],
            setup="corrupt_weights",
        ),
        Case(
            "eval --data missing",
            ["eval", "--weights", "{F}/run/model.json", "--data", "{W}/nodata"],
        ),
        Case(
            "eval --data empty folder",
            ["eval", "--weights", "{F}/run/model.json", "--data", "{W}/empty"],
            setup="empty_folder",
        ),
        Case(
            "eval --data bad file names",
            ["eval", "--weights", "{F}/run/model.json", "--data", "{W}/data", "--quiet"],
            setup="bad_names",
        ),
        Case(
            "eval --workers -2",
            ["eval", "--weights", "{F}/run/model.json", "--data", d, "--workers", "-2", "--quiet"],
        ),
        Case(
            "eval --json is a folder",
            [
                "eval",
                "--weights",
                "{F}/run/model.json",
                "--data",
                d,
                "--json",
                "{F}",
                "--workers",
                "0",
                "--quiet",
            ],
        ),
        Case(
            "export --run missing",
            ["export", "--run", "{W}/norun", "--name", "m", "--folder", "{W}/weights"],
        ),
        Case(
            "export --run without weights",
            ["export", "--run", "{W}/run", "--name", "m", "--folder", "{W}/weights", "--quiet"],
            setup="run_without_weights",
        ),
        Case(
            "export --folder is a file",
            ["export", "--run", run, "--name", "m", "--folder", "{F}/afile", "--quiet"],
        ),
        Case(
            "export --name with a slash",
            ["export", "--run", run, "--name", "a/b", "--folder", "{W}/weights", "--quiet"],
        ),
        Case("demo --out is a file", ["demo", "--data", d, "--out", "{F}/afile"]),
        Case("demo --ids 0", ["demo", "--data", "{W}/d", "--out", "{W}/o", "--ids", "0"]),
        Case("unknown sub-command", ["frobnicate"]),
    ]
    return c


# -- fixtures ---------------------------------------------------------------------------------
def build_fixtures(root: Path, fixtures: Path) -> None:
    """Dataset, run and small files shared by the cases (built with ``root``'s code)."""
    if (fixtures / "done").exists():
        return
    fixtures.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m", "workbench.cli"]
    env = {**os.environ, "PYTHONPATH": str(root)}
    run = dict(env=env, check=True, capture_output=True, cwd=fixtures)
    subprocess.run([*py, "synth", "--out", "data", "--ids", "12", "--seed", "1", "--height",
                    "128", "--width", "64", "--workers", "1", "--quiet"], **run)  # fmt: skip
    subprocess.run([*py, "synth", "--out", "other", "--ids", "10", "--seed", "7", "--height",
                    "128", "--width", "64", "--workers", "1", "--quiet"], **run)  # fmt: skip
    # absolute data path: the run's config.json is read from other working folders
    subprocess.run([*py, "train", "--out", "run", "--data", str(fixtures.resolve() / "data"),
                    "--epochs", "1", *TINY], **run)  # fmt: skip
    (fixtures / "afile").write_text("not a folder, not JSON\n")
    (fixtures / "list.json").write_text("[1, 2]\n")
    (fixtures / "badcard.json").write_text('{"name": "x"}\n')
    (fixtures / "unknown_key.json").write_text('{"optim": {"epochz": 3}}\n')
    (fixtures / "lr_fast.json").write_text('{"optim": {"lr": "fast", "epochs": 1}}\n')
    (fixtures / "flip2.json").write_text('{"data": {"flip_p": 2}}\n')
    (fixtures / "pad-3.json").write_text('{"data": {"pad": -3}}\n')
    (fixtures / "done").write_text("")


def _copy_data(f: Path, w: Path, name: str = "data") -> Path:
    dest = w / name
    shutil.copytree(f / "data", dest)
    return dest


def setup_partial(f: Path, w: Path) -> None:
    """What an interrupted `workbench synth` leaves: the manifest, a fraction of the images."""
    dest = _copy_data(f, w, "partial")
    for folder in ("query", "bounding_box_test"):
        for p in sorted((dest / folder).glob("*.jpg"))[3:]:
            p.unlink()
    for p in ("attributes.csv", "market_attribute.mat"):
        (dest / p).unlink()


def setup_shipped_copy(f: Path, w: Path) -> None:
    repo_weights = Path(__file__).resolve().parents[1] / "weights"
    (w / "weights").mkdir()
    for p in repo_weights.glob("bot_r18w16_synth.*"):
        shutil.copy(p, w / "weights")


def setup_run_copy(f: Path, w: Path) -> None:
    shutil.copytree(f / "run", w / "run")


def setup_truncated_ckpt(f: Path, w: Path) -> None:
    setup_run_copy(f, w)
    ckpt = w / "run" / "checkpoint.pt"
    ckpt.write_bytes(ckpt.read_bytes()[:4096])


def setup_garbage_ckpt(f: Path, w: Path) -> None:
    setup_run_copy(f, w)
    (w / "run" / "checkpoint.pt").write_bytes(b"\x80\x04garbage" * 100)


def setup_broken_link(f: Path, w: Path) -> None:
    dest = _copy_data(f, w)
    (dest / "query" / "0999_c1s1_000001_01.jpg").symlink_to(w / "gone.jpg")


def setup_doubled(f: Path, w: Path) -> None:
    dest = _copy_data(f, w)
    first = sorted((dest / "bounding_box_test").glob("*.jpg"))[0]
    shutil.copy(first, first.with_suffix(".png"))


def setup_bad_image(f: Path, w: Path) -> None:
    dest = _copy_data(f, w)
    first = sorted((dest / "bounding_box_test").glob("*.jpg"))[0]
    first.write_bytes(b"not a jpeg")


def setup_stray_json(f: Path, w: Path) -> None:
    (w / "weights").mkdir()
    (w / "weights" / "notes.json").write_text('{"todo": "retrain"}\n')


def setup_one_identity(f: Path, w: Path) -> None:
    dest = _copy_data(f, w, "one")
    (dest / "synth.json").unlink()  # no longer the generated dataset
    train = sorted((dest / "bounding_box_train").glob("*.jpg"))
    pid = train[0].name.split("_")[0]
    for p in train:
        if not p.name.startswith(pid + "_"):
            p.unlink()


def setup_foreign_folder(f: Path, w: Path) -> None:
    (w / "mine").mkdir()
    (w / "mine" / "notes.txt").write_text("mine\n")


def setup_corrupt_weights(f: Path, w: Path) -> None:
    (w / "w").mkdir()
    shutil.copy(f / "run" / "model.json", w / "w")
    (w / "w" / "model.safetensors").write_bytes(b"\0" * 64)


def setup_empty_folder(f: Path, w: Path) -> None:
    (w / "empty").mkdir()


def setup_bad_names(f: Path, w: Path) -> None:
    dest = _copy_data(f, w)
    (dest / "synth.json").unlink()
    first = sorted((dest / "query").glob("*.jpg"))[0]
    first.rename(first.with_name("holiday photo.jpg"))


def setup_run_without_weights(f: Path, w: Path) -> None:
    setup_run_copy(f, w)
    for p in ("model.safetensors", "model.json"):
        (w / "run" / p).unlink()


# -- running ----------------------------------------------------------------------------------
def run_case(case: Case, root: Path, fixtures: Path, scratch: Path, timeout: float) -> tuple:
    w = scratch / case.name.replace(" ", "_").replace("/", "_")
    if w.exists():
        shutil.rmtree(w)
    w.mkdir(parents=True)
    if case.setup:
        globals()[f"setup_{case.setup}"](fixtures, w)

    def fill(s: str) -> str:
        return s.replace("{W}", str(w)).replace("{F}", str(fixtures))

    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONWARNINGS": "default"}
    env.update({k: fill(v) for k, v in case.env.items()})
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "workbench.cli", *map(fill, case.args)],
            capture_output=True, text=True, timeout=timeout, cwd=w, env=env,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return "timeout", None, "", time.perf_counter() - t0
    err = proc.stderr.strip()
    if "Traceback (most recent call last)" in err:
        kind = "traceback"
    elif proc.returncode != 0:
        kind = "message"
    else:
        kind = "accepted"
    last = err.splitlines()[-1] if err else (proc.stdout.strip().splitlines() or [""])[-1]
    return kind, proc.returncode, last, time.perf_counter() - t0


def run_api(roots: list[tuple[str, Path]], work: Path) -> None:
    """The API section (``bad_inputs_api.py``, this checkout's cases) against every root."""
    script = Path(__file__).resolve().with_name("bad_inputs_api.py")
    for name, root in roots:
        env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
        out = subprocess.run([sys.executable, str(script), "--work", str(work / f"api_{name}")],
                             env=env, capture_output=True, text=True)  # fmt: skip
        lines = out.stdout.splitlines()
        for line in lines[:-1]:
            print(f"{name:<7} {line}")
        print(f"{name:<7} {lines[-1] if lines else out.stderr[-500:]}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--root", action="append", required=True, help="NAME=DIR of a checkout")
    ap.add_argument("--work", default="/tmp/bad_inputs", help="fixtures and scratch folders")
    ap.add_argument("--timeout", type=float, default=180)
    ap.add_argument("--only", default=None, help="run the cases whose name contains this")
    ap.add_argument("--json", default=None, help="write every result here")
    ap.add_argument("--api", action="store_true", help="the Python-API section instead of the CLI")
    args = ap.parse_args()
    roots = [(n, Path(d).resolve()) for n, d in (r.split("=", 1) for r in args.root)]
    work = Path(args.work)
    if args.api:
        return run_api(roots, work)
    build_fixtures(roots[0][1], work / "fixtures")
    todo = [c for c in cases() if args.only is None or args.only in c.name]
    results: dict[str, dict[str, tuple]] = {}
    for case in todo:
        results[case.name] = {}
        for name, root in roots:
            res = run_case(case, root, work / "fixtures", work / name, args.timeout)
            results[case.name][name] = res
            tag = "listed" if case.listed else "extra "
            print(f"[{tag}] {case.name:<44} {name:<7} {res[0]:<9} rc={res[1]}  {res[2][:150]}",
                  flush=True)  # fmt: skip
    print()
    for group, wanted in (("listed in issue 10", True), ("extra", False)):
        names = [c.name for c in todo if c.listed == wanted]
        for name, _ in roots:
            counts = Counter(results[n][name][0] for n in names)
            print(f"{group:<20} {name:<7} {len(names)} cases: " +
                  ", ".join(f"{k} {counts[k]}" for k in ("traceback", "message", "accepted",
                                                         "timeout")))  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
