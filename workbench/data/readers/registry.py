"""The layout registry and ``load_split``: find which dataset layout a folder is in, then read it.

Each layout is one small reader function in its own file, registered with ``@register_layout``.
A reader receives the resolved root and either returns a :class:`~workbench.data.split.Split` or
raises :class:`LayoutNotFound` saying what it looked for and what was missing; ``load_split``
collects those reasons into one :class:`DatasetLayoutError` when no layout matches.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.data.split import Split


class DatasetLayoutError(FileNotFoundError):
    """A folder that is not in a known dataset layout (or lacks a part of it); names the fix."""


class LayoutNotFound(Exception):
    """Raised by a reader when its layout is not at the root; the message says what is missing.

    Internal: ``load_split`` turns it into a :class:`DatasetLayoutError`. Problems *inside* a
    found layout (an empty folder, a bad file name) are raised directly, not as this.
    """


@dataclass(frozen=True)
class Layout:
    name: str
    read: Callable[..., Split]  # read(root, *, auto, **options) -> Split
    detect_order: int  # auto-detection tries lower numbers first (specific layouts before generic)
    options: tuple[str, ...]  # keyword options the reader accepts besides ``auto``
    description: str


LAYOUTS: dict[str, Layout] = {}


def register_layout(name: str, *, detect_order: int) -> Callable:
    """Register ``read(root: Path, *, auto: bool, **options) -> Split`` under ``name``.

    ``auto`` is True during auto-detection: a reader then claims an ambiguous folder (three
    Market-style folders directly in the root) only if the folder's name says it is its dataset.
    """

    def decorate(read: Callable[..., Split]) -> Callable[..., Split]:
        if name in LAYOUTS:
            raise ValueError(f"layout {name!r} is registered twice")
        params = inspect.signature(read).parameters
        options = tuple(
            p for p, v in params.items() if v.kind is inspect.Parameter.KEYWORD_ONLY and p != "auto"
        )
        doc = (read.__doc__ or name).strip().splitlines()[0]
        LAYOUTS[name] = Layout(name, read, detect_order, options, doc)
        return read

    return decorate


def layout_names() -> list[str]:
    """Registered layout names, in auto-detection order."""
    return [lay.name for lay in sorted(LAYOUTS.values(), key=lambda lay: lay.detect_order)]


def _check_options(layout: Layout, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - set(layout.options))
    if unknown:
        accepted = ", ".join(layout.options) or "none"
        raise TypeError(
            f"option(s) {unknown} do not apply to layout {layout.name!r} (its options: {accepted})"
        )


def load_split(root: str | Path, layout: str | None = None, **options: Any) -> Split:
    """Read a dataset folder into train / query / gallery tables.

    Args:
        root: the dataset folder. Each layout also looks in the usual subfolders (e.g.
            ``ROOT/Market-1501-v15.09.15``), so the folder that torchreid or FastReID is given
            works too.
        layout: force one of :func:`layout_names`; ``None`` detects it, trying specific layouts
            first (``msmt17``, ``cuhk03np``, ``dukemtmc``) and the generic Market-1501 layout
            (also used by the synthetic dataset) last.
        **options: layout options, e.g. ``variant="detected"`` (cuhk03np) or
            ``include_val=False`` (msmt17).

    Returns:
        A :class:`Split` with ``name`` = layout name, ``root`` = the resolved folder that holds
        the images, and tables sorted by ``path`` (absolute str) with at least ``path, pid,
        camid`` (camid 0-based).

    Raises:
        DatasetLayoutError: the root does not exist, is not a folder, or is in no known layout
            (the message lists, per layout, what was missing).
        ValueError: an unknown layout name (lists the valid names).
        TypeError: an option that the layout does not take.
    """
    if layout is not None and layout not in LAYOUTS:
        raise ValueError(f"unknown dataset layout {layout!r}; known layouts: {layout_names()}")
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetLayoutError(
            f"{path}: no such folder; pass the folder that holds the dataset (for Market-1501 the "
            f"one with bounding_box_train/, query/, bounding_box_test/)"
        )
    if not path.is_dir():
        raise DatasetLayoutError(
            f"{path} is a file, not a folder; unpack archives first (e.g. unzip "
            f"Market-1501-v15.09.15.zip) and pass the unpacked folder"
        )
    path = path.resolve()

    if layout is not None:
        chosen = LAYOUTS[layout]
        _check_options(chosen, options)
        try:
            return chosen.read(path, auto=False, **options)
        except LayoutNotFound as e:
            raise DatasetLayoutError(
                f"{path} is not a {layout} folder: {e} (ROOT = {path}). Point root at the "
                f"dataset folder, or leave layout=None to detect the layout."
            ) from None

    known_options = {o for lay in LAYOUTS.values() for o in lay.options}
    stray = sorted(set(options) - known_options)
    if stray:
        raise TypeError(
            f"option(s) {stray} apply to no dataset layout; known: {sorted(known_options)}"
        )
    reasons = []
    for name in layout_names():
        candidate = LAYOUTS[name]
        mine = {k: v for k, v in options.items() if k in candidate.options}
        try:
            split = candidate.read(path, auto=True, **mine)
        except LayoutNotFound as e:
            reasons.append(f"  {name}: {e}")
            continue
        _check_options(candidate, options)
        return split
    raise DatasetLayoutError(
        f"{path} is not a dataset folder in any known layout. Looked for (ROOT = {path}):\n"
        + "\n".join(reasons)
        + "\nPoint root at the dataset folder (or its parent), or pass layout=... to force one."
    )
