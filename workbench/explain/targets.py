"""What to explain: small callables ``target(embedding, model) -> (B,) scores``.

Shared by every explainer and widget. A target sees the eval-mode embedding (B, D) the model
returns and the model itself (for heads: the ID classifier, attribute classifiers). Targets hold
their reference tensors and move with :meth:`to`, so explanations stay on the model's device.

* :class:`EmbeddingSimilarity` — the ranking similarity (cos or −‖e − r‖₂) to a reference
  embedding: "what makes this image look like that one" (a one-sided pair explanation;
  ``explain_pair`` does both sides).
* :class:`PairDistance` — +‖e − r‖₂: "what makes them differ".
* :class:`IdentityLogit` — the ID classifier's logit of a training identity.
* :class:`AttributeLogit` — an attribute classifier's logit (models that declare
  ``Capability.ATTRIBUTE_LOGITS``).
* :class:`GroupEmbedding` — a channel group of the embedding (DAAF's partial maps, eq. 8).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from workbench.evaluate.distance import pair_distance, pair_similarity, ranking_metric
from workbench.explain.base import ExplainError
from workbench.explain.base import Target as _Target
from workbench.models.base import Capability, capabilities_of

__all__ = [
    "AttributeLogit",
    "EmbeddingSimilarity",
    "GroupEmbedding",
    "IdentityLogit",
    "PairDistance",
    "SimilarityMargin",
    "group_slices",
]


def _reference(reference: Tensor, embedding: Tensor, name: str) -> Tensor:
    if not isinstance(reference, Tensor):
        raise ExplainError(
            f"{name}: the reference must be a tensor (an embedding of the model), got "
            f"{type(reference).__name__}"
        )
    if not bool(torch.isfinite(reference).all()):
        raise ExplainError(f"{name}: the reference embedding holds NaN/inf values")
    ref = reference if reference.dim() == 2 else reference.unsqueeze(0)
    if ref.shape[-1] != embedding.shape[-1] or ref.shape[0] not in (1, embedding.shape[0]):
        raise ExplainError(
            f"{name}: reference of shape {tuple(reference.shape)} does not match embeddings of "
            f"shape {tuple(embedding.shape)}; pass one (D,) embedding or one per image (B, D)"
        )
    return ref.to(embedding.device, embedding.dtype)


@dataclass(repr=False)
class EmbeddingSimilarity(_Target):
    """Similarity to a reference embedding under a ranking metric: cos(e, r) or −‖e − r‖₂.

    Args:
        reference: (D,) one embedding for every image, or (B, D) one per image.
        metric: ``"cosine"``, ``"euclidean"``, or None (default): the model's own ranking
            metric (``model.ranking_metric``), so the score is the similarity that ranked it.
    """

    reference: Tensor
    metric: str | None = None

    def __post_init__(self) -> None:
        if self.metric not in (None, "euclidean", "cosine"):
            raise ExplainError(
                f"metric must be 'euclidean', 'cosine' or None (the model's), got {self.metric!r}"
            )

    def __call__(self, embedding: Tensor, model: nn.Module | None = None) -> Tensor:
        ref = _reference(self.reference, embedding, "EmbeddingSimilarity")
        metric = self.metric or ("cosine" if model is None else ranking_metric(model))
        return pair_similarity(embedding, ref.expand_as(embedding), metric)

    def __repr__(self) -> str:
        return f"EmbeddingSimilarity({self.metric or 'ranking metric'})"


@dataclass(repr=False)
class SimilarityMargin(_Target):
    """s(e, g₁) − s(e, g₂): by how much an image is closer to one reference than another.

    "Why is g₁ ranked above g₂ for this query?" as one scalar: its gradient map shows what of
    the query pulls it towards g₁ more than towards g₂ (``reference/pairs.md`` §2).

    Args:
        higher, lower: (D,) embeddings of g₁ and g₂.
        metric: as :class:`EmbeddingSimilarity` (None: the model's ranking metric).
    """

    higher: Tensor
    lower: Tensor
    metric: str | None = None

    def similarities(self, embedding: Tensor, model: nn.Module | None = None) -> Tensor:
        """(B, 2): the similarity of each image to g₁ and to g₂."""
        metric = self.metric or ("cosine" if model is None else ranking_metric(model))
        return torch.stack(
            [
                pair_similarity(
                    embedding,
                    _reference(r, embedding, "SimilarityMargin").expand_as(embedding),
                    metric,
                )
                for r in (self.higher, self.lower)
            ],
            dim=-1,
        )

    def __call__(self, embedding: Tensor, model: nn.Module | None = None) -> Tensor:
        both = self.similarities(embedding, model)
        return both[:, 0] - both[:, 1]

    def __repr__(self) -> str:
        return f"SimilarityMargin({self.metric or 'ranking metric'})"


@dataclass(repr=False)
class PairDistance(_Target):
    """Euclidean distance ‖e − r‖₂ to a reference embedding (what drives two people apart)."""

    reference: Tensor

    def __call__(self, embedding: Tensor, model: nn.Module | None = None) -> Tensor:
        ref = _reference(self.reference, embedding, "PairDistance")
        return pair_distance(embedding, ref.expand_as(embedding), "euclidean")

    def __repr__(self) -> str:
        return "PairDistance()"


def _labels(label: int | Tensor, batch: int, classes: int, device: torch.device) -> Tensor:
    labels = torch.as_tensor(label, device=device)
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise ExplainError(f"IdentityLogit: labels must be integers, got {label!r}")
    labels = labels.long().reshape(-1)
    if labels.numel() not in (1, batch):
        raise ExplainError(f"give one label or one per image ({batch}), got {labels.numel()}")
    bad = labels[(labels < 0) | (labels >= classes)]
    if bad.numel():
        raise ExplainError(
            f"IdentityLogit: label {int(bad[0])} is not a training identity of the model; "
            f"labels are 0 … {classes - 1} (the classifier's {classes} classes)"
        )
    return labels.expand(batch)


@dataclass(repr=False)
class IdentityLogit(_Target):
    """The ID classifier's logit of training identity ``label`` (an int or one per image).

    Needs a model that declares ``Capability.IDENTITY_LOGITS``: ``model.classify(embedding) ->
    (B, num_classes)`` (BoT and the zoo models).
    """

    label: int | Tensor

    def __call__(self, embedding: Tensor, model: nn.Module | None = None) -> Tensor:
        if model is None or Capability.IDENTITY_LOGITS not in capabilities_of(model):
            raise ExplainError(
                f"IdentityLogit needs a model with an ID classifier (classify(embedding)); "
                f"{type(model).__name__} has none"
            )
        logits = model.classify(embedding)
        labels = _labels(self.label, embedding.shape[0], logits.shape[1], embedding.device)
        return logits.gather(1, labels[:, None])[:, 0]

    def __repr__(self) -> str:
        return f"IdentityLogit({self.label if isinstance(self.label, int) else 'per image'})"


@dataclass(repr=False)
class AttributeLogit(_Target):
    """Logit of attribute ``index`` from ``model.attribute_logits(embedding) -> (B, M)``
    (models that declare ``Capability.ATTRIBUTE_LOGITS``)."""

    index: int

    def __call__(self, embedding: Tensor, model: nn.Module | None = None) -> Tensor:
        if model is None or Capability.ATTRIBUTE_LOGITS not in capabilities_of(model):
            raise ExplainError(
                f"AttributeLogit needs a model with attribute_logits(embedding); "
                f"{type(model).__name__} has none (the AAM interpreter explains attributes "
                f"of any model: workbench.models 'interpreter')"
            )
        logits = model.attribute_logits(embedding)  # (B, M)
        if not isinstance(self.index, int) or not 0 <= self.index < logits.shape[1]:
            names = getattr(model, "attribute_names", None)
            listed = f": {', '.join(names)}" if names else ""
            raise ExplainError(
                f"AttributeLogit: index must be an int in 0 … {logits.shape[1] - 1}, got "
                f"{self.index!r}{listed}"
            )
        return logits[:, self.index]

    def __repr__(self) -> str:
        return f"AttributeLogit({self.index})"


def group_slices(channels: int, groups: int) -> list[slice]:
    """Contiguous channel groups as DAAF splits them: ``channels // groups`` each, the last
    group taking the remainder (2048 / 6 → five of 341 and one of 343 … DAAF uses 340 each
    and drops 8 channels; we keep every channel)."""
    if not 1 <= groups <= channels:
        raise ExplainError(f"groups must be in 1..{channels}, got {groups}")
    size = channels // groups
    bounds = [i * size for i in range(groups)] + [channels]
    return [slice(bounds[i], bounds[i + 1]) for i in range(groups)]


@dataclass(repr=False)
class GroupEmbedding(_Target):
    """A channel group of the embedding (DAAF eq. 8's "vector of group i").

    Score = ½‖e_S‖² of the group's channels S (with no reference), or −‖e_S − r_S‖₂ with one.
    (A plain sum Σ e_k would make every Grad-CAM weight of a GAP model equal, and the map the
    channel mean: modules.md §2.6.)

    Args:
        index: the group, 0 … groups − 1.
        groups: how many contiguous groups the D channels are split into (DAAF: 6).
        reference: optional (D,) or (B, D) embedding to compare the group with.
    """

    index: int
    groups: int = 6
    reference: Tensor | None = None

    def __call__(self, embedding: Tensor, model: nn.Module | None = None) -> Tensor:
        slices = group_slices(embedding.shape[1], self.groups)
        if not isinstance(self.index, int) or not 0 <= self.index < len(slices):
            raise ExplainError(
                f"GroupEmbedding: index must be an int in 0 … {len(slices) - 1} (groups="
                f"{self.groups}), got {self.index!r}"
            )
        part = slices[self.index]
        e = embedding[:, part]
        if self.reference is None:
            return 0.5 * e.pow(2).sum(1)
        ref = _reference(self.reference, embedding, "GroupEmbedding")[:, part]
        return pair_similarity(e, ref.expand_as(e), "euclidean")

    def __repr__(self) -> str:
        return f"GroupEmbedding({self.index}/{self.groups})"
