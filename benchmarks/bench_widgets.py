"""Widget latency on CPU, one run: switching query, opening a new pair, revisiting a cached one.

    python benchmarks/bench_widgets.py [--weights bot_r18w16_256] [--data data/synth] [--n 20]

Drives a :class:`~workbench.widgets.RankingBrowser` exactly as the browser does (``.value`` and
``.click()``) on the synthetic test split and times each callback end to end (images read, maps
computed, PNG/JPEG bytes set on the widgets). Targets: switching query ≤ 150 ms (also with the
heat maps of the whole list on), a new pair explanation ≤ 1 s, a cached one ≤ 50 ms. Printed as
times and as ratios to the targets (≤ 1 meets it). Uses the shipped weights when they exist, else
a randomly initialised model of the same architecture and input size (latency does not depend
on the weights; the output says which).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def _time(fn, n: int = 1) -> float:
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="bot_r18w16_256")
    ap.add_argument("--data", default="data/synth")
    ap.add_argument("--n", type=int, default=20, help="queries / pairs timed per measurement")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import ipywidgets  # noqa: F401  (the apps need it; fail early)

    from workbench.data import load_split
    from workbench.data.synth import ensure_synthetic
    from workbench.models import BoTConfig, build_model
    from workbench.pretrained import list_pretrained, load_pretrained
    from workbench.widgets import RankingBrowser
    from workbench.widgets._cache import nbytes

    if args.weights in [c["name"] for c in list_pretrained()]:
        model, which = load_pretrained(args.weights), f"shipped {args.weights}"
    else:
        torch.manual_seed(0)
        config = BoTConfig(backbone="resnet18", width=16, num_classes=250, input_size=(256, 128))
        model, which = (
            build_model("bot", config),
            "random-init BoT R18 w16 (no shipped 256x128 weights)",
        )
    model.eval()
    root, _ = ensure_synthetic(args.data, progress=False)
    split = load_split(root)

    t = time.perf_counter()
    browser = RankingBrowser(model, split, topk=10, device="cpu")
    build = time.perf_counter() - t
    rng = np.random.default_rng(0)
    queries = rng.choice(len(browser.data.query), 2 * args.n + 1, replace=False)

    def switch(qs):
        times = []
        for q in qs:
            t0 = time.perf_counter()
            browser.index.value = int(q)
            times.append(time.perf_counter() - t0)
        return times

    switch_plain = switch(queries[: args.n])
    browser.heat.value = True
    switch_heat = switch(queries[args.n : 2 * args.n])
    browser.heat.value = False

    ex = browser.explainer
    new_pair, revisit = [], []
    for q in queries[: args.n]:
        browser.index.value = int(q)
        for rank in (4, 7):  # pairs the browser has not opened yet
            t0 = time.perf_counter()
            browser.tile_buttons[rank].click()
            new_pair.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        browser.tile_buttons[4].click()  # back to the first one: from the cache
        revisit.append(time.perf_counter() - t0)
    assert ex.error is None, ex.error

    other = {}
    for i, method in enumerate(("daaf_holistic", "captum")):
        ex.method.value = method  # (re-explains the pair on screen with it)
        browser.index.value = int(queries[2 * args.n - 1 - i])  # a query not opened before
        other[method] = _time(lambda: browser.tile_buttons[9].click())
        assert ex.error is None and ex.explanation.query.method == method, ex.error
    ex.method.value = "gradcam"

    def row(name, times, target):
        med = statistics.median(times)
        print(
            f"{name:<38} median {1e3 * med:7.1f} ms  p90 {1e3 * np.percentile(times, 90):7.1f} ms"
            f"  target {1e3 * target:5.0f} ms  ratio {med / target:5.2f}"
        )

    h, w = browser.size
    print(
        f"model: {which}, input {h}x{w}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M params"
    )
    print(
        f"split: {len(browser.data.query)} queries x {len(browser.data.gallery)} gallery, {args.threads} threads"
    )
    print(f"building the browser (feature extraction of both tables, progress bar): {build:.1f} s")
    row("switch query (top-10, no heat maps)", switch_plain, 0.150)
    row("switch query (top-10 + 11 Grad-CAM maps)", switch_heat, 0.150)
    row("open a new pair (Grad-CAM)", new_pair, 1.0)
    row("revisit a cached pair", revisit, 0.050)
    for method, seconds in other.items():
        name = f"open a new pair ({method})"
        print(f"{name:<38} {1e3 * seconds:7.1f} ms (no target; captum = IntegratedGradients)")
    for name, cache in (("explainer", ex.cache), ("list heat maps", browser.list_cache),
                        ("feature maps", browser.features), ("images", browser.images.cache)):  # fmt: skip
        print(f"cache {name:<15} {cache}")
    d = browser.data
    if d.gallery_maps is not None:
        kept = (nbytes(d.query_maps) + nbytes(d.gallery_maps)) / 2**20
        print(
            f"kept {d.maps_layer} maps of the split (fp16, {tuple(d.gallery_maps.shape[1:])} each): "
            f"{kept:.1f} MiB of the {browser.map_bytes / 2**20:.0f} MiB budget (map_bytes)"
        )
    print(
        "caches are LRU bounded by bytes (tensor/array/bytes sizes summed; least recently used "
        "dropped first past the bound)"
    )


if __name__ == "__main__":
    main()
