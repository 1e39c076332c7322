"""Run by tests/train/test_distributed.py under torchrun: a few DDP steps, then dump parameters."""

from __future__ import annotations

import os
import sys

import torch

from workbench.train.config import TrainConfig, apply_overrides
from workbench.train.trainer import Trainer

root, out = sys.argv[1], sys.argv[2]
config = apply_overrides(
    TrainConfig(model_config={"backbone": "resnet18", "width": 8}, seed=5, eval_every=0),
    {
        "device": "cpu",
        "data.root": root,
        "data.height": 64,
        "data.width": 32,
        "data.batch_size": 8,
        "data.workers": 0,
        "optim.epochs": 1,
        "optim.warmup_epochs": 0,
        "max_steps_per_epoch": 3,
    },
)
trainer = Trainer(config, out, progress=False)
initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
trainer.fit()
rank = int(os.environ["RANK"])
torch.save(
    {"final": trainer.model.state_dict(), "initial": initial, "world": trainer.env.world_size},
    f"{out}/rank{rank}.pt",
)
