"""Make any embedding network honour the model contract, so every explainer and widget runs on it.

``wrap(module, layers={"name": "submodule.path", ...}, embedding=None)`` returns a
:class:`WrappedModel` (a :class:`~workbench.models.base.ReIDModel`) around an ``nn.Module`` that
maps (B, 3, H, W) images to embeddings — an OSNet, a timm backbone, a FastReID MGN — without
touching its code:

* ``forward(images)`` is ``embedding(module(images))`` (``embedding`` defaults to the identity;
  pass a callable that picks the embedding when the module returns a tuple or dict, or that
  pools a map);
* ``feature_maps(images)`` runs one forward with a forward hook on each named submodule and
  returns their outputs in forward order, then ``"embedding"``; it runs under the caller's grad
  mode, so explainers can differentiate through it, and the hooks are removed afterwards;
* ``layer_info`` rows come from **one probe forward** at construction (zeros of ``input_size``,
  eval mode, no grad): channels are ``shape[1]``, the reduction is ``H / h`` for 4-D outputs and
  ``None`` for vectors; module paths are ``"module.<your path>"`` so ``get_layer`` works.

The wrapper trains nothing: in train mode ``forward`` still returns the embedding. It is not in
the registry (it has no config to rebuild the network from), so it is not exported; save your
network in its own project.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from workbench.models.base import LayerInfo, ModelConfig, ModelConfigError, ReIDModel

__all__ = ["WrapConfig", "WrappedModel", "wrap"]


@dataclass
class WrapConfig(ModelConfig):
    """Configuration of a :class:`WrappedModel` (informational: it cannot rebuild the network).

    Attributes:
        layers: feature-map name → submodule path inside the wrapped module.
    """

    num_classes: int = 1
    layers: dict[str, str] = field(default_factory=dict)


class _Embedding(nn.Module):
    """Applies the user's ``embedding`` callable; its output is the ``"embedding"`` map."""

    def __init__(self, fn: Callable[[Any], Tensor] | None) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, out: Any) -> Tensor:
        emb = out if self.fn is None else self.fn(out)
        if not isinstance(emb, Tensor) or emb.dim() != 2:
            got = type(emb).__name__ if not isinstance(emb, Tensor) else f"shape {list(emb.shape)}"
            raise TypeError(
                f"the wrapped network's embedding must be a (B, D) tensor, got {got}; pass "
                f"embedding=callable to wrap() that takes the module's output and returns (B, D) "
                f"(e.g. lambda out: out[0], or lambda out: out.mean(dim=(2, 3)))"
            )
        return emb


class WrappedModel(ReIDModel):
    """An arbitrary embedding network behind the workbench model contract; see :func:`wrap`."""

    config_class: ClassVar[type[ModelConfig]] = WrapConfig
    # model_name stays "" (not registered): model_spec() and export refuse it with a clear message

    def __init__(
        self,
        module: nn.Module,
        config: WrapConfig,
        embedding: Callable[[Any], Tensor] | None = None,
    ) -> None:
        super().__init__(config)
        self.module = module
        self.embed = _Embedding(embedding)
        for name, path in config.layers.items():
            if name == "embedding":
                raise ModelConfigError("'embedding' is reserved for the output; rename that layer")
            try:
                module.get_submodule(path)
            except AttributeError:
                paths = [n for n, _ in module.named_modules() if n]
                close = difflib.get_close_matches(path, paths, n=3)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                tops = ", ".join(n for n, _ in module.named_children())
                raise ModelConfigError(
                    f"layer {name!r}: {type(module).__name__} has no submodule {path!r}.{hint} "
                    f"Its top-level children: {tops} (print(module) shows them all)"
                ) from None
        self.layer_info = self._probe()
        last = self.layer_info[-1]
        self.embedding_dim = self.feature_dim = last.channels

    def _run(self, images: Tensor) -> tuple[dict[str, Tensor], Tensor]:
        maps: dict[str, Tensor] = {}
        names = {id(self.module.get_submodule(p)): n for n, p in self.config.layers.items()}
        if len(names) != len(self.config.layers):
            raise ModelConfigError(
                f"two layer names point to the same module: {self.config.layers}"
            )

        def hook(mod: nn.Module, _inp: Any, out: Any) -> None:
            name = names[id(mod)]
            if not isinstance(out, Tensor):
                raise TypeError(
                    f"layer {name!r} ({self.config.layers[name]}) returns a "
                    f"{type(out).__name__}, not a tensor; name a submodule whose output is a "
                    f"(B, C, h, w) map or a (B, D) vector"
                )
            if name in maps:
                raise ModelConfigError(
                    f"layer {name!r} ({self.config.layers[name]}) runs more than once per "
                    f"forward; name a module that runs once"
                )
            maps[name] = out

        handles = [
            self.module.get_submodule(p).register_forward_hook(hook)
            for p in self.config.layers.values()
        ]
        try:
            emb = self.embed(self.module(images))
        finally:
            for h in handles:
                h.remove()
        missing = [n for n in self.config.layers if n not in maps]
        if missing:
            raise ModelConfigError(f"layers {missing} did not run in the forward pass")
        return maps, emb

    @torch.no_grad()
    def _probe(self) -> list[LayerInfo]:
        h, w = self.config.input_size
        try:
            device = next(self.module.parameters()).device
        except StopIteration:
            device = torch.device("cpu")
        was_training = self.training
        self.eval()
        try:
            maps, emb = self._run(torch.zeros(1, 3, h, w, device=device))
        finally:
            self.train(was_training)
        rows = []
        for name, t in maps.items():  # forward order
            path = f"module.{self.config.layers[name]}"
            if t.dim() == 4:
                rows.append(LayerInfo(name, t.shape[1], _reduction(h, t), path, "stage"))
            elif t.dim() == 2:
                rows.append(LayerInfo(name, t.shape[1], None, path, "vector"))
            else:
                raise ModelConfigError(
                    f"layer {name!r} gives a {t.dim()}-D output {list(t.shape)}; feature maps "
                    f"are (B, C, h, w) or (B, D) (a transformer's tokens need reshaping first)"
                )
        rows.append(LayerInfo("embedding", emb.shape[1], None, "embed", "vector"))
        return rows

    def forward(self, images: Tensor) -> Tensor:
        """The (B, D) embedding of the wrapped network's output."""
        return self.embed(self.module(images))

    def feature_maps(self, images: Tensor) -> dict[str, Tensor]:
        """The wrapped network's named maps and the ``embedding``."""
        maps, emb = self._run(images)
        return {**maps, "embedding": emb}


def _reduction(h: int, t: Tensor) -> int:
    """Stride of a (B, C, h', w') map w.r.t. an (h, w) input, such that h' = ceil(h / r)."""
    return max(1, round(h / t.shape[2]))


def wrap(
    module: nn.Module,
    layers: Mapping[str, str] | None = None,
    embedding: Callable[[Any], Tensor] | None = None,
    *,
    input_size: tuple[int, int] = (256, 128),
) -> WrappedModel:
    """Wrap an embedding network so it honours the model contract (see the module docstring).

    Args:
        module: maps (B, 3, H, W) images (normalised as it was trained) to embeddings.
        layers: feature-map name → submodule path (``module.get_submodule`` syntax), e.g.
            ``{"layer3": "layer3", "layer4": "layer4"}`` or ``{"conv5": "conv5"}`` for OSNet.
        embedding: callable from the module's output to the (B, D) embedding; None = the output.
        input_size: (H, W) of the probe forward that measures channels and reductions.

    Example:
        >>> model = wrap(osnet, {"conv4": "conv4", "conv5": "conv5"})  # doctest: +SKIP
        >>> model.layer_info[-2]  # doctest: +SKIP
        LayerInfo(name='conv5', channels=512, reduction=16, module='module.conv5', kind='stage')
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"wrap() needs an nn.Module, got {type(module).__name__}")
    config = WrapConfig(input_size=tuple(input_size), layers=dict(layers or {}))  # type: ignore[arg-type]
    return WrappedModel(module, config, embedding)
