"""ResNet backbone: torchvision compatibility (without torchvision), shapes, options, weight loading.

The truth is computed independently of ``workbench.models.resnet``: the torchvision state-dict
layout is generated from torchvision's construction rules (and anchored by hard-coded facts about
the real files), and a functional forward written with ``F.conv2d`` / ``F.batch_norm`` from a state
dict checks the architecture.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import nn

from workbench.models import CheckpointMismatchError
from workbench.models.resnet import build_resnet, load_imagenet_weights

BLOCKS = {"resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3)}


def torchvision_layout(depth: str, width: int = 64, num_classes: int = 1000) -> dict[str, tuple]:
    """Key → shape of ``torchvision.models.<depth>().state_dict()``, from its construction rules."""
    bottleneck = depth == "resnet50"
    exp = 4 if bottleneck else 1
    sd: dict[str, tuple] = {}

    def bn(prefix: str, c: int) -> None:
        for k in ("weight", "bias", "running_mean", "running_var"):
            sd[f"{prefix}.{k}"] = (c,)
        sd[f"{prefix}.num_batches_tracked"] = ()

    sd["conv1.weight"] = (width, 3, 7, 7)
    bn("bn1", width)
    inplanes = width
    for stage, n in enumerate(BLOCKS[depth], start=1):
        planes = width * 2 ** (stage - 1)
        for b in range(n):
            p = f"layer{stage}.{b}"
            if bottleneck:
                sd[f"{p}.conv1.weight"] = (planes, inplanes, 1, 1)
                bn(f"{p}.bn1", planes)
                sd[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
                sd[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1)
                bn(f"{p}.bn3", planes * 4)
            else:
                sd[f"{p}.conv1.weight"] = (planes, inplanes, 3, 3)
                bn(f"{p}.bn1", planes)
                sd[f"{p}.conv2.weight"] = (planes, planes, 3, 3)
                bn(f"{p}.bn2", planes)
            if b == 0 and (stage > 1 or inplanes != planes * exp):
                sd[f"{p}.downsample.0.weight"] = (planes * exp, inplanes, 1, 1)
                bn(f"{p}.downsample.1", planes * exp)
            inplanes = planes * exp
    sd["fc.weight"] = (num_classes, inplanes)
    sd["fc.bias"] = (num_classes,)
    return sd


def fake_torchvision_state(depth: str, width: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors with torchvision's names and shapes (non-trivial BN statistics)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for k, shape in torchvision_layout(depth, width).items():
        if k.endswith("num_batches_tracked"):
            out[k] = torch.tensor(7)
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            out[k] = torch.randn(shape, generator=g) * math.sqrt(2.0 / fan_in)
        elif k.endswith("running_var") or (k.endswith(".weight") and ".bn" in f".{k}"):
            out[k] = 0.5 + torch.rand(shape, generator=g)
        else:
            out[k] = 0.1 * torch.randn(shape, generator=g)
    return out


def reference_features(
    sd: dict[str, torch.Tensor], x: torch.Tensor, depth: str, last_stride: int, stem_relu: bool
) -> torch.Tensor:
    """torchvision's ResNet forward (eval) up to layer4, written functionally from a state dict."""

    def bn(t: torch.Tensor, p: str) -> torch.Tensor:
        return F.batch_norm(
            t, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"],
            sd[f"{p}.bias"], training=False, eps=1e-5,
        )  # fmt: skip

    x = bn(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), "bn1")
    x = F.relu(x) if stem_relu else x
    x = F.max_pool2d(x, 3, 2, 1)
    for s, n in enumerate(BLOCKS[depth], start=1):
        for b in range(n):
            p = f"layer{s}.{b}"
            stride = 1 if (b > 0 or s == 1) else (last_stride if s == 4 else 2)
            idt = x
            if f"{p}.downsample.0.weight" in sd:
                idt = bn(
                    F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), f"{p}.downsample.1"
                )
            if depth == "resnet50":  # v1.5: stride on the 3x3
                o = F.relu(bn(F.conv2d(x, sd[f"{p}.conv1.weight"]), f"{p}.bn1"))
                o = F.relu(
                    bn(F.conv2d(o, sd[f"{p}.conv2.weight"], stride=stride, padding=1), f"{p}.bn2")
                )
                o = bn(F.conv2d(o, sd[f"{p}.conv3.weight"]), f"{p}.bn3")
            else:
                o = F.relu(
                    bn(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1), f"{p}.bn1")
                )
                o = bn(F.conv2d(o, sd[f"{p}.conv2.weight"], padding=1), f"{p}.bn2")
            x = F.relu(o + idt)
    return x


# -- torchvision layout -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "params", "entries"),
    [("resnet18", 11_689_512, 122), ("resnet34", 21_797_672, 218), ("resnet50", 25_557_032, 320)],
)
def test_parameter_and_entry_counts_match_torchvision(
    depth: str, params: int, entries: int
) -> None:
    # entries by hand: stem conv + bn (1 + 5); per BasicBlock 2 convs + 2 BNs = 12, per Bottleneck
    # 18; downsample 6 (3 of them for 18/34, 4 for 50); fc 2. 50: 6 + 16*18 + 4*6 + 2 = 320.
    with torch.device("meta"):
        model = build_resnet(depth)
    assert sum(p.numel() for p in model.parameters()) == params
    assert len(model.state_dict()) == entries
    assert len(torchvision_layout(depth)) == entries


@pytest.mark.parametrize("depth", list(BLOCKS))
def test_state_dict_names_and_shapes_match_torchvision(depth: str) -> None:
    with torch.device("meta"):
        model = build_resnet(depth)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == torchvision_layout(depth)


def test_known_torchvision_entries() -> None:
    """Facts about the real torchvision files, anchoring ``torchvision_layout``."""
    facts = {
        "resnet50": {
            "layer3.5.bn3.running_var": (1024,),
            "layer4.0.downsample.0.weight": (2048, 1024, 1, 1),
            "layer1.0.downsample.0.weight": (256, 64, 1, 1),
            "layer2.0.conv2.weight": (128, 128, 3, 3),
            "layer4.2.conv3.weight": (2048, 512, 1, 1),
            "layer1.0.downsample.1.num_batches_tracked": (),
            "fc.weight": (1000, 2048),
        },
        "resnet18": {
            "layer1.1.conv2.weight": (64, 64, 3, 3),
            "layer2.0.downsample.0.weight": (128, 64, 1, 1),
            "layer4.1.bn2.running_mean": (512,),
            "fc.weight": (1000, 512),
        },
        "resnet34": {"layer3.5.bn2.weight": (256,), "layer4.2.conv1.weight": (512, 512, 3, 3)},
    }
    for depth, entries in facts.items():
        with torch.device("meta"):
            sd = build_resnet(depth).state_dict()
        layout = torchvision_layout(depth)
        for k, shape in entries.items():
            assert tuple(sd[k].shape) == shape, k
            assert layout[k] == shape, k
    with torch.device("meta"):
        r18 = build_resnet("resnet18").state_dict()
    assert "layer1.0.downsample.0.weight" not in r18  # 64 -> 64, stride 1: no projection


# -- shapes and options -------------------------------------------------------------------------


@pytest.mark.parametrize("depth", list(BLOCKS))
@pytest.mark.parametrize("width", [16, 64])
@pytest.mark.parametrize("last_stride", [1, 2])
def test_stage_shapes_follow_stage_info(depth: str, width: int, last_stride: int) -> None:
    device = "meta" if width == 64 else "cpu"  # meta: shapes without the arithmetic
    with torch.device(device):
        model = build_resnet(depth, width=width, last_stride=last_stride, num_classes=0).eval()
        x = torch.randn(2, 3, 64, 32)
    exp = 4 if depth == "resnet50" else 1
    expected = {
        "stem": (width, 16, 8),
        "layer1": (width * exp, 16, 8),
        "layer2": (2 * width * exp, 8, 4),
        "layer3": (4 * width * exp, 4, 2),
        "layer4": (8 * width * exp, 4 // last_stride, 2 // last_stride),
    }
    info = {row.name: row for row in model.stage_info}
    assert list(info) == ["stem", "layer1", "layer2", "layer3", "layer4"]
    with torch.no_grad():
        for name, stage in model.stages():
            x = stage(x)
            c, h, w = expected[name]
            assert tuple(x.shape) == (2, c, h, w), name
            assert info[name].channels == c
            assert (64 // info[name].reduction, 32 // info[name].reduction) == (h, w)
            assert model.get_submodule(info[name].module) is not None
    assert model.num_features == 8 * width * exp
    assert info["layer4"].reduction == 16 * last_stride


def test_last_stride_1_gives_16x8_map_at_256x128() -> None:
    model = build_resnet("resnet50", width=16, last_stride=1, num_classes=0).eval()
    with torch.no_grad():
        out = model.forward_features(torch.randn(1, 3, 256, 128))
    assert tuple(out.shape) == (1, 512, 16, 8)


def test_stride_sits_on_the_3x3_conv_and_last_stride_on_layer4() -> None:
    r50 = build_resnet("resnet50", width=16, last_stride=1)
    assert r50.layer2[0].conv1.stride == (1, 1)
    assert r50.layer2[0].conv2.stride == (2, 2)  # v1.5
    assert r50.layer2[0].downsample[0].stride == (2, 2)
    assert r50.layer4[0].conv2.stride == (1, 1)
    assert r50.layer4[0].downsample[0].stride == (1, 1)
    r18 = build_resnet("resnet18", width=16)
    assert r18.layer4[0].conv1.stride == (2, 2)


def test_forward_with_and_without_fc() -> None:
    x = torch.randn(2, 3, 64, 32)
    with_fc = build_resnet("resnet18", width=16, num_classes=10).eval()
    assert tuple(with_fc(x).shape) == (2, 10)
    no_fc = build_resnet("resnet18", width=16, num_classes=0).eval()
    assert not any(k.startswith("fc.") for k in no_fc.state_dict())
    pooled = no_fc(x)
    assert torch.allclose(pooled, no_fc.forward_features(x).mean((2, 3)))


def test_torchvision_initialisation() -> None:
    torch.manual_seed(0)
    model = build_resnet("resnet50", width=64, num_classes=0)
    w = model.layer3[0].conv2.weight  # (256, 256, 3, 3): fan_out = 256 * 9
    assert abs(w.std().item() - math.sqrt(2.0 / (256 * 9))) < 0.01 * math.sqrt(2.0 / (256 * 9))
    assert torch.all(model.layer3[0].bn3.weight == 1) and torch.all(model.bn1.bias == 0)
    zero = build_resnet("resnet50", width=16, num_classes=0, zero_init_residual=True)
    assert torch.all(zero.layer1[0].bn3.weight == 0) and torch.all(zero.layer1[0].bn2.weight == 1)
    zero18 = build_resnet("resnet18", width=16, num_classes=0, zero_init_residual=True)
    assert torch.all(zero18.layer2[1].bn2.weight == 0)


def test_stem_relu_option() -> None:
    x = torch.randn(2, 3, 64, 32)
    torch.manual_seed(0)
    with_relu = build_resnet("resnet18", width=16, num_classes=0).eval()
    torch.manual_seed(0)
    no_relu = build_resnet("resnet18", width=16, num_classes=0, stem_relu=False).eval()
    assert isinstance(no_relu.relu, nn.Identity)
    assert with_relu.state_dict().keys() == no_relu.state_dict().keys()
    with torch.no_grad():
        assert with_relu.forward_stem(x).min() >= 0
        assert no_relu.forward_stem(x).min() < 0


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="last_stride"):
        build_resnet("resnet18", last_stride=3)
    with pytest.raises(ValueError, match="resnet18, resnet34, resnet50"):
        build_resnet("resnet101")


# -- ImageNet weight loading --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("depth", "last_stride", "stem_relu", "fmt"),
    [("resnet18", 2, True, "pth"), ("resnet50", 1, False, "safetensors")],
)
def test_loaded_weights_reproduce_the_reference_forward(
    tmp_path: Path, depth: str, last_stride: int, stem_relu: bool, fmt: str
) -> None:
    sd = fake_torchvision_state(depth, width=16)
    path = tmp_path / f"{depth}.{fmt}"
    if fmt == "pth":
        torch.save(sd, path)
    else:
        save_file(sd, str(path))
    # an fc of another size: the file's 1000-way fc must be ignored, not shape-checked
    model = build_resnet(
        depth, width=16, last_stride=last_stride, stem_relu=stem_relu, num_classes=5
    )
    fc_before = model.fc.weight.detach().clone()
    report = load_imagenet_weights(model, path)
    assert report.ignored == ["fc.bias", "fc.weight"]
    assert report.unexpected == [] and report.filled == []
    assert len(report.loaded) == len(sd) - 2
    assert torch.equal(model.fc.weight, fc_before)
    x = torch.randn(2, 3, 64, 32)
    with torch.no_grad():
        ours = model.eval().forward_features(x)
    expected = reference_features(sd, x, depth, last_stride, stem_relu)
    torch.testing.assert_close(ours, expected, rtol=1e-4, atol=1e-5)


def test_loader_accepts_old_files_wrappers_and_dataparallel_prefix(tmp_path: Path) -> None:
    sd = fake_torchvision_state("resnet18", width=16)
    old = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}  # pre-0.4 files
    wrapped = {"state_dict": {f"module.{k}": v for k, v in old.items()}}
    torch.save(wrapped, tmp_path / "w.pth")
    model = build_resnet("resnet18", width=16, num_classes=0)
    report = load_imagenet_weights(model, tmp_path / "w.pth")
    assert len(report.filled) == 20  # BNs: stem 1 + 8 blocks x 2 + 3 downsample
    assert torch.equal(model.layer3[1].bn2.running_var, sd["layer3.1.bn2.running_var"])


def test_loader_warns_about_unexpected_entries(tmp_path: Path) -> None:
    sd = fake_torchvision_state("resnet18", width=16)
    sd["aux.weight"] = torch.zeros(3)
    torch.save(sd, tmp_path / "x.pth")
    model = build_resnet("resnet18", width=16, num_classes=0)
    with pytest.warns(UserWarning, match="aux.weight"):
        report = load_imagenet_weights(model, tmp_path / "x.pth")
    assert report.unexpected == ["aux.weight"]


def test_loader_errors_name_the_file_and_the_keys(tmp_path: Path) -> None:
    model34 = build_resnet("resnet34", width=16, num_classes=0)
    with pytest.raises(TypeError, match=r"model\.backbone"):
        load_imagenet_weights(nn.Sequential(model34), tmp_path / "x.pth")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        load_imagenet_weights(model34, tmp_path / "nope.pth")

    torch.save(fake_torchvision_state("resnet18", width=16), tmp_path / "r18.pth")
    with pytest.raises(CheckpointMismatchError) as info:
        load_imagenet_weights(model34, tmp_path / "r18.pth")
    msg = str(info.value)
    assert "r18.pth" in msg and "layer1.2.conv1.weight" in msg
    # 8 BasicBlocks more in resnet34, 10 entries each without num_batches_tracked
    assert len(info.value.missing) == 80 and "missing from the file (80)" in msg

    model50 = build_resnet("resnet50", width=16, num_classes=0)
    with pytest.raises(
        CheckpointMismatchError, match=r"layer1\.0\.conv1\.weight file \[16, 16, 3, 3\]"
    ):
        load_imagenet_weights(model50, tmp_path / "r18.pth")

    wide = build_resnet("resnet18", width=32, num_classes=0)
    with pytest.raises(CheckpointMismatchError, match="width=64"):
        load_imagenet_weights(wide, tmp_path / "r18.pth")

    torch.save(nn.Linear(2, 2), tmp_path / "module.pth")  # a pickled module, not a state dict
    with pytest.raises(ValueError, match=r"module\.pth"):
        load_imagenet_weights(model34, tmp_path / "module.pth")
    torch.save({"a": 1}, tmp_path / "ints.pth")
    with pytest.raises(ValueError, match="not a name"):
        load_imagenet_weights(model34, tmp_path / "ints.pth")
