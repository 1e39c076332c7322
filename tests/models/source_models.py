"""The three source codebases' ReID models, rebuilt in the tests with *their* module and key names.

Written here from the public code (not imported from the workbench, not copied), with a ``width``
knob so they run in milliseconds:

* BoT — ``michuanhaohao/reid-strong-baseline`` ``modeling/baseline.py`` (``base``, ``gap``,
  ``bottleneck``, ``classifier``), ``backbones/resnet.py`` (no stem ReLU) and
  ``backbones/resnet_ibn_a.py`` (stem ReLU, ``bn1.IN`` / ``bn1.BN``, an unused ``fc``);
* FastReID — ``JDAI-CV/fast-reid`` ``meta_arch/baseline.py`` (``backbone``, ``heads``,
  ``pixel_mean/std`` on the 0–255 scale, applied inside the model), ``backbones/resnet.py``
  (``NL_1``..``NL_4`` after the last blocks of a stage, ceil-mode max-pool since Nov 2020),
  ``layers/non_local.py``, ``layers/pooling.py`` (GeM), ``heads/embedding_head.py`` (current:
  ``bottleneck.0`` + ``weight``) and v0.1.1 ``heads/bnneck_head.py`` (``bnneck`` + ``classifier``);
* torchreid — ``KaiyangZhou/deep-person-reid`` ``torchreid/models/resnet.py`` (``global_avgpool``,
  ``fc`` = Linear/BN/ReLU for ``resnet50_fc512``, ``classifier``).

Each ``forward`` in eval mode is the source's test-time output.
"""

from __future__ import annotations

import math
import re

import torch
import torch.nn.functional as F
from torch import nn


class SrcIBN(nn.Module):
    def __init__(self, planes: int) -> None:
        super().__init__()
        self.half = int(planes / 2)
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.IN(x[:, : self.half]), self.BN(x[:, self.half :])], 1)


class SrcBasic(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, down: nn.Module | None, ibn: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = SrcIBN(planes) if ibn else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + res)


class SrcBottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, down: nn.Module | None, ibn: bool):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=False)
        self.bn1 = SrcIBN(planes) if ibn else nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + res)


class SrcNonLocal(nn.Module):
    """FastReID ``Non_local``: θ/φ/g 1×1 convs, f = θᵀφ / N, W = conv + BN, residual."""

    def __init__(self, c: int, inter: int) -> None:
        super().__init__()
        self.inter_channels = inter
        self.g = nn.Conv2d(c, inter, 1)
        self.W = nn.Sequential(nn.Conv2d(inter, c, 1), nn.BatchNorm2d(c))
        self.theta = nn.Conv2d(c, inter, 1)
        self.phi = nn.Conv2d(c, inter, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        t = self.theta(x).reshape(b, self.inter_channels, -1)  # (B, i, N)
        p = self.phi(x).reshape(b, self.inter_channels, -1)
        g = self.g(x).reshape(b, self.inter_channels, -1)
        f = torch.einsum("bin,bim->bnm", t, p) / (h * w)  # (B, N, N)
        y = torch.einsum("bnm,bim->bin", f, g).reshape(b, self.inter_channels, h, w)
        return self.W(y) + x


class SrcResNet(nn.Module):
    """ResNet with the key names all three projects share (torchvision's)."""

    def __init__(
        self,
        depth: str,
        width: int,
        last_stride: int,
        *,
        stem_relu: bool = True,
        ceil_pool: bool = False,
        ibn: bool = False,
        nl: tuple[int, int, int, int] = (0, 0, 0, 0),
        nl_half: bool = False,
        imagenet_fc: bool = False,
    ) -> None:
        super().__init__()
        block, layers = {
            "resnet18": (SrcBasic, (2, 2, 2, 2)),
            "resnet34": (SrcBasic, (3, 4, 6, 3)),
            "resnet50": (SrcBottleneck, (3, 4, 6, 3)),
        }[depth]
        self.stem_relu = stem_relu
        self.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        if ceil_pool:
            self.maxpool = nn.MaxPool2d(3, 2, ceil_mode=True)
        else:
            self.maxpool = nn.MaxPool2d(3, 2, padding=1)
        cin = width
        self.nl_index = {}
        for k, n in enumerate(layers, start=1):
            planes = width * 2 ** (k - 1)
            stride = 1 if k == 1 else (last_stride if k == 4 else 2)
            use_ibn = ibn and k < 4
            blocks = []
            for i in range(n):
                s = stride if i == 0 else 1
                down = None
                if i == 0 and (s != 1 or cin != planes * block.expansion):
                    down = nn.Sequential(
                        nn.Conv2d(cin, planes * block.expansion, 1, s, bias=False),
                        nn.BatchNorm2d(planes * block.expansion),
                    )
                blocks.append(block(cin, planes, s, down, use_ibn))
                cin = planes * block.expansion
            setattr(self, f"layer{k}", nn.Sequential(*blocks))
            if nl[k - 1]:
                inter = cin // 2 if nl_half else 1
                setattr(
                    self,
                    f"NL_{k}",
                    nn.ModuleList(SrcNonLocal(cin, inter) for _ in range(nl[k - 1])),
                )
                self.nl_index[k] = sorted(n - (j + 1) for j in range(nl[k - 1]))
        self.out_channels = cin
        if imagenet_fc:  # resnet_ibn_a keeps an (unused) ImageNet classifier
            self.avgpool = nn.AvgPool2d(7)
            self.fc = nn.Linear(cin, 1000)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv1(x))
        if self.stem_relu:
            x = self.relu(x)
        x = self.maxpool(x)
        for k in range(1, 5):
            nls = iter(getattr(self, f"NL_{k}", []))
            for i, blk in enumerate(getattr(self, f"layer{k}")):
                x = blk(x)
                if i in self.nl_index.get(k, []):
                    x = next(nls)(x)
        return x


# ----------------------------------------------------------------------------- BoT


class BoTBaseline(nn.Module):
    """BoT ``Baseline``: base → gap → bottleneck (BN1d, bias frozen) → classifier."""

    def __init__(
        self,
        depth: str,
        width: int,
        num_classes: int,
        neck: str = "bnneck",
        neck_feat: str = "after",
        ibn: bool = False,
    ) -> None:
        super().__init__()
        # resnet50_ibn_a (IBN-Net code) has the stem ReLU; BoT's own ResNet does not
        self.base = SrcResNet(depth, width, 1, stem_relu=ibn, ibn=ibn, imagenet_fc=ibn)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.neck, self.neck_feat = neck, neck_feat
        c = self.base.out_channels
        if neck == "no":
            self.classifier = nn.Linear(c, num_classes)
        else:
            self.bottleneck = nn.BatchNorm1d(c)
            self.bottleneck.bias.requires_grad_(False)
            self.classifier = nn.Linear(c, num_classes, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        global_feat = self.gap(self.base(x)).flatten(1)
        feat = global_feat if self.neck == "no" else self.bottleneck(global_feat)
        if self.training:
            return self.classifier(feat)
        return feat if self.neck_feat == "after" else global_feat


# ----------------------------------------------------------------------------- FastReID


class SrcGeM(nn.Module):
    def __init__(self, learnable: bool, p: float = 3.0) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.ones(1) * p) if learnable else p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(x.clamp(min=1e-6).pow(self.p), (1, 1)).pow(1.0 / self.p)


class FastHead(nn.Module):
    """FastReID ``EmbeddingHead`` (current) or v0.1.1 ``BNneckHead`` (``old=True``)."""

    def __init__(self, c: int, num_classes: int, pool: str, bnneck: bool, old: bool) -> None:
        super().__init__()
        self.old, self.bnneck_on = old, bnneck
        self.pool_layer = (
            SrcGeM(True)
            if pool == "gemP"
            else SrcGeM(False)
            if pool == "gem"
            else nn.AdaptiveAvgPool2d(1)
        )
        if old:
            self.bnneck = nn.BatchNorm2d(c)
            self.classifier = nn.Linear(c, num_classes, bias=False)
        else:
            self.bottleneck = nn.Sequential(*([nn.BatchNorm2d(c)] if bnneck else []))
            self.weight = nn.Parameter(torch.randn(num_classes, c) * 0.01)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        pooled = self.pool_layer(features)  # (B, C, 1, 1)
        neck = self.bnneck(pooled) if self.old else self.bottleneck(pooled)
        return neck[..., 0, 0]  # eval: always the head output


class FastBaseline(nn.Module):
    """FastReID ``Baseline``: 0–255 RGB in, ``(x − pixel_mean) / pixel_std`` inside."""

    def __init__(
        self,
        depth: str,
        width: int,
        num_classes: int,
        *,
        ibn: bool = False,
        nl: tuple[int, int, int, int] = (0, 0, 0, 0),
        nl_half: bool = False,
        pool: str = "avg",
        bnneck: bool = True,
        old: bool = False,
        pixel_mean: tuple[float, ...] = (0.485 * 255, 0.456 * 255, 0.406 * 255),
        pixel_std: tuple[float, ...] = (0.229 * 255, 0.224 * 255, 0.225 * 255),
    ) -> None:
        super().__init__()
        # padded max-pool and saved pixel buffers in v0.1.x; ceil-mode, unsaved buffers since
        self.backbone = SrcResNet(
            depth, width, 1, ceil_pool=not old, ibn=ibn, nl=nl, nl_half=nl_half
        )
        self.heads = FastHead(self.backbone.out_channels, num_classes, pool, bnneck, old)
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(1, -1, 1, 1), old)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(1, -1, 1, 1), old)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        images = (images - self.pixel_mean) / self.pixel_std
        return self.heads(self.backbone(images))


# ----------------------------------------------------------------------------- torchreid


class TorchreidResNet(nn.Module):
    """torchreid ``ResNet``: ``resnet50`` (last stride 2, no fc) or ``resnet50_fc512``."""

    def __init__(self, depth: str, width: int, num_classes: int, fc_dim: int | None) -> None:
        super().__init__()
        backbone = SrcResNet(depth, width, 1 if fc_dim else 2)
        for name in ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"):
            setattr(self, name, getattr(backbone, name))
        self.global_avgpool = nn.AdaptiveAvgPool2d((1, 1))
        c = backbone.out_channels
        self.fc = None
        if fc_dim:
            self.fc = nn.Sequential(
                nn.Linear(c, fc_dim), nn.BatchNorm1d(fc_dim), nn.ReLU(inplace=True)
            )
            c = fc_dim
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        v = self.global_avgpool(x).view(x.size(0), -1)
        if self.fc is not None:
            v = self.fc(v)
        return v if not self.training else self.classifier(v)


# ----------------------------------------------------------------------------- helpers


@torch.no_grad()
def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Random weights and BatchNorm statistics everywhere (nothing left at its init)."""
    g = torch.Generator().manual_seed(seed)
    for name, t in model.state_dict().items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            t.fill_(int(torch.randint(1, 1000, (1,), generator=g)))
        elif name.endswith("pool_layer.p"):
            t.copy_(2.0 + 2.0 * torch.rand(t.shape, generator=g))
        elif leaf == "running_var":
            t.copy_(0.5 + torch.rand(t.shape, generator=g))
        elif leaf in ("running_mean", "bias"):
            t.copy_(0.1 * torch.randn(t.shape, generator=g))
        elif leaf.startswith("pixel_"):
            continue
        elif t.dim() == 1:  # BN / IN scale
            t.copy_(0.5 + torch.rand(t.shape, generator=g))
        else:  # conv / linear; non-local θ, φ, g small (their product is cubic in the input)
            fan_in = math.prod(t.shape[1:])
            scale = 0.1 if re.search(r"NL_\d\.\d+\.(theta|phi|g|W\.0)\.", name) else 1.0
            t.copy_(torch.randn(t.shape, generator=g) * scale * math.sqrt(1.5 / fan_in))
    return model.eval()
