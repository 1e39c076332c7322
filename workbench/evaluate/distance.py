"""Query × gallery distance matrices, computed in chunks of query rows.

Metrics:

* ``"euclidean"``: ``sqrt(max(‖q‖² + ‖g‖² − 2 q·g, 0))``;
* ``"sqeuclidean"``: the same without the square root (BoT / torchreid's "euclidean", and the
  input ``re_ranking`` expects from BoT-style pipelines);
* ``"cosine"``: ``1 − q̂·ĝ`` on L2-normalised rows, clamped to [0, 2] (a zero vector has
  distance 1 to everything).

**Precision trap.** The expansion ``‖q‖² + ‖g‖² − 2 q·g`` cancels catastrophically for nearby
vectors: its absolute error is about ``eps·(‖q‖² + ‖g‖²)``, so in float32 two identical
unit-norm features get a squared distance of ~1e-7 (not 0, possibly negative before the clamp)
and a Euclidean distance of ~3e-4 after the square root. Ranking is rarely affected, but do not
read tiny distances as exact. Inputs in float16/bfloat16 are computed in float32; float64 inputs
are computed in float64 (pass float64 features for exact small distances).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

METRICS = ("euclidean", "sqeuclidean", "cosine")


def _as_tensor(x: torch.Tensor | np.ndarray, name: str) -> torch.Tensor:
    t = torch.as_tensor(x) if not isinstance(x, torch.Tensor) else x
    if t.ndim != 2 or t.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) feature matrix, got {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise ValueError(f"{name} must hold real numbers, got dtype {t.dtype}")
    return t.detach()


def _resolve(device: str | torch.device | None, default: torch.device) -> torch.device:
    from workbench.device import resolve_device

    return default if device is None else resolve_device(device)


def compute_distance(
    qf: torch.Tensor | np.ndarray,
    gf: torch.Tensor | np.ndarray,
    metric: str = "euclidean",
    chunk_size: int = 1024,
    device: str | torch.device | None = None,
    as_numpy: bool = False,
) -> torch.Tensor | np.ndarray:
    """Distances between every query row and every gallery row, ``chunk_size`` queries at a time.

    Args:
        qf: (Nq, D) query features (tensor or array).
        gf: (Ng, D) gallery features.
        metric: ``"euclidean"``, ``"sqeuclidean"`` or ``"cosine"`` (see the module docstring).
        chunk_size: query rows per step.
        device: where to compute (``None``: where ``qf`` lives; ``"auto"``: CUDA if available).
        as_numpy: return a numpy array instead of a tensor.

    Returns:
        (Nq, Ng) distances on the CPU, float32 (float64 if either input is float64).

    Memory: besides the inputs and the (Nq, Ng) result, the peak is the gallery copy on
    ``device`` (Ng × D) plus one (chunk_size, Ng) block and one (chunk_size, D) query chunk in the
    compute dtype, e.g. 1024 × 15,913 × 4 B = 65 MB for Market-1501.
    """
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r} is not known; choose one of {list(METRICS)}")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    q = _as_tensor(qf, "qf")
    g = _as_tensor(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(
            f"qf has {q.shape[1]} feature dimensions but gf has {g.shape[1]}: extract both "
            "with the same model"
        )
    dev = _resolve(device, q.device)
    dtype = torch.float64 if torch.float64 in (q.dtype, g.dtype) else torch.float32
    g = g.to(dev, dtype)  # (Ng, D)
    if metric == "cosine":
        g = F.normalize(g, dim=1)
    else:
        g_sq = (g * g).sum(dim=1)[None, :]  # (1, Ng)
    out = torch.empty((q.shape[0], g.shape[0]), dtype=dtype)  # (Nq, Ng) on the CPU
    for a in range(0, q.shape[0], int(chunk_size)):
        qc = q[a : a + int(chunk_size)].to(dev, dtype)  # (c, D)
        if metric == "cosine":
            block = torch.mm(F.normalize(qc, dim=1), g.T).neg_().add_(1).clamp_(0, 2)  # (c, Ng)
        else:
            block = torch.addmm(g_sq, qc, g.T, alpha=-2)  # (c, Ng) ‖g‖² − 2 q·g
            block.add_((qc * qc).sum(dim=1, keepdim=True)).clamp_min_(0)
            if metric == "euclidean":
                block.sqrt_()
        out[a : a + block.shape[0]].copy_(block)
    return out.numpy() if as_numpy else out


def ranking_metric(model: torch.nn.Module) -> str:
    """The metric ``model`` ranks with: its declared ``ranking_metric`` (``ModelConfig``).

    A module outside the model contract (no :class:`~workbench.models.base.ReIDModel`) ranks
    by ``"cosine"``, the workbench default.
    """
    from workbench.models.base import ReIDModel

    return model.ranking_metric if isinstance(model, ReIDModel) else "cosine"


def pair_similarity(query: torch.Tensor, gallery: torch.Tensor, metric: str) -> torch.Tensor:
    """(B,) similarity of row-aligned embeddings (B, D), the score every pair explanation explains.

    ``"cosine"``: cos(e_q, e_g) (rows normalised as :func:`compute_distance` does);
    ``"euclidean"``: −‖e_q − e_g‖₂. Its distance is :func:`pair_distance`; both rank as
    :func:`compute_distance` does. (``query`` may be (1, D), broadcast.)
    """
    if metric == "cosine":
        return (F.normalize(query, dim=1) * F.normalize(gallery, dim=1)).sum(1)
    if metric == "euclidean":
        return -(query - gallery).pow(2).sum(1).clamp_min(1e-12).sqrt()
    raise ValueError(f"metric={metric!r} is not a ranking metric; choose 'cosine' or 'euclidean'")


def similarity_to_distance(similarity: torch.Tensor, metric: str) -> torch.Tensor:
    """The ranking distance of a :func:`pair_similarity`: 1 − cos (in [0, 2]) or ‖e_q − e_g‖₂."""
    if metric == "cosine":
        return (1 - similarity).clamp(0, 2)
    return -similarity


def pair_distance(query: torch.Tensor, gallery: torch.Tensor, metric: str) -> torch.Tensor:
    """(B,) ranking distance of row-aligned embeddings: the entry :func:`compute_distance` gives
    the pair (up to float rounding), so a pair explanation shows the number that ranked it."""
    return similarity_to_distance(pair_similarity(query, gallery, metric), metric)


#: how each ranking metric is written on screen, with its distance
METRIC_LABELS = {
    "cosine": "cosine distance 1 − cos",
    "euclidean": "Euclidean distance ‖e_q − e_g‖₂",
}
METRIC_SHORT = {"cosine": "1−cos", "euclidean": "‖Δe‖"}


def distance_label(metric: str, short: bool = False) -> str:
    """The on-screen name of ``metric``'s distance (re-ranked metrics keep their prefix)."""
    base = metric.removeprefix("re-ranked ")
    table = METRIC_SHORT if short else METRIC_LABELS
    label = table.get(base, base)
    return f"re-ranked {label}" if metric.startswith("re-ranked ") else label
