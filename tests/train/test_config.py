"""Every training setting is validated once, up front, in the typed configs."""

from __future__ import annotations

import json

import pytest

from workbench.train.config import ConfigError, TrainConfig, apply_overrides


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optim.epochs": 0}, r"optim.epochs=0: need a value >= 1"),
        ({"data.height": 0}, r"data.height=0"),
        ({"data.width": -1}, r"data.width=-1"),
        ({"optim.lr": "fast"}, r"optim.lr='fast': need a number"),
        ({"optim.lr": 0.0}, r"optim.lr=0.0"),
        ({"optim.lr": float("nan")}, r"optim.lr=nan: need a finite number"),
        ({"data.flip_p": 2}, r"data.flip_p=2"),
        ({"data.pad": -3}, r"data.pad=-3"),
        ({"data.erasing_p": 1.5}, r"data.erasing_p=1.5"),
        ({"data.batch_size": 10}, r"not a multiple of data.num_instances=4"),
        ({"data.workers": -1}, r"data.workers=-1"),
        ({"data.height": True}, r"data.height=True: need a whole number"),
        ({"optim.milestones": [35, 25]}, r"need increasing epochs"),
        ({"optim.milestones": 5}, r"optim.milestones=5"),
        ({"optim.gamma": 0}, r"optim.gamma=0"),
        ({"loss.label_smoothing": 1.0}, r"label_smoothing=1.0"),
        ({"loss.triplet_margin": -0.3}, r"triplet_margin=-0.3"),
        ({"device": "foo"}, r"device='foo': not a device"),
        ({"seed": -1}, r"seed=-1"),
        ({"eval_every": -2}, r"eval_every=-2"),
        ({"max_steps_per_epoch": 0}, r"max_steps_per_epoch=0"),
        ({"amp": "yes"}, r"amp='yes': need true or false"),
    ],
)
def test_nonsense_settings_are_refused_naming_key_and_value(overrides, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TrainConfig(), overrides)


def test_a_config_file_with_a_bad_value_is_refused_when_loaded(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"optim": {"lr": "fast"}}))
    with pytest.raises(ConfigError, match=r"optim.lr='fast'"):
        TrainConfig.load(path)
    path.write_text(json.dumps({"data": 3}))
    with pytest.raises(ValueError, match=r"config.data: expected an object"):
        TrainConfig.load(path)


def test_good_settings_pass_and_round_trip(tmp_path):
    config = apply_overrides(
        TrainConfig(),
        {"optim.epochs": 1, "device": "cuda:1", "loss.triplet_margin": None, "data.pad": 0},
    )
    config.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == config
