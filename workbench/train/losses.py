"""ReID losses of the BoT recipe: label-smoothing CE, batch-hard triplet, center loss.

Luo et al. 2019, "Bag of Tricks and A Strong Baseline for Deep Person Re-identification"
(arXiv 1903.07071), Sec. 3.6-3.7 and eq. 1-4; code ``michuanhaohao/reid-strong-baseline``
``layers/*`` and ``engine/trainer.py`` (modules.md §5.2). Total loss of the paper:
``CE_LS(logits) + Tri(features) + 0.0005 · Center(features)``, with ``features`` the pre-BNNeck
global feature.

Where we differ: the batch-hard triplet does not require the same number of images per identity
(BoT's asserts it); anchors with no positive or no negative in the batch are skipped.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "CenterLoss",
    "CrossEntropyLabelSmooth",
    "TripletLoss",
    "TripletStats",
    "euclidean_dist",
    "hard_example_mining",
]


def _check_batch(x: Tensor, targets: Tensor, what: str) -> None:
    if x.dim() != 2:
        raise ValueError(f"{what}: expected (B, D) inputs, got shape {tuple(x.shape)}")
    if targets.shape != (x.shape[0],):
        raise ValueError(
            f"{what}: targets must have shape ({x.shape[0]},) to match the batch, "
            f"got {tuple(targets.shape)}"
        )


class CrossEntropyLabelSmooth(nn.Module):
    """Cross entropy with label smoothing (Szegedy et al. 2016; BoT eq. 2).

    ``q = (1 − ε)·onehot(y) + ε / K``; loss ``= mean_i Σ_k −q_ik · log softmax(z_i)_k``.

    Args:
        num_classes: K.
        epsilon: ε (0.1 in BoT); 0 gives plain cross entropy.
    """

    def __init__(self, num_classes: int, epsilon: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= epsilon < 1.0:
            raise ValueError(f"epsilon must be in [0, 1), got {epsilon}")
        self.num_classes = num_classes
        self.epsilon = epsilon

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        """``logits`` (B, K), integer ``targets`` (B,) in [0, K) → scalar."""
        _check_batch(logits, targets, "CrossEntropyLabelSmooth")
        if logits.shape[1] != self.num_classes:
            raise ValueError(
                f"CrossEntropyLabelSmooth: logits have {logits.shape[1]} classes, the loss was "
                f"built for {self.num_classes}"
            )
        log_probs = F.log_softmax(logits, dim=1)  # (B, K)
        nll = -log_probs.gather(1, targets[:, None].long()).squeeze(1)  # (B,)
        uniform = -log_probs.mean(dim=1)  # (B,)  Σ_k −log p_k / K
        return ((1.0 - self.epsilon) * nll + self.epsilon * uniform).mean()


def euclidean_dist(x: Tensor, y: Tensor) -> Tensor:
    """Pairwise Euclidean distances (M, N) of (M, D) and (N, D), as BoT computes them.

    ``sqrt(clamp(‖x‖² + ‖y‖² − 2 x·y, min=1e-12))``: the clamp keeps the gradient of the sqrt
    finite on the diagonal.
    """
    xx = x.pow(2).sum(1, keepdim=True)  # (M, 1)
    yy = y.pow(2).sum(1, keepdim=True).t()  # (1, N)
    return (xx + yy - 2.0 * x @ y.t()).clamp(min=1e-12).sqrt()


def hard_example_mining(dist: Tensor, targets: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Hardest positive (max) and hardest negative (min) distance of every anchor.

    Args:
        dist: (B, B) distances.
        targets: (B,) identity labels; counts per identity may differ.

    Returns:
        ``d_ap`` (B,), ``d_an`` (B,) and ``valid`` (B,) bool: the anchor has at least one
        positive other than itself and one negative. Entries of invalid anchors are ±inf.
    """
    same = targets[:, None] == targets[None, :]  # (B, B)
    eye = torch.eye(len(targets), dtype=torch.bool, device=dist.device)
    pos = same & ~eye
    neg = ~same
    d_ap = dist.masked_fill(~pos, float("-inf")).amax(dim=1)  # (B,)
    d_an = dist.masked_fill(~neg, float("inf")).amin(dim=1)  # (B,)
    return d_ap, d_an, pos.any(dim=1) & neg.any(dim=1)


@dataclass
class TripletStats:
    """Batch statistics of the last :class:`TripletLoss` call (detached tensors, no sync).

    ``active``: fraction of valid anchors with a non-zero hinge (margin) or with
    ``d_ap > d_an`` (soft margin); ``valid``: number of anchors used.
    """

    active: Tensor
    mean_d_ap: Tensor
    mean_d_an: Tensor
    valid: Tensor


class TripletLoss(nn.Module):
    """Batch-hard triplet loss (Hermans, Beyer, Leibe 2017, "In Defense of the Triplet Loss").

    ``mean_a max(0, d(a, p*) − d(a, n*) + m)`` over valid anchors, with p* the farthest positive
    and n* the closest negative in the batch, Euclidean distance on un-normalised features
    (BoT eq. 3). ``margin=None`` gives the soft margin ``log(1 + exp(d_ap − d_an))``.
    ``normalize=True`` L2-normalises the features first (distances in [0, 2], scale-free).

    Returns the scalar loss (0, still attached to the graph, when no anchor is valid) and stores
    :class:`TripletStats` in ``self.last_stats``.
    """

    def __init__(self, margin: float | None = 0.3, normalize: bool = False) -> None:
        super().__init__()
        self.margin = margin
        self.normalize = normalize
        self.last_stats: TripletStats | None = None

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        """``features`` (B, D) pre-BNNeck, ``targets`` (B,) → scalar."""
        _check_batch(features, targets, "TripletLoss")
        if self.normalize:
            features = F.normalize(features, dim=1)
        dist = euclidean_dist(features, features)  # (B, B)
        d_ap, d_an, valid = hard_example_mining(dist, targets)
        if not bool(valid.any()):
            zero = features.sum() * 0.0
            self.last_stats = TripletStats(*(zero.detach(),) * 4)
            return zero
        d_ap, d_an = d_ap[valid], d_an[valid]
        if self.margin is None:
            terms = F.softplus(d_ap - d_an)
            active = d_ap > d_an
        else:
            terms = F.relu(d_ap - d_an + self.margin)
            active = terms > 0
        with torch.no_grad():
            self.last_stats = TripletStats(
                active.float().mean(),
                d_ap.mean(),
                d_an.mean(),
                valid.sum(),
            )
        return terms.mean()


class CenterLoss(nn.Module):
    """Center loss (Wen et al. ECCV 2016; BoT eq. 4): ``Σ_i ‖f_i − c_{y_i}‖² / B``.

    The per-sample squared distance is clamped to [1e-12, 1e12] as in BoT. ``centers`` (K, D) is
    an ``nn.Parameter`` initialised N(0, 1), like BoT's.

    How BoT trains it (``engine/trainer.py``; modules.md §5.2), which a trainer should copy:

    1. ``loss = ce + tri + w · center(features, y)`` with ``w = 0.0005``;
    2. the centers are *not* in the model optimiser; they have their own ``SGD(lr=0.5)``
       (:meth:`make_optimizer`);
    3. after ``loss.backward()``, call :meth:`rescale_center_grad` ``(w)``: it multiplies the
       centers' gradient by ``1/w``, so ``w`` only scales the gradient flowing into the network
       and the centers move as if their loss had weight 1 (equivalently: SGD lr ``0.5 / w``).
       With a ``GradScaler`` also divide by its scale (``scaler.unscale_(center_optimizer)``
       before rescaling), since ``scaler.step`` only unscales the model optimiser;
    4. ``center_optimizer.step()``. Under DDP average the centers' gradient across ranks.
    """

    def __init__(self, num_classes: int, feat_dim: int) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.feat_dim = feat_dim
        self.centers = nn.Parameter(torch.randn(num_classes, feat_dim))

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        """``features`` (B, D), ``targets`` (B,) → scalar."""
        _check_batch(features, targets, "CenterLoss")
        if features.shape[1] != self.feat_dim:
            raise ValueError(
                f"CenterLoss: features have {features.shape[1]} dims, centers {self.feat_dim}"
            )
        diff = features - self.centers[targets.long()]  # (B, D)
        return diff.pow(2).sum(dim=1).clamp(1e-12, 1e12).sum() / features.shape[0]

    def make_optimizer(self, lr: float = 0.5) -> torch.optim.SGD:
        """BoT's separate optimiser for the centers (``SOLVER.CENTER_LR = 0.5``)."""
        return torch.optim.SGD(self.parameters(), lr=lr)

    @torch.no_grad()
    def rescale_center_grad(self, weight: float) -> None:
        """Multiply the centers' gradient by ``1 / weight`` (after backward, before the step)."""
        if weight <= 0:
            raise ValueError(f"center loss weight must be > 0, got {weight}")
        if self.centers.grad is not None:
            self.centers.grad.mul_(1.0 / weight)
