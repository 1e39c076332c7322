"""ResNet-18/34/50 with torchvision-compatible parameter names (torchvision is not a dependency).

He et al. 2016, "Deep Residual Learning for Image Recognition" (CVPR, arXiv 1512.03385), as
torchvision builds it ("ResNet v1.5": the Bottleneck's stride sits on the 3×3 conv, not the first
1×1). Parameter and buffer names match ``torchvision.models.resnet*`` (``conv1``, ``bn1``,
``layer1.0.conv1``, ``layer1.0.downsample.0`` / ``.1``, ``fc``), so an ImageNet file a user already
has loads with :func:`load_imagenet_weights`.

Options torchvision does not have, all used by ReID models:

* ``last_stride`` — stride of ``layer4`` (BoT, RGA, IANet use 1: a 16×8 map for 256×128 input).
* ``width`` — base width (64 in the paper). Channels are ``width·{1, 2, 4, 8}·expansion``; narrow
  models (16, 32) train on a laptop CPU. ImageNet weights need ``width=64``.
* ``stem_relu`` — BoT's official backbone omits the ReLU after ``bn1`` (its code comments "add
  missed relu"; the authors say it barely matters, BoT issues #4, #117; modules.md §5.3/§5.7).
  We keep the ReLU by default, as torchvision and the ImageNet weights do; ``stem_relu=False``
  reproduces BoT / DAAF-BoT.
* ``stem_pool`` — the stem max-pool: ``"pad"`` (torchvision, BoT, torchreid, FastReID v0.1.x:
  ``MaxPool2d(3, 2, padding=1)``) or ``"ceil"`` (FastReID since Nov 2020, commit 42cadae:
  ``MaxPool2d(3, 2, ceil_mode=True)`` without padding). Same output size for even inputs, other
  windows, so a FastReID file needs the pool it was trained with.
* ``ibn`` — IBN-a (Pan et al. 2018, "Two at Once: Enhancing Learning and Generalization Capacities
  via IBN-Net", ECCV, arXiv 1807.09441, Fig. 3b): in every block of ``layer1``–``layer3`` the
  ``bn1`` becomes :class:`IBN` (InstanceNorm on the first half of the channels, BatchNorm on the
  rest); ``layer4`` keeps BN. Names as in BoT's ``resnet_ibn_a.py`` and FastReID's ``IBN``
  (``bn1.IN.*``, ``bn1.BN.*``).
* ``nonlocal_blocks`` — non-local blocks (Wang et al. 2018, "Non-local Neural Networks", CVPR,
  arXiv 1711.07971, eq. 1–3, embedded dot product with the ``1/N`` normalisation) after the last
  ``n`` blocks of each stage, named ``NL_1`` .. ``NL_4`` as in FastReID (R50 SBS/AGW: (0, 2, 3, 0)).
  ``nonlocal_inter`` picks the inner width: ``"one"`` (a single channel: FastReID's code computes
  ``reduc_ratio // reduc_ratio``, in every release) or ``"half"`` (``C // 2``, the paper's choice,
  briefly in FastReID at commit c9824be).
* ``pixel_mean`` / ``pixel_std`` — the pixel statistics (0–1 scale, RGB) the weights were trained
  with, when they are not ImageNet's. The model still takes ImageNet-normalised input and
  re-normalises it first (:class:`InputNorm`): a mean shift cannot be folded into ``conv1``
  exactly, because ``conv1`` zero-pads. Not stored in the state dict (the config rebuilds it).
* ReLUs are not in-place (torchvision's are), so a forward hook on any layer captures a tensor that
  no later op overwrites — explainers rely on that. Peak memory is unchanged: with in-place ReLU
  the BN output buffer is reused; without it, that buffer is freed instead.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from workbench.models.base import (
    CheckpointMismatchError,
    LayerInfo,
    ModelConfigError,
    compare_state_dicts,
    format_key_lists,
)

__all__ = [
    "IBN",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "RESNET_DEPTHS",
    "BasicBlock",
    "Bottleneck",
    "ImageNetLoadReport",
    "InputNorm",
    "NonLocal",
    "ResNet",
    "backbone_from_config",
    "build_resnet",
    "check_backbone_fields",
    "load_imagenet_weights",
    "resnet18",
    "resnet34",
    "resnet50",
]


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _conv3x3(inp: int, out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inp, out, kernel_size=3, stride=stride, padding=1, bias=False)


def _conv1x1(inp: int, out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(inp, out, kernel_size=1, stride=stride, bias=False)


class IBN(nn.Module):
    """IBN-a normalisation (Pan et al. 2018): InstanceNorm (affine) on the first ``planes // 2``
    channels, BatchNorm on the others, concatenated back in that order. (B, C, h, w) → same."""

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.half = planes // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x: Tensor) -> Tensor:
        """Instance norm on the first ``half`` channels, batch norm on the rest."""
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), dim=1)


def _norm1(planes: int, ibn: bool) -> nn.Module:
    return IBN(planes) if ibn else nn.BatchNorm2d(planes)


class BasicBlock(nn.Module):
    """Two 3×3 convs + identity (ResNet-18/34)."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        ibn: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = _norm1(planes, ibn)
        self.relu = nn.ReLU()
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """relu(bn(conv(relu(bn(conv(x))))) + shortcut(x))."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1×1 → 3×3 (strided, v1.5) → 1×1 (×4 channels) + identity (ResNet-50)."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        ibn: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = _conv1x1(inplanes, planes)
        self.bn1 = _norm1(planes, ibn)
        self.conv2 = _conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = _conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU()
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        """1×1 → 3×3 → 1×1 convolutions plus the shortcut, then ReLU."""
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class NonLocal(nn.Module):
    """Non-local block (Wang et al. 2018, eq. 1–3, "embedded dot product"): (B, C, h, w) → same.

    ``θ, φ, g`` are 1×1 convs to ``inter`` channels; ``f = θ(x)ᵀ φ(x) / N`` over the ``N = h·w``
    positions (no softmax); ``y = f · g(x)``; ``z = W(y) + x`` with ``W`` = 1×1 conv + BN whose
    scale and shift start at 0, so a new block is the identity. Names as FastReID's ``Non_local``.
    """

    def __init__(self, channels: int, inter: int) -> None:
        super().__init__()
        self.inter = inter
        self.g = nn.Conv2d(channels, inter, 1)
        self.theta = nn.Conv2d(channels, inter, 1)
        self.phi = nn.Conv2d(channels, inter, 1)
        self.W = nn.Sequential(nn.Conv2d(inter, channels, 1), nn.BatchNorm2d(channels))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyTorch's default conv init and a zero ``W`` BN (FastReID builds these blocks after
        its ResNet init, so they keep both; :class:`ResNet` calls this after its own init)."""
        for conv in (self.g, self.theta, self.phi, self.W[0]):
            conv.reset_parameters()
        nn.init.zeros_(self.W[1].weight)
        nn.init.zeros_(self.W[1].bias)

    def forward(self, x: Tensor) -> Tensor:
        """x + W((θᵀφ / N) g): every position aggregates all N positions (dot-product non-local)."""
        b, _, h, w = x.shape
        theta = self.theta(x).flatten(2).transpose(1, 2)  # (B, N, inter)
        phi = self.phi(x).flatten(2)  # (B, inter, N)
        g = self.g(x).flatten(2).transpose(1, 2)  # (B, N, inter)
        f = torch.bmm(theta, phi) / (h * w)  # (B, N, N)
        y = torch.bmm(f, g).transpose(1, 2).reshape(b, self.inter, h, w)
        return self.W(y) + x


class InputNorm(nn.Module):
    """Re-normalise ImageNet-normalised input to other pixel statistics (per channel, exact).

    ``x`` holds ``(img − m_in) / s_in`` with ImageNet ``m_in, s_in``; the output is
    ``(img − mean) / std`` = ``x · s_in / std + (m_in − mean) / std``. Buffers are not saved.
    """

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        m_in, s_in, m, s = (
            torch.tensor(v).view(1, 3, 1, 1) for v in (IMAGENET_MEAN, IMAGENET_STD, mean, std)
        )
        self.register_buffer("scale", s_in / s, persistent=False)
        self.register_buffer("shift", (m_in - m) / s, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """Per-channel affine input normalisation ``x · scale + shift``."""
        return x * self.scale + self.shift


# name -> (block, blocks per stage)
RESNET_DEPTHS: dict[str, tuple[type[BasicBlock] | type[Bottleneck], tuple[int, int, int, int]]] = {
    "resnet18": (BasicBlock, (2, 2, 2, 2)),
    "resnet34": (BasicBlock, (3, 4, 6, 3)),
    "resnet50": (Bottleneck, (3, 4, 6, 3)),
}


def check_backbone_fields(config: Any) -> None:
    """Validate the ResNet fields every zoo config has: ``backbone``, ``last_stride``, ``width``."""
    if config.backbone not in RESNET_DEPTHS:
        raise ModelConfigError(
            f"backbone must be one of {', '.join(RESNET_DEPTHS)}, got {config.backbone!r}"
        )
    if config.last_stride not in (1, 2):
        raise ModelConfigError(f"last_stride must be 1 or 2, got {config.last_stride!r}")
    if not isinstance(config.width, int) or config.width < 1:
        raise ModelConfigError(f"width must be a positive int, got {config.width!r}")


class ResNet(nn.Module):
    """ResNet backbone with torchvision parameter names.

    Args:
        block: :class:`BasicBlock` or :class:`Bottleneck`.
        layers: blocks per stage, e.g. (3, 4, 6, 3).
        width: base width (64 = torchvision).
        last_stride: stride of ``layer4`` (2 = torchvision, 1 = ReID).
        stem_relu: ReLU after ``bn1`` (False = BoT's official backbone).
        num_classes: size of the ``fc`` layer; 0 gives no ``fc`` (a pure backbone).
        zero_init_residual: zero the last BN gamma of every block (torchvision option, off).
        stem_pool: ``"pad"`` (torchvision) or ``"ceil"`` (FastReID since Nov 2020) max-pool.
        ibn: IBN-a in ``layer1``–``layer3``.
        nonlocal_blocks: non-local blocks after the last ``n`` blocks of each stage.
        nonlocal_inter: ``"one"`` (FastReID) or ``"half"`` inner channels of those blocks.
        pixel_mean, pixel_std: training pixel statistics if not ImageNet's (see module doc).

    ``forward_features`` gives the (B, C, H/32, W/32) layer4 map (H/16 with last_stride 1);
    ``forward`` adds average pooling and ``fc`` (logits) or returns the pooled (B, C) feature
    when there is no fc. ``stages()`` lists ``(name, callable)`` to run stage by stage and
    ``stage_info`` names them with channels and reduction. With non-local blocks a stage's
    output is its last ``NL_k`` block's output (``stage_info`` points there), and
    ``map_info`` / :meth:`named_maps` add one ``"attention"`` row per block (``nl2_0`` ..).
    """

    def __init__(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        layers: tuple[int, int, int, int] | list[int],
        *,
        width: int = 64,
        last_stride: int = 2,
        stem_relu: bool = True,
        num_classes: int = 1000,
        zero_init_residual: bool = False,
        stem_pool: Literal["pad", "ceil"] = "pad",
        ibn: bool = False,
        nonlocal_blocks: tuple[int, int, int, int] | list[int] = (0, 0, 0, 0),
        nonlocal_inter: Literal["one", "half"] = "one",
        pixel_mean: tuple[float, float, float] | None = None,
        pixel_std: tuple[float, float, float] | None = None,
    ) -> None:
        super().__init__()
        if last_stride not in (1, 2):
            raise ValueError(f"last_stride must be 1 or 2, got {last_stride!r}")
        if width < 1:
            raise ValueError(f"width must be a positive int, got {width!r}")
        if stem_pool not in ("pad", "ceil"):
            raise ValueError(f"stem_pool must be 'pad' or 'ceil', got {stem_pool!r}")
        if nonlocal_inter not in ("one", "half"):
            raise ValueError(f"nonlocal_inter must be 'one' or 'half', got {nonlocal_inter!r}")
        nonlocal_blocks = tuple(nonlocal_blocks)
        if len(nonlocal_blocks) != 4 or any(
            not 0 <= n <= b for n, b in zip(nonlocal_blocks, layers, strict=True)
        ):
            raise ValueError(
                f"nonlocal_blocks needs 4 counts, each at most the stage's blocks {tuple(layers)}, "
                f"got {nonlocal_blocks!r}"
            )
        self.inplanes = width
        self.input_norm: nn.Module = nn.Identity()
        if pixel_mean is not None or pixel_std is not None:
            mean = tuple(pixel_mean or IMAGENET_MEAN)
            std = tuple(pixel_std or IMAGENET_STD)
            if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
                raise ValueError(f"pixel_mean/std need 3 values (std > 0), got {mean}, {std}")
            if (mean, std) != (IMAGENET_MEAN, IMAGENET_STD):
                self.input_norm = InputNorm(mean, std)
        self.conv1 = nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu: nn.Module = nn.ReLU() if stem_relu else nn.Identity()
        if stem_pool == "ceil":
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, ceil_mode=True)
        else:
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, width, layers[0], ibn=ibn)
        self.layer2 = self._make_layer(block, width * 2, layers[1], stride=2, ibn=ibn)
        self.layer3 = self._make_layer(block, width * 4, layers[2], stride=2, ibn=ibn)
        self.layer4 = self._make_layer(block, width * 8, layers[3], stride=last_stride)
        self.num_features = width * 8 * block.expansion
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc: nn.Module = (
            nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        )

        exp = block.expansion
        reductions = (4, 8, 16, 16 * last_stride)
        # stage k (1-based) runs NL_k[j] after block nl_index[k][j]: the last n blocks (FastReID)
        self.nonlocal_index: dict[int, list[int]] = {}
        self.stage_info: list[LayerInfo] = [LayerInfo("stem", width, 4, "maxpool")]
        self.map_info: list[LayerInfo] = [self.stage_info[0]]
        for k, (n, blocks) in enumerate(zip(nonlocal_blocks, layers, strict=True), start=1):
            channels = width * 2 ** (k - 1) * exp
            module = f"layer{k}"
            if n:
                inter = 1 if nonlocal_inter == "one" else channels // 2
                setattr(self, f"NL_{k}", nn.ModuleList(NonLocal(channels, inter) for _ in range(n)))
                self.nonlocal_index[k] = list(range(blocks - n, blocks))
                for j in range(n):
                    row = LayerInfo(f"nl{k}_{j}", channels, reductions[k - 1], f"NL_{k}.{j}")
                    self.map_info.append(dataclasses.replace(row, kind="attention"))
                module = f"NL_{k}.{n - 1}"
            row = LayerInfo(f"layer{k}", channels, reductions[k - 1], module)
            self.stage_info.append(row)
            self.map_info.append(row)

        # torchvision initialisation
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, NonLocal):  # a new non-local block is the identity
                m.reset_parameters()
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.bn3.weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(
        self,
        block: type[BasicBlock] | type[Bottleneck],
        planes: int,
        blocks: int,
        stride: int = 1,
        ibn: bool = False,
    ) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                _conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample, ibn=ibn)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, ibn=ibn) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward_stem(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) → (B, width, H/4, W/4)."""
        return self.maxpool(self.relu(self.bn1(self.conv1(self.input_norm(x)))))

    def _forward_stage(self, k: int, x: Tensor, maps: dict[str, Tensor] | None = None) -> Tensor:
        """Stage ``k`` block by block, with its non-local blocks (their outputs go to ``maps``)."""
        index = self.nonlocal_index.get(k, [])
        blocks: nn.Sequential = getattr(self, f"layer{k}")
        for i, blk in enumerate(blocks):
            x = blk(x)
            if i in index:
                j = index.index(i)
                x = getattr(self, f"NL_{k}")[j](x)
                if maps is not None:
                    maps[f"nl{k}_{j}"] = x
        return x

    def stages(self) -> list[tuple[str, Callable[[Tensor], Tensor]]]:
        """``[("stem", forward_stem), ("layer1", layer1), ..., ("layer4", layer4)]``.

        A stage with non-local blocks is a callable that runs them between its blocks.
        """
        out: list[tuple[str, Callable[[Tensor], Tensor]]] = [("stem", self.forward_stem)]
        for k in range(1, 5):
            fn = partial(self._forward_stage, k) if k in self.nonlocal_index else None
            out.append((f"layer{k}", fn or getattr(self, f"layer{k}")))
        return out

    def named_maps(self, x: Tensor) -> dict[str, Tensor]:
        """Every ``map_info`` map of (B, 3, H, W) input, in forward order."""
        maps = {"stem": self.forward_stem(x)}
        x = maps["stem"]
        for k in range(1, 5):
            x = maps[f"layer{k}"] = self._forward_stage(k, x, maps)
        return maps

    def forward_features(self, x: Tensor) -> Tensor:
        """(B, 3, H, W) → layer4 map (B, num_features, H/r, W/r), r = 32 or 16."""
        for _, stage in self.stages():
            x = stage(x)
        return x

    def forward(self, x: Tensor) -> Tensor:
        """ImageNet logits: GAP of the last stage, then ``fc``."""
        x = torch.flatten(self.avgpool(self.forward_features(x)), 1)  # (B, num_features)
        return self.fc(x)


def build_resnet(name: str, **kwargs: Any) -> ResNet:
    """``build_resnet("resnet50", width=16, last_stride=1, num_classes=0)``."""
    if name not in RESNET_DEPTHS:
        raise ValueError(f"unknown backbone {name!r}; valid: {', '.join(RESNET_DEPTHS)}")
    block, layers = RESNET_DEPTHS[name]
    return ResNet(block, layers, **kwargs)


# options of imported checkpoints (workbench.models.importer) that configs may carry
_IMPORT_OPTIONS = (
    "stem_pool",
    "ibn",
    "nonlocal_blocks",
    "nonlocal_inter",
    "pixel_mean",
    "pixel_std",
)


def backbone_from_config(config: Any) -> ResNet:
    """The ReID backbone a model config describes, shared by every ResNet model of the zoo.

    Reads ``backbone``, ``width``, ``last_stride``, ``stem_relu``, the imported-checkpoint options
    the config has (``stem_pool``, ``ibn``, non-local blocks, input re-normalisation) and loads
    the ImageNet file named by ``config.pretrained``, if any. No ``fc``: models add their heads.
    """
    options = {name: getattr(config, name) for name in _IMPORT_OPTIONS if hasattr(config, name)}
    backbone = build_resnet(
        config.backbone,
        width=config.width,
        last_stride=config.last_stride,
        stem_relu=config.stem_relu,
        num_classes=0,
        **options,
    )
    if config.pretrained is not None:
        load_imagenet_weights(backbone, config.pretrained)
    return backbone


def resnet18(**kwargs: Any) -> ResNet:
    """ResNet-18 (11,689,512 parameters at width 64 with the 1000-way fc)."""
    return build_resnet("resnet18", **kwargs)


def resnet34(**kwargs: Any) -> ResNet:
    """ResNet-34 (21,797,672 parameters at width 64 with the 1000-way fc)."""
    return build_resnet("resnet34", **kwargs)


def resnet50(**kwargs: Any) -> ResNet:
    """ResNet-50 v1.5 (25,557,032 parameters at width 64 with the 1000-way fc)."""
    return build_resnet("resnet50", **kwargs)


@dataclass
class ImageNetLoadReport:
    """What :func:`load_imagenet_weights` did."""

    path: str
    loaded: list[str] = field(default_factory=list)  # model keys set from the file
    ignored: list[str] = field(default_factory=list)  # fc.* in the file
    unexpected: list[str] = field(default_factory=list)  # other file keys the model lacks
    filled: list[str] = field(default_factory=list)  # num_batches_tracked absent from old files


def _read_state_dict(path: Path) -> dict[str, Tensor]:
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            obj: Any = load_file(str(path))
        else:
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # unpickling / header errors: say which file and why
        raise ValueError(
            f"{path}: cannot be read as a state dict ({type(e).__name__}: {e}). Pass a "
            f"torchvision .pth saved with torch.save(model.state_dict()) or a .safetensors file; "
            f"files that pickle whole models are refused (torch.load(weights_only=True))."
        ) from e
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):  # {"state_dict": {...}} training checkpoints
            if wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not all(isinstance(v, Tensor) for v in obj.values()):
        raise ValueError(f"{path}: holds a {type(obj).__name__}, not a name → tensor state dict")
    state = dict(obj)
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def load_imagenet_weights(model: ResNet, path: str | Path) -> ImageNetLoadReport:
    """Load a torchvision ImageNet ResNet file (``.pth`` or ``.safetensors``) into ``model``.

    ``fc.*`` is always ignored (ReID trains its own classifier). Missing ``num_batches_tracked``
    buffers (files saved before PyTorch 0.4, e.g. ``resnet50-19c8e357.pth``) keep the model's
    values. Other file keys the model lacks are reported with a warning.

    Raises:
        TypeError: ``model`` is not a :class:`ResNet` (pass ``model.backbone``).
        FileNotFoundError: no such file.
        ValueError: the file is not a tensor state dict.
        CheckpointMismatchError: a backbone key is missing from the file or has another shape
            (another depth, or ``width != 64``); the message lists them.
    """
    if not isinstance(model, ResNet):
        raise TypeError(
            f"load_imagenet_weights needs the ResNet itself, got {type(model).__name__}; "
            f"pass model.backbone (or set pretrained= in the model config)"
        )
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; pass the path of a torchvision ImageNet ResNet state dict "
            f"(e.g. resnet50-0676ba61.pth, from torchvision's download cache ~/.cache/torch/hub/"
            f"checkpoints), or pretrained=None to start from random weights"
        )
    state = _read_state_dict(path)
    report = ImageNetLoadReport(str(path))
    report.ignored = sorted(k for k in state if k.startswith("fc."))
    state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    target = {k: v for k, v in model.state_dict().items() if not k.startswith("fc.")}
    missing, unexpected, mismatched = compare_state_dicts(target, state)
    report.filled = [k for k in missing if k.endswith("num_batches_tracked")]
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or mismatched:
        raise CheckpointMismatchError(
            f"{path} does not fit this ResNet (width {model.stage_info[0].channels}, "
            f"{len(target)} backbone entries):\n"
            + format_key_lists(missing, unexpected, mismatched)
            + "\nIs it the ImageNet file of another depth (resnet18/34/50)? ImageNet weights "
            "need width=64.",
            missing,
            unexpected,
            mismatched,
        )
    if unexpected:
        warnings.warn(
            f"{path}: {len(unexpected)} entries not in the model were ignored: "
            f"{', '.join(unexpected[:10])}",
            stacklevel=2,
        )
    report.unexpected = unexpected
    known = {k: v for k, v in state.items() if k in target}
    merged = {**model.state_dict(), **known}
    model.load_state_dict(merged, strict=True)
    report.loaded = sorted(known)
    return report
