"""Explanations: why a model matched two people — which pixels, which layers, which attributes.

One verb for every method, on a batch or on (query, gallery) pairs::

    from workbench.explain import explain, explain_pair, list_explainers
    from workbench.explain.targets import EmbeddingSimilarity

    pair = explain_pair("gradcam", model, query, gallery)      # both sides of each pair
    exp = explain("gradcam", model, images, EmbeddingSimilarity(ref), layer="layer3")
    list_explainers(model)                                      # the methods that apply

Results are :class:`Explanation` dataclasses holding raw maps at the layer's resolution on the
model's device; ``workbench.viz`` renders them. Each method is one file here, registered by name
(importing this package imports none of them until a name is asked for).
"""

from __future__ import annotations

from workbench.explain.base import (
    Explainer,
    ExplainError,
    Explanation,
    PairExplanation,
    UnknownExplainerError,
    explain,
    explain_pair,
    get_explainer,
    list_explainers,
    register_explainer,
)

__all__ = [
    "ExplainError",
    "Explainer",
    "Explanation",
    "PairExplanation",
    "UnknownExplainerError",
    "explain",
    "explain_pair",
    "get_explainer",
    "list_explainers",
    "register_explainer",
]
