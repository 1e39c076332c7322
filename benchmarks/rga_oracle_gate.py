"""Is a person-focused attention4 worth anything to RGA-SC's losses? Train it with the answer.

    python benchmarks/rga_oracle_gate.py --out runs/rga_oracle_gate [--background 0.25] [--resume]

RGA-SC's learned attention4 stays at chance on the person (docs/pretraining.md). This trains
``rga_r18w16_256_pt_parts``'s recipe (from ``pretrain_r18w16_parts256``, lr 8e-4, 20 epochs) with
module 4's *spatial gate replaced by the ground truth*: ``share + (1 - share) · background`` in
every layer4 cell, ``share`` = the person's share of the cell in the part mask, during training
and at test (the masks of the test images). If the identity and triplet losses rewarded
attention on the person at layer4, this model would rank better than the learned one; if it
ranks the same, the losses are indifferent to where that gate sits, and a module trained on them
has no reason to find the person there. Prints rank-1 / mAP / mINP with the oracle gate at test
and, for comparison, with the learned module put back (its weights were never trained: the
gate's output was replaced, so that row shows what the rest of the network relies on).

An experiment, not a model of the zoo: the gate needs the test image's mask.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from workbench.models.registry import register_model
from workbench.models.rga import RGA, RGAConfig
from workbench.train.config import TrainConfig
from workbench.train.trainer import Trainer

RECIPE = Path(__file__).resolve().parents[1] / "weights" / "rga_r18w16_256_pt_parts.json"


@dataclasses.dataclass
class OracleGateConfig(RGAConfig):
    background: float = 0.25  # the gate on a background cell, 1 on a person cell


@register_model("rga_oracle_gate")
class OracleGateRGA(RGA):
    """RGA-SC whose attention4 spatial gate is the person mask given to :meth:`use_masks`."""

    config_class = OracleGateConfig
    train_fields = ("parts",)  # the training set loads the masks

    def __init__(self, config: OracleGateConfig) -> None:
        super().__init__(config)
        self.masks: torch.Tensor | None = None  # (B, H, W) part labels of the current batch
        self.oracle = True
        self.att4.spatial_map.register_forward_hook(self._gate)

    def use_masks(self, parts: torch.Tensor) -> None:
        self.masks = parts

    def _gate(self, module, inputs, out: torch.Tensor) -> torch.Tensor:
        if not self.oracle:
            return out
        if self.masks is None or self.masks.shape[0] != out.shape[0]:
            raise RuntimeError("the oracle gate needs the batch's part masks (use_masks)")
        person = (self.masks > 0).float()[:, None].to(out.device)
        share = F.adaptive_avg_pool2d(person, out.shape[-2:])
        return (share + (1 - share) * self.config.background).to(out.dtype)


class _MaskFeed:
    """The training loader, handing each batch's masks to the model before it runs."""

    def __init__(self, loader, model: OracleGateRGA) -> None:
        self.loader, self.model = loader, model

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        for batch in self.loader:
            self.model.use_masks(batch["parts"])
            yield batch


class OracleTrainer(Trainer):
    def _loader(self, epoch: int):
        return _MaskFeed(super()._loader(epoch), self.model)

    def evaluate(self, *args, **kwargs):  # the built-in evaluation has no masks: see below
        return {}


def rank_with_masks(model: OracleGateRGA, root: str, oracle: bool) -> dict[str, float]:
    from workbench.data.dataset import ReIDDataset, collate
    from workbench.data.readers import load_split
    from workbench.data.transforms import build_transforms
    from workbench.evaluate.ranking import evaluate_ranking

    split = load_split(root)
    h, w = model.config.input_size
    model.eval().float().cpu()
    model.oracle = oracle

    def embed(table):
        data = ReIDDataset(table, build_transforms(h, w, train=False))
        out = []
        for start in range(0, len(data), 128):
            b = collate([data[i] for i in range(start, min(len(data), start + 128))])
            model.use_masks(b["parts"])
            with torch.no_grad():
                out.append(model(b["image"]))
        return F.normalize(torch.cat(out), dim=1)

    q, g = embed(split.query), embed(split.gallery)
    m = evaluate_ranking(
        (1 - q @ g.T).numpy(), split.query.pid.to_numpy(), split.gallery.pid.to_numpy(),
        split.query.camid.to_numpy(), split.gallery.camid.to_numpy(),
    )  # fmt: skip
    return {"rank1": 100 * m["cmc"][0], "mAP": 100 * m["mAP"], "mINP": 100 * m["mINP"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--background", type=float, default=0.25)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args()
    if args.resume:
        config = TrainConfig.load(Path(args.out) / "config.json")
    else:
        recipe = json.loads(RECIPE.read_text())["train_config"]
        recipe["model"] = "rga_oracle_gate"
        recipe["model_config"]["background"] = args.background
        config = TrainConfig.from_dict(recipe)
    trainer = OracleTrainer(config, args.out, resume=args.resume)
    trainer.fit()
    model = trainer.model
    for oracle in (True, False):
        scores = rank_with_masks(model, config.data.root, oracle)
        what = "oracle gate" if oracle else "learned module (untrained)"
        print(f"{what:28s} " + "  ".join(f"{k} {v:.1f}" for k, v in scores.items()))


if __name__ == "__main__":
    main()
