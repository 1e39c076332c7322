"""The pair decomposition: a query and its top-10 from cached maps, and one click's correspondence.

    python benchmarks/bench_pairs.py [--weights bot_r18w16_256] [--repeats 7]

Rows (median seconds, ratios against the baseline measured in the same run):

* ``forward 11 images``: one batched eval forward of the query and its 10 gallery images — the
  baseline (what the rank list would cost without cached maps);
* ``decompose top-10 (cached maps)``: :func:`~workbench.explain.ranklist.explain_ranklist` with
  ``"decomposition"`` on the layer4 maps kept from the ranking (target ≤ 0.2× the forward);
* ``decompose_pair (network)``: the same ten pairs from the images;
* ``one click``: one point's correspondence map from a cached decomposition (target ≤ 20 ms).
The cached and network results are checked equal before timing.
"""

from __future__ import annotations

import argparse

import torch
from bench_explain import timed  # median of repeats after a warm-up


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="bot_r18w16_256")
    ap.add_argument("--repeats", type=int, default=7)
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
