"""The trainer end to end on a tiny synthetic dataset: artefacts, resume, divergence, refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from workbench.train.checkpoint import CheckpointError
from workbench.train.config import TrainConfig, apply_overrides
from workbench.train.trainer import (
    EvaluationFailed,
    ResumeMismatchError,
    Trainer,
    TrainingDiverged,
    lr_factor,
)


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
    with pytest.raises(
        TrainingDiverged, match=r"epoch 2.*checkpoint\.pt holds the 1 completed epoch\(s\)"
    ):
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


# --- resuming only the same run; saving before evaluating; honest messages ----------------------
@pytest.fixture(scope="module")
def one_epoch_run(tiny_synth, tmp_path_factory):
    out = tmp_path_factory.mktemp("resume") / "run"
    Trainer(tiny_config(tiny_synth, epochs=1), out, progress=False).fit()
    return out


def _copy_run(run: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(run, dest)
    return dest


def test_resume_on_other_data_is_refused_naming_the_identities(one_epoch_run, tmp_path):
    from workbench.data.synth import generate

    other = tmp_path / "other"
    generate(other, ids=10, seed=7, height=64, width=32, workers=1, progress=False)
    config = tiny_config(other, epochs=2)
    # before: it continued silently on other identities
    with pytest.raises(ResumeMismatchError, match=r"training data differs.*6 identities.*has 5"):
        Trainer(config, _copy_run(one_epoch_run, tmp_path / "run"), resume=True, progress=False)


def test_resume_with_another_model_or_input_size_names_each_difference(
    tiny_synth, one_epoch_run, tmp_path
):
    config = tiny_config(tiny_synth, epochs=2, **{"data.height": 96, "data.width": 48})
    config.model_config = {"backbone": "resnet18", "width": 16}
    with pytest.raises(
        ResumeMismatchError,
        match=r"model config .*'width': 8.* -> .*'width': 16.*input size 64x32 -> 96x48",
    ):
        Trainer(config, one_epoch_run, resume=True, progress=False)


def test_resume_of_a_missing_run_folder_says_so_before_reading_data(tmp_path, monkeypatch):
    import workbench.data.readers as readers

    def no_data(*args, **kwargs):
        raise AssertionError("the data was read before the checkpoint was looked for")

    monkeypatch.setattr(readers, "load_split", no_data)
    with pytest.raises(FileNotFoundError, match=r"nope: no such run folder"):
        Trainer(tiny_config(tmp_path / "data"), tmp_path / "nope", resume=True, progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"checkpoint\.pt: no checkpoint to resume"):
        Trainer(tiny_config(tmp_path / "data"), tmp_path / "empty", resume=True, progress=False)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "not_a_checkpoint"])
def test_damaged_checkpoint_is_named_without_torch_advice(one_epoch_run, tmp_path, damage):
    run = _copy_run(one_epoch_run, tmp_path / "run")
    ckpt = run / "checkpoint.pt"
    if damage == "truncate":
        ckpt.write_bytes(ckpt.read_bytes()[:1000])
    elif damage == "garbage":
        ckpt.write_bytes(b"\x80\x04not a pickle at all" * 10)
    else:
        torch.save({"weights": torch.zeros(2)}, ckpt)
    with pytest.raises(CheckpointError, match=r"checkpoint\.pt: not .*checkpoint") as info:
        Trainer(tiny_config(run), run, resume=True, progress=False)
    assert "weights_only" not in str(info.value)


def test_a_failing_evaluation_does_not_lose_the_epoch(tiny_synth, tmp_path, monkeypatch):
    out = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_synth, epochs=1), out, progress=False)

    def bad_gallery():
        raise OSError("bounding_box_test/0001_c1s1_000001_01.jpg: cannot decode")

    monkeypatch.setattr(trainer, "evaluate", bad_gallery)
    with pytest.raises(EvaluationFailed, match=r"after epoch 1 failed.*epoch is saved in"):
        trainer.fit()
    # before: the checkpoint was written after the evaluation, so the epoch was lost
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] == 1
    assert len((out / "log.jsonl").read_text().splitlines()) == 1
    resumed = Trainer(tiny_config(tiny_synth, epochs=1), out, resume=True, progress=False)
    assert resumed.start_epoch == 1 and "rank1" in resumed.fit()


def test_divergence_in_the_first_epoch_says_no_checkpoint_exists(tiny_synth, tmp_path):
    out = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_synth, epochs=1), out, progress=False)
    with torch.no_grad():
        next(trainer.model.parameters()).fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="no checkpoint was written yet") as info:
        trainer.fit()
    assert "intact" not in str(info.value) and not (out / "checkpoint.pt").exists()


def test_training_on_a_single_identity_is_refused(tiny_synth, tmp_path):
    import shutil

    root = tmp_path / "one"
    for folder in ("query", "bounding_box_test"):
        shutil.copytree(tiny_synth / folder, root / folder)
    (root / "bounding_box_train").mkdir()
    first = sorted((tiny_synth / "bounding_box_train").glob("*.jpg"))[0]
    pid = first.name.split("_")[0]
    for p in (tiny_synth / "bounding_box_train").glob(f"{pid}_*.jpg"):
        shutil.copy(p, root / "bounding_box_train")
    config = tiny_config(root, **{"data.batch_size": 8, "data.num_instances": 4})
    with pytest.raises(ValueError, match="holds 1 identity; ReID training needs at least 2"):
        Trainer(config, tmp_path / "run", progress=False)  # before: "succeeded" with loss 0
