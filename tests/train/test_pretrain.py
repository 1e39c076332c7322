"""Pretraining: the set is disjoint from the zoo's test split; ``--init`` loads a backbone, strictly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.train.test_trainer import tiny_config
from workbench.models.registry import build_model
from workbench.pretrained import save_pretrained
from workbench.train.pretrain import (
    PRETRAIN_PARTS,
    ZOO_PARTS,
    InitMismatchError,
    Part,
    identity_parameters,
    prepare_init,
    render_pretraining_data,
    shared_identities,
)
from workbench.train.trainer import ResumeMismatchError, Trainer

CARDS = sorted((Path(__file__).parents[2] / "weights").glob("pretrain_*.json"))


# -- no identity or image of the zoo's test split in pretraining ------------------------------
def shipped_parts(card: Path | None) -> list[Part]:
    """The parts a shipped pretraining card was trained on (the recipe's without a card)."""
    if card is not None:
        return [Part(**p) for p in json.loads(card.read_text())["data"]["parts"]]
    return list(PRETRAIN_PARTS)


@pytest.mark.parametrize("card", CARDS or [None], ids=lambda c: c.stem if c else "recipe")
def test_no_zoo_test_identity_is_drawn_in_the_pretraining_set(card):
    parts = shipped_parts(card)
    assert len(parts) >= 2 and {p.domain for p in parts} >= {0, 1}  # both sites
    assert sum(p.ids for p in parts) >= 2000
    # other seeds: no identity stream (seed, IDENTITY, pid) or image stream (seed, IMAGE, i) is
    # shared with the zoo's, so no zoo image can be rendered again ...
    assert not {p.seed for p in parts} & {z.seed for z in ZOO_PARTS}
    # ... and, on the drawn parameters themselves, no zoo test person is among them (the site
    # changes the cameras, not the people: one check covers the AAM cross-domain split too)
    zoo_pids, zoo_params = identity_parameters(ZOO_PARTS[0], "test")
    assert (zoo_pids, zoo_params.tolist()) == (
        identity_parameters(ZOO_PARTS[1], "test")[0],
        identity_parameters(ZOO_PARTS[1], "test")[1].tolist(),
    )
    assert len(zoo_pids) == 250
    assert shared_identities(parts, ZOO_PARTS[0]) == []


def test_the_identity_check_finds_a_leak():
    # a set rendered on the zoo's seed draws the zoo's test people again, whatever its size/site
    leaks = shared_identities([Part(seed=0, domain=1, ids=300)], ZOO_PARTS[0])
    zoo_test = set(identity_parameters(ZOO_PARTS[0], "test")[0])
    assert leaks and all(z == p and z in zoo_test for z, _, p in leaks)
    with pytest.raises(ValueError, match="seed 0 is the zoo's"):
        render_pretraining_data("unused", [Part(seed=0, domain=1, ids=40)])


@pytest.fixture(scope="module")
def pretrain_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("pretrain") / "set"
    parts = [Part(seed=3, domain=0, ids=12), Part(seed=4, domain=1, ids=12)]
    render_pretraining_data(out, parts, height=64, width=32, holdout=1, progress=False)
    return out


def test_pretraining_set_merges_parts_with_new_pids_and_holds_out(pretrain_set):
    from workbench.data.readers import load_split

    meta = json.loads((pretrain_set / "pretrain.json").read_text())
    split = load_split(pretrain_set)
    assert meta["ids"] == 24 and meta["ids_train"] == 22
    assert sorted(split.train.pid.unique()) + sorted(split.query.pid.unique()) != []
    train, query, gallery = (set(t.pid) for t in (split.train, split.query, split.gallery))
    assert len(train) == 22 and query == gallery and len(query) == 2  # one held out per part
    assert train.isdisjoint(query) and train | query == set(range(1, 25))  # no 0 / -1
    # every image of a part is there once, under its new pid (the frame and camera kept)
    n_part = 0
    for p in meta["parts"]:
        part = pretrain_set / "parts" / f"s{p['seed']}_d{p['domain']}_n{p['ids']}"
        n_part += sum(
            not f.name.startswith(("0000", "-1"))
            for d in ("bounding_box_train", "query", "bounding_box_test")
            for f in (part / d).iterdir()
        )
    assert len(split.train) + len(split.query) + len(split.gallery) == n_part
    assert meta["counts"]["bounding_box_train"] == len(split.train)
    # the parts' pixels differ (other seeds, other sites): no image of one is in the other
    a, b = (pretrain_set / "parts" / f for f in ("s3_d0_n12", "s4_d1_n12"))
    hashes = {f.read_bytes() for f in (a / "bounding_box_train").iterdir()}
    assert not hashes & {f.read_bytes() for f in (b / "bounding_box_train").iterdir()}


def test_every_image_of_the_set_keeps_its_part_mask_under_its_new_name(pretrain_set):
    from workbench.data.annotations import mask_path_for
    from workbench.data.readers import load_split

    meta = json.loads((pretrain_set / "pretrain.json").read_text())
    split = load_split(pretrain_set)
    tables = (split.train, split.query, split.gallery)
    assert meta["masks"] == sum(len(t) for t in tables)
    for table in tables:  # the reader finds them, one per image
        assert table.mask_path.notna().all()
    # the mask is the part's own mask of the same image: same bytes as the source part's
    sources = {}
    for part in (pretrain_set / "parts").iterdir():
        for folder in ("bounding_box_train", "query", "bounding_box_test"):
            for image in (part / folder).iterdir():
                sources[image.read_bytes()] = mask_path_for(part, image).read_bytes()
    for path, mask in zip(split.train.path[:40], split.train.mask_path[:40], strict=True):
        assert Path(mask).read_bytes() == sources[Path(path).read_bytes()]


def test_a_set_merged_before_masks_were_linked_is_merged_again(pretrain_set, tmp_path):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(pretrain_set, old)
    meta = json.loads((old / "pretrain.json").read_text())
    del meta["masks"]  # what the first pretraining set's meta looked like
    (old / "pretrain.json").write_text(json.dumps(meta))
    shutil.rmtree(old / "masks")
    parts = [Part(seed=3, domain=0, ids=12), Part(seed=4, domain=1, ids=12)]
    again = render_pretraining_data(old, parts, height=64, width=32, holdout=1, progress=False)
    assert again["masks"] == sum(meta["counts"].values()) > 0
    assert again["counts"] == meta["counts"]
    assert sum(1 for _ in (old / "masks").rglob("*.png")) == again["masks"]


def test_a_complete_pretraining_set_is_reused(pretrain_set):
    before = (pretrain_set / "pretrain.json").stat().st_mtime_ns
    parts = [Part(seed=3, domain=0, ids=12), Part(seed=4, domain=1, ids=12)]
    render_pretraining_data(pretrain_set, parts, height=64, width=32, holdout=1, progress=False)
    assert (pretrain_set / "pretrain.json").stat().st_mtime_ns == before


# -- --init -----------------------------------------------------------------------------------
def source_card(folder: Path, width: int = 8, backbone: str = "resnet18") -> Path:
    """Weights of a BoT with a random (seeded) backbone, shipped with their card."""
    torch.manual_seed(11)
    model = build_model("bot", backbone=backbone, width=width, num_classes=5)
    with torch.no_grad():  # BN statistics too, so that they are checked as well
        for name, buf in model.named_buffers():
            if "running" in name:
                buf.uniform_(0.5, 1.5)
    save_pretrained(
        model, folder, "src", "bot", model.config.to_dict(), dtype=torch.float32, overwrite=True
    )
    return folder / "src.safetensors"


def test_init_loads_the_backbone_and_the_card_records_it(tiny_synth, tmp_path):
    src = source_card(tmp_path / "w")
    want = {k[9:]: v for k, v in load_file(src).items() if k.startswith("backbone.")}
    out = tmp_path / "run"
    trainer = Trainer(tiny_config(tiny_synth, epochs=1, init=str(src)), out, progress=False)
    got = trainer.model.backbone.state_dict()
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want)
    scratch = Trainer(tiny_config(tiny_synth, epochs=1), tmp_path / "scratch", progress=False)
    assert not torch.equal(scratch.model.backbone.conv1.weight, want["conv1.weight"])
    trainer.fit()
    card = json.loads((out / "model.json").read_text())
    src_card = json.loads(src.with_suffix(".json").read_text())
    assert card["init"] == {
        "weights": "src",
        "architecture": "bot",
        "sha256": src_card["sha256"],
        "tensors": len(want),
    }
    assert card["train_config"]["init"] == str(src)
    assert card["model_config"]["pretrained"] is None  # no run-local path on the card
    # resuming keeps the record; another --init is refused, naming it
    config = tiny_config(tiny_synth, epochs=2, init=str(src))
    Trainer(config, out, resume=True, progress=False).fit()
    assert json.loads((out / "model.json").read_text())["init"] == card["init"]
    with pytest.raises(ResumeMismatchError, match="init"):
        Trainer(tiny_config(tiny_synth, epochs=3), out, resume=True, progress=False)


def test_init_reaches_the_stages_a_model_copies_when_built(tmp_path):
    # DAAF's holistic branch deep-copies layer2..4 at construction: they must be the loaded ones
    from workbench.models.daaf import DAAFConfig

    src = source_card(tmp_path, width=16)
    config = DAAFConfig.tiny().to_dict()
    path, _ = prepare_init(src, "daaf", config, tmp_path)
    model = build_model("daaf", **{**config, "pretrained": str(path)})
    want = load_file(src)["backbone.layer3.0.conv1.weight"]
    assert torch.equal(model.backbone.layer3[0].conv1.weight, want)
    copied = [m for n, m in model.named_parameters() if n.startswith("hab.encoder")]
    assert any(p.shape == want.shape and torch.equal(p, want) for p in copied)


@pytest.mark.parametrize(
    ("model", "config", "match"),
    [
        (
            "bot",
            {"backbone": "resnet18", "width": 16},
            r"shape mismatches \(100\): .*conv1\.weight file \[8, 3, 7, 7\] vs model \[16, 3, 7, 7\]",
        ),
        ("bot", {"backbone": "resnet34", "width": 8}, r"missing from the file .*layer1\.2"),
        ("rga", {"backbone": "resnet50", "width": 8}, r"resnet50 width 8"),
        ("interpreter", {"target": "bot_r18w16_256"}, "no ResNet backbone of its own"),
    ],
)
def test_init_of_another_architecture_is_refused(tmp_path, model, config, match):
    src = source_card(tmp_path)
    with pytest.raises(InitMismatchError, match=match) as err:
        prepare_init(src, model, config, tmp_path)
    assert "src (bot, resnet18 width 8)" in str(err.value) or model == "interpreter"
    assert not (tmp_path / "init_backbone.safetensors").exists()


def test_init_with_corrupt_or_missing_weights_is_refused(tmp_path):
    """--init checks the file as load_pretrained does: its sha256, then its presence."""
    from workbench.pretrained import ChecksumError

    src = source_card(tmp_path)
    src.write_bytes(src.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(ChecksumError, match="does not match its card"):
        prepare_init(
            src.with_suffix(".json"), "bot", {"backbone": "resnet18", "width": 8}, tmp_path
        )
    src.unlink()
    with pytest.raises(FileNotFoundError, match="is missing"):
        prepare_init(
            src.with_suffix(".json"), "bot", {"backbone": "resnet18", "width": 8}, tmp_path
        )
    assert not (tmp_path / "init_backbone.safetensors").exists()


def test_init_with_weights_that_hold_no_backbone_is_refused(tmp_path):
    src = source_card(tmp_path)
    tensors = {k: v for k, v in load_file(src).items() if not k.startswith("backbone.")}
    from safetensors.torch import save_file

    from workbench.pretrained import sha256_file

    save_file(tensors, str(src))
    card = json.loads(src.with_suffix(".json").read_text())
    card["sha256"] = sha256_file(src)
    src.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(InitMismatchError, match="holds no backbone"):
        prepare_init(src, "bot", {"backbone": "resnet18", "width": 8}, tmp_path)


def test_init_through_the_cli_fails_in_one_line(tiny_synth, tmp_path, capsys):
    from workbench.cli import main

    src = source_card(tmp_path / "w")
    argv = ["train", "--data", str(tiny_synth), "--out", str(tmp_path / "run"), "--init", str(src)]
    argv += ["--model-config", '{"backbone": "resnet18", "width": 16}', "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "does not fit model 'bot' (resnet18 width 16)" in err


def test_pretraining_cli_trains_on_the_set_and_the_exported_card_says_how_to_rebuild(
    pretrain_set, tiny_synth, tmp_path
):
    from workbench.cli import main
    from workbench.train.export import export_run

    run = tmp_path / "pre"
    argv = ["pretrain", "--data", str(pretrain_set), "--out", str(run), "--epochs", "3"]
    argv += ["--height", "64", "--width", "32", "--holdout", "1", "--quiet"]
    argv += [
        "--parts",
        '[{"seed": 3, "domain": 0, "ids": 12}, {"seed": 4, "domain": 1, "ids": 12}]',
    ]
    config = json.loads((pretrain_set / "pretrain.json").read_text())
    with pytest.MonkeyPatch.context() as mp:  # a tiny run: 2 steps an epoch
        from workbench.train import pretrain

        real = pretrain.pretrain_config
        mp.setattr(
            pretrain,
            "pretrain_config",
            lambda *args: _small(real(*args)),
        )
        assert main(argv) == 0
    card = export_run(run, "pre", tmp_path / "w")
    assert card["data"]["parts"] == [
        {k: p[k] for k in ("seed", "domain", "ids")} for p in config["parts"]
    ]
    assert card["data"]["command"].startswith(
        f"workbench pretrain --data {pretrain_set} --data-only"
    )
    assert card["train_config"]["model_config"] == {
        "backbone": "resnet18",
        "width": 16,
        "last_stride": 1,
    }
    assert card["training"]["epochs"] == 3 and "init" not in card
    # the zoo then starts from it
    out = tmp_path / "zoo"
    zoo = tiny_config(tiny_synth, epochs=1, init=str(tmp_path / "w" / "pre.safetensors"))
    zoo.model_config = {"backbone": "resnet18", "width": 16}
    trainer = Trainer(zoo, out, progress=False)
    want = load_file(tmp_path / "w" / "pre.safetensors")["backbone.layer4.1.conv2.weight"].float()
    assert torch.equal(trainer.model.backbone.layer4[1].conv2.weight, want)


def test_pretraining_with_the_part_objective_trains_on_the_masks(pretrain_set, tmp_path):
    from workbench.cli import main

    run = tmp_path / "parts"
    argv = ["pretrain", "--data", str(pretrain_set), "--out", str(run), "--epochs", "3"]
    argv += ["--height", "64", "--width", "32", "--holdout", "1", "--quiet", "--part-loss", "2"]
    argv += [
        "--parts",
        '[{"seed": 3, "domain": 0, "ids": 12}, {"seed": 4, "domain": 1, "ids": 12}]',
    ]
    with pytest.MonkeyPatch.context() as mp:
        from workbench.train import pretrain

        real = pretrain.pretrain_config
        mp.setattr(pretrain, "pretrain_config", lambda *args: _small(real(*args)))
        assert main(argv) == 0
    config = json.loads((run / "config.json").read_text())
    assert config["model_config"]["part_loss"] == 2.0
    history = torch.load(run / "checkpoint.pt", weights_only=False)["history"]
    # the term is logged each epoch: cross-entropy over 8 labels, weight 2, near 2·ln 8 at first
    assert [sorted(h["extra"]) for h in history] == [["parts"]] * 3
    assert 0 < history[0]["extra"]["parts"] < 2 * 2.5


def _small(config):
    config.max_steps_per_epoch = 2
    config.data.batch_size = 16
    config.data.workers = 0
    return config


@pytest.mark.parametrize(
    ("parts", "match"),
    [
        ([], "at least one part"),
        ({"seed": 1}, "need a list of parts"),
        ([{"seed": 1, "ids": 40}], "each part is"),
        ([{"seed": 1, "domain": 0, "ids": -4}], "ids=-4"),
        ([{"seed": 1, "domain": 0, "ids": 40}] * 2, "listed twice"),
    ],
)
def test_bad_parts_are_refused_before_any_work(tmp_path, parts, match):
    with pytest.raises(ValueError, match=match):
        render_pretraining_data(tmp_path / "set", parts)
    assert not (tmp_path / "set").exists()


def test_cli_init_and_lr_reach_the_run_config(tiny_synth, tmp_path):
    from workbench.cli import main

    src = source_card(tmp_path / "w")
    out = tmp_path / "run"
    argv = ["train", "--data", str(tiny_synth), "--out", str(out), "--init", str(src)]
    argv += ["--model-config", '{"backbone": "resnet18", "width": 8}', "--lr", "8e-4"]
    argv += ["--epochs", "1", "--max-steps", "1", "--height", "64", "--width", "32", "--quiet"]
    argv += ["--workers", "0", "--batch-size", "16"]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["init"] == str(src) and config["optim"]["lr"] == 8e-4
    assert json.loads((out / "model.json").read_text())["init"]["weights"] == "src"
