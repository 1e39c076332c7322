"""How well a trained DAAF's training branches do on synthetic query images (Fig. 7-10 numbers).

    PYTHONPATH=. python benchmarks/bench_daaf_branches.py weights/daaf_r18w16_256.safetensors \
        --data /work/main/data/synth [--images 64]

Prints the HAB mask IoU (prediction > 0.5 vs the area-averaged person mask, on the prediction's
grid), the PAB keypoint error (arg-max of each heat map vs the labelled keypoint, in input
pixels, visible keypoints only) and the 1×1-conv shuffle table of Sec. 4.3.4: row i = channel
group i through the shared decoder, column j = group j's 1×1 conv, entry = median arg-max error
of that head's first keypoint. A small diagonal with large off-diagonal entries means the
predicted location follows the feature group, not the head (the paper's Fig. 9 finding).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F

from workbench.data.dataset import ReIDDataset, collate
from workbench.data.readers import load_split
from workbench.data.transforms import build_transforms
from workbench.pretrained import load_pretrained


def _argmax_xy(maps: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., h, w) maps → arg-max pixel centres in input pixels (x, y)."""
    h, w = maps.shape[-2:]
    idx = maps.flatten(-2).argmax(-1)
    return (idx % w + 0.5) * size[1] / w, (idx // w + 0.5) * size[0] / h


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights")
    parser.add_argument("--data", default="data/synth")
    parser.add_argument("--images", type=int, default=64)
    args = parser.parse_args()
    model = load_pretrained(args.weights).eval()
    size = tuple(model.config.input_size)
    split = load_split(args.data)
    ds = ReIDDataset(split.query.iloc[: args.images], build_transforms(*size, train=False))
    batch = collate([ds[i] for i in range(len(ds))])
    with torch.no_grad():
        out = model.branch_outputs(batch["image"])
        table = model.conv_shuffle(out["layer4"])
    target = batch["mask"][:, None].float()
    target = F.interpolate(target, size=out["mask"].shape[-2:], mode="area") > 0.5
    pred = out["mask"] > 0.5
    iou = ((pred & target).sum((1, 2, 3)) / (pred | target).sum((1, 2, 3)).clamp_min(1)).mean()
    kp = batch["keypoints"][:, model.pab.keypoint_order]
    x, y = _argmax_xy(out["keypoints"], size)
    visible = kp[..., 2] > 0
    err = torch.sqrt((x - kp[..., 0]) ** 2 + (y - kp[..., 1]) ** 2)[visible]
    print(f"HAB mask IoU {iou:.3f} ({len(ds)} query images)")
    print(
        f"PAB keypoint arg-max error: median {err.median():.1f} px, "
        f"{(err < 16).float().mean():.1%} within 16 px ({int(visible.sum())} visible keypoints)"
    )
    groups = model.pab.groups
    shuffle = np.zeros((len(groups), len(groups)))
    for i in range(len(groups)):
        for j, group in enumerate(groups):
            k = group[0]
            xx, yy = _argmax_xy(table[i][j][:, 0], size)
            v = batch["keypoints"][:, k, 2] > 0
            d = torch.sqrt(
                (xx - batch["keypoints"][:, k, 0]) ** 2 + (yy - batch["keypoints"][:, k, 1]) ** 2
            )
            shuffle[i, j] = d[v].median()
    print("1x1-conv shuffle, median error (px); rows: feature group, columns: 1x1 conv")
    print(np.round(shuffle, 1))


if __name__ == "__main__":
    main()
