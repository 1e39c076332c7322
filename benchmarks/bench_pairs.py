"""The pair decomposition: a query and its top-10 from cached maps, and one click's correspondence.

    python benchmarks/bench_pairs.py [--weights bot_r18w16_256] [--repeats 7]

Rows (median seconds, ratios against the baseline measured in the same run):

* ``forward 11 images``: one batched eval forward of the query and its 10 gallery images — the
  baseline (what the rank list would cost without cached maps);
* ``decompose top-10 (cached maps)``: :func:`~workbench.explain.ranklist.explain_ranklist` with
  ``"decomposition"`` on the layer4 maps kept from the ranking (target ≤ 0.2× the forward);
* ``decompose_pair (network)``: the same ten pairs from the images;
* ``one click``: one point's correspondence map from a cached decomposition (target ≤ 20 ms);
* ``app click (map + render)``: the pair app's whole click (map, overlay, PNG), when ``--data``
  holds a dataset.
The cached and network results are checked equal before timing.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from bench_explain import timed  # median of repeats after a warm-up


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="bot_r18w16_256")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--data", default="data/synth", help="a dataset for the app's click row")
    args = ap.parse_args()

    from workbench.explain.decomposition import decompose_pair
    from workbench.explain.ranklist import explain_ranklist
    from workbench.pretrained import load_pretrained

    model = load_pretrained(args.weights).eval()
    h, w = model.config.input_size
    torch.manual_seed(0)
    images = torch.randn(11, 3, h, w)
    with torch.no_grad():
        maps = model.feature_maps(images)["layer4"].half().float()  # fp16-kept, as the apps do
    cached = explain_ranklist("decomposition", model, None, None, maps=(maps[:1], maps[1:]))
    direct = decompose_pair(model, images[:1], images[1:])
    torch.testing.assert_close(cached.distance, direct.distance, rtol=1e-2, atol=1e-3)
    dec = cached.extras["decomposition"]

    def forward() -> None:
        with torch.no_grad():
            model(images)

    rows = {
        "forward 11 images": timed(forward, args.repeats),
        "decompose top-10 (cached maps)": timed(
            lambda: explain_ranklist("decomposition", model, None, None, maps=(maps[:1], maps[1:])),
            args.repeats,
        ),
        "decompose_pair (network)": timed(
            lambda: decompose_pair(model, images[:1], images[1:]), args.repeats
        ),
        "one click": timed(lambda: dec.correspondence([(0.3, 0.5)])[0, 0].numpy(), 50),
    }
    if args.data and Path(args.data, "synth.json").exists():  # the app: click → new image
        from workbench.data import load_split
        from workbench.widgets import PairExplainer

        split = load_split(args.data)
        app = PairExplainer(model, device="cpu")
        app.set_pair(split.query.iloc[0], split.gallery.iloc[0])
        app.click_point("query", 0.5, 0.5)  # decomposes the pair once (cached)
        points = iter(
            [(0.1 + 0.8 * (i % 97) / 97, 0.25 + 0.5 * (i % 3) / 2) for i in range(10_000)]
        )
        rows["app click (map + render)"] = timed(
            lambda: app.click_point("query", *next(points)), 20
        )
    base = rows["forward 11 images"]
    print(
        f"{args.weights}, {h}×{w}, layer4 {tuple(maps.shape[1:])}, torch threads {torch.get_num_threads()}"
    )
    print(f"{'row':34s} {'median s':>10s} {'× forward':>10s}")
    for name, t in rows.items():
        print(f"{name:34s} {t:10.4f} {t / base:10.3f}")
    click_ms = 1000 * rows["one click"]
    ratio = rows["decompose top-10 (cached maps)"] / base
    print(
        f"top-10 from cached maps: {ratio:.3f}× a forward (target ≤ 0.2); one click {click_ms:.2f} ms (target ≤ 20)"
    )


if __name__ == "__main__":
    main()
