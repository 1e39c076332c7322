"""The synthetic pedestrian dataset: OpenCV-rendered people in the Market-1501 layout.

``generate(out, ids=500, seed=0)`` writes images, part masks, COCO keypoints and Market-1501
attributes (see ``generate.py`` for the layout, DESIGN.md "The synthetic pedestrian dataset").
Modules: ``identity`` (attributes and looks), ``body`` (walking skeleton), ``draw`` / ``render``
(painting a person), ``backgrounds`` / ``camera`` / ``occluders`` / ``compose`` (one image),
``plan`` (split and names), ``generate`` (parallel writing).
"""

from workbench.data.synth.generate import ensure_default_dataset, ensure_synthetic, generate
from workbench.data.synth.summary import SynthSummary

__all__ = ["SynthSummary", "ensure_default_dataset", "ensure_synthetic", "generate"]
