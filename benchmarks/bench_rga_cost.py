"""Per-module parameter and FLOP overhead of RGA-SC (and its ablations) at 256×128.

    PYTHONPATH=. python benchmarks/bench_rga_cost.py [--cpu-only]

Prints one markdown table per configuration (``workbench.models.rga.attention_costs``:
``torch.utils.flop_counter.FlopCounterMode``, FLOPs = 2 × multiply-adds, one image, eval mode).
The numbers are quoted in the docstring of ``workbench/models/rga.py``.
"""

from __future__ import annotations

import argparse

from workbench.models.rga import RGAConfig, attention_costs, format_costs

CPU = {"backbone": "resnet18", "width": 16}
CONFIGS: list[tuple[str, dict]] = [
    ("CPU card: ResNet-18 width 16, att2..att4", {**CPU, "stages": (False, True, True, True)}),
    ("ResNet-18 width 16, all four modules", CPU),
    ("ResNet-50, RGA-SC", {}),
    ("ResNet-50, RGA-S (channel=False)", {"channel": False}),
    ("ResNet-50, RGA-C (spatial=False)", {"spatial": False}),
    ("ResNet-50, RGA-SC w/o Rel. (relations=False)", {"relations": False}),
    ("ResNet-50, CBAM", {"attention": "cbam"}),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-only", action="store_true", help="only the ResNet-18 tables")
    args = parser.parse_args()
    for title, kwargs in CONFIGS:
        if args.cpu_only and kwargs.get("backbone") != "resnet18":
            continue
        config = RGAConfig(num_classes=751, input_size=(256, 128), **kwargs)
        print(f"\n### {title}\n")
        print(format_costs(attention_costs(config)))


if __name__ == "__main__":
    main()
