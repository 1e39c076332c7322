"""The counterfactual game: does a map of a similarity change point at what changed?

XFR's inpainting game (Williford et al., ECCV 2020, ``stresearch/xfr``; ``reference/pairs.md``
§3), played exactly on counterfactual renders (``workbench.data.synth.counterfactual``). For a
query image x, a true match g of x from another camera, and a counterfactual x' of x (one factor
changed; the change mask M is known to the pixel):

    Δ = s(x, g) − s(x', g)      s = the model's ranking similarity (cosine for BoT-family models)

An explanation *of Δ* is a map on x. For pixel and gradient methods (Grad-CAM, captum, DAAF's
holistic map) it is the method's map of s(·, g) at x: the gradient of Δ with respect to x, since
x' is a constant of Δ. The exact decomposition (``workbench.explain.decomposition``, on models
that declare their pooling) gives the contrast query_map(x, g) − query_map(x', g), which adds up
to Δ exactly (for cosine; for the Euclidean metric it decomposes the squared distance, so it
adds up to the change of −‖·‖²). A map is signed: its positive part argues for the similarity, so for an
edit that lowered it (Δ > 0) the mass should sit on M with a positive sign and for one that
raised it (Δ < 0) with a negative sign; we score ``sign(Δ) · map``. Non-negative maps (DAAF) are
scored as they are.

Scores per method × factor (edits with |Δ| below the threshold are not scored, XFR's rule: an
edit the network ignores says nothing about a map):

* ``energy`` — share of the map's positive energy (after the sign) inside M, against ``chance``,
  M's area share;
* ``pointing`` — whether the map's maximum lies in M, against the same chance;
* ``top_k`` — the share of the map's |M| highest pixels inside M (XFR's top-k curve at k = |M|;
  chance: the same area share);
* ``|Δ|`` — its median over **all** pairs of the factor: the model's sensitivity to that
  factor, background included (``sensitivity``);
* ``person_energy`` — the same map scored as the faithfulness report scores it (energy on the
  original's person mask, against ``person_chance``), to set the two verdicts side by side.

Threshold: |Δ| ≥ ``threshold`` (default ``DEFAULT_THRESHOLD`` = 0.01 for cosine similarity, 1 %
of its half-range; for the Euclidean metric 1 % of the median distance d(x, g) of the pairs).
It keeps most edits of the person and drops the ones the model does not see (see the counts in
``summary``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor, nn

from workbench.evaluate.distance import pair_similarity, ranking_metric

__all__ = [
    "DEFAULT_METHODS",
    "DEFAULT_THRESHOLD",
    "CounterfactualGame",
    "MethodSpec",
    "choose_references",
    "counterfactual_game",
    "delta_maps",
    "embed_images",
    "explain_deltas",
    "interpreter_changes",
    "load_counterfactuals",
    "load_images",
    "load_masks",
    "orient_maps",
    "sensitivity_profile",
    "summarize",
    "top_k_precision",
]

DEFAULT_THRESHOLD = 0.01
# methods whose map of Δ is a contrast map(x, g) − map(x', g) (exact: it adds up to Δ)
CONTRAST_METHODS = ("decomposition",)


@dataclass(frozen=True)
class MethodSpec:
    """One explanation method as the game runs it: registry name, layer, parameters."""

    method: str
    layer: str | None = None
    params: tuple[tuple[str, Any], ...] = ()
    label: str = ""

    @property
    def name(self) -> str:
        if self.label:
            return self.label
        return self.method if self.layer is None else f"{self.method}@{self.layer}"

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.params)


DEFAULT_METHODS: tuple[MethodSpec, ...] = (
    MethodSpec("gradcam", "layer2"),
    MethodSpec("gradcam", "layer3"),
    MethodSpec("gradcam", "layer4"),
    MethodSpec("decomposition"),
    MethodSpec("daaf_holistic"),
    MethodSpec(
        "captum", params=(("algorithm", "IntegratedGradients"),
                          ("attribute_kwargs", {"n_steps": 16, "internal_batch_size": 64})),
        label="integrated_gradients",
    ),
    MethodSpec(
        "captum", params=(("algorithm", "Occlusion"),
                          ("attribute_kwargs", {"sliding_window_shapes": (3, 32, 32),
                                                "strides": (3, 16, 16),
                                                "perturbations_per_eval": 16})),
        label="occlusion",
    ),
)  # fmt: skip


@dataclass
class CounterfactualGame:
    """Rows (one per original × factor × method), the summary and the sensitivity profile."""

    rows: pd.DataFrame
    summary: pd.DataFrame
    sensitivity: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)

    def to_markdown(self) -> str:
        s = self.settings
        head = (
            f"# Counterfactual game of {s.get('model')} ({s.get('metric')} similarity)\n\n"
            f"{s.get('originals')} query images x, each with its closest true match g from "
            f"another camera and one counterfactual x' per factor; Δ = s(x, g) − s(x', g). "
            f"Scored: edits with |Δ| ≥ {s.get('threshold'):.4g}. energy = share of the map of Δ "
            f"(sign(Δ)·map) inside the change mask, chance = its area share; pointing = the "
            f"maximum in the mask.\n\n"
        )
        sens = self.sensitivity
        shown = sens.assign(
            median_abs_delta=sens.median_abs_delta.map("{:.4f}".format),
            abs_delta_q25=sens.abs_delta_q25.map("{:.4f}".format),
            abs_delta_q75=sens.abs_delta_q75.map("{:.4f}".format),
            mean_delta=sens.mean_delta.map("{:+.4f}".format),
            share_lowered=sens.share_lowered.map("{:.2f}".format),
        )
        profile = (
            "\n## Sensitivity profile (factors by median |Δ| over all pairs)\n\n"
            + shown.to_markdown(disable_numparse=True)
            + "\n"
        )
        return head + self.summary.to_markdown(index=False, floatfmt=".3f") + "\n" + profile

    def save(self, out: str | Path) -> list[Path]:
        """Write ``summary.csv``, ``summary.md``, ``pairs.csv`` and ``sensitivity.csv``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / n for n in ("summary.csv", "summary.md", "pairs.csv", "sensitivity.csv")]
        self.summary.to_csv(paths[0], index=False)
        paths[1].write_text(self.to_markdown())
        self.rows.to_csv(paths[2], index=False)
        self.sensitivity.to_csv(paths[3])
        return paths


# -- data ----------------------------------------------------------------------------------------
def load_counterfactuals(root: str | Path) -> pd.DataFrame:
    """``root/counterfactuals.csv`` with absolute ``*_path`` columns added; a clear error if absent."""
    from workbench.data.synth.counterfactual import COUNTERFACTUAL_CSV

    root = Path(root)
    path = root / COUNTERFACTUAL_CSV
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no counterfactuals beside this dataset; render them with "
            f"`workbench synth --out {root} --counterfactuals 24` (or, for a dataset already "
            f"there, workbench.data.synth.counterfactual.add_counterfactuals({str(root)!r}, 24))"
        )
    table = pd.read_csv(path, dtype={"old": str, "new": str, "attribute": str})
    for col in ("original", "counterfactual", "mask"):
        table[f"{col}_path"] = [str(root / p) for p in table[col]]
    return table


def load_images(items: list[str] | list[np.ndarray], size: tuple[int, int]) -> Tensor:
    """(B, 3, H, W) images (paths, or (H, W, 3) RGB uint8 arrays) normalised as the eval
    transform does, resized to ``size``."""
    from workbench.data.dataset import read_image
    from workbench.data.transforms import build_transforms

    transform = build_transforms(*size, train=False)
    out = []
    for item in items:
        image = item if isinstance(item, np.ndarray) else read_image(item)
        out.append(transform({"image": image})["image"])
    return torch.stack(out)


def load_masks(items: list[str] | list[np.ndarray], size: tuple[int, int]) -> Tensor:
    """(B, H, W) bool change masks (PNG paths or arrays) at ``size`` (nearest if resized)."""
    import cv2

    out = []
    for p in items:
        m = p.astype(np.uint8) if isinstance(p, np.ndarray) else cv2.imread(p, cv2.IMREAD_UNCHANGED)
        if m is None:
            raise FileNotFoundError(f"{p}: change mask missing or unreadable")
        if m.shape != size:
            m = cv2.resize(m, (size[1], size[0]), interpolation=cv2.INTER_NEAREST)
        out.append(torch.from_numpy(m > 0))
    return torch.stack(out)


def _person_masks(root: str | Path, originals: list[str], size: tuple[int, int]) -> Tensor:
    """(B, H, W) person masks (part labels > 0) of the originals, from the dataset's masks/."""
    import cv2

    from workbench.data.annotations import mask_path_for

    out = []
    for original in originals:
        path = mask_path_for(root, original)
        labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if labels is None:
            raise FileNotFoundError(f"{path}: the part-label mask of {original} is missing")
        out.append(labels > 0)
    return load_masks(out, size)


def embed_images(model: nn.Module, images: Tensor, device: torch.device, batch: int = 64) -> Tensor:
    """(B, D) eval embeddings of ``images``, ``batch`` at a time, without gradients."""
    with torch.no_grad():
        return torch.cat(
            [model(images[i : i + batch].to(device)) for i in range(0, len(images), batch)]
        )


def choose_references(
    model: nn.Module,
    split: Any,
    originals: list[str],
    input_size: tuple[int, int],
    metric: str,
    device: torch.device,
) -> pd.DataFrame:
    """For each original (a ``query/...`` path), its most similar true match from another
    camera under the model's ranking similarity: columns ``original, reference, pid``."""
    query, gallery = split.query, split.gallery
    by_name = {Path(p).name: i for i, p in enumerate(query.path)}
    rows = []
    for original in originals:
        name = Path(original).name
        if name not in by_name:
            raise ValueError(f"{original}: not an image of the split's query table")
        q = query.iloc[by_name[name]]
        cands = gallery[(gallery.pid == q.pid) & (gallery.camid != q.camid)]
        if cands.empty:
            raise ValueError(f"{original}: no true match from another camera in the gallery")
        emb = embed_images(model, load_images([q.path, *cands.path], input_size), device)
        sim = pair_similarity(emb[1:], emb[:1], metric)
        rows.append(
            {"original": original, "reference": cands.path.iloc[int(sim.argmax())], "pid": q.pid}
        )
    return pd.DataFrame(rows)


# -- maps ----------------------------------------------------------------------------------------
def delta_maps(
    model: nn.Module,
    spec: MethodSpec,
    images: Tensor,
    reference: Tensor,
    metric: str,
    counterfactuals: Tensor | None = None,
) -> Tensor:
    """(B, H, W) maps of Δ on ``images`` (x) against ``reference`` embeddings (B, D) of g.

    Gradient and pixel methods explain s(·, g) at x (the gradient of Δ in x); read-outs
    without a target (DAAF's holistic map) give their map of x. Contrast methods
    (``CONTRAST_METHODS``: the exact decomposition) need ``counterfactuals`` (x', row-aligned)
    and give query_map(x, g) − query_map(x', g) on x's grid, which adds up to Δ exactly.
    """
    from workbench.explain import explain, get_explainer
    from workbench.explain.targets import EmbeddingSimilarity

    cls = get_explainer(spec.method)
    target = EmbeddingSimilarity(reference, metric=metric) if cls.needs_target else None

    def one(x: Tensor) -> Tensor:
        exp = explain(spec.method, model, x, target, layer=spec.layer, **spec.kwargs)
        maps = exp.resized(tuple(x.shape[-2:]))
        return maps.mean(1) if maps.dim() == 4 else maps  # several maps per image: their mean

    if spec.method not in CONTRAST_METHODS:
        return one(images)
    if counterfactuals is None or counterfactuals.shape != images.shape:
        raise ValueError(f"{spec.name} explains Δ as a contrast: pass x' row-aligned with x")
    return one(images) - one(counterfactuals)


def top_k_precision(maps: Tensor, masks: Tensor) -> Tensor:
    """(P,) share of the map's k highest pixels inside the mask, k = the mask's area: one point
    of XFR's curve (the share of a map's top-k pixels in the altered region as k grows), at the
    k where a perfect map scores 1 and a random one the mask's area share. NaN for an empty
    mask; ties in the map keep pixel order (a stable sort)."""
    flat, inside = maps.flatten(1).float(), masks.flatten(1).to(maps.device).bool()
    k = inside.sum(1)
    order = flat.argsort(dim=1, descending=True, stable=True)
    hits = inside.gather(1, order).float().cumsum(1)  # hits among the top 1, 2, ... pixels
    at_k = hits.gather(1, (k - 1).clamp_min(0)[:, None])[:, 0]
    return torch.where(k > 0, at_k / k.clamp_min(1), torch.nan)


def orient_maps(spec: MethodSpec, maps: Tensor, delta: Tensor) -> Tensor:
    """``sign(Δ) · maps`` (P, H, W) for signed methods, ``maps`` for non-negative ones (DAAF's
    maps are |·| by construction): the part that argues for the change Δ is positive."""
    if spec.method in ("daaf_holistic", "daaf_partial"):
        return maps
    return maps * torch.sign(delta).to(maps.dtype)[:, None, None]


def _runnable(
    model: nn.Module,
    methods: list[MethodSpec],
    root: str | Path,
    original: str,
    refs: pd.DataFrame,
    size: tuple[int, int],
    metric: str,
    dev: torch.device,
) -> tuple[list[MethodSpec], list[str]]:
    """The methods that explain one original without an ``ExplainError`` (a layer inside a
    frozen part of the model has no gradient: the AAM interpreter's shared stages), and
    ``"name (reason)"`` for the others."""
    from workbench.explain import ExplainError

    x = load_images([str(Path(root) / original)], size).to(dev)
    e_g = embed_images(model, load_images([refs.loc[original, "reference"]], size), dev)
    ok, failed = [], []
    for spec in methods:
        try:
            delta_maps(model, spec, x, e_g, metric, x)
            ok.append(spec)
        except ExplainError as e:
            failed.append(f"{spec.name} ({str(e).split(';')[0]})")
    return ok, failed


def explain_deltas(
    model: nn.Module,
    methods: list[MethodSpec] | tuple[MethodSpec, ...],
    x: Tensor,
    x_cf: Tensor,
    e_g: Tensor,
    at: Tensor,
    metric: str,
) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
    """Similarities and maps of Δ for P pairs built from B originals.

    Args:
        x: (B, 3, H, W) originals; ``e_g`` (B, D) their references' embeddings.
        x_cf: (P, 3, H, W) counterfactuals; ``at`` (P,) the row of x each one edits.

    Returns:
        ``s_x`` (B,) = s(x, g), ``s_cf`` (P,) = s(x', g), and per method name the (P, H, W)
        maps of Δ (on the CPU; signs as computed, see :func:`delta_maps`). Every method but
        the contrast ones runs once per original.
    """
    dev = x.device
    idx = at.to(dev)
    with torch.no_grad():
        s_x = pair_similarity(model(x), e_g, metric).cpu()
        s_cf = pair_similarity(embed_images(model, x_cf, dev), e_g[idx], metric).cpu()
    maps = {}
    for spec in methods:
        if spec.method in CONTRAST_METHODS:  # one map per pair
            maps[spec.name] = delta_maps(model, spec, x[idx], e_g[idx], metric, x_cf).cpu()
        else:
            maps[spec.name] = delta_maps(model, spec, x, e_g, metric).cpu()[at]
    return s_x, s_cf, maps


# -- the game ------------------------------------------------------------------------------------
def counterfactual_game(
    model: nn.Module,
    root: str | Path,
    methods: tuple[MethodSpec, ...] | list[MethodSpec] = DEFAULT_METHODS,
    *,
    split: Any = None,
    input_size: tuple[int, int] | None = None,
    originals: int | None = None,
    factors: tuple[str, ...] | None = None,
    threshold: float | None = None,
    batch_size: int = 16,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> CounterfactualGame:
    """Play the game (module doc) on the counterfactuals beside the dataset ``root``.

    Args:
        model: a workbench model (eval embedding, ``layer_info``).
        root: a synthetic dataset with ``counterfactuals.csv`` (``workbench synth
            --counterfactuals N``).
        methods: what explains Δ (default ``DEFAULT_METHODS``: Grad-CAM at layer2/3/4, the
            exact decomposition, DAAF holistic, captum Integrated Gradients and Occlusion);
            methods that do not apply to the model, or fail on it with an ``ExplainError``
            (a layer inside a frozen part), are skipped with the reason
            (``settings["skipped"]``); a single method that fails raises.
            Each is run once per original image (the contrast methods once per pair).
        split: the dataset's split if already loaded (for the reference images g).
        originals: use only the first N originals of the table (None: all).
        factors: use only these factors (None: all in the table).
        threshold: the |Δ| an edit needs to be scored (module doc for the default).
    """
    from tqdm.auto import tqdm

    from workbench.data.readers import load_split
    from workbench.device import resolve_device
    from workbench.explain import get_explainer
    from workbench.explain.metrics import area_share, energy_in_mask, pointing_game

    table = load_counterfactuals(root)
    if factors is not None:
        unknown = sorted(set(factors) - set(table.factor))
        if unknown:
            raise ValueError(f"factors {unknown} are not in {root}/counterfactuals.csv")
        table = table[table.factor.isin(factors)]
    names = list(dict.fromkeys(table.original))
    if originals is not None:
        names = names[:originals]
        table = table[table.original.isin(names)]
    if not len(table):
        raise ValueError(f"{root}/counterfactuals.csv: no pairs left to play")
    dev = resolve_device(device)
    model = model.to(dev).eval()
    if input_size is None:
        card = getattr(model, "card", None) or {}
        input_size = tuple(card.get("input_size") or model.config.input_size)
    size = (int(input_size[0]), int(input_size[1]))
    metric = ranking_metric(model)
    names_of = [m.name for m in methods]
    if len(set(names_of)) != len(names_of):
        raise ValueError(f"methods {names_of}: each needs its own name (MethodSpec.label)")
    split = load_split(root) if split is None else split
    refs = choose_references(model, split, names, size, metric, dev).set_index("original")
    usable = [m for m in methods if get_explainer(m.method).supports(model)]
    skipped = [m.name for m in methods if m not in usable]
    if len(usable) > 1:  # a list: drop the methods this model cannot run, saying why
        usable, failed = _runnable(model, usable, root, names[0], refs, size, metric, dev)
        skipped += failed
    if not usable:
        raise ValueError(
            f"none of the methods {[m.name for m in methods]} applies to "
            f"{type(model).__name__}; see workbench.explain.list_explainers(model)"
        )
    methods = usable
    records: list[dict[str, Any]] = []
    bar = tqdm(total=len(names), desc="counterfactual game", disable=not progress, leave=False)
    for start in range(0, len(names), batch_size):
        chunk = names[start : start + batch_size]
        x = load_images([str(Path(root) / n) for n in chunk], size).to(dev)
        e_g = embed_images(model, load_images(list(refs.loc[chunk, "reference"]), size), dev)
        rows = table[table.original.isin(chunk)]
        at = torch.tensor([chunk.index(o) for o in rows.original])
        x_cf = load_images(list(rows.counterfactual_path), size).to(dev)
        s_x, s_cf, maps = explain_deltas(model, methods, x, x_cf, e_g, at, metric)
        masks = load_masks(list(rows.mask_path), size)
        person = _person_masks(root, chunk, size)[at]  # (P, H, W) the originals' person masks
        delta = s_x[at] - s_cf
        chance, person_chance = area_share(masks), area_share(person)
        for spec in methods:
            m = orient_maps(spec, maps[spec.name], delta)
            energy = energy_in_mask(m, masks)
            hit = pointing_game(m, masks)
            # the faithfulness report's score of the same map: energy on the person mask
            on_person = energy_in_mask(m, person)
            top = top_k_precision(m, masks)
            for i, row in enumerate(rows.itertuples()):
                records.append(
                    {
                        "original": row.original,
                        "counterfactual": row.counterfactual,
                        "reference": _relative(refs.loc[row.original, "reference"]),
                        "factor": row.factor,
                        "old": row.old,
                        "new": row.new,
                        "method": spec.name,
                        "s_original": float(s_x[at[i]]),
                        "s_counterfactual": float(s_cf[i]),
                        "delta": float(delta[i]),
                        "energy": float(energy[i]),
                        "chance": float(chance[i]),
                        "pointing": bool(hit[i]),
                        "top_k": float(top[i]),
                        "person_energy": float(on_person[i]),
                        "person_chance": float(person_chance[i]),
                    }
                )
        bar.update(len(chunk))
    bar.close()
    rows_df = pd.DataFrame.from_records(records)
    if threshold is None:
        threshold = _default_threshold(rows_df, metric)
    rows_df["kept"] = rows_df.delta.abs() >= threshold
    settings = {
        "model": getattr(model, "model_name", type(model).__name__),
        "metric": metric,
        "threshold": float(threshold),
        "originals": len(names),
        "pairs": len(table),
        "methods": [s.name for s in methods],
        "skipped": skipped,
        "input_size": list(size),
    }
    return CounterfactualGame(rows_df, summarize(rows_df), sensitivity_profile(rows_df), settings)


def _relative(path: str) -> str:
    """``folder/name`` of a split image (how ``counterfactuals.csv`` names files)."""
    p = Path(path)
    return f"{p.parent.name}/{p.name}"


def interpreter_changes(
    interpreter: nn.Module,
    root: str | Path,
    rows: pd.DataFrame,
    device: str | torch.device = "auto",
) -> pd.DataFrame:
    """The AAM interpreter's view of the same pairs: for each (x, x', g) of ``rows`` (a game's
    rows), the change of its distilled distance carried by the factor's attributes,
    ``Σ_{k ∈ A_f} (d^k(x', g) − d^k(x, g)) / M`` (``d̂ = mean_k d^k``, so the changes of all M
    attributes add up to d̂(x', g) − d̂(x, g)), and that total. Factors the schema does not
    annotate (shoes, background) get NaN for the attribute part.

    Returns one row per (original, factor): ``attribute_change``, ``distance_change``.
    """
    from workbench.data.synth.counterfactual import FACTOR_ATTRIBUTES
    from workbench.device import resolve_device

    dev = resolve_device(device)
    interpreter = interpreter.to(dev).eval()
    card = getattr(interpreter, "card", None) or {}
    size = tuple(card.get("input_size") or interpreter.config.input_size)
    names = list(interpreter.attribute_names)
    pairs = rows.drop_duplicates(["original", "factor"]).reset_index(drop=True)
    root = Path(root)

    def components(paths: list[str]) -> Tensor:
        with torch.no_grad():
            return interpreter.interpret(load_images(paths, size).to(dev)).components

    out = []
    for start in range(0, len(pairs), 32):
        part = pairs.iloc[start : start + 32]
        cx = components([str(root / p) for p in part.original])
        ccf = components([str(root / p) for p in part.counterfactual])
        cg = components([str(root / p) for p in part.reference])
        d_x = (cx - cg).pow(2).sum(-1).clamp_min(1e-12).sqrt()  # (B, M)
        d_cf = (ccf - cg).pow(2).sum(-1).clamp_min(1e-12).sqrt()
        change = (d_cf - d_x).cpu() / len(names)  # (B, M): adds up to the change of d̂
        for i, row in enumerate(part.itertuples()):
            cols = [names.index(a) for a in FACTOR_ATTRIBUTES.get(row.factor, ()) if a in names]
            out.append(
                {
                    "original": row.original,
                    "factor": row.factor,
                    "attribute_change": float(change[i, cols].sum()) if cols else np.nan,
                    "distance_change": float(change[i].sum()),
                }
            )
    return pd.DataFrame(out)


def _default_threshold(rows: pd.DataFrame, metric: str) -> float:
    if metric == "cosine":
        return DEFAULT_THRESHOLD
    return DEFAULT_THRESHOLD * float(np.median(-rows.s_original))  # 1 % of the median distance


def summarize(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per method × factor: pairs, kept, |Δ| (median, quartiles), energy vs chance,
    pointing, and the person-mask energy of the same maps."""
    out = []
    for (method, factor), group in rows.groupby(["method", "factor"], sort=False):
        kept = group[group.kept]
        energy, chance = kept.energy.mean(), kept.chance.mean()
        out.append(
            {
                "method": method,
                "factor": factor,
                "pairs": len(group),
                "kept": len(kept),
                "median_abs_delta": group.delta.abs().median(),
                "abs_delta_q25": group.delta.abs().quantile(0.25),
                "abs_delta_q75": group.delta.abs().quantile(0.75),
                "mean_delta": group.delta.mean(),
                "energy": energy,
                "chance": chance,
                "energy_over_chance": energy / chance if chance > 0 else np.nan,
                "pointing": kept.pointing.mean() if len(kept) else np.nan,
                "top_k": kept.top_k.mean(),
                "person_energy": kept.person_energy.mean(),
                "person_chance": kept.person_chance.mean(),
            }
        )
    return pd.DataFrame(out)


def sensitivity_profile(rows: pd.DataFrame) -> pd.DataFrame:
    """Factors ranked by the median |Δ| over all their pairs (the model's, not a method's)."""
    pairs = rows.drop_duplicates(["original", "factor"])
    table = pairs.groupby("factor").agg(
        median_abs_delta=("delta", lambda d: d.abs().median()),
        abs_delta_q25=("delta", lambda d: d.abs().quantile(0.25)),
        abs_delta_q75=("delta", lambda d: d.abs().quantile(0.75)),
        mean_delta=("delta", "mean"),
        share_lowered=("delta", lambda d: (d > 0).mean()),
        pairs=("delta", "size"),
    )
    table = table.sort_values("median_abs_delta", ascending=False)
    table["rank"] = np.arange(1, len(table) + 1)
    return table
