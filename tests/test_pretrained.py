"""Model cards: sha256 verification, architecture mismatch, lookup by name."""

from __future__ import annotations

import json

import pytest
import torch

from workbench.models.base import CheckpointMismatchError
from workbench.models.registry import build_model
from workbench.pretrained import (
    ChecksumError,
    find_card,
    list_pretrained,
    load_pretrained,
    save_pretrained,
)


@pytest.fixture
def saved(tmp_path):
    model = build_model("bot", backbone="resnet18", width=8, num_classes=5).eval()
    card = save_pretrained(
        model, tmp_path, "tiny", "bot", model.config.to_dict(), input_size=[64, 32]
    )
    return model, card, tmp_path


def test_round_trip_in_fp16_gives_the_same_embeddings(saved):
    model, card, folder = saved
    loaded = load_pretrained(folder / "tiny.json")
    assert loaded.card["sha256"] == card["sha256"] and card["dtype"] == "float16"
    x = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), atol=2e-2, rtol=2e-2)


def test_lookup_by_name_through_env_folder(saved, monkeypatch):
    _, _, folder = saved
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(folder))
    assert "tiny" in [c["name"] for c in list_pretrained()]
    assert find_card("tiny")["architecture"] == "bot"
    with pytest.raises(KeyError, match=r"available: .*'tiny'"):
        find_card("no-such-weights")


def test_tampered_weights_refuse_to_load(saved):
    _, _, folder = saved
    path = folder / "tiny.safetensors"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ChecksumError, match="does not match its card"):
        load_pretrained(folder / "tiny.json")


def test_card_for_another_architecture_lists_the_keys(saved):
    _, _, folder = saved
    card_path = folder / "tiny.json"
    card = json.loads(card_path.read_text())
    card["model_config"]["backbone"] = "resnet50"  # weights are a resnet18
    card_path.write_text(json.dumps(card))
    with pytest.raises(CheckpointMismatchError) as err:
        load_pretrained(card_path)
    text = str(err.value)
    assert "missing" in text and "layer1.0.conv3.weight" in text


def test_shipped_cards_verify_and_load():
    cards = list_pretrained()
    for card in cards:
        model = load_pretrained(card["name"])
        h, w = card["input_size"]
        with torch.no_grad():
            assert model(torch.zeros(1, 3, h, w)).shape[0] == 1


def test_saving_twice_gives_identical_bytes(tmp_path):
    model = build_model("bot", backbone="resnet18", width=8, num_classes=3)
    a = save_pretrained(model, tmp_path / "a", "m", "bot", model.config.to_dict())
    b = save_pretrained(model, tmp_path / "b", "m", "bot", model.config.to_dict())
    assert a["sha256"] == b["sha256"]


def test_a_json_file_that_is_not_a_card_is_skipped_with_a_warning(saved, monkeypatch):
    _, _, folder = saved
    (folder / "notes.json").write_text('{"todo": "retrain"}')
    (folder / "broken.json").write_text("{not json")
    monkeypatch.setenv("WORKBENCH_WEIGHTS", str(folder))
    with pytest.warns(
        UserWarning, match=r"not a model card: .*notes\.json: model card lacks the key"
    ):
        names = [c["name"] for c in list_pretrained()]
    assert "tiny" in names  # before: one stray JSON broke list_pretrained and every lookup
    assert find_card("tiny")["name"] == "tiny"
    with pytest.warns(UserWarning), pytest.raises(KeyError, match=r"available: .*'tiny'"):
        find_card("nope")


def test_save_refuses_to_overwrite_by_default(saved):
    model, card, folder = saved
    with pytest.raises(FileExistsError, match="already exist"):
        save_pretrained(model, folder, "tiny", "bot", model.config.to_dict())
    assert find_card(folder / "tiny.json")["sha256"] == card["sha256"]


def test_a_missing_weights_path_says_no_such_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"m\.safetensors: no such weights file"):
        find_card(tmp_path / "m.safetensors")
