"""The main job (``make demo`` / ``workbench demo``): data → look at it → shipped baseline → rank list.

1. Render the default synthetic dataset (skipped when an identical one is already there).
2. Print its summary: identities and images per split, attribute frequencies.
3. Write a contact sheet of samples with their part masks and keypoints.
4. Evaluate the shipped BoT baseline on the synthetic test split and print its metrics.
5. Write a rank-list figure: query + top-10 gallery, green/red frames, distances.
6. Make every paper figure whose weights are shipped but the two that rank the whole test split
   with extra models (``DEMO_SKIPS``; ``workbench figures --all`` makes all), printing where they
   are and the command that trains what is missing.
"""

from __future__ import annotations

import time
from pathlib import Path

DEFAULT_BASELINE = "bot_r18w16_synth"
#: left out of the demo to keep it under 3 minutes: each embeds the whole test split with one or
#: two more models (30-45 s each on a 2-core CPU); ``workbench figures NAME`` draws them
DEMO_SKIPS = ("sa_fig6", "faithfulness")
ALL_FIGURES = None  # ``figures=`` value meaning every registered recipe but DEMO_SKIPS


def run_demo(
    data: str | Path = "data/synth",
    out: str | Path = "outputs",
    ids: int | None = None,
    seed: int = 0,
    baseline: str = DEFAULT_BASELINE,
    height: int = 256,
    width: int = 128,
    figures: tuple[str, ...] | None = ALL_FIGURES,
) -> dict:
    """Run the main job; returns what it wrote and measured (paths, metrics, camera gap).

    ``figures``: the paper figures to make (names, as ``workbench figures --list``); by default
    every one but ``DEMO_SKIPS``, none with ``()``. ``make_figures`` checks every name before it
    draws anything.
    """
    import matplotlib

    matplotlib.use("Agg")
    from workbench.data import load_attributes, load_split
    from workbench.data.synth import ensure_synthetic
    from workbench.viz.contact_sheet import contact_sheet

    data, out = Path(data), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"[1/5] synthetic dataset in {data} (seed {seed})")
    _, fresh = ensure_synthetic(data, ids=ids, seed=seed, height=height, width=width)
    print(fresh if fresh is not None else "  already there, identical: reused")

    split = load_split(data)
    print(f"\n[2/5] {split}")
    print(split.summary().to_string())
    attrs = load_attributes(data, split="train")
    freq = attrs.drop(columns=["age"]).mean().sort_values(ascending=False)
    print("\nattribute frequencies (train identities):")
    print("  " + "  ".join(f"{k} {v:.2f}" for k, v in freq.items()))

    sheet = out / "contact_sheet.png"
    contact_sheet(data, out=sheet)
    print(f"\n[3/5] contact sheet of samples with masks and keypoints: {sheet}")

    report: dict = {"data": str(data), "contact_sheet": str(sheet)}
    report.update(_evaluate_baseline(split, baseline, out))
    if figures != ():
        report["figures"] = _paper_figures(split, figures, out / "figures")
    return report


def _paper_figures(split, names: tuple[str, ...] | None, out: Path) -> dict:
    from workbench.viz.figures import list_figures, make_figures

    if names is None:
        names = tuple(r.name for r in list_figures() if r.name not in DEMO_SKIPS)
    print(f"\n[5/5] paper figures ({', '.join(names)}) → {out}")
    t0 = time.perf_counter()
    made = make_figures(names, split, out, progress=False, log=lambda line: print("  " + line))
    print(
        f"  {len(made)} figure(s) in {time.perf_counter() - t0:.0f} s (PDF + PNG); also: "
        f"workbench figures {' '.join(DEMO_SKIPS)} --data {split.root} --out {out}"
    )
    return {name: [str(p) for p in paths] for name, paths in made.items()}


def _evaluate_baseline(split, baseline: str, out: Path) -> dict:
    from workbench.evaluate import format_metrics
    from workbench.evaluate.protocol import evaluate_model
    from workbench.pretrained import list_pretrained, load_pretrained
    from workbench.viz.ranklist import choose_queries, plot_ranklist

    if baseline not in [c["name"] for c in list_pretrained()]:
        print(f"\n[4/5] no shipped weights named {baseline!r}; skipping evaluation")
        return {}
    model = load_pretrained(baseline)
    height, width = model.card["input_size"]
    t0 = time.perf_counter()
    result = evaluate_model(model, split, height, width, progress=False)
    seconds = time.perf_counter() - t0
    gap = result.camera_gap()
    print(f"\n[4/5] shipped baseline {baseline} on the synthetic test split ({seconds:.1f} s):")
    print(format_metrics(result.metrics))
    print(
        f"same-camera rank-1 {gap['rank1_same_camera']:.1f} %, cross-camera rank-1 "
        f"{gap['rank1_cross_camera']:.1f} % (gap {gap['gap']:.1f} points)"
    )
    card = model.card.get("metrics", {})
    if card:
        print(f"model card: rank-1 {card['rank1']:.1f} %, mAP {card['mAP']:.1f} %")
    figure = out / "ranklist.png"
    queries = choose_queries(result.metrics.get("ap"), 6, order="random", seed=1)
    plot_ranklist(
        result.distmat, result.query, result.gallery, queries, topk=10, out=figure,
        title=f"{baseline}: query and top-10 gallery (green = same identity)",
        metric=result.extra["metric"],
    )  # fmt: skip
    print(f"rank-list figure: {figure}")
    return {"metrics": result.summary(), "camera_gap": gap, "ranklist": str(figure)}
