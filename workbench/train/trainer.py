"""Training loop for every registered model: BoT recipe, resumable, single process or torchrun/DDP.

``workbench train --model bot --data DIR --out RUN [--config FILE] [--resume]``

What the run folder holds:
    RUN/config.json        the full TrainConfig (also inside every checkpoint)
    RUN/checkpoint.pt      last completed epoch: model, optimisers, scheduler (atomic write)
    RUN/log.jsonl          one line per epoch: losses, lr, seconds, metrics when evaluated
    RUN/model.safetensors  final weights (+ RUN/model.json with config and metrics)

Reproducibility: every epoch reseeds torch / numpy / python RNGs from ``(seed, epoch)`` and the
identity sampler is reseeded by ``set_epoch``, so a run resumed from any epoch boundary follows
the same trajectory as an uninterrupted one (bit-identical on CPU).
"""

from __future__ import annotations

import json
import math
import random
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from workbench.device import resolve_device
from workbench.train.checkpoint import CHECKPOINT_NAME, atomic_save, load_checkpoint
from workbench.train.config import TrainConfig
from workbench.train.distributed import (
    DistEnv,
    all_reduce_mean,
    barrier,
    broadcast_buffers,
    init_distributed,
)
from workbench.train.lock import RunLock


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint (if any) is left untouched."""


class ResumeMismatchError(ValueError):
    """``--resume`` with data, model or input size other than the checkpoint's; names each."""


class EvaluationFailed(RuntimeError):
    """The periodic evaluation failed; the epoch it followed is already saved."""


@dataclass
class EpochStats:
    epoch: int
    loss: float
    id_loss: float
    triplet_loss: float
    center_loss: float
    accuracy: float
    lr: float
    seconds: float
    images_per_second: float
    extra: dict[str, float] = field(default_factory=dict)  # model.extra_losses terms, by name


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (third-party code may use the legacy RNG)
    torch.manual_seed(seed)


def lr_factor(epoch: int, warmup_epochs: int, milestones: tuple[int, ...], gamma: float) -> float:
    """BoT's per-epoch schedule: linear warm-up from 1 % to 100 %, then step decay."""
    if epoch < warmup_epochs:
        return 0.01 + 0.99 * epoch / warmup_epochs
    return gamma ** sum(epoch >= m for m in milestones)


class Trainer:
    """Builds data, model, losses and optimisers from a :class:`TrainConfig` and runs them."""

    def __init__(
        self,
        config: TrainConfig,
        out: str | Path,
        resume: bool = False,
        progress: bool = True,
    ) -> None:
        from workbench.data.readers import load_split
        from workbench.data.split import relabel

        self.config = config
        self.out = Path(out)
        self.progress = progress
        self.device = resolve_device(config.device)
        self.env: DistEnv = init_distributed(self.device.type)
        if self.env.enabled and self.device.type == "cuda":
            self.device = torch.device("cuda", self.env.local_rank)
        self.use_amp = config.amp and self.device.type == "cuda"
        self.channels_last = config.channels_last and self.device.type == "cuda"

        # one process per run folder (the second is told who holds it), before anything is read
        self.lock = RunLock(self.out, "workbench train")
        if self.env.is_main and (self.out.is_dir() or not resume):  # a missing run: said below
            self.lock.acquire()
        # a resumed run is checked before any data is read: a wrong --out fails at once
        ckpt = load_checkpoint(self.out) if resume else None
        if ckpt is not None:
            _check_same_run(self.out, ckpt["config"], config)
        seed_everything(config.seed)
        self.split = load_split(config.data.root)
        _, self.pid_to_label = relabel(self.split.train.pid)
        self.num_classes = len(self.pid_to_label)
        self.train_pids = np.asarray(self.split.train.pid)
        if ckpt is not None:
            _check_same_identities(self.out, ckpt, self.pid_to_label, config.data.root)
        if self.num_classes < 2:
            raise ValueError(
                f"{config.data.root}: the training split holds {self.num_classes} identity; "
                f"ReID training needs at least 2 (with one, every loss is 0 and nothing is "
                f"learnt); use a dataset with more identities"
            )

        self.init_record: dict[str, Any] | None = None
        self.model = self._build_model(initialise=ckpt is None).to(self.device)
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self._build_losses()
        self._build_optimisers()
        self.start_epoch = 0
        self.history: list[dict[str, Any]] = []
        if ckpt is not None:
            self._resume(ckpt)
        elif self.env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            if (self.out / CHECKPOINT_NAME).exists():
                raise FileExistsError(
                    f"{self.out} already holds a checkpoint; pass --resume to continue it "
                    f"or choose another --out"
                )
            config.save(self.out / "config.json")
            (self.out / "log.jsonl").write_text("")
        self.ddp_model: nn.Module = self.model
        if self.env.enabled:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.ddp_model = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    # -- construction -----------------------------------------------------------------------
    def _build_model(self, initialise: bool = True) -> nn.Module:
        """The model; with ``config.init`` (and ``initialise``: not when resuming) its backbone
        starts from those weights, loaded at construction (``pretrain.prepare_init``)."""
        from workbench.pretrained import build_model_with_target

        # the number of classes always comes from the data, the input size from the transforms
        dc = self.config.data
        kwargs = {
            **self.config.model_config,
            "num_classes": self.num_classes,
            "input_size": (dc.height, dc.width),
        }
        if self.config.init is None or not initialise:
            return build_model_with_target(self.config.model, **kwargs)
        from workbench.train.pretrain import INIT_FILE, prepare_init

        if self.env.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            _, self.init_record = prepare_init(
                self.config.init, self.config.model, kwargs, self.out
            )
        barrier(self.env)
        model = build_model_with_target(
            self.config.model, **{**kwargs, "pretrained": str(self.out / INIT_FILE)}
        )
        model.config.pretrained = None  # the run's file; the card records config.init instead
        return model

    def _build_losses(self) -> None:
        from workbench.train.losses import CenterLoss, CrossEntropyLabelSmooth, TripletLoss

        lc = self.config.loss
        self.id_loss = CrossEntropyLabelSmooth(self.num_classes, epsilon=lc.label_smoothing)
        self.triplet = TripletLoss(margin=lc.triplet_margin, normalize=lc.triplet_normalize)
        self.center: CenterLoss | None = None
        if lc.center_weight > 0:
            dim = self.model.feature_dim  # type: ignore[attr-defined]
            self.center = CenterLoss(self.num_classes, dim).to(self.device)

    def _build_optimisers(self) -> None:
        oc = self.config.optim
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=oc.lr, weight_decay=oc.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda e: lr_factor(e, oc.warmup_epochs, tuple(oc.milestones), oc.gamma),
        )
        self.center_optimizer = (
            self.center.make_optimizer(lr=self.config.loss.center_lr) if self.center else None
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)

    def _loader(self, epoch: int) -> DataLoader:
        from workbench.data.dataset import ReIDDataset, collate
        from workbench.data.sampler import DistributedIdentitySampler, RandomIdentitySampler
        from workbench.data.transforms import build_transforms, seed_transforms, worker_init_fn

        dc = self.config.data
        if not hasattr(self, "_dataset"):
            transform = build_transforms(
                dc.height,
                dc.width,
                train=True,
                flip_p=dc.flip_p,
                pad=dc.pad,
                erasing_p=dc.erasing_p,
            )
            fields = set(getattr(self.model, "train_fields", ()))
            attributes = None
            if "attributes" in fields:  # Lin et al.'s .mat (Market, Duke; the synthetic data)
                from workbench.data.attributes import split_attributes

                attributes = split_attributes(dc.root, self.split.train, "train")
            self._dataset = ReIDDataset(
                self.split.train,
                transform,
                attributes=attributes,
                pid_to_label=self.pid_to_label,
                load_masks=bool({"mask", "parts"} & fields),
            )
            if "keypoints" not in fields:
                self._dataset.keypoints = None
            per_rank = dc.batch_size
            if self.env.enabled:
                self._sampler = DistributedIdentitySampler(
                    self.train_pids,
                    per_rank,
                    dc.num_instances,
                    num_replicas=self.env.world_size,
                    rank=self.env.rank,
                    seed=self.config.seed,
                )
            else:
                self._sampler = RandomIdentitySampler(
                    self.train_pids, per_rank, dc.num_instances, seed=self.config.seed
                )
        self._sampler.set_epoch(epoch)
        # augmentation RNG: per epoch in this process (workers=0); workers reseed from `gen`
        seed_transforms(
            self._dataset.transform, hash((self.config.seed, epoch, self.env.rank)) & 0xFFFFFFFF
        )
        gen = torch.Generator().manual_seed(
            self.config.seed * 100_003 + epoch * 1009 + self.env.rank
        )
        return DataLoader(
            self._dataset,
            batch_sampler=self._sampler,
            num_workers=dc.workers,
            collate_fn=collate,
            worker_init_fn=worker_init_fn,
            generator=gen,
            pin_memory=self.device.type == "cuda",
        )

    # -- checkpoints --------------------------------------------------------------------------
    def _state(self, epoch: int) -> dict[str, Any]:
        state: dict[str, Any] = {
            "epoch": epoch,  # completed epochs
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "config": self.config.to_dict(),
            "pid_to_label": {int(k): int(v) for k, v in self.pid_to_label.items()},
            "history": self.history,
        }
        if self.init_record is not None:
            state["init"] = self.init_record
        if self.center is not None:
            state["center"] = self.center.state_dict()
            state["center_optimizer"] = self.center_optimizer.state_dict()  # type: ignore[union-attr]
        return state

    def _resume(self, ckpt: dict[str, Any]) -> None:
        from workbench.models.registry import load_checkpoint_state

        load_checkpoint_state(self.model, ckpt["model"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        if self.center is not None and "center" in ckpt:
            self.center.load_state_dict(ckpt["center"])
            self.center_optimizer.load_state_dict(ckpt["center_optimizer"])  # type: ignore[union-attr]
        self.start_epoch = int(ckpt["epoch"])
        self.history = list(ckpt.get("history", []))
        self.init_record = ckpt.get("init")
        # the schedule comes from this run's config (it may extend the epochs): recompute the lr
        oc = self.config.optim
        factor = lr_factor(self.start_epoch, oc.warmup_epochs, tuple(oc.milestones), oc.gamma)
        for group, base in zip(self.optimizer.param_groups, self.scheduler.base_lrs, strict=True):
            group["lr"] = base * factor

    # -- training -----------------------------------------------------------------------------
    def _autocast(self):
        if not self.use_amp:
            return nullcontext()
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)

    def train_epoch(self, epoch: int) -> EpochStats:
        from tqdm.auto import tqdm

        seed_everything(self.config.seed * 1000 + epoch)
        self.model.train()
        loader = self._loader(epoch)
        total = len(loader)
        if self.config.max_steps_per_epoch:
            total = min(total, self.config.max_steps_per_epoch)
        sums = torch.zeros(5, dtype=torch.float64)  # loss, id, triplet, center, accuracy
        extra_sums: dict[str, Tensor] = {}  # model.extra_losses terms
        seen, t0 = 0, time.perf_counter()
        lr = self.optimizer.param_groups[0]["lr"]
        bar = tqdm(
            total=total,
            desc=f"epoch {epoch + 1}/{self.config.optim.epochs}",
            disable=not (self.progress and self.env.is_main),
            leave=False,
            dynamic_ncols=True,
        )
        for step, batch in enumerate(loader):
            if step >= total:
                break
            images = batch["image"].to(self.device, non_blocking=True)
            labels = torch.as_tensor(batch["label"]).to(self.device, non_blocking=True)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                out = self.ddp_model(images)
            logits, feats = out["logits"].float(), out["features"].float()
            if getattr(self.model, "reid_losses", True):
                id_loss = self.id_loss(logits, labels)
                tri_loss = self.triplet(feats, labels)
                if isinstance(tri_loss, tuple):
                    tri_loss = tri_loss[0]
                loss = id_loss + self.config.loss.triplet_weight * tri_loss
            else:  # the model trains on its own losses only (e.g. the AAM interpreter)
                id_loss = tri_loss = loss = torch.zeros((), device=self.device)
            extra = self._extra_losses(out, batch, images, labels)
            for term in extra.values():
                loss = loss + term
            center_loss = torch.zeros((), device=self.device)
            if self.center is not None:
                center_loss = self.center(feats, labels)
                loss = loss + self.config.loss.center_weight * center_loss
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1} "
                    f"(id {id_loss.item():.4g}, triplet {tri_loss.item():.4g}, "
                    f"center {center_loss.item():.4g}); {self._on_disk(epoch)}"
                )
            self.optimizer.zero_grad(set_to_none=True)
            if self.center_optimizer is not None:
                self.center_optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            if self.center is not None:
                # BoT: undo the loss weight on the centers' gradient, then a plain SGD step
                self.scaler.unscale_(self.center_optimizer)
                self.center.rescale_center_grad(self.config.loss.center_weight)
                grad = self.center.centers.grad
                if self.env.enabled and grad is not None:  # centers live outside DDP
                    grad.copy_(all_reduce_mean(grad, self.env))
                self.scaler.step(self.center_optimizer)
            self.scaler.update()
            acc = (logits.argmax(1) == labels).float().mean()
            sums += torch.stack([loss, id_loss, tri_loss, center_loss, acc]).detach().double().cpu()
            for name, term in extra.items():
                extra_sums[name] = extra_sums.get(name, 0.0) + term.detach().double().cpu()
            seen += images.shape[0]
            bar.update()
            if step % 5 == 0:
                rate = seen / max(time.perf_counter() - t0, 1e-9)
                bar.set_postfix(
                    loss=f"{sums[0].item() / (step + 1):.3f}",
                    acc=f"{sums[4].item() / (step + 1):.2f}",
                    img_s=f"{rate:.0f}",
                )
        bar.close()
        steps = max(min(total, step + 1) if total else 0, 1)
        names = sorted(extra_sums)
        packed = torch.cat([sums, torch.stack([extra_sums[n] for n in names])]) if names else sums
        means = all_reduce_mean((packed / steps).to(self.device), self.env).cpu().tolist()
        secs = time.perf_counter() - t0
        return EpochStats(
            epoch + 1,
            *means[:5],
            lr=lr,
            seconds=secs,
            images_per_second=seen * self.env.world_size / max(secs, 1e-9),
            extra=dict(zip(names, means[5:], strict=True)),
        )

    def _on_disk(self, epoch: int) -> str:
        """What a run stopped during ``epoch`` (0-based) leaves, and how to go on from it."""
        path = self.out / CHECKPOINT_NAME
        if epoch > 0 and path.exists():
            return (
                f"{path} holds the {epoch} completed epoch(s) before it, untouched; lower "
                f"optim.lr (or disable amp) and --resume"
            )
        return (
            "no checkpoint was written yet (it stopped in the first epoch), so there is "
            "nothing to resume; lower optim.lr (or disable amp) and start again"
        )

    def _extra_losses(
        self, out: dict[str, Tensor], batch: dict[str, Any], images: Tensor, labels: Tensor
    ) -> dict[str, Tensor]:
        """The model's own loss terms (``ReIDModel.extra_losses``), in fp32, on the device."""
        fields = getattr(self.model, "train_fields", ())
        inputs: dict[str, Any] = {"image": images, "label": labels}
        for name in fields:
            if name not in batch:
                raise ValueError(
                    f"model {self.config.model!r} trains on the sample field {name!r}, which "
                    f"the data at {self.config.data.root} does not provide; use a dataset with "
                    f"{name} annotations (the synthetic data has masks and keypoints)"
                )
            value = batch[name]
            inputs[name] = value.to(self.device) if isinstance(value, Tensor) else value
        with self._autocast():
            terms = self.model.extra_losses(out, inputs)  # type: ignore[operator]
        return {name: term.float() for name, term in terms.items()}

    def evaluate(self) -> dict[str, float]:
        from workbench.evaluate.protocol import evaluate_model

        dc = self.config.data
        result = evaluate_model(
            self.model,
            self.split,
            dc.height,
            dc.width,
            device=self.device,
            flip=self.config.flip_eval,
            workers=dc.workers,
            progress=self.progress,
        )
        return result.headline()

    def fit(self) -> dict[str, Any]:
        """Train the remaining epochs; returns the final metrics (main process).

        The run folder's lock is released at the end, whatever happens (:meth:`close`).
        """
        try:
            return self._fit()
        finally:
            self.close()

    def close(self) -> None:
        """Release the run folder (a Trainer that will not :meth:`fit`)."""
        self.lock.release()

    def _fit(self) -> dict[str, Any]:
        oc = self.config.optim
        metrics: dict[str, Any] = {}
        for epoch in range(self.start_epoch, oc.epochs):
            stats = self.train_epoch(epoch)
            broadcast_buffers(self.model, self.env)
            self.scheduler.step()
            record: dict[str, Any] = dict(stats.__dict__)
            last = epoch + 1 == oc.epochs
            every = self.config.eval_every
            self.history.append(record)
            if self.env.is_main:
                # save first: a failing evaluation must not lose the epoch just trained
                atomic_save(self._state(epoch + 1), self.out / CHECKPOINT_NAME)
                if last or (every and (epoch + 1) % every == 0):
                    try:
                        metrics = self.evaluate()
                    except Exception as e:
                        self._log(record)
                        raise EvaluationFailed(
                            f"evaluation after epoch {epoch + 1} failed ({type(e).__name__}: "
                            f"{e}); the epoch is saved in {self.out / CHECKPOINT_NAME}: fix the "
                            f"cause and --resume"
                        ) from e
                    record["metrics"] = metrics
                    atomic_save(self._state(epoch + 1), self.out / CHECKPOINT_NAME)  # + metrics
                self._log(record)
            barrier(self.env)
        if self.env.is_main:
            if not metrics and self.history:
                metrics = self.history[-1].get("metrics") or self.evaluate()
            self._export(metrics)
        return metrics

    def _log(self, record: dict[str, Any]) -> None:
        with open(self.out / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.progress:
            print(_format_record(record), flush=True)

    def _export(self, metrics: dict[str, Any]) -> None:
        from workbench.pretrained import save_pretrained

        model_config = self.model.config.to_dict()  # the full resolved config
        save_pretrained(
            self.model,
            self.out,
            "model",
            self.config.model,
            model_config,
            dtype=torch.float32,
            overwrite=True,  # the run's own weights, rewritten when a resumed run ends
            input_size=[self.config.data.height, self.config.data.width],
            metrics=metrics,
            train_config=self.config.to_dict(),
            **({"init": self.init_record} if self.init_record else {}),
        )


def _check_same_run(out: Path, saved: dict[str, Any], config: TrainConfig) -> None:
    """Refuse to resume with another model or input size than the checkpoint; name each change."""
    now = config.to_dict()
    diffs = []
    for key, label in (("model", "model"), ("model_config", "model config"), ("init", "init")):
        if saved.get(key) != now[key]:
            diffs.append(f"{label} {saved.get(key)!r} -> {now[key]!r}")
    old_size = (saved.get("data", {}).get("height"), saved.get("data", {}).get("width"))
    new_size = (config.data.height, config.data.width)
    if old_size != new_size:
        diffs.append(f"input size {old_size[0]}x{old_size[1]} -> {new_size[0]}x{new_size[1]}")
    if diffs:
        raise ResumeMismatchError(
            f"cannot resume {out}: the settings differ from its checkpoint: {'; '.join(diffs)}; "
            f"resume with the run's own settings (drop those options), or start a new run "
            f"in another --out"
        )


def _check_same_identities(
    out: Path, ckpt: dict[str, Any], pid_to_label: dict[int, int], root: str
) -> None:
    """Refuse to resume on other training identities than the checkpoint's label table."""
    saved = {int(k): int(v) for k, v in ckpt.get("pid_to_label", {}).items()}
    now = {int(k): int(v) for k, v in pid_to_label.items()}
    if saved == now:
        return
    gone, new = sorted(set(saved) - set(now)), sorted(set(now) - set(saved))
    saved_root = ckpt["config"].get("data", {}).get("root")
    raise ResumeMismatchError(
        f"cannot resume {out}: the training data differs from its checkpoint: the checkpoint "
        f"has {len(saved)} identities (data {saved_root}), {root} has {len(now)}; "
        f"{len(gone)} missing (e.g. {gone[:5]}), {len(new)} new (e.g. {new[:5]}); resume with "
        f"the run's own data (--data {saved_root}), or start a new run in another --out"
    )


def _format_record(r: dict[str, Any]) -> str:
    line = (
        f"epoch {r['epoch']:3d}  loss {r['loss']:.3f} (id {r['id_loss']:.3f}, tri "
        f"{r['triplet_loss']:.3f})  acc {r['accuracy']:.2f}  lr {r['lr']:.2e}  "
        f"{r['images_per_second']:.0f} img/s"
    )
    if extra := r.get("extra"):
        line += "  [" + ", ".join(f"{k} {v:.3f}" for k, v in extra.items()) + "]"
    if m := r.get("metrics"):
        line += f"  | R1 {m['rank1']:.1f}  mAP {m['mAP']:.1f}"
    return line if math.isfinite(r["loss"]) else line + "  (non-finite)"
