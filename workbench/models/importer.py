"""Import checkpoints trained with the official BoT code, FastReID or torchreid as workbench models.

``import_checkpoint(path, source=None, **config)`` reads the file without unpickling code
(``torch.load(weights_only=True)`` with only numpy's scalar types allow-listed, or safetensors),
detects the source from the key names, builds a :class:`~workbench.models.bot.BoT` whose config
carries every option the file needs (so ``workbench export`` → ``load_pretrained`` keeps them) and
maps the weights. The model takes the workbench's input (RGB in [0, 1], ImageNet mean/std) and, in
eval mode, returns the embedding the source model returns in its own test mode on the same picture
under its own preprocessing: 0–255 scaling and ``pixel_mean/std`` are folded into an input
re-normalisation (only when they are not ImageNet's), BGR channel order into ``conv1``.

Imported models are BoT-shaped ResNets (ResNet-18/34/50, any width). Anything else — ResNeSt,
ResNeXt, SE blocks, ResNet-101, MGN, OSNet, FastReID's ``EMBEDDING_DIM`` reduction — is refused
with a message naming what was found; :func:`workbench.models.wrap` explains those networks.

=========  ==============================================  ========================================
source     what is mapped (file → workbench)               embedding returned (source's test mode)
=========  ==============================================  ========================================
bot        ``base.*`` → ``backbone.*`` (no stem ReLU;      ``neck_feat`` of BNNeck: ``"after"`` =
           ``resnet50_ibn_a``: IBN-a + stem ReLU, its      ``bottleneck(gap)`` (BoT
           unused ``base.fc`` dropped); ``bottleneck.*``   ``TEST.NECK_FEAT``, default) or
           → ``head.bn``; ``classifier.*`` →               ``"before"`` = GAP feature; not
           ``head.classifier``; last stride 1              L2-normalised (``FEAT_NORM`` is the
                                                           evaluator's)
fastreid   ``backbone.*`` (IBN-a ``bn1.IN/BN``,            the head output: ``bottleneck(pool)``
           ``NL_k`` non-local) → ``backbone.*``;           (post-BN, whatever ``NECK_FEAT`` says:
           ``heads.pool_layer.p`` → GeM ``pool.p``;        that is the *training* feature), or the
           ``heads.bnneck`` (v0.1.x, padded max-pool) /    pooled feature without BNNeck
           ``heads.bottleneck.0`` (ceil max-pool) →
           ``head.bn``; ``heads.weight`` /
           ``heads.classifier.weight`` →
           ``head.classifier``; ``pixel_mean/std``
           buffers (0–255) → ``pixel_mean/std``
torchreid  ``conv1/bn1/layer*`` → ``backbone.*``;          ``resnet*``: the GAP feature (last
           ``fc.0/fc.1`` → ``fc`` (``resnet50_fc512``);    stride 2); ``resnet50_fc512``: the
           ``classifier.*`` → ``head.classifier``          Linear+BN+ReLU output (last stride 1)
=========  ==============================================  ========================================

What the file cannot tell, and its default (pass the field to change it): ``last_stride`` (BoT,
FastReID: 1; torchreid: 2, or 1 with fc512), FastReID's fixed-``p`` GeM of the AGW configs (not
in the file: pass ``pool="gem", gem_learnable=False``), FastReID's max-pool for files with
``heads.bottleneck.0`` keys saved between Sep and Nov 2020 (``stem_pool="pad"``), the pixel
statistics when the file has no buffers (ImageNet; ``pixel_mean``/``pixel_std`` in 0–1 RGB), BoT's
``TEST.NECK_FEAT`` (``neck_feat``), ``input_size`` (256×128; FastReID SBS uses 384×128) and
``channel_order="bgr"`` for weights trained on BGR pictures.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor

from workbench.models.base import CheckpointMismatchError, compare_state_dicts, format_key_lists
from workbench.models.bot import BoT, BoTConfig
from workbench.models.registry import build_config
from workbench.models.resnet import IMAGENET_MEAN, IMAGENET_STD, RESNET_DEPTHS, Bottleneck

__all__ = [
    "SOURCES",
    "CheckpointFormatError",
    "ImportReport",
    "UnsupportedArchitectureError",
    "detect_source",
    "import_checkpoint",
    "import_state_dict",
    "read_checkpoint",
]

SOURCES = ("bot", "fastreid", "torchreid")
_WRAP_HINT = (
    "Other architectures can still be explained: build the model in its own project and pass "
    "it to workbench.models.wrap(module, layers={...})."
)
#: what detect_source looks for, also printed when nothing matches
_PATTERNS = {
    "fastreid": "keys 'backbone.*' and 'heads.*' (meta-arch Baseline)",
    "bot": "keys 'base.*' and 'bottleneck.*' or 'classifier.*' (modeling/baseline.py)",
    "torchreid": "keys 'conv1.weight', 'layer1.*' and 'classifier.weight' (models/resnet.py)",
}
#: key patterns of architectures we do not rebuild → the option that names them
_UNSUPPORTED = [
    (
        re.compile(r"\.se\.|\.se_module\."),
        "squeeze-excitation blocks (FastReID WITH_SE / SE-ResNet)",
    ),
    (re.compile(r"\.radix|\.rsoftmax|conv2\.fc1|\.avd_layer"), "ResNeSt split-attention blocks"),
    (re.compile(r"^b[1-3]\d?(_head|_pool)?\."), "MGN branches (FastReID MGN)"),
    (re.compile(r"^conv1\.conv\.|^conv2\.0\.conv1\."), "OSNet (torchreid / FastReID osnet)"),
]


class CheckpointFormatError(ValueError):
    """A file that is not a readable state dict of a supported source (the message says why)."""


class UnsupportedArchitectureError(CheckpointFormatError):
    """A checkpoint of an architecture the importer does not rebuild (use ``wrap``)."""


@dataclass
class ImportReport:
    """What :func:`import_checkpoint` did; attached to the model as ``model.import_report``."""

    source: str
    path: str
    config: dict[str, Any]
    embedding: str  # which feature the model returns, in words
    mapped: int = 0  # file entries loaded into the model
    dropped: list[str] = field(default_factory=list)  # file entries without effect at test time
    filled: list[str] = field(default_factory=list)  # model entries the file lacks (harmless)


# --------------------------------------------------------------------------- reading


def _numpy_safe_globals() -> list[Any]:
    """Exactly the numpy types a torchreid checkpoint pickles for ``rank1`` (a numpy scalar)."""
    import numpy as np

    try:
        from numpy._core.multiarray import scalar
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    allowed: list[Any] = [
        np.dtype,
        scalar,
        (scalar, "numpy.core.multiarray.scalar"),  # files written with numpy 1.x
        (scalar, "numpy._core.multiarray.scalar"),
    ]
    dtypes = getattr(np, "dtypes", None)  # numpy >= 1.25 pickles dtype classes by name
    if dtypes is not None:
        for name in ("Float16DType", "Float32DType", "Float64DType", "Int32DType", "Int64DType"):
            if hasattr(dtypes, name):
                allowed.append(getattr(dtypes, name))
    return allowed


def _refuse_pickle(path: Path, error: Exception) -> CheckpointFormatError:
    try:
        needs = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception:  # legacy (non-zip) files: the error text is all we have
        needs = []
    needs = sorted(needs, key=lambda n: (n.startswith("torch."), n))  # the user's classes first
    what = f" ({', '.join(needs[:6])}{', ...' if len(needs) > 6 else ''})" if needs else ""
    return CheckpointFormatError(
        f"{path}: the file pickles Python objects{what}, not only tensors — e.g. a whole model "
        f"saved with torch.save(model), as ignite 0.1.x does in BoT's code (BoT issues #85, "
        f"#101: 'Baseline' object is not iterable). Loading it would "
        f"run code from the file (torch.load(weights_only=False)), so it is refused. Convert it "
        f"in its own project, where those classes exist: "
        f"torch.save(torch.load(path, weights_only=False).state_dict(), 'model_state.pth') "
        f"(for a whole model), then import model_state.pth. ({type(error).__name__} under "
        f"torch.load(weights_only=True))"
    )


def read_checkpoint(path: str | Path) -> dict[str, Tensor]:
    """The name → tensor state dict of a BoT / FastReID / torchreid file, unwrapped.

    Accepts a bare state dict, FastReID's ``{"model": ...}``, torchreid's ``{"state_dict": ...,
    "epoch": ..., "rank1": <numpy scalar>, "optimizer": ...}`` and ``module.``-prefixed keys.

    Raises:
        FileNotFoundError: no such file.
        CheckpointFormatError: not readable without unpickling code, or no state dict inside.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no such file; pass a .pth/.pt/.pth.tar or .safetensors checkpoint written "
            f"by BoT, FastReID or torchreid"
        )
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            obj: Any = load_file(str(path))
        except Exception as e:
            raise CheckpointFormatError(f"{path}: not a readable safetensors file ({e})") from e
    else:
        try:
            with torch.serialization.safe_globals(_numpy_safe_globals()):
                obj = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:
            if isinstance(e, pickle.UnpicklingError) or "Weights only" in str(e):
                raise _refuse_pickle(path, e) from e
            raise CheckpointFormatError(
                f"{path}: cannot be read as a PyTorch checkpoint ({type(e).__name__}: {e}); is "
                f"the file complete?"
            ) from e
    if isinstance(obj, Mapping) and not all(isinstance(v, Tensor) for v in obj.values()):
        for wrapper in ("state_dict", "model"):  # torchreid, FastReID
            if isinstance(obj.get(wrapper), Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise CheckpointFormatError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    bad = [k for k, v in obj.items() if not isinstance(v, Tensor)]
    if bad:
        raise CheckpointFormatError(
            f"{path}: no state dict found: top-level entries {sorted(map(str, obj))[:12]} are not "
            f"all tensors and none of 'state_dict' (torchreid) or 'model' (FastReID) holds one"
        )
    state = {str(k): v for k, v in obj.items()}
    while state and all(k.startswith("module.") for k in state):  # (Distributed)DataParallel
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


# --------------------------------------------------------------------------- detection


def _is_torchvision(state: Mapping[str, Tensor]) -> bool:
    fc = state.get("fc.weight")
    return (
        "conv1.weight" in state
        and fc is not None
        and fc.dim() == 2
        and "classifier.weight" not in state
    )


def detect_source(state: Mapping[str, Tensor], path: str | Path = "checkpoint") -> str:
    """``"bot"``, ``"fastreid"`` or ``"torchreid"`` from the key names.

    Raises:
        CheckpointFormatError: a torchvision ImageNet file (pointed to ``load_imagenet_weights``)
            or keys that match none of the patterns (they are listed).
    """
    keys = list(state)
    if any(k.startswith("backbone.") for k in keys) and any(k.startswith("heads.") for k in keys):
        return "fastreid"
    if any(k.startswith("base.") for k in keys) and any(
        k.startswith(("bottleneck.", "classifier.")) for k in keys
    ):
        return "bot"
    if (
        "conv1.weight" in state
        and "classifier.weight" in state
        and any(k.startswith("layer1.") for k in keys)
    ):
        return "torchreid"
    if _is_torchvision(state):
        raise CheckpointFormatError(
            f"{path}: a torchvision ImageNet classifier (conv1, layer1..4, fc {list(state['fc.weight'].shape)}), "
            f"with no ReID head: load it into a backbone with "
            f"workbench.models.load_imagenet_weights(model.backbone, path), or build_model('bot', "
            f"pretrained=path) to train a ReID model from it"
        )
    looked = "; ".join(f"{s}: {p}" for s, p in _PATTERNS.items())
    found = _unsupported(keys)
    raise CheckpointFormatError(
        f"{path}: cannot tell which codebase wrote it; looked for {looked}. First keys of the "
        f"file: {', '.join(keys[:8])}{' ...' if len(keys) > 8 else ''}."
        + (f" The keys look like {found}, which is not imported." if found else "")
        + " Pass source= if you know it. "
        + _WRAP_HINT
    )


def _unsupported(keys: list[str]) -> str:
    found = [what for pattern, what in _UNSUPPORTED if any(pattern.search(k) for k in keys)]
    return ", ".join(found)


# --------------------------------------------------------------------------- backbone


def _infer_resnet(state: Mapping[str, Tensor], prefix: str, path: str) -> dict[str, Any]:
    """Depth, width, IBN and non-local options of a ResNet stored under ``prefix``."""
    found = _unsupported([k[len(prefix) :] for k in state if k.startswith(prefix)])
    if found:
        raise UnsupportedArchitectureError(f"{path}: the backbone has {found}. " + _WRAP_HINT)
    if f"{prefix}conv1.weight" not in state:
        raise UnsupportedArchitectureError(
            f"{path}: no '{prefix}conv1.weight': not a ResNet backbone (ResNeSt's deep stem, "
            f"OSNet, MobileNet, RegNet, ViT ... are not imported). " + _WRAP_HINT
        )
    width = int(state[f"{prefix}conv1.weight"].shape[0])
    counts = []
    for k in range(1, 5):
        blocks = {
            m.group(1)
            for key in state
            if (m := re.match(rf"{re.escape(prefix)}layer{k}\.(\d+)\.", key))
        }
        counts.append(len(blocks))
    bottleneck = f"{prefix}layer1.0.conv3.weight" in state
    depth = next(
        (
            name
            for name, (block, layers) in RESNET_DEPTHS.items()
            if tuple(layers) == tuple(counts) and (block is Bottleneck) == bottleneck
        ),
        None,
    )
    if depth is None:
        kind = "Bottleneck" if bottleneck else "BasicBlock"
        raise UnsupportedArchitectureError(
            f"{path}: a ResNet with {kind} blocks {tuple(counts)} per stage; imported depths are "
            + ", ".join(f"{n} {tuple(layers)}" for n, (_, layers) in RESNET_DEPTHS.items())
            + ". "
            + _WRAP_HINT
        )
    conv2 = state.get(f"{prefix}layer1.0.conv2.weight")
    if bottleneck and conv2 is not None and conv2.shape[1] != conv2.shape[0]:
        raise UnsupportedArchitectureError(
            f"{path}: grouped 3×3 convolutions ({prefix}layer1.0.conv2.weight "
            f"{list(conv2.shape)}): a ResNeXt. " + _WRAP_HINT
        )
    nonlocal_blocks = []
    inter = "one"
    exp = 4 if bottleneck else 1
    for k in range(1, 5):
        idx = {
            m.group(1)
            for key in state
            if (m := re.match(rf"{re.escape(prefix)}NL_{k}\.(\d+)\.", key))
        }
        nonlocal_blocks.append(len(idx))
        if idx:
            n_inter = int(state[f"{prefix}NL_{k}.0.theta.weight"].shape[0])
            channels = width * 2 ** (k - 1) * exp
            if n_inter == 1:
                inter = "one"
            elif n_inter == channels // 2:
                inter = "half"
            else:
                raise UnsupportedArchitectureError(
                    f"{path}: non-local blocks with {n_inter} inner channels for {channels}; "
                    f"imported: 1 (FastReID) or {channels // 2} (C/2). " + _WRAP_HINT
                )
    return {
        "backbone": depth,
        "width": width,
        "ibn": f"{prefix}layer1.0.bn1.IN.weight" in state,
        "nonlocal_blocks": tuple(nonlocal_blocks),
        "nonlocal_inter": inter,
    }


def _move(state: Mapping[str, Tensor], old: str, new: str) -> dict[str, Tensor]:
    """Entries under prefix ``old`` renamed to prefix ``new``."""
    return {new + k[len(old) :]: v for k, v in state.items() if k.startswith(old)}


# --------------------------------------------------------------------------- per source


def _from_bot(
    state: Mapping[str, Tensor], path: str
) -> tuple[dict[str, Any], dict[str, Tensor], list[str], str]:
    cfg = _infer_resnet(state, "base.", path)
    # BoT's plain ResNet omits the stem ReLU; its resnet50_ibn_a (IBN-Net's code) applies it
    cfg.update(
        stem_relu=cfg["ibn"], stem_pool="pad", last_stride=1, neck="bottleneck.weight" in state
    )
    dropped = [k for k in state if k.startswith("base.fc.")]  # ResNet_IBN's unused ImageNet fc
    mapped = _move({k: v for k, v in state.items() if k not in dropped}, "base.", "backbone.")
    mapped |= _move(state, "bottleneck.", "head.bn.")
    mapped |= _move(state, "classifier.", "head.classifier.")
    if "classifier.weight" in state:
        cfg["num_classes"] = int(state["classifier.weight"].shape[0])
    return cfg, mapped, dropped, "BNNeck feature (neck_feat='after') or GAP feature ('before')"


def _from_fastreid(
    state: Mapping[str, Tensor], path: str
) -> tuple[dict[str, Any], dict[str, Tensor], list[str], str]:
    cfg = _infer_resnet(state, "backbone.", path)
    cfg.update(stem_relu=True, last_stride=1)
    heads = {k: v for k, v in state.items() if k.startswith("heads.")}
    mapped = _move(state, "backbone.", "backbone.")
    dropped: list[str] = []
    w = heads.get("heads.bottleneck.0.weight")
    if w is not None and w.dim() > 1:
        raise UnsupportedArchitectureError(
            f"{path}: heads.bottleneck.0 is a {list(w.shape)} convolution (MODEL.HEADS."
            f"EMBEDDING_DIM > 0, a reduction before the BNNeck), which is not imported. "
            + _WRAP_HINT
        )
    if any(k.startswith("heads.bnneck.") for k in heads):  # v0.1.x: padded max-pool
        cfg.update(stem_pool="pad", neck=True)
        mapped |= _move(heads, "heads.bnneck.", "head.bn.")
    elif any(k.startswith("heads.bottleneck.0.") for k in heads):  # since Sep 2020
        cfg.update(stem_pool="ceil", neck=True)
        mapped |= _move(heads, "heads.bottleneck.0.", "head.bn.")
    else:  # WITH_BNNECK False: the head returns the pooled feature
        cfg.update(stem_pool="ceil", neck=False)
    for key in ("heads.weight", "heads.classifier.weight"):
        if key in heads:
            mapped["head.classifier.weight"] = heads[key]
            cfg["num_classes"] = int(heads[key].shape[0])
    if "heads.pool_layer.p" in heads:
        cfg.update(
            pool="gem", gem_learnable=True, gem_p=float(heads["heads.pool_layer.p"].reshape(-1)[0])
        )
        mapped["pool.p"] = heads["heads.pool_layer.p"].reshape(1)
    known = {"heads.weight", "heads.classifier.weight", "heads.pool_layer.p"}
    # training-only classifier state, e.g. ArcSoftmax's buffer ``t`` (v1.0 layers/arc_softmax.py)
    dropped += [k for k in heads if k.startswith("heads.classifier.") and k not in known]
    rest = [
        k
        for k in heads
        if k not in known
        and k not in dropped
        and not k.startswith(("heads.bnneck.", "heads.bottleneck.0."))
    ]
    for k in rest:  # anything else in the head: left for the mismatch report
        mapped[k] = heads[k]
    for name in ("pixel_mean", "pixel_std"):  # persistent buffers before ~2021, 0-255 scale
        if name in state:
            cfg[name] = tuple(round(float(v) / 255.0, 6) for v in state[name].reshape(-1))
            dropped.append(name)
    others = [k for k in state if not k.startswith(("backbone.", "heads.")) and k not in dropped]
    for k in others:
        mapped[k] = state[k]
    return (
        cfg,
        mapped,
        dropped,
        "head output: BNNeck feature (or the pooled feature without BNNeck)",
    )


def _from_torchreid(
    state: Mapping[str, Tensor], path: str
) -> tuple[dict[str, Any], dict[str, Tensor], list[str], str]:
    backbone_keys = {
        k: v
        for k, v in state.items()
        if k.split(".")[0] in ("conv1", "bn1") or k.startswith("layer")
    }
    cfg = _infer_resnet(backbone_keys, "", path)
    fc_layers = sorted({int(m.group(1)) for k in state if (m := re.match(r"fc\.(\d+)\.", k))})
    if fc_layers and fc_layers != [0, 1]:
        raise UnsupportedArchitectureError(
            f"{path}: torchreid fc neck with layers {fc_layers}; imported: one Linear + BN "
            f"(fc_dims=[D], e.g. resnet50_fc512). " + _WRAP_HINT
        )
    fc_dim = int(state["fc.0.weight"].shape[0]) if fc_layers else 0
    cfg.update(
        stem_relu=True, stem_pool="pad", last_stride=1 if fc_dim else 2, neck=False, fc_dim=fc_dim
    )
    mapped = {f"backbone.{k}": v for k, v in backbone_keys.items()}
    mapped |= _move(state, "fc.", "fc.")
    mapped |= _move(state, "classifier.", "head.classifier.")
    cfg["num_classes"] = int(state["classifier.weight"].shape[0])
    for k in state:
        if k not in backbone_keys and not k.startswith(("fc.", "classifier.")):
            mapped[k] = state[k]
    what = "fc512 output (Linear+BN+ReLU)" if fc_dim else "GAP feature"
    return cfg, mapped, [], what


_CONVERTERS = {"bot": _from_bot, "fastreid": _from_fastreid, "torchreid": _from_torchreid}


# --------------------------------------------------------------------------- import


def import_state_dict(
    state: Mapping[str, Tensor],
    source: str | None = None,
    *,
    path: str | Path = "checkpoint",
    channel_order: Literal["rgb", "bgr"] = "rgb",
    **config: Any,
) -> BoT:
    """:func:`import_checkpoint` for a state dict already in memory (``module.`` stripped)."""
    path = str(path)
    if source is None:
        source = detect_source(state, path)
    if source not in _CONVERTERS:
        raise ValueError(f"source must be one of {', '.join(SOURCES)} or None, got {source!r}")
    if channel_order not in ("rgb", "bgr"):
        raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
    if source == "fastreid" and "heads.pool_layer.p" not in state and "pool" not in config:
        if any(k.startswith("backbone.NL_") for k in state):
            warnings.warn(
                f"{path}: non-local blocks but no GeM p in the file. If it was trained with "
                f"FastReID's AGW config (fixed-p GeM, not saved), pass pool='gem', "
                f"gem_learnable=False; average pooling is assumed.",
                stacklevel=3,
            )
    inferred, mapped, dropped, embedding = _CONVERTERS[source](state, path)
    cfg = {**inferred, **config}
    if channel_order == "bgr":  # the source sees BGR: permute its statistics, flip conv1's input
        cfg["pixel_mean"] = tuple(reversed(cfg.get("pixel_mean") or IMAGENET_MEAN))
        cfg["pixel_std"] = tuple(reversed(cfg.get("pixel_std") or IMAGENET_STD))
        mapped["backbone.conv1.weight"] = mapped["backbone.conv1.weight"].flip(1)
    mean = tuple(cfg.get("pixel_mean") or IMAGENET_MEAN)
    std = tuple(cfg.get("pixel_std") or IMAGENET_STD)
    imagenet = (mean, std) == (IMAGENET_MEAN, IMAGENET_STD)
    cfg["pixel_mean"], cfg["pixel_std"] = (None, None) if imagenet else (mean, std)
    model_config: BoTConfig = build_config("bot", **cfg)  # type: ignore[assignment]
    model = BoT(model_config)
    target = model.state_dict()
    filled = []
    for k, v in target.items():  # absent from some files; no effect on the test-time embedding
        if k not in mapped and (k.endswith("num_batches_tracked") or k == "head.classifier.bias"):
            mapped[k] = v.clone() if k.endswith("num_batches_tracked") else torch.zeros_like(v)
            filled.append(k)
        elif k == "head.classifier.weight" and k not in mapped:
            mapped[k] = v.clone()  # no classifier in the file
            filled.append(k)
    missing, unexpected, mismatched = compare_state_dicts(target, mapped)
    if missing or unexpected or mismatched:
        found = _unsupported(unexpected)
        raise CheckpointMismatchError(
            f"{path} ({source}) does not fit the workbench model inferred from it "
            f"({model_config.backbone}, width {model_config.width}):\n"
            + format_key_lists(missing, unexpected, mismatched)
            + (f"\nThose keys look like {found}." if found else "")
            + f"\nIs it really a {source} ResNet checkpoint (source={source!r})? "
            + _WRAP_HINT,
            missing,
            unexpected,
            mismatched,
        )
    model.load_state_dict({k: v.to(target[k].dtype) for k, v in mapped.items()}, strict=True)
    model.eval()
    model.import_report = ImportReport(  # type: ignore[assignment]
        source=source,
        path=path,
        config=model_config.to_dict(),
        embedding=embedding,
        mapped=len(mapped) - len(filled),
        dropped=dropped,
        filled=filled,
    )
    return model


def import_checkpoint(
    path: str | Path,
    source: str | None = None,
    *,
    channel_order: Literal["rgb", "bgr"] = "rgb",
    **config: Any,
) -> BoT:
    """Import a BoT / FastReID / torchreid checkpoint as a workbench :class:`BoT` (eval mode).

    Args:
        path: ``.pth``/``.pt``/``.pth.tar``/``.safetensors`` file in the form the project saves.
        source: ``"bot"``, ``"fastreid"``, ``"torchreid"`` or None (detected from key names).
        channel_order: ``"bgr"`` for weights trained on BGR pictures (folded into ``conv1``).
        **config: :class:`BoTConfig` fields that override what the file implies (see the module
            docstring: ``last_stride``, ``pool``/``gem_learnable``, ``stem_pool``,
            ``pixel_mean``/``pixel_std`` (0–1, the source's channel order), ``neck_feat``,
            ``input_size``).

    Returns:
        The model, with ``model.import_report`` (:class:`ImportReport`) and ``model.card`` (name,
        source, input size) for the CLI; ``model(images)`` in eval mode is the source's
        test-time embedding (see the table in the module docstring).

    Raises:
        FileNotFoundError, CheckpointFormatError: unreadable file, pickled classes (refused, with
            how to convert), a torchvision ImageNet file, or an unknown key layout.
        UnsupportedArchitectureError: ResNeSt, SE, ResNeXt, ResNet-101, MGN, OSNet, ... (use
            :func:`workbench.models.wrap`).
        CheckpointMismatchError: keys that do not fit (listed).

    Example:
        >>> model = import_checkpoint("logs/market1501/sbs_R50/model_final.pth")  # doctest: +SKIP
        >>> model.import_report.source  # doctest: +SKIP
        'fastreid'
    """
    state = read_checkpoint(path)
    model = import_state_dict(state, source, path=path, channel_order=channel_order, **config)
    model.card = {  # type: ignore[assignment]
        "name": Path(path).name,
        "architecture": "bot",
        "source": model.import_report.source,
        "source_file": str(path),
        "input_size": list(model.config.input_size),
        "model_config": model.config.to_dict(),
    }
    return model
