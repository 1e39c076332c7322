"""Evaluation: feature extraction, chunked distances, CMC/mAP/mINP, k-reciprocal re-ranking,
and the AAM interpreter's explanation metrics (X-mAP, ADRE, localisation)."""

from workbench.evaluate.distance import METRICS, compute_distance
from workbench.evaluate.explain_metrics import (
    adre,
    evaluate_interpreter,
    localisation_scores,
    x_map,
)
from workbench.evaluate.features import Features, extract_features
from workbench.evaluate.protocol import RankingResult, camera_gap, evaluate_model, rerank_result
from workbench.evaluate.ranking import (
    AP_CONVENTIONS,
    evaluate_ranking,
    format_metrics,
    stable_row_order,
)
from workbench.evaluate.rerank import re_ranking

__all__ = [
    "AP_CONVENTIONS",
    "METRICS",
    "Features",
    "RankingResult",
    "adre",
    "camera_gap",
    "compute_distance",
    "evaluate_interpreter",
    "evaluate_model",
    "evaluate_ranking",
    "extract_features",
    "format_metrics",
    "localisation_scores",
    "re_ranking",
    "rerank_result",
    "stable_row_order",
    "x_map",
]
