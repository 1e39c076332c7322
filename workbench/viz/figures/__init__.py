"""Paper figures from code: one recipe per figure of the five papers (one file per paper).

Each recipe is a function ``recipe(models, split, *, seed=0) -> matplotlib Figure`` registered
with :func:`register_figure`, which declares what it draws from:

* ``needs`` / ``optional``: the *roles* of the models it shows (keys of :data:`WEIGHTS`, e.g.
  ``"bot"``, ``"daaf"``). :data:`ROLE_MODELS` says which architecture each role must be
  (``None``: any ReID embedding model, such as an imported BoT / FastReID / torchreid file).
  ``make_figures(weights={role: name_or_path})`` / ``--weights ROLE=NAME_OR_PATH`` replaces the
  shipped weights of a role with a shipped name, an exported card or any checkpoint
  :func:`workbench.pretrained.load_weights` reads.
* ``requires``: dataset annotations it cannot draw without (names of
  :data:`~workbench.viz.figures.samples.DATA_INPUTS`: ``"masks"``, ``"keypoints"``,
  ``"attributes"``). On a dataset without one, ``make_figures`` refuses the figure with one line
  naming what is missing, and draws the others.
* ``uses``: annotations it draws when the dataset has them and does without otherwise (the
  recipe checks ``samples.has_input(split, name)`` or each sample's ``parts`` / ``keypoints`` and
  says in its title what it left out; it never draws an empty panel).

A new recipe is one decorated function in its paper's file (listed in ``_RECIPE_FILES``)::

    @register_figure(
        "mypaper_fig3", paper="My paper", figure="Fig. 3", needs=["bot"],
        requires=["masks"], uses=["keypoints"],
        what="one line: what the figure shows",
    )
    def mypaper_fig3(models, split, *, seed=0): ...

``make_figures`` loads what each needs, skips (with the command that would train it) what is not
shipped, refuses what the data or the given weights cannot serve, and saves each figure in the
asked formats with a JSON sidecar (:mod:`~workbench.viz.figures.sidecar`: weights and their
sha256, data root, seed, recipe, versions) from which ``workbench figures --from SIDECAR``
redraws it byte for byte::

    workbench figures --list
    workbench figures --all --data data/synth --out outputs/figures
    workbench figures daaf_fig9 sa_fig5 --out outputs/figures
    workbench figures ranklist_heatmaps --weights bot=model_final.pth --data MYDATA --format png,svg
    workbench figures --from outputs/figures/ranklist_heatmaps.json --out redrawn
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
    "DEFAULT_ZOO",
    "ONE_PER_PAPER",
    "PRETRAINED_ZOOS",
    "ROLE_MODELS",
    "WEIGHTS",
    "ZOOS",
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
#: the backbone each pretrained zoo starts from (``workbench train --init``) and its cards' suffix
PRETRAINED_ZOOS: dict[str, tuple[str, str]] = {
    "pretrained": ("pretrain_r18w16", "_pt"),  # identity objective, 128×64
    "parts": ("pretrain_r18w16_parts256", "_pt_parts"),  # + part objective, then 256×128
}
#: the zoo a role's weights come from: ``"scratch"`` (:data:`WEIGHTS`, trained from random
#: weights), or the same recipes started from a pretrained backbone (:data:`PRETRAINED_ZOOS`):
#: ``"pretrained"`` (``pretrain_r18w16``, cards ``NAME_pt``) or ``"parts"``
#: (``pretrain_r18w16_parts256``, cards ``NAME_pt_parts``, :data:`DEFAULT_ZOO`); docs/pretraining.md
ZOOS: dict[str, dict[str, str]] = {
    "scratch": WEIGHTS,
    **{
        zoo: {role: f"{name}{suffix}" for role, name in WEIGHTS.items()}
        for zoo, (_, suffix) in PRETRAINED_ZOOS.items()
    },
}
#: the zoo of ``make_figures`` and ``workbench figures`` when none is named: the best models of
#: every paper (docs/pretraining.md, "Which is the default")
DEFAULT_ZOO = "parts"
#: the architecture (registry name) a role's model must be; None: any ReID embedding model
#: (a BoT-family network, an imported BoT / FastReID / torchreid checkpoint, a wrapped one)
ROLE_MODELS: dict[str, str | None] = {
    "bot": None,
    "daaf": "daaf",
    "sa": "sa",
    "sa_plain": "sa",
    "rga": "rga",
    "rga_norel": "rga",
    "rga_cbam": "rga",
    "ianet": "ianet",
    "interpreter": "interpreter",
    "interpreter_n1": "interpreter",
    "interpreter_n5": "interpreter",
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
    requires: tuple[str, ...] = ()  # dataset annotations it cannot draw without (DATA_INPUTS)
    uses: tuple[str, ...] = ()  # annotations drawn when the dataset has them


_FIGURES: dict[str, FigureRecipe] = {}


def register_figure(
    name: str,
    *,
    paper: str,
    figure: str,
    needs: Sequence[str],
    what: str,
    optional: Sequence[str] = (),
    requires: Sequence[str] = (),
    uses: Sequence[str] = (),
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``fn(models, split, *, seed=0) -> Figure`` under ``name``.

    ``needs`` / ``optional``: model roles (:data:`WEIGHTS`); ``requires`` / ``uses``: dataset
    annotations (:data:`~workbench.viz.figures.samples.DATA_INPUTS`); see the module docstring.
    """
    from workbench.viz.figures.samples import DATA_INPUTS

    unknown = [n for n in (*needs, *optional) if n not in WEIGHTS]
    if unknown:
        raise ValueError(f"figure {name!r} needs unknown roles {unknown}; known: {sorted(WEIGHTS)}")
    unknown = [n for n in (*requires, *uses) if n not in DATA_INPUTS]
    if unknown:
        raise ValueError(
            f"figure {name!r} declares unknown dataset inputs {unknown}; known: {list(DATA_INPUTS)}"
        )

    def decorator(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in _FIGURES:
            raise ValueError(f"figure {name!r} is registered twice")
        _FIGURES[name] = FigureRecipe(
            name, paper, figure, tuple(needs), what, fn, tuple(optional), tuple(requires),
            tuple(uses),
        )  # fmt: skip
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


def _train_hint(role: str, zoo: str = "scratch") -> str:
    name = ZOOS[zoo][role]
    if zoo in PRETRAINED_ZOOS:  # the scratch card's recipe, started from the zoo's backbone
        backbone = PRETRAINED_ZOOS[zoo][0]
        base = (
            f"""--target {ZOOS[zoo]["bot"]} --model-config '{{"distill_weight": 5.0}}'"""
            if role.startswith("interpreter")  # weight 5: docs/pretraining.md, the AAM section
            else f"--init {backbone}" + (" --lr 8e-4" if role.startswith("rga") else "")
        )
        return (
            f"workbench train --config weights/{WEIGHTS[role]}.json {base} --out runs/{name} "
            f"&& workbench export --run runs/{name} --name {name}"
        )
    card, options = _RECIPES.get(role, ("bot", f" --model {role.split('_')[0]}"))
    return (
        f"workbench train --config weights/{WEIGHTS[card]}.json{options} --out runs/{name} "
        f"&& workbench export --run runs/{name} --name {name}"
    )


def _wrong_model(role: str, model: Any, given: str | None) -> str | None:
    """Why ``model`` cannot play ``role`` (its architecture is not the role's), or None."""
    wanted = ROLE_MODELS.get(role)
    actual = getattr(model, "model_name", "") or type(model).__name__
    if wanted is None or actual == wanted:
        return None
    what = f"--weights {role}={given}" if given is not None else f"the model given as {role}"
    source = (getattr(model, "card", None) or {}).get("source")
    kind = f"of architecture {actual!r}" + (f" (imported from {source})" if source else "")
    open_roles = sorted(r for r, m in ROLE_MODELS.items() if m is None)
    takers = [r.name for r in _FIGURES.values() if any(n in open_roles for n in r.needs)]
    return (
        f"role {role} must be a model of architecture {wanted!r} and {what} is {kind}; "
        f"figures that take any ReID model (as {', '.join(open_roles)}): {', '.join(takers)}"
    )


def make_figures(
    names: Sequence[str] | None,
    split: Any,
    out: str | Path,
    *,
    models: Mapping[str, Any] | None = None,
    weights: Mapping[str, str | Path] | None = None,
    seed: int = 0,
    device: str = "auto",
    formats: str | Sequence[str] = ("pdf", "png"),
    dpi: float | None = None,
    optional_roles: Sequence[str] | None = None,
    zoo: str = DEFAULT_ZOO,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> dict[str, list[Path]]:
    """Make the named figures (all with ``None``); returns ``{name: [one file per format]}``.

    Args:
        models: roles → ready models (tests, notebooks; a sidecar cannot redraw these).
        weights: roles → a shipped name, a card / ``.safetensors`` path or a BoT / FastReID /
            torchreid checkpoint (:func:`~workbench.pretrained.load_weights`), for the user's
            own model; roles in neither mapping load the shipped weights of ``zoo``.
        zoo: ``"parts"`` (the default, :data:`DEFAULT_ZOO`: the ``NAME_pt_parts`` cards trained
            from ``pretrain_r18w16_parts256``), ``"pretrained"`` (the ``NAME_pt`` cards trained
            from ``pretrain_r18w16``) or ``"scratch"`` (:data:`WEIGHTS`): :data:`ZOOS`.
        formats: ``"pdf,png,svg"`` or a sequence of them; ``dpi``: of PNG (default 200).
        optional_roles: the recipes' optional roles to draw (default: those given or shipped).

    A figure whose weights are not shipped is skipped with a line naming the command that
    trains them; one whose role gets a model of the wrong architecture, whose dataset lacks an
    annotation it ``requires``, or whose recipe raises a ``ValueError`` (an
    :class:`~workbench.explain.base.ExplainError`: a method that does not apply to a given
    model; or data it cannot use) is refused with one line saying why; the others are drawn. Each figure
    gets a sidecar ``out/NAME.json`` (:mod:`~workbench.viz.figures.sidecar`).
    """
    from tqdm.auto import tqdm

    from workbench.device import resolve_device
    from workbench.pretrained import list_pretrained, load_weights
    from workbench.viz.figures.samples import missing_inputs
    from workbench.viz.figures.sidecar import weights_record, write_sidecar
    from workbench.viz.figures.style import check_formats, figure_style, save_figure

    if zoo not in ZOOS:
        raise ValueError(f"zoo={zoo!r}: choose one of {', '.join(ZOOS)}")
    default = ZOOS[zoo]
    recipes = list_figures() if names is None else [get_figure(n) for n in names]
    formats = check_formats(formats)
    given = {str(k): str(v) for k, v in (weights or {}).items()}
    used = {r for recipe in recipes for r in (*recipe.needs, *recipe.optional)}
    for role in given:
        if role not in WEIGHTS:
            raise ValueError(f"--weights {role}=...: no role {role!r}; roles: {', '.join(WEIGHTS)}")
        if role not in used:
            raise ValueError(
                f"--weights {role}=...: none of the figures asked for shows role {role!r}; they "
                f"show {', '.join(sorted(used))}"
            )
    shipped = {c["name"] for c in list_pretrained()}
    dev = resolve_device(device)
    cache: dict[str, Any] = dict(models or {})
    records = {role: weights_record(m, None) for role, m in cache.items()}
    made: dict[str, list[Path]] = {}
    where = getattr(split, "root", None) or getattr(split, "name", "the dataset")
    for recipe in tqdm(recipes, desc="figures", disable=not progress, leave=False):
        head = f"{recipe.name} ({recipe.paper} {recipe.figure})"
        have = set(cache) | set(given)
        missing = [r for r in recipe.needs if r not in have and default[r] not in shipped]
        if missing:
            hints = "; ".join(f"{default[r]}: {_train_hint(r, zoo)}" for r in missing)
            log(f"skipped {head}: not shipped — {hints}")
            continue
        lacking = missing_inputs(split, recipe.requires)
        if lacking:
            log(f"refused {head}: it needs {' and '.join(lacking)}, which {where} does not have")
            continue
        if optional_roles is None:
            extra = [r for r in recipe.optional if r in have or default[r] in shipped]
        else:
            extra = [r for r in recipe.optional if r in optional_roles]
        roles = (*recipe.needs, *extra)
        wrong = None
        for role in sorted(roles, key=lambda r: r not in given):  # the user's weights first
            if role not in cache:
                spec = given.get(role, default[role])
                cache[role] = load_weights(spec, dev)
                records[role] = weights_record(cache[role], spec)
            if wrong := _wrong_model(role, cache[role], given.get(role)):
                break
        if wrong:
            log(f"refused {head}: {wrong}")
            continue
        t0 = time.perf_counter()
        try:
            with figure_style():
                fig = recipe.fn({r: cache[r] for r in roles}, split, seed=seed)
        except ValueError as e:  # ExplainError (a method that does not apply to a given
            # model), or data the figure cannot use (no wrong match to contrast, ...): one line,
            # and the other figures are still drawn
            log(f"refused {head}: {e}")
            continue
        files = save_figure(fig, out, recipe.name, formats, dpi)
        write_sidecar(files, recipe, weights={r: records[r] for r in roles}, split=split,
                      seed=seed, device=dev, dpi=dpi)  # fmt: skip
        made[recipe.name] = files
        log(f"{head}: {time.perf_counter() - t0:.1f} s")
    return made
