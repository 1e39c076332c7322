"""Explaining a query and its top-10 on both sides, against baselines measured in the same run.

    python benchmarks/bench_explain.py [--backbone resnet18 --width 16] [--repeats 5]

Input 256×128 (a 16×8 layer4 map), one query + 10 gallery images. Rows (median seconds):

* ``forward+backward``: one batched forward of the 11 images and ``.backward()`` of a scalar —
  what any gradient method costs at least (baseline of the ≤ 1.3× target);
* ``explain_pair autograd``: Grad-CAM of the 10 pairs, both sides, general path (``fast=False``);
* ``explain_pair fast``: the same with the pooled-layer closed form (target ≥ 10× autograd);
* ``pair_gradcam cached``: the closed form on cached layer4 maps (a rank-list toggle);
* ``captum per pair``: captum ``LayerGradCam`` called once per pair and side, 20 calls (target:
  the workbench ≥ 5× faster).
The maps of every row are checked against each other before timing.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backbone", default="resnet18")
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--layer", default="layer4")
    ap.add_argument("--topk", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from captum.attr import LayerGradCam

    from workbench.explain import explain_pair
    from workbench.explain.gradcam import pair_gradcam, pooled_head
    from workbench.explain.targets import EmbeddingSimilarity
    from workbench.models import build_model, get_layer

    torch.manual_seed(0)
    model = build_model(
        "bot", backbone=args.backbone, width=args.width, num_classes=500, input_size=(256, 128)
    ).eval()
    images = torch.randn(1 + args.topk, 3, 256, 128)
    query, gallery = images[:1], images[1:]
    layer = get_layer(model, args.layer)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        model(images).pow(2).sum().backward()

    def autograd_path():
        return explain_pair("gradcam", model, query, gallery, layer=args.layer, fast=False)

    def fast_path():
        return explain_pair("gradcam", model, query, gallery, layer=args.layer)

    with torch.no_grad():
        cached = model.feature_maps(images)["layer4"]
    head = pooled_head(model)[1]

    def cached_path():
        return pair_gradcam(head, cached[:1], cached[1:], model.ranking_metric)

    emb = model(images).detach()

    def captum_path():
        q_maps, g_maps = [], []
        for i in range(args.topk):
            for side, partner, out in (
                (query, emb[1 + i], q_maps),
                (gallery[i : i + 1], emb[0], g_maps),
            ):
                target = EmbeddingSimilarity(partner)
                cam = LayerGradCam(lambda x, t=target: t(model(x), model), layer)
                out.append(cam.attribute(side, relu_attributions=False)[:, 0])
        return torch.cat(q_maps), torch.cat(g_maps)

    reference = autograd_path()
    fast = fast_path()
    q_c, g_c = captum_path()
    for name, q, g in (
        ("fast", fast.query.maps, fast.gallery.maps),
        ("captum", q_c, g_c),
    ):
        torch.testing.assert_close(q, reference.query.maps, rtol=1e-3, atol=1e-5, msg=name)
        torch.testing.assert_close(g, reference.gallery.maps, rtol=1e-3, atol=1e-5, msg=name)

    print(
        f"BoT {args.backbone} width {args.width}, 256×128, layer {args.layer}, 1 query + "
        f"{args.topk} gallery, torch threads {torch.get_num_threads()}, median of {args.repeats}"
    )
    base = timed(forward_backward, args.repeats)
    rows = [("forward+backward (11 images)", base)]
    slow = timed(autograd_path, args.repeats)
    rows.append(("explain_pair autograd", slow))
    quick = timed(fast_path, args.repeats) if args.layer == "layer4" else float("nan")
    rows.append(("explain_pair fast", quick))
    cached_t = timed(cached_path, args.repeats)
    rows.append(("pair_gradcam cached", cached_t))
    cap = timed(captum_path, max(1, args.repeats // 2))
    rows.append(("captum LayerGradCam per pair", cap))
    for name, t in rows:
        print(f"  {name:32s} {t * 1000:8.1f} ms   {t / base:6.2f}× forward+backward")
    print(f"autograd path vs forward+backward: {slow / base:.2f}× (target ≤ 1.3×)")
    print(
        f"fast path vs autograd path:        {slow / quick:.1f}× faster (both embed the 11 images)"
    )
    print(f"cached fast path vs autograd path: {slow / cached_t:.0f}× faster (target ≥ 10×)")
    print(f"workbench (autograd) vs captum:    {cap / slow:.1f}× faster (target ≥ 5×)")
    print(f"workbench (fast) vs captum:        {cap / quick:.1f}× faster")


if __name__ == "__main__":
    main()
