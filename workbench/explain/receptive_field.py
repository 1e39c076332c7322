"""SIA receptive fields (IANet, Hou et al. CVPR 2019, Fig. 8): the relation-map row of a point.

IANet's spatial interaction module aggregates every position ``p`` of a stage's map as a weighted
sum over positions ``q`` with weights ``S[p, q]`` (rows of S sum to 1). The row ``S[p, :]``,
reshaped to the map's h × w, is the **receptive field** of ``p``: where that position gathers its
features from. Points are given in image coordinates as fractions ``(y, x)`` of the height and
width (``(0.1, 0.5)`` = the head of a centred pedestrian) and snapped to the nearest position of
the map. Returns (B, k, h, w) for k points — raw row values (probabilities).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor, nn

from workbench.explain.base import Explainer, ExplainError, MapResult, register_explainer

__all__ = ["ReceptiveField", "ReceptiveFieldConfig", "point_index"]


@dataclass
class ReceptiveFieldConfig:
    """Attributes:
    points: ``(y, x)`` fractions of the image height and width, one map per point.
    """

    points: tuple[tuple[float, float], ...] = ((0.5, 0.5),)


def point_index(point: tuple[float, float], h: int, w: int) -> int:
    """Row-major index of the map position nearest to the fractional image point ``(y, x)``."""
    y, x = (float(v) for v in point)
    if not (0.0 <= y <= 1.0 and 0.0 <= x <= 1.0):
        raise ExplainError(f"points are (y, x) fractions in [0, 1], got {point}")
    row = min(int(y * h), h - 1)  # the cell that contains the point
    col = min(int(x * w), w - 1)
    return row * w + col


@register_explainer("receptive_field")
class ReceptiveField(Explainer):
    """Rows of an SIA relation map (layers ``relation2``/``relation3`` of ``ianet``)."""

    config_class = ReceptiveFieldConfig
    layer_kinds = ("relation",)  # channel p of the map is the row S[p, :]
    needs_target = False

    @classmethod
    def unsupported_reason(cls, model: nn.Module) -> str:
        """Names the relation maps (IANet's SIA blocks) the method needs."""
        return (
            f"receptive_field needs spatial relation maps (IANet's SIA blocks); "
            f"{type(model).__name__} has none"
        )

    def compute(self, images: Tensor, target: Callable[..., Tensor] | None) -> MapResult:
        """(B, k, h, w): the relation row of each configured point."""
        rows = self.activations(images)  # (B, M, h, w): channel p = S[p, :]
        h, w = rows.shape[2:]
        if not self.config.points:
            raise ExplainError("receptive_field needs at least one point")
        index = [point_index(p, h, w) for p in self.config.points]
        return MapResult(rows[:, index])

    def map_names(self) -> tuple[str, ...]:
        """``point (y, x)`` of each configured point."""
        return tuple(f"point ({y:.2f}, {x:.2f})" for y, x in self.config.points)
