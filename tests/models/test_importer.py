"""import_checkpoint: each source's own model (``source_models.py``), randomised, saved the way that
project saves it, imported, and compared with the source model's own test-mode output on the
same pictures under the source's own preprocessing. Then import → export → load_pretrained.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from source_models import BoTBaseline, FastBaseline, TorchreidResNet, randomise
from torch import nn

from workbench.models import (
    CheckpointFormatError,
    CheckpointMismatchError,
    UnsupportedArchitectureError,
    get_layer,
    import_checkpoint,
)
from workbench.models.resnet import resnet18

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
H, W = 64, 32
TOL = 1e-5


def pictures(n: int = 3, seed: int = 0) -> torch.Tensor:
    """RGB pictures in [0, 1], (n, 3, H, W)."""
    return torch.rand(n, 3, H, W, generator=torch.Generator().manual_seed(seed))


def workbench_input(img: torch.Tensor) -> torch.Tensor:
    return (img - MEAN) / STD


def rel_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double() - b.double()).norm() / b.double().norm())


def save_bot(model: nn.Module, path: Path) -> Path:
    torch.save(model.state_dict(), path)  # BoT: bare state dict (tools/test.py load_param)
    return path


def save_fastreid(model: nn.Module, path: Path) -> Path:
    # fastreid/utils/checkpoint.py Checkpointer.save: {"model": state_dict, <checkpointables>...}
    opt = torch.optim.Adam(model.parameters(), lr=3.5e-4)
    torch.save(
        {"model": model.state_dict(), "optimizer": opt.state_dict(), "iteration": 1234}, path
    )
    return path


def save_torchreid(model: nn.Module, path: Path) -> Path:
    # torchreid Engine.save_model → save_checkpoint: rank1 is a numpy float32 (cmc[0]); trained
    # under DataParallel the keys carry "module."
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.StepLR(opt, 20)
    state = nn.DataParallel(model).state_dict()
    torch.save(
        {
            "state_dict": state,
            "epoch": 60,
            "rank1": np.float32(0.875),
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
        },
        path,
    )
    return path


Case = tuple[
    nn.Module, Callable[[torch.Tensor], torch.Tensor], Callable[[nn.Module, Path], Path], dict
]

# name → (source model factory, its own preprocessing of [0,1] RGB pictures, saver, import kwargs)
CASES: dict[str, Callable[[], Case]] = {
    "bot_r50_bnneck_after": lambda: (BoTBaseline("resnet50", 4, 11), workbench_input, save_bot, {}),
    "bot_r50_bnneck_before": lambda: (
        BoTBaseline("resnet50", 4, 11, neck_feat="before"),
        workbench_input,
        save_bot,
        {"neck_feat": "before"},
    ),
    "bot_r18_no_neck": lambda: (
        BoTBaseline("resnet18", 4, 5, neck="no"),
        workbench_input,
        save_bot,
        {},
    ),
    "bot_r50_ibn_a": lambda: (
        BoTBaseline("resnet50", 4, 7, ibn=True),
        workbench_input,
        save_bot,
        {},
    ),
    "fastreid_sbs_r50_ibn_nl_gem": lambda: (
        FastBaseline("resnet50", 4, 9, ibn=True, nl=(0, 2, 3, 0), pool="gemP"),
        lambda img: img * 255.0,
        save_fastreid,
        {},
    ),
    "fastreid_agw_r50_nl_fixed_gem": lambda: (
        FastBaseline("resnet50", 4, 9, nl=(0, 2, 3, 0), pool="gem"),
        lambda img: img * 255.0,
        save_fastreid,
        {"pool": "gem", "gem_learnable": False},
    ),
    "fastreid_bagtricks_r18_no_bnneck": lambda: (
        FastBaseline("resnet18", 4, 4, bnneck=False),
        lambda img: img * 255.0,
        save_fastreid,
        {},
    ),
    "fastreid_nl_half": lambda: (
        FastBaseline("resnet50", 4, 9, nl=(0, 2, 3, 0), nl_half=True),
        lambda img: img * 255.0,
        save_fastreid,
        {},
    ),
    "fastreid_v011_bnneck_pixel_buffers": lambda: (
        FastBaseline(
            "resnet34",
            4,
            6,
            old=True,
            pixel_mean=(127.5, 120.0, 100.0),
            pixel_std=(64.0, 60.0, 70.0),
        ),
        lambda img: img * 255.0,
        save_fastreid,
        {},
    ),
    "fastreid_bgr": lambda: (
        FastBaseline(
            "resnet18", 4, 4, pixel_mean=(100.0, 110.0, 120.0), pixel_std=(50.0, 55.0, 60.0)
        ),
        lambda img: img.flip(1) * 255.0,
        save_fastreid,
        {
            "channel_order": "bgr",
            "pixel_mean": (100 / 255, 110 / 255, 120 / 255),
            "pixel_std": (50 / 255, 55 / 255, 60 / 255),
        },
    ),
    "torchreid_resnet50": lambda: (
        TorchreidResNet("resnet50", 4, 13, None),
        workbench_input,
        save_torchreid,
        {},
    ),
    "torchreid_resnet50_fc512": lambda: (
        TorchreidResNet("resnet50", 4, 13, 32),
        workbench_input,
        save_torchreid,
        {},
    ),
    "torchreid_resnet18": lambda: (
        TorchreidResNet("resnet18", 4, 13, None),
        workbench_input,
        save_torchreid,
        {},
    ),
}

MEASURED: dict[str, float] = {}


def build_case(name: str, tmp_path: Path, seed: int = 0) -> tuple[nn.Module, Callable, Path, dict]:
    torch.manual_seed(seed)
    model, prep, saver, kwargs = CASES[name]()
    randomise(model, seed + 1)
    suffix = ".pth.tar-60" if saver is save_torchreid else ".pth"
    return model, prep, saver(model, tmp_path / f"{name}{suffix}"), kwargs


@pytest.mark.parametrize("name", list(CASES))
def test_imported_embedding_matches_the_source_model(name: str, tmp_path: Path) -> None:
    source, prep, path, kwargs = build_case(name, tmp_path)
    img = pictures()
    with torch.no_grad():
        expected = source(prep(img))
    warns = "nl" in name and "gem" not in name  # non-local, no p in the file, pool not given
    with pytest.warns(UserWarning, match="AGW") if warns else _no_warning():
        model = import_checkpoint(path, **kwargs)
    assert not model.training
    assert model.import_report.source == name.split("_")[0]
    with torch.no_grad():
        got = model(workbench_input(img))
    assert got.shape == expected.shape
    diff = rel_diff(got, expected)
    MEASURED[name] = diff
    print(f"\n{name}: relative difference {diff:.2e}")
    assert diff <= TOL, f"{name}: {diff}"
    # not trivially equal: a different picture gives a different embedding
    with torch.no_grad():
        other = model(workbench_input(pictures(seed=5)))
    assert rel_diff(other, expected) > 1e-2


class _no_warning:
    def __enter__(self) -> None:
        import warnings

        self._cm = warnings.catch_warnings()
        self._cm.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc: object) -> None:
        self._cm.__exit__(*exc)


def test_what_the_importer_inferred(tmp_path: Path) -> None:
    _, _, path, _ = build_case("fastreid_sbs_r50_ibn_nl_gem", tmp_path)
    cfg = import_checkpoint(path).config
    assert (cfg.backbone, cfg.width, cfg.ibn, cfg.nonlocal_blocks) == (
        "resnet50",
        4,
        True,
        (0, 2, 3, 0),
    )
    assert (cfg.pool, cfg.gem_learnable, cfg.stem_pool, cfg.stem_relu, cfg.neck) == (
        "gem",
        True,
        "ceil",
        True,
        True,
    )
    assert cfg.num_classes == 9 and cfg.pixel_mean is None  # ImageNet ×255 needs no re-normalising
    _, _, path, _ = build_case("fastreid_v011_bnneck_pixel_buffers", tmp_path)
    cfg = import_checkpoint(path).config
    assert cfg.stem_pool == "pad" and cfg.pixel_mean == pytest.approx((0.5, 120 / 255, 100 / 255))
    _, _, path, _ = build_case("bot_r50_bnneck_after", tmp_path)
    cfg = import_checkpoint(path).config
    assert (cfg.stem_relu, cfg.last_stride, cfg.ibn) == (False, 1, False)
    _, _, path, _ = build_case("torchreid_resnet50", tmp_path)
    cfg = import_checkpoint(path).config
    assert (cfg.last_stride, cfg.fc_dim, cfg.neck) == (2, 0, False)
    _, _, path, _ = build_case("torchreid_resnet50_fc512", tmp_path)
    cfg = import_checkpoint(path).config
    assert (cfg.last_stride, cfg.fc_dim) == (1, 32)


def test_safetensors_file_and_explicit_source(tmp_path: Path) -> None:
    source, prep, _, _ = build_case("fastreid_sbs_r50_ibn_nl_gem", tmp_path)
    path = tmp_path / "sbs.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    img = pictures()
    model = import_checkpoint(path, source="fastreid")
    with torch.no_grad():
        assert rel_diff(model(workbench_input(img)), source(prep(img))) <= TOL


def test_agw_fixed_gem_is_not_in_the_file(tmp_path: Path) -> None:
    # without pool="gem" the importer cannot know AGW's fixed-p GeM: it warns, and GAP differs
    source, prep, path, _ = build_case("fastreid_agw_r50_nl_fixed_gem", tmp_path)
    img = pictures()
    with pytest.warns(UserWarning, match="gem_learnable=False"):
        model = import_checkpoint(path)
    with torch.no_grad():
        assert rel_diff(model(workbench_input(img)), source(prep(img))) > 1e-3


def test_fastreid_arcsoftmax_buffer_is_dropped(tmp_path: Path) -> None:
    # FastReID v1.0 ArcSoftmax keeps a training buffer heads.classifier.t beside its weight
    source, prep, _, _ = build_case("fastreid_v011_bnneck_pixel_buffers", tmp_path)
    state = {**source.state_dict(), "heads.classifier.t": torch.zeros(1)}
    torch.save({"model": state}, tmp_path / "arc.pth")
    model = import_checkpoint(tmp_path / "arc.pth")
    assert "heads.classifier.t" in model.import_report.dropped
    img = pictures()
    with torch.no_grad():
        assert rel_diff(model(workbench_input(img)), source(prep(img))) <= TOL


def test_wrong_options_are_caught_by_the_comparison(tmp_path: Path) -> None:
    # the test is sensitive to each folded difference: the wrong max-pool, the wrong last stride
    source, prep, path, _ = build_case("fastreid_sbs_r50_ibn_nl_gem", tmp_path)
    img = pictures()
    with torch.no_grad():
        expected = source(prep(img))
        assert (
            rel_diff(import_checkpoint(path, stem_pool="pad")(workbench_input(img)), expected)
            > 1e-3
        )
    source, prep, path, _ = build_case("torchreid_resnet50", tmp_path)
    with torch.no_grad():
        expected = source(prep(img))
        assert (
            rel_diff(import_checkpoint(path, last_stride=1)(workbench_input(img)), expected) > 1e-3
        )


@pytest.mark.parametrize(
    "name",
    [
        "fastreid_sbs_r50_ibn_nl_gem",
        "fastreid_v011_bnneck_pixel_buffers",
        "torchreid_resnet50_fc512",
        "bot_r50_ibn_a",
    ],
)
def test_import_export_load_pretrained_round_trip(name: str, tmp_path: Path) -> None:
    from workbench.pretrained import load_pretrained
    from workbench.train.export import export_imported

    _, _, path, kwargs = build_case(name, tmp_path)
    imported = import_checkpoint(path, **kwargs)
    card = export_imported(path, "mine", folder=tmp_path / "weights", **kwargs)
    assert card["source"] == name.split("_")[0] and card["architecture"] == "bot"
    loaded = load_pretrained(tmp_path / "weights" / "mine.json")
    assert loaded.config == imported.config
    img = workbench_input(pictures())
    with torch.no_grad():
        assert torch.equal(loaded(img), imported(img))


@pytest.mark.parametrize("name", ["fastreid_sbs_r50_ibn_nl_gem", "torchreid_resnet50_fc512"])
def test_imported_models_honour_the_contract(name: str, tmp_path: Path) -> None:
    _, _, path, kwargs = build_case(name, tmp_path)
    model = import_checkpoint(path, **kwargs)
    img = workbench_input(pictures())
    captured: dict[str, torch.Tensor] = {}
    handles = [
        get_layer(model, n).register_forward_hook(
            lambda _m, _i, out, n=n: captured.__setitem__(n, out)
        )
        for n in model.layer_names()
    ]
    try:
        with torch.no_grad():
            emb = model(img)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        maps = model.feature_maps(img)
    assert list(maps) == model.layer_names() and set(captured) == set(maps)
    for row in model.layer_info:
        torch.testing.assert_close(captured[row.name], maps[row.name], msg=row.name)
        assert maps[row.name].shape[1] == row.channels
        if row.reduction is not None:
            assert maps[row.name].shape[2] == math.ceil(H / row.reduction), row.name
    torch.testing.assert_close(maps["embedding"], emb)
    if "sbs" in name:
        assert [r.name for r in model.layer_info if r.kind == "attention"] == [
            "nl2_0",
            "nl2_1",
            "nl3_0",
            "nl3_1",
            "nl3_2",
        ]
    else:
        assert "fc" in maps and maps["fc"].shape[1] == 32


# ----------------------------------------------------------------------------- bad input


def test_pickled_whole_model_is_refused_with_the_conversion(tmp_path: Path) -> None:
    model = BoTBaseline("resnet18", 4, 3)
    path = tmp_path / "resnet50_model_120.pth"
    torch.save(model, path)  # old ignite ModelCheckpoint pickles the whole model
    with pytest.raises(CheckpointFormatError, match=r"pickles Python objects \(source_models") as e:
        import_checkpoint(path)
    assert "state_dict()" in str(e.value) and "weights_only=False" in str(e.value)


def test_bot_file_of_newer_ignite_is_a_model_dict(tmp_path: Path) -> None:
    # newer ignite saves {"model": state_dict, "optimizer": ...} in one file (BoT issue #183)
    source, prep, _, _ = build_case("bot_r50_bnneck_after", tmp_path)
    opt = torch.optim.Adam(source.parameters())
    torch.save({"model": source.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "c.pth")
    img = pictures()
    model = import_checkpoint(tmp_path / "c.pth")
    assert model.import_report.source == "bot"
    with torch.no_grad():
        assert rel_diff(model(workbench_input(img)), source(prep(img))) <= TOL


def test_torchvision_imagenet_file_points_to_load_imagenet_weights(tmp_path: Path) -> None:
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(resnet18(width=8).state_dict(), path)
    with pytest.raises(CheckpointFormatError, match="load_imagenet_weights"):
        import_checkpoint(path)


def test_unknown_layout_lists_the_patterns(tmp_path: Path) -> None:
    path = tmp_path / "x.pth"
    torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    with pytest.raises(
        CheckpointFormatError, match=r"looked for fastreid: .*bot: .*torchreid: .*wrap"
    ):
        import_checkpoint(path)


def test_other_architectures_are_refused_naming_the_option(tmp_path: Path) -> None:
    source, _, _, _ = build_case("fastreid_sbs_r50_ibn_nl_gem", tmp_path)
    state = source.state_dict()
    se = {**state, "backbone.layer1.0.se.fc.0.weight": torch.zeros(2, 32)}
    torch.save(se, tmp_path / "se.pth")
    with pytest.raises(UnsupportedArchitectureError, match=r"squeeze-excitation.*wrap"):
        import_checkpoint(tmp_path / "se.pth")
    deep = {**state, **{f"backbone.layer3.{i}.conv1.weight": torch.zeros(1) for i in range(6, 23)}}
    torch.save(deep, tmp_path / "r101.pth")
    with pytest.raises(UnsupportedArchitectureError, match=r"\(3, 4, 23, 3\).*wrap"):
        import_checkpoint(tmp_path / "r101.pth")
    reduce = {k: v for k, v in state.items() if not k.startswith("heads.bottleneck")}
    reduce["heads.bottleneck.0.weight"] = torch.zeros(16, 128, 1, 1)
    torch.save(reduce, tmp_path / "emb.pth")
    with pytest.raises(UnsupportedArchitectureError, match="EMBEDDING_DIM"):
        import_checkpoint(tmp_path / "emb.pth")


def test_mismatched_keys_are_listed(tmp_path: Path) -> None:
    source, _, path, _ = build_case("bot_r50_bnneck_after", tmp_path)
    state = source.state_dict()
    state["base.layer1.0.conv2.weight"] = torch.zeros(4, 4, 5, 5)
    state["base.layer2.0.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(CheckpointMismatchError) as e:
        import_checkpoint(tmp_path / "bad.pth")
    assert e.value.unexpected == ["backbone.layer2.0.extra.weight"]
    assert e.value.mismatched == [("backbone.layer1.0.conv2.weight", (4, 4, 5, 5), (4, 4, 3, 3))]
    # a BoT file forced to be read as torchreid
    with pytest.raises((CheckpointFormatError, CheckpointMismatchError)):
        import_checkpoint(path, source="torchreid")


def test_missing_file_and_non_state_dict(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file"):
        import_checkpoint(tmp_path / "nope.pth")
    torch.save({"epoch": 3, "note": "x"}, tmp_path / "meta.pth")
    with pytest.raises(CheckpointFormatError, match="no state dict"):
        import_checkpoint(tmp_path / "meta.pth")


def test_only_numpy_scalars_are_allow_listed(tmp_path: Path) -> None:
    import io
    import zipfile

    source, prep, _, _ = build_case("torchreid_resnet18", tmp_path)
    # a torchreid file written under numpy 1.x names the scalar numpy.core.multiarray.scalar
    torch.save(
        {"state_dict": source.state_dict(), "epoch": 3, "rank1": np.float64(0.5)},
        tmp_path / "n2.pth",
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(tmp_path / "n2.pth") as zin, zipfile.ZipFile(buf, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(info, data)
    (tmp_path / "n1.pth").write_bytes(buf.getvalue())
    img = pictures()
    with torch.no_grad():
        assert (
            rel_diff(
                import_checkpoint(tmp_path / "n1.pth")(workbench_input(img)), source(prep(img))
            )
            <= TOL
        )
    # a numpy array needs numpy's array reconstructor: not allow-listed, refused
    torch.save({"state_dict": source.state_dict(), "cmc": np.arange(5.0)}, tmp_path / "arr.pth")
    with pytest.raises(CheckpointFormatError, match=r"pickles Python objects \(numpy"):
        import_checkpoint(tmp_path / "arr.pth")


def test_non_resnet_backbones_are_refused(tmp_path: Path) -> None:
    # FastReID OSNet / ResNeSt keys under backbone., torchreid OSNet keys at the top level
    osnet = {
        "backbone.conv1.conv.weight": torch.zeros(4, 3, 7, 7),
        "heads.weight": torch.zeros(3, 4),
    }
    torch.save({"model": osnet}, tmp_path / "osnet_fastreid.pth")
    with pytest.raises(UnsupportedArchitectureError, match="OSNet"):
        import_checkpoint(tmp_path / "osnet_fastreid.pth")
    resnest = {
        "backbone.conv1.0.weight": torch.zeros(4, 3, 3, 3),
        "backbone.layer1.0.conv2.fc1.weight": torch.zeros(2, 2, 1, 1),
        "heads.weight": torch.zeros(3, 4),
    }
    torch.save({"model": resnest}, tmp_path / "resnest.pth")
    with pytest.raises(UnsupportedArchitectureError, match="ResNeSt"):
        import_checkpoint(tmp_path / "resnest.pth")
    torch.save(
        {
            "state_dict": {
                "conv1.conv.weight": torch.zeros(4, 3, 7, 7),
                "classifier.weight": torch.zeros(3, 4),
            }
        },
        tmp_path / "osnet_torchreid.pth",
    )
    with pytest.raises(CheckpointFormatError, match=r"OSNet.*wrap"):
        import_checkpoint(tmp_path / "osnet_torchreid.pth")


def test_load_pretrained_points_foreign_files_to_the_importer(tmp_path: Path) -> None:
    from workbench.pretrained import load_pretrained

    _, _, path, _ = build_case("torchreid_resnet18", tmp_path)
    with pytest.raises(ValueError, match=r"import_checkpoint.*export --from"):
        load_pretrained(path)
