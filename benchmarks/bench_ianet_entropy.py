"""How sharp are IANet's SIA relation maps? Row entropy against uniform, on real test images.

For each IA block of a trained IANet (a card name, a card/weights path, or a run folder's
``model.safetensors``), on ``--images`` synthetic test images at the card's input size:

* the mean row entropy H of the semantic relation map S (nats) and ``H / log M`` (1 = uniform);
* the perplexity ``exp H`` (the effective number of positions a query aggregates) out of M;
* ``max_j S[p, j] · M`` (1 = uniform), averaged over queries;
* the same for the literal double softmax (``fusion="softmax"``, modules.md §4.4) computed from
  the *same* block inputs, to show how flat it would be.

Run: ``PYTHONPATH=. .venv/bin/python benchmarks/bench_ianet_entropy.py --weights ianet_r18w16_256
--data data/synth``.
"""

from __future__ import annotations

import argparse
import json
import math

import torch

from workbench.evaluate.protocol import make_loader
from workbench.models.ianet import IANet, SpatialRelation, relation_entropy


def sharpness(s: torch.Tensor) -> dict[str, float]:
    m = s.shape[-1]
    h = relation_entropy(s).item()
    return {
        "entropy_nats": round(h, 4),
        "entropy_over_uniform": round(h / math.log(m), 4),
        "perplexity": round(math.exp(h), 2),
        "positions": m,
        "max_times_M": round(float(s.max(-1).values.mean() * m), 3),
    }


def measure(model: IANet, images: torch.Tensor) -> dict[str, dict]:
    inputs: dict[str, torch.Tensor] = {}
    handles = [
        block.register_forward_pre_hook(lambda _m, a, n=name: inputs.__setitem__(n, a[0]))
        for name, block in model.ia_blocks().items()
    ]
    model.eval()
    with torch.no_grad():
        rel = model.relation_maps(images)
        model(images)
    for h in handles:
        h.remove()
    out = {}
    for name, block in model.ia_blocks().items():
        r = block.sia.relation
        literal = SpatialRelation(
            r.channels, r.size, r.sigma, r.contexts, "softmax", r.use_location
        )
        with torch.no_grad():
            flat = literal(inputs[name]).flatten(2)
        n = name[-1]
        out[name] = {
            "semantic (model)": sharpness(rel[f"relation{n}"]),
            "double softmax (same inputs)": sharpness(flat),
        }
        if f"channel{n}" in rel:
            out[name]["cia channel map"] = sharpness(rel[f"channel{n}"])
    return out


def main() -> None:
    from workbench.data.readers import load_split
    from workbench.pretrained import load_pretrained

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", required=True)
    parser.add_argument("--data", default="data/synth")
    parser.add_argument("--images", type=int, default=32)
    args = parser.parse_args()
    model = load_pretrained(args.weights)
    h, w = model.card.get("input_size") or model.config.input_size
    split = load_split(args.data)
    table = split.query.iloc[:: max(1, len(split.query) // args.images)].head(args.images)
    batch = next(iter(make_loader(table, h, w, batch_size=args.images)))
    print(json.dumps(measure(model, batch["image"]), indent=2))


if __name__ == "__main__":
    main()
