"""The AAM interpreter: decomposition against a naive re-computation, the losses on hand-worked
pairs, a frozen (bit-identical) target through real training, and self-contained weights."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from workbench.models import ModelConfigError, build_model
from workbench.models.bot import BoT, BoTConfig
from workbench.models.interpreter import (
    InterpreterConfig,
    attribute_prior_loss,
    contributions,
    positive_activation,
)
from workbench.pretrained import load_pretrained, save_pretrained


def tiny_interpreter(**overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model("interpreter", InterpreterConfig.tiny(**overrides))


def test_positive_activation_values() -> None:
    u = torch.tensor([-2.0, -1e-6, 0.0, 3.0, 8.0])
    want = torch.tensor([math.exp(-2.0), math.exp(-1e-6), 1.0, 2.0, 3.0])
    torch.testing.assert_close(positive_activation(u), want)


@pytest.mark.parametrize("shared", [0, 3, 5])
def test_decomposition_matches_a_naive_recomputation(shared: int) -> None:
    model = tiny_interpreter(shared_stages=shared).eval()
    images = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        out = model.interpret(images)
        target = model.target
        fmap = target.backbone.forward_features(images)  # the target's own last map
        z = target(images)  # the target's embedding
        # the interpreter's own path, stage by stage, from the names of the shared stages
        x = images
        for name, stage in target.backbone.stages():
            x = stage(x) if name not in model.branch else model.branch[name](x)
        aams = model.adh(x)
        d_k = torch.zeros(3, 3, len(model.attribute_names))
        for k in range(len(model.attribute_names)):
            zk = target.head.embed((fmap * aams[:, k : k + 1]).mean((2, 3)))
            for p in range(3):
                for q in range(3):
                    d_k[p, q, k] = (zk[p] - zk[q]).norm()
    torch.testing.assert_close(out.target_embedding, z)
    torch.testing.assert_close(out.aams, aams)
    got_k, got_hat = model.distances(out.components, out.components)
    off = ~torch.eye(3, dtype=torch.bool)
    torch.testing.assert_close(got_k[off], d_k[off], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(got_hat[off], d_k.mean(-1)[off], rtol=1e-4, atol=1e-4)
    shares = contributions(got_k[off])
    torch.testing.assert_close(shares.sum(-1), torch.ones(6))


def test_shared_stages_are_the_targets_modules() -> None:
    model = tiny_interpreter(shared_stages=3)
    assert sorted(model.branch) == ["layer3", "layer4"]
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.startswith("branch.layer2") for n in names)
    assert all(not p.requires_grad for p in model.target.parameters())
    assert model.train().target.training is False


def test_attribute_prior_loss_hand_worked() -> None:
    shares = torch.tensor([[0.1, 0.3, 0.3, 0.3], [0.7, 0.1, 0.1, 0.1]])
    exclusive = torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)
    out = attribute_prior_loss(shares, exclusive)
    # pair 1: N = 1, M = 4, r = 1/2: exclusive total 0.1 < 0.5, common total 0.9 > 0.5
    lam = 0.5 * math.log((3 * 0.5 + 0.004) / (1 * 0.5 + 0.001))
    lower, upper = math.exp(-lam) * 0.5 / 1, math.exp(lam) * 0.5 / 3
    hinges_1 = max(lower - 0.1, 0) + 3 * max(0.3 - upper, 0)
    # pair 2: N = 0: a/b = 0.004/0.001 -> e^lambda = 2, common bound 2/M = 0.5; r = 0
    hinges_2 = 0.7 - 0.5
    assert out["total_share"].item() == pytest.approx((0.4 + 0.4 + 0.0) / 2, abs=1e-6)
    assert out["hinges"].item() == pytest.approx((hinges_1 + hinges_2) / 2, abs=1e-6)


def test_colour_hinge_caps_absent_colours() -> None:
    shares = torch.tensor([[0.5, 0.2, 0.3]])  # colours 0 and 1 absent for both, 2 present
    absent = torch.tensor([[True, True, False]])
    out = attribute_prior_loss(
        shares, torch.zeros(1, 3, dtype=torch.bool), colour_groups=([0, 1, 2],),
        both_absent=absent, colour_threshold=0.3,
    )  # fmt: skip
    assert out["colour"].item() == pytest.approx((0.5 - 0.09) + (0.2 - 0.09))


def test_losses_are_finite_and_reach_the_trainable_parameters() -> None:
    model = tiny_interpreter().train()
    out = model(torch.randn(4, 3, 64, 32))
    attrs = torch.randint(0, 2, (4, 27))
    attrs[0, 5] = -1  # an unannotated value counts as "no"
    losses = model.extra_losses(out, {"attributes": attrs})
    assert set(losses) == {"distill", "prior"}
    sum(losses.values()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert all(p.grad is None for p in model.target.parameters())


def test_wrong_attribute_schema_fails_with_the_fix() -> None:
    model = tiny_interpreter().train()
    out = model(torch.randn(2, 3, 64, 32))
    with pytest.raises(ValueError, match="dukemtmc"):
        model.extra_losses(out, {"attributes": torch.zeros(2, 23, dtype=torch.long)})


def test_needs_a_target() -> None:
    from workbench.models import ModelConfigError

    with pytest.raises(ModelConfigError, match="--target"):
        InterpreterConfig()


@pytest.fixture(scope="module")
def trained(tiny_synth: Path, tmp_path_factory: pytest.TempPathFactory):
    """A tiny BoT target saved as weights, and an interpreter trained on it for 2 steps."""
    from workbench.train.config import TrainConfig, apply_overrides
    from workbench.train.trainer import Trainer

    root = tmp_path_factory.mktemp("aam")
    torch.manual_seed(0)
    bot = BoT(BoTConfig.tiny(num_classes=6, input_size=(128, 64))).eval()
    save_pretrained(bot, root / "target", "model", "bot", bot.config.to_dict(),
                    dtype=torch.float32, input_size=[128, 64])  # fmt: skip
    target = root / "target" / "model.safetensors"
    config = apply_overrides(
        TrainConfig(model="interpreter", model_config={"target": str(target), "adh_channels": 8}),
        {"data.root": str(tiny_synth), "data.height": 128, "data.width": 64,
         "data.batch_size": 8, "data.workers": 0, "optim.epochs": 1, "optim.warmup_epochs": 0,
         "max_steps_per_epoch": 2, "eval_every": 0, "device": "cpu", "optim.lr": 1e-3},
    )  # fmt: skip
    trainer = Trainer(config, root / "run", progress=False)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.fit()
    return target, root / "run", before, trainer


def test_training_leaves_the_target_bit_identical(trained) -> None:
    target, run, before, trainer = trained
    after = trainer.model.state_dict()
    target_keys = [k for k in before if k.startswith("target.")]
    assert target_keys and all(torch.equal(before[k], after[k]) for k in target_keys)
    original = load_pretrained(target).state_dict()
    assert all(torch.equal(original[k[len("target.") :]], after[k]) for k in target_keys)
    own = [k for k in before if k.startswith(("branch.", "adh.")) and before[k].is_floating_point()]
    assert any(not torch.equal(before[k], after[k]) for k in own), "the interpreter trained"
    log = (run / "log.jsonl").read_text()
    assert '"distill"' in log and '"prior"' in log


def test_saved_interpreter_is_self_contained(trained, tmp_path: Path) -> None:
    target, run, _, trainer = trained
    model = load_pretrained(run / "model.safetensors")
    assert model.config.target_spec["name"] == "bot"
    assert model.config.target_sha256 and model.config.target == str(target)
    target.rename(tmp_path / "moved.safetensors")  # the target file is not needed any more
    try:
        again = load_pretrained(run / "model.safetensors")
    finally:
        (tmp_path / "moved.safetensors").rename(target)
    x = torch.randn(2, 3, 128, 64)
    with torch.no_grad():
        torch.testing.assert_close(again(x), trainer.model.eval()(x))


def test_decomposition_reproduces_d_within_adre_on_the_trained_model(trained) -> None:
    from workbench.data.dataset import ReIDDataset
    from workbench.data.readers import load_split
    from workbench.data.transforms import build_transforms
    from workbench.evaluate import adre
    from workbench.explain.attributes import explain_pair

    _, run, _, _ = trained
    model = load_pretrained(run / "model.safetensors")
    split = load_split(model.card["train_config"]["data"]["root"])
    data = ReIDDataset(split.query, build_transforms(128, 64, train=False))
    images = torch.stack([data[i]["image"] for i in range(6)])
    with torch.no_grad():
        out = model.interpret(images)
        d = torch.cdist(out.target_embedding, out.target_embedding)
        _, d_hat = model.distances(out.components, out.components)
    off = ~torch.eye(6, dtype=torch.bool)
    assert adre(d[off], d_hat[off]) < 0.1
    ex = explain_pair(model, images[0], images[1], k=3)
    assert ex.distance == pytest.approx(float(d[0, 1]), rel=1e-4)
    assert ex.distilled == pytest.approx(float(d_hat[0, 1]), rel=1e-4)
    assert ex.table["contribution"].sum() == pytest.approx(1.0)
    assert ex.table["component"].sum() == pytest.approx(ex.distilled, rel=1e-5)
    assert ex.table["contribution"].is_monotonic_decreasing
    assert ex.top == ex.table["attribute"].tolist()[:3] and ex.aams_x.shape[0] == 3


def test_cli_target_flag(trained, tmp_path: Path) -> None:
    from workbench.cli import _target_config, build_parser

    target, _, _, _ = trained
    args = build_parser().parse_args(
        ["train", "--model", "interpreter", "--target", str(target), "--out", str(tmp_path)]
    )
    assert args.target == str(target)
    config = _target_config(args.target, {"shared_stages": 2})
    assert config == {"shared_stages": 2, "target": str(target), "target_spec": None}
    with pytest.raises(KeyError, match="no pretrained weights named 'nope'"):
        _target_config("nope", {})
    assert build_parser().parse_args(["synth", "--out", "x", "--domain", "1"]).domain == 1


def test_default_attributes_follow_the_schema() -> None:
    market = InterpreterConfig.tiny(attributes=())
    duke = InterpreterConfig.tiny(attributes=(), schema="dukemtmc")
    assert len(market.attributes) == 26 and "age" not in market.attributes
    assert len(duke.attributes) == 23 and "boots" in duke.attributes


def test_a_given_target_is_used_and_the_callers_config_is_left_alone() -> None:
    """The interpreter is handed its target model (it opens no file): the target's spec goes
    into the interpreter's own config, not into the config object the caller passed."""
    from workbench.models import model_spec
    from workbench.models.interpreter import Interpreter

    torch.manual_seed(0)
    bot = BoT(BoTConfig.tiny()).eval()
    config = InterpreterConfig.tiny(target="not/a/file.safetensors", target_spec=None)
    model = Interpreter(config, target=bot)
    assert model.target is bot and config.target_spec is None
    assert model.config.target_spec == model_spec(bot)
    with pytest.raises(ModelConfigError, match="build_model_with_target"):
        Interpreter(config)
