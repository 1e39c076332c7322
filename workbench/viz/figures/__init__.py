"""Paper figures from code: one recipe per figure of the five papers (one file per paper).

Each recipe is a function ``recipe(models, split, *, seed=0) -> matplotlib Figure`` registered
with :func:`register_figure`: its name, the paper and figure it reproduces, and the shipped
weights it needs. ``make_figures`` loads what each needs, skips (with the command that would
train it) what is not shipped, and saves a PDF and a PNG per figure::

    workbench figures --list
    workbench figures --all --data data/synth --out outputs/figures
    workbench figures daaf_fig9 sa_fig5 --out outputs/figures
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "ONE_PER_PAPER",
    "WEIGHTS",
    "FigureRecipe",
    "Models",
    "get_figure",
    "list_figures",
    "make_figures",
    "register_figure",
]

#: what a recipe is given: the loaded model of each role it ``needs`` (``WEIGHTS`` keys)
Models = Mapping[str, "nn.Module"]

# the shipped weights each recipe asks for, by role, and how to train a missing one
WEIGHTS: dict[str, str] = {
    "bot": "bot_r18w16_256",
    "daaf": "daaf_r18w16_256",
    "sa": "sa_r18w16_256",
    "sa_plain": "sa_nosa_r18w16_256",  # the SA network trained without its SA layers
    "rga": "rga_r18w16_256",
    "rga_norel": "rga_norel_r18w16_256",
    "rga_cbam": "rga_cbam_r18w16_256",
    "ianet": "ianet_r18w16_256",
    "interpreter": "interpreter_bot256",  # N = 3 shared stages
    "interpreter_n1": "interpreter_bot256_n1",
    "interpreter_n5": "interpreter_bot256_n5",
}
_RECIPE_FILES = ("beyond", "pairs", "daaf", "sa", "rga", "ianet", "aam", "counterfactual")
#: the quickest figure of each paper, and the explained rank list (notebook 10; ~30 s in all)
ONE_PER_PAPER = (
    "ranklist_heatmaps",
    "daaf_fig9",
    "sa_fig5",
    "rga_supp_fig2",
    "ianet_fig8",
    "aam_fig1",
)


@dataclass(frozen=True)
class FigureRecipe:
    name: str
    paper: str
    figure: str
    needs: tuple[str, ...]  # roles in WEIGHTS
    what: str
    fn: Callable[..., Any]
    optional: tuple[str, ...] = ()  # roles drawn too when their weights are shipped


_FIGURES: dict[str, FigureRecipe] = {}


def register_figure(
    name: str,
    *,
    paper: str,
    figure: str,
    needs: Sequence[str],
    what: str,
    optional: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn(models, split, *, seed=0) -> Figure`` under ``name``."""
    unknown = [n for n in (*needs, *optional) if n not in WEIGHTS]
    if unknown:
        raise ValueError(f"figure {name!r} needs unknown roles {unknown}; known: {sorted(WEIGHTS)}")

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _FIGURES:
            raise ValueError(f"figure {name!r} is registered twice")
        _FIGURES[name] = FigureRecipe(name, paper, figure, tuple(needs), what, fn, tuple(optional))
        return fn

    return decorator


def _load_all() -> None:
    for module in _RECIPE_FILES:
        importlib.import_module(f"{__name__}.{module}")


def list_figures() -> list[FigureRecipe]:
    """Every recipe, in registration order (paper by paper)."""
    _load_all()
    return list(_FIGURES.values())


def get_figure(name: str) -> FigureRecipe:
    _load_all()
    if name not in _FIGURES:
        raise KeyError(f"unknown figure {name!r}; known: {', '.join(_FIGURES)}")
    return _FIGURES[name]


# how to train each role's weights beyond the BoT card's recipe: (config card, extra options).
# The attention models add a triplet on normalised features (their gates shrink the features;
# see the rga card); the RGA-SC variants of supp. Fig. 1 reuse the rga card's recipe.
_STAGES = '{"stages": [false, true, true, true]}'
_RECIPES: dict[str, tuple[str, str]] = {
    "sa_plain": ("sa", """ --model-config '{"sa_stages": []}'"""),
    "rga": ("bot", f" --model rga --model-config '{_STAGES}' --triplet-normalize"),
    "rga_norel": ("rga", """ --model-config '{"relations": false}'"""),
    "rga_cbam": ("rga", """ --model-config '{"attention": "cbam"}'"""),
    "interpreter": ("interpreter", f" --target {WEIGHTS['bot']}"),
    "interpreter_n1": (
        "interpreter",
        f""" --target {WEIGHTS["bot"]} --model-config '{{"shared_stages": 1}}'""",
    ),
    "interpreter_n5": (
        "interpreter",
        f""" --target {WEIGHTS["bot"]} --model-config '{{"shared_stages": 5}}'""",
    ),
}


def _train_hint(role: str) -> str:
    name = WEIGHTS[role]
    card, options = _RECIPES.get(role, ("bot", f" --model {role.split('_')[0]}"))
    return (
        f"workbench train --config weights/{WEIGHTS[card]}.json{options} --out runs/{name} "
        f"&& workbench export --run runs/{name} --name {name}"
    )


def make_figures(
    names: Sequence[str] | None,
    split: Any,
    out: str | Path,
    *,
    models: Mapping[str, Any] | None = None,
    seed: int = 0,
    device: str = "auto",
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, list[Path]]:
    """Make the named figures (all with ``None``); returns ``{name: [pdf, png]}`` of those made.

    ``models`` maps roles to ready models (tests, notebooks); missing roles are loaded from the
    shipped weights, and a figure whose weights are not shipped is skipped with a message naming
    the command that trains them.
    """
    from tqdm.auto import tqdm

    from workbench.device import resolve_device
    from workbench.pretrained import list_pretrained, load_pretrained
    from workbench.viz.figures.style import figure_style, save_figure

    recipes = list_figures() if names is None else [get_figure(n) for n in names]
    shipped = {c["name"] for c in list_pretrained()}
    dev = resolve_device(device)
    cache: dict[str, Any] = dict(models or {})
    made: dict[str, list[Path]] = {}
    for recipe in tqdm(recipes, desc="figures", disable=not progress, leave=False):
        missing = [r for r in recipe.needs if r not in cache and WEIGHTS[r] not in shipped]
        if missing:
            hints = "; ".join(f"{WEIGHTS[r]}: {_train_hint(r)}" for r in missing)
            log(f"skipped {recipe.name} ({recipe.paper} {recipe.figure}): not shipped — {hints}")
            continue
        extra = [r for r in recipe.optional if r in cache or WEIGHTS[r] in shipped]
        for role in (*recipe.needs, *extra):
            if role not in cache:
                cache[role] = load_pretrained(WEIGHTS[role]).to(dev).eval()
        t0 = time.perf_counter()
        with figure_style():
            fig = recipe.fn({r: cache[r] for r in (*recipe.needs, *extra)}, split, seed=seed)
        made[recipe.name] = save_figure(fig, out, recipe.name)
        log(f"{recipe.name} ({recipe.paper} {recipe.figure}): {time.perf_counter() - t0:.1f} s")
    return made
