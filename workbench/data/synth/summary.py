"""``SynthSummary``: what ``generate`` wrote, with a readable ``__str__``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SynthSummary:
    root: Path
    seed: int
    height: int
    width: int
    ids_train: int
    ids_test: int
    images_train: int
    images_query: int
    images_gallery: int  # bounding_box_test, distractors and junk included
    distractors: int
    junk: int
    attribute_frequencies: dict[
        str, float
    ]  # binary: share of ids with value 1; age: share per class
    seconds: float
    workers: int
    stage_seconds: dict[str, float] = field(default_factory=dict)  # summed over workers

    @property
    def images(self) -> int:
        """Images written in all three folders."""
        return self.images_train + self.images_query + self.images_gallery

    @property
    def images_per_second(self) -> float:
        """Rendering speed (NaN when no time was measured)."""
        return self.images / self.seconds if self.seconds > 0 else float("nan")

    def __str__(self) -> str:
        lines = [
            f"synthetic pedestrians -> {self.root}",
            f"  seed {self.seed}, {self.height}x{self.width}, 6 cameras",
            f"  {'split':<20}{'ids':>6}{'images':>8}",
            f"  {'bounding_box_train':<20}{self.ids_train:>6}{self.images_train:>8}",
            f"  {'query':<20}{self.ids_test:>6}{self.images_query:>8}",
            f"  {'bounding_box_test':<20}{self.ids_test:>6}{self.images_gallery:>8}"
            f"   (incl. {self.distractors} distractors, {self.junk} junk)",
            "  attribute frequencies (share of identities):",
        ]
        items = list(self.attribute_frequencies.items())
        for i in range(0, len(items), 4):
            lines.append("    " + "  ".join(f"{k:>12} {v:4.2f}" for k, v in items[i : i + 4]))
        lines.append(
            f"  {self.images} images in {self.seconds:.1f} s "
            f"({self.images_per_second:.0f} images/s, {self.workers} worker(s))"
        )
        return "\n".join(lines)
