"""The trainer end to end on a tiny synthetic dataset: artefacts, resume, divergence, refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from workbench.train.config import TrainConfig, apply_overrides
from workbench.train.trainer import Trainer, TrainingDiverged, lr_factor


def tiny_config(root: Path, epochs: int = 2, **overrides) -> TrainConfig:
    config = TrainConfig(
        model="bot",
        model_config={"backbone": "resnet18", "width": 8},
        seed=3,
        eval_every=0,
    )
    base = {
        "data.root": str(root),
        "data.height": 64,
        "data.width": 32,
        "data.batch_size": 16,
        "data.workers": 0,
        "optim.epochs": epochs,
        "optim.warmup_epochs": 1,
        "optim.milestones": [2],
        "max_steps_per_epoch": 2,
    }
    return apply_overrides(config, {**base, **overrides})


def test_run_folder_holds_config_log_checkpoint_and_weights(tiny_synth, tmp_path):
    out = tmp_path / "run"
    metrics = Trainer(tiny_config(tiny_synth), out, progress=False).fit()
    assert {"rank1", "mAP", "mINP", "gap"} <= set(metrics)
    assert TrainConfig.load(out / "config.json") == tiny_config(tiny_synth)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    assert "metrics" in log[-1]
    card = json.loads((out / "model.json").read_text())
    assert card["architecture"] == "bot" and card["model_config"]["width"] == 8
    from workbench.pretrained import load_pretrained

    model = load_pretrained(out / "model.safetensors")
    assert model(torch.zeros(2, 3, 64, 32)).shape == (2, model.embedding_dim)


def test_existing_run_is_not_overwritten_without_resume(tiny_synth, tmp_path):
    out = tmp_path / "run"
    Trainer(tiny_config(tiny_synth, epochs=1), out, progress=False).fit()
    with pytest.raises(FileExistsError, match="--resume"):
        Trainer(tiny_config(tiny_synth, epochs=1), out, progress=False)


def test_resumed_run_matches_uninterrupted_run_exactly(tiny_synth, tmp_path):
    straight = Trainer(tiny_config(tiny_synth, epochs=3), tmp_path / "a", progress=False)
    straight.fit()
    # the same run stopped after epoch 1, then resumed from its checkpoint
    Trainer(tiny_config(tiny_synth, epochs=1), tmp_path / "b", progress=False).fit()
    resumed = Trainer(
        tiny_config(tiny_synth, epochs=3), tmp_path / "b", resume=True, progress=False
    )
    assert resumed.start_epoch == 1
    resumed.fit()
    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_nan_loss_stops_with_message_and_keeps_last_checkpoint(tiny_synth, tmp_path):
    out = tmp_path / "run"
    Trainer(tiny_config(tiny_synth, epochs=1), out, progress=False).fit()
    before = (out / "checkpoint.pt").read_bytes()
    trainer = Trainer(tiny_config(tiny_synth, epochs=2), out, resume=True, progress=False)
    # poison the classifier so the next loss is NaN
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match=r"epoch 2.*checkpoint.*intact"):
        trainer.fit()
    assert (out / "checkpoint.pt").read_bytes() == before


def test_lr_schedule_warms_up_then_steps():
    assert lr_factor(0, 10, (40, 70), 0.1) == pytest.approx(0.01)
    assert lr_factor(5, 10, (40, 70), 0.1) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(10, 10, (40, 70), 0.1) == 1.0
    assert lr_factor(40, 10, (40, 70), 0.1) == pytest.approx(0.1)
    assert lr_factor(70, 10, (40, 70), 0.1) == pytest.approx(0.01)


def test_config_rejects_unknown_keys(tmp_path):
    bad = tmp_path / "c.json"
    bad.write_text(json.dumps({"optim": {"lr": 1e-3, "epochz": 3}}))
    with pytest.raises(ValueError, match=r"config\.optim: unknown keys \['epochz'\]"):
        TrainConfig.load(bad)
    with pytest.raises(ValueError, match="unknown config key"):
        apply_overrides(TrainConfig(), {"data.heigth": 3})


@pytest.mark.gpu
def test_amp_channels_last_training_on_cuda(tiny_synth, tmp_path):
    config = tiny_config(tiny_synth, epochs=1, device="cuda")
    trainer = Trainer(config, tmp_path / "run", progress=False)
    assert trainer.use_amp and trainer.channels_last and trainer.device.type == "cuda"
    trainer.fit()
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    assert (tmp_path / "run" / "checkpoint.pt").exists()


def test_model_extra_losses_are_added_logged_and_get_their_fields(tiny_synth, tmp_path):
    """A model's ``extra_losses`` terms reach the loss, the log, and see masks when asked."""
    from workbench.models.bot import BoT

    seen: dict[str, tuple[int, ...]] = {}

    class MaskedBoT(BoT):
        train_fields = ("mask", "keypoints")

        def extra_losses(self, output, batch):
            seen["mask"] = tuple(batch["mask"].shape)
            seen["keypoints"] = tuple(batch["keypoints"].shape)
            return {"mask_term": 0 * output["features"].sum() + 2.5}

    trainer = Trainer(tiny_config(tiny_synth, epochs=1), tmp_path / "run", progress=False)
    plain = trainer.train_epoch(0)
    trainer = Trainer(tiny_config(tiny_synth, epochs=1), tmp_path / "run2", progress=False)
    trainer.model.__class__ = MaskedBoT  # same parameters, extra loss added
    trainer._dataset = None
    del trainer._dataset  # rebuild the loader with the fields the model asks for
    stats = trainer.train_epoch(0)
    assert seen["mask"] == (16, 64, 32) and seen["keypoints"] == (16, 17, 3)
    assert stats.extra == {"mask_term": pytest.approx(2.5)}
    assert stats.loss == pytest.approx(plain.loss + 2.5, rel=1e-5)
    assert trainer.model.config.input_size == (64, 32)  # from the transforms, not the default
