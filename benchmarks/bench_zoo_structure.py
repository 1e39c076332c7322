"""Structural numbers of the SA and IANet models, measured with ``FlopCounterMode``.

1. IANet's FLOP overhead over the same ResNet without IA blocks, at 256×128 with last stride 1,
   one image, eval mode: SIA after layer3 only (the paper's ablation placement, Sec. 4.3 / its
   "~4.06 → ~4.09 multiply-GFLOPs, +0.73 %"), SIA after layer2 + layer3, SIA + CIA after
   layer2 + layer3 (the full IANet). For ResNet-50 width 64 (the paper) and ResNet-18 width 16
   (the CPU card). ``FlopCounterMode`` counts 2 FLOPs per multiply-add of convolutions and
   matrix products; the ratio is what compares with the paper.
2. SA: parameter count of the SA layers (0) — the model with and without SA — and the
   inference FLOPs of SA vs the plain backbone.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_zoo_structure.py`` (~1 minute on 2 cores).
"""

from __future__ import annotations

import json

import torch
from torch.utils.flop_counter import FlopCounterMode

from workbench.evaluate.zoo import inference_flops, inference_parameters
from workbench.models import build_model


def flops(model: torch.nn.Module, size: tuple[int, int]) -> int:
    return inference_flops(model, torch.randn(1, 3, *size))


def backbone_flops(model: torch.nn.Module, size: tuple[int, int]) -> int:
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model.eval().backbone.forward_features(torch.randn(1, 3, *size))
    return int(counter.get_total_flops())


def main() -> None:
    size = (256, 128)
    report: dict[str, dict] = {}
    for name, kw in {
        "resnet50_w64": {"backbone": "resnet50", "width": 64},
        "resnet18_w16": {"backbone": "resnet18", "width": 16},
    }.items():
        common = {**kw, "last_stride": 1, "num_classes": 751, "input_size": size}
        base = build_model("bot", **common)
        f_base = flops(base, size)
        rows = {"bot_GFLOPs": f_base / 1e9}
        for label, ia in {
            "sia_layer3": {"ia_stages": ["layer3"], "use_cia": False},
            "sia_layer2_3": {"ia_stages": ["layer2", "layer3"], "use_cia": False},
            "sia_cia_layer2_3 (IANet)": {"ia_stages": ["layer2", "layer3"], "use_cia": True},
        }.items():
            model = build_model("ianet", **common, **ia)
            f = flops(model, size)
            extra = sum(p.numel() for p in model.parameters()) - sum(
                p.numel() for p in base.parameters()
            )
            rows[label] = {
                "GFLOPs": round(f / 1e9, 4),
                "overhead_%": round(100 * (f - f_base) / f_base, 3),
                "extra_params": extra,
            }
        sa = build_model("sa", **common)
        plain = build_model("sa", **common, sa_stages=[])
        images = torch.randn(1, 3, *size)
        rows["sa"] = {
            "sa_layer_params": sum(
                p.numel()
                for n, m in sa.named_modules()
                if n.endswith(".sa")
                for p in m.parameters()
            ),
            "params_with_sa_minus_without": sum(p.numel() for p in sa.parameters())
            - sum(p.numel() for p in plain.parameters()),
            "params_total": sum(p.numel() for p in sa.parameters()),
            "params_inference": inference_parameters(sa, images),
            "inference_GFLOPs": round(flops(sa, size) / 1e9, 4),
            "backbone_GFLOPs": round(backbone_flops(sa, size) / 1e9, 4),
        }
        report[name] = rows
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
