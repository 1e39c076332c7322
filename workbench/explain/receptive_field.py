"""SIA receptive fields (IANet, Hou et al. CVPR 2019, Fig. 8): the relation-map row of a point.

IANet's spatial interaction module aggregates every position ``p`` of a stage's map as a weighted
sum over positions ``q`` with weights ``S[p, q]`` (rows of S sum to 1). The row ``S[p, :]``,
reshaped to the map's h × w, is the **receptive field** of ``p``: where that position gathers its
features from. Points are given in image coordinates as fractions ``(y, x)`` of the height and
width (``(0.1, 0.5)`` = the head of a centred pedestrian) and snapped to the nearest position of
the map. Returns (B, k, h, w) for k points — raw row values (probabilities).
"""

from __future__ import annotations

from dataclasses import dataclass

from workbench.explain.base import Explainer, ExplainError, register_explainer

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
    layer_kinds = ("attention",)
    needs_target = False

    @classmethod
    def candidate_layers(cls, model):
        return [
            r
            for r in super().candidate_layers(model)
            if hasattr(model.get_submodule(r.module), "offset_weights")  # an SIA relation
        ]

    @classmethod
    def unsupported_reason(cls, model):
        return (
            f"receptive_field needs spatial relation maps (IANet's SIA blocks); "
            f"{type(model).__name__} has none"
        )

    def compute(self, images, target):
        rows = self.activations(images)  # (B, M, h, w): channel p = S[p, :]
        h, w = rows.shape[2:]
        if not self.config.points:
            raise ExplainError("receptive_field needs at least one point")
        index = [point_index(p, h, w) for p in self.config.points]
        return rows[:, index], None

    def map_names(self):
        return tuple(f"point ({y:.2f}, {x:.2f})" for y, x in self.config.points)
