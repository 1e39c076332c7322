"""The Python-API section of the bad-input benchmark: what a notebook user can pass by mistake.

    PYTHONPATH=. python benchmarks/bad_inputs_api.py            # one row per case + the counts
    python benchmarks/bad_inputs.py --api --root after=. --root before=/tmp/old_checkout

Every case calls a public function of ``workbench`` with one wrong input (or under one fault) and
is classified from what happened:

    refused     an exception raised by the workbench's own code, with a message (good)
    message     the call went on and a warning said what is probably wrong (good)
    converted   no warning, and the result equals the one of the corrected input (good)
    raw error   an exception from deep inside torch / numpy, or an IndexError-like one (bad)
    silent      no warning and a result that differs from the corrected input's (bad)
    corrupted   whatever happened, the call changed state it does not own: a model's train/eval
                mode or its weights, a file that should be intact (bad)

A case may also decide its own outcome (the run-folder faults go through the CLI in-process).
Cases run in one process against the ``workbench`` on ``sys.path``, on tiny models (64×32) and a
12-identity synthetic split rendered once; the whole section takes well under a minute on a CPU.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import io
import sys
import tempfile
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

GOOD = ("refused", "message", "converted")
MISSED = "missed"  # a statistical check (BGR) that did not fire: reported, not a failure
BAD = ("raw error", "silent", "corrupted")
RAW_TYPES = (IndexError, ZeroDivisionError, AttributeError, AssertionError, UnboundLocalError)


class Outcome(Exception):
    """Raised by a case that classifies itself (``Outcome("refused", "why")``)."""

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


@dataclass
class ApiCase:
    category: str
    name: str
    run: Callable[[Env], Any]
    # the result is right (a harmless or converted input); default: any acceptance is wrong
    check: Callable[[Env, Any], bool] | None = None
    # caught by a statistical check that can miss: a silent outcome is "missed", not "silent"
    statistical: bool = False


# -- the shared environment ------------------------------------------------------------------------
class Env:
    """Tiny models, a split and good images, built once; ``reset()`` before every case."""

    def __init__(self, work: Path) -> None:
        from workbench.data.readers import load_split
        from workbench.data.synth import generate
        from workbench.models import build_model

        torch.manual_seed(0)
        self.work = work
        self.data = work / "data"
        if not (self.data / "synth.json").exists():
            generate(self.data, ids=12, seed=1, height=128, width=64, workers=1, progress=False)
        self.split = load_split(self.data)
        self.size = (64, 32)
        self.models = {
            name: build_model(
                name, num_classes=6, backbone="resnet18", width=8, input_size=self.size
            ).eval()
            for name in ("bot", "rga", "ianet")
        }
        self.bot = self.models["bot"]
        # a trained model (its BatchNorm statistics know RGB pedestrians), at the split's 128×64
        from workbench.pretrained import load_pretrained

        self.models["trained"] = load_pretrained("bot_r18w16_synth")
        self.images = self._good_images(4)  # (4, 3, 64, 32) normalised RGB
        self.uint8 = self._uint8(4)  # (4, 3, 64, 32) uint8 RGB
        self._states = {n: {k: v.clone() for k, v in m.state_dict().items()}
                        for n, m in self.models.items()}  # fmt: skip

    def _uint8(self, n: int) -> torch.Tensor:
        import cv2

        from workbench.data.dataset import read_image

        rows = []
        for path in self.split.gallery.path[:n]:  # read_image gives RGB
            rgb = cv2.resize(read_image(path), self.size[::-1], interpolation=cv2.INTER_LINEAR)
            rows.append(torch.from_numpy(rgb).permute(2, 0, 1))
        return torch.stack(rows)

    def _good_images(self, n: int) -> torch.Tensor:
        return _normalise(self._uint8(n))

    def reset(self) -> None:
        for name, model in self.models.items():
            model.eval()
            model.load_state_dict(self._states[name])

    def snapshot(self) -> tuple:
        return tuple(
            (n, m.training, float(sum(p.double().sum() for p in m.state_dict().values())))
            for n, m in self.models.items()
        )


# -- helpers -------------------------------------------------------------------------------------
def _normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, H, W) → ImageNet-normalised floats, as the data pipeline does."""
    from workbench.data.transforms import IMAGENET_MEAN, IMAGENET_STD

    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    return (pixels.float() / 255 - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def _api(dotted: str) -> Any:
    """``_api("workbench.pretrained.load_pretrained")``: the function, imported when called."""
    import importlib

    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _close(a: Any, b: Any, atol: float = 1e-4) -> bool:
    return torch.allclose(torch.as_tensor(a).float(), torch.as_tensor(b).float(), atol=atol)


def _loader(images: Any, n: int | None = None) -> list[dict[str, Any]]:
    n = len(images) if n is None else n
    return [{"image": images, "pid": torch.arange(n), "camid": torch.zeros(n, dtype=torch.long),
             "path": [f"x{i}.jpg" for i in range(n)]}]  # fmt: skip


def _gradcam(env: Env, images: Any, model: str = "bot") -> Any:
    from workbench.explain import explain
    from workbench.explain.targets import EmbeddingSimilarity

    m = env.models[model]
    return explain("gradcam", m, images, EmbeddingSimilarity(_embedding(m, env.images[:1])[0]))


def _embedding(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Eval-mode embeddings, leaving the model's mode as it was."""
    was_training = model.training
    try:
        with torch.no_grad():
            return model.eval()(images)
    finally:
        model.train(was_training)


def _pair(env: Env, query: Any, gallery: Any, model: str = "bot") -> Any:
    from workbench.explain import explain_pair

    return explain_pair("gradcam", env.models[model], query, gallery)


def _features(env: Env, images: Any, model: str = "bot", **kw: Any) -> Any:
    from workbench.evaluate.features import extract_features

    return extract_features(env.models[model], _loader(images), device="cpu", progress=False, **kw)


# "bad image" variants: name -> (make(env) -> images, the corrected images or None if refused)
def _variants() -> dict[str, tuple[Callable[[Env], Any], Callable[[Env], Any] | None]]:
    def good(e: Env) -> torch.Tensor:
        return e.images

    def nan(e: Env) -> torch.Tensor:
        x = e.images.clone()
        x[1, 0, 10, 10] = float("nan")
        return x

    def inf(e: Env) -> torch.Tensor:
        x = e.images.clone()
        x[0, 2, 5, 5] = float("inf")
        return x

    return {
        "twice the model's size": (
            lambda e: torch.nn.functional.interpolate(e.images, scale_factor=2),
            None,
        ),
        "half the model's size": (lambda e: e.images[:, :, ::2, ::2].contiguous(), None),
        "uint8 tensor 0-255": (lambda e: e.uint8, good),
        "float 0-255": (lambda e: e.uint8.float(), None),
        "float 0-1, not normalised": (lambda e: e.uint8.float() / 255, None),
        "a NaN pixel": (nan, None),
        "an inf pixel": (inf, None),
        "numpy HWC uint8": (lambda e: e.uint8.permute(0, 2, 3, 1).numpy(), None),
        "(B, H, W, 3) tensor": (lambda e: e.images.permute(0, 2, 3, 1), None),
        "one (3, H, W) image": (lambda e: e.images[0], None),
        "one channel": (lambda e: e.images[:, :1], None),
        "RGBA": (lambda e: torch.cat([e.images, e.images[:, :1]], 1), None),
        "empty batch": (lambda e: e.images[:0], None),
        "float64": (lambda e: e.images.double(), good),
        "a list of tensors": (lambda e: list(e.images), None),
    }


def image_cases() -> list[ApiCase]:
    cases = []
    for vname, (make, corrected) in _variants().items():

        def check_maps(env: Env, r: Any, corrected: Any = corrected) -> bool:
            return corrected is not None and _close(r.maps, _gradcam(env, corrected(env)).maps)

        def check_pair(env: Env, r: Any, corrected: Any = corrected) -> bool:
            if corrected is None:
                return False
            good = corrected(env)
            return _close(r.distance, _pair(env, good[:2], good[2:]).distance)

        def check_feats(env: Env, r: Any, corrected: Any = corrected) -> bool:
            return corrected is not None and _close(r.feats, _features(env, corrected(env)).feats)

        cases += [
            ApiCase("images", f"explain(gradcam): {vname}",
                    lambda e, make=make: _gradcam(e, make(e)), check_maps),
            ApiCase("images", f"explain_pair: {vname} (both sides)",
                    lambda e, make=make: _pair(e, *_halves(make(e))), check_pair),
            ApiCase("images", f"extract_features: {vname}",
                    lambda e, make=make: _features(e, make(e)), check_feats),
        ]  # fmt: skip
    # the attention models: size and dtype faults on the pair path and in features
    for model in ("rga", "ianet"):
        for vname in ("twice the model's size", "uint8 tensor 0-255", "a NaN pixel",
                      "float 0-1, not normalised"):  # fmt: skip
            make, corrected = _variants()[vname]

            def check(env: Env, r: Any, corrected: Any = corrected, model: str = model) -> bool:
                if corrected is None:
                    return False
                good = corrected(env)
                return _close(r.distance, _pair(env, good[:2], good[2:], model).distance)

            cases.append(ApiCase("images", f"explain_pair({model}): {vname}",
                                 lambda e, make=make, model=model: _pair(e, *_halves(make(e)), model),
                                 check))  # fmt: skip
    cases += bgr_cases()
    cases += [
        ApiCase("images", "explain_pair: query and gallery of different sizes",
                lambda e: _pair(e, e.images[:2], torch.nn.functional.interpolate(e.images[2:], scale_factor=2))),
        ApiCase("images", "explain_pair: 3 queries for 2 gallery images",
                lambda e: _pair(e, e.images[:3], e.images[2:])),
        ApiCase("images", "explain(gradcam) on a train-mode model (harmless)",
                _train_mode_gradcam, lambda e, r: _close(r.maps, _gradcam(e, e.images).maps)),
    ]  # fmt: skip
    return cases


def bgr_cases() -> list[ApiCase]:
    """BGR pixels (what OpenCV reads) given to the trained model: 16 gallery images, 128×64."""

    def bgr(e: Env) -> torch.Tensor:
        from workbench.data.dataset import read_image

        rows = [torch.from_numpy(read_image(p)[:, :, ::-1].copy()).permute(2, 0, 1)
                for p in e.split.gallery.path[:16]]  # fmt: skip  # read_image gives RGB
        return _normalise(torch.stack(rows))

    def all_gallery(e: Env) -> Any:  # the whole BGR gallery, batches of 16
        from workbench.evaluate.features import extract_features

        rows = [torch.from_numpy(read_image(p)[:, :, ::-1].copy()).permute(2, 0, 1)
                for p in e.split.gallery.path]  # fmt: skip
        x = _normalise(torch.stack(rows))
        loader = [_loader(x[i : i + 16])[0] for i in range(0, len(x), 16)]
        return extract_features(e.models["trained"], loader, device="cpu", progress=False)

    from workbench.data.dataset import read_image

    return [
        ApiCase("images", "explain(gradcam) of a trained model: 16 BGR images",
                lambda e: _gradcam(e, bgr(e), "trained"), statistical=True),
        ApiCase("images", "explain_pair of a trained model: BGR, 1 query × 15",
                lambda e: _pair(e, bgr(e)[:1], bgr(e)[1:], "trained"), statistical=True),
        ApiCase("images", "extract_features of a trained model: 16 BGR images",
                lambda e: _features(e, bgr(e), "trained"), statistical=True),
        ApiCase("images", "extract_features of a trained model: a BGR gallery (65 images)",
                all_gallery, statistical=True),
    ]  # fmt: skip


def _train_mode_gradcam(e: Env) -> Any:
    e.bot.train()
    try:
        return _gradcam(e, e.images)
    finally:
        e.bot.eval()


def _halves(x: Any) -> tuple[Any, Any]:
    if isinstance(x, list):
        return x[:2], x[2:]
    if isinstance(x, torch.Tensor | np.ndarray) and x.ndim == 4:
        return x[:2], x[2:]
    return x, x  # one image, an empty batch


# -- evaluation, models and their cards ------------------------------------------------------------
def model_cases() -> list[ApiCase]:
    def evaluate(e: Env, h: int, w: int, **kw: Any) -> Any:
        from workbench.evaluate.protocol import evaluate_model

        return evaluate_model(e.bot, e.split, h, w, device="cpu", progress=False, workers=1, **kw)

    def card_matches(e: Env) -> Any:
        from workbench.pretrained import list_pretrained, load_pretrained

        bad = []
        for card in list_pretrained():
            model = load_pretrained(card["name"])
            if list(model.config.input_size) != list(card.get("input_size", [])):
                bad.append(card["name"])
        return bad

    def rga_eval_wrong(e: Env) -> Any:
        return _evaluate(e, e.split, "rga", (128, 64))

    return [
        ApiCase("models", "evaluate_model at twice the model's input size", lambda e: evaluate(e, 128, 64)),
        ApiCase("models", "evaluate_model at the wrong aspect (64×64)", lambda e: evaluate(e, 64, 64)),
        ApiCase("models", "evaluate_model of an RGA model at another size", rga_eval_wrong),
        ApiCase("models", "evaluate_model height 0", lambda e: evaluate(e, 0, 32)),
        ApiCase("models", "evaluate_model metric 'cosinus'", lambda e: evaluate(e, *e.size, metric="cosinus")),
        ApiCase("models", "evaluate_model batch_size 0", lambda e: evaluate(e, *e.size, batch_size=0)),
        ApiCase("models", "evaluate_model of a split with no queries",
                lambda e: _evaluate(e, _no_queries(e.split))),
        ApiCase("models", "every shipped card's config input size = its card's",
                card_matches, lambda e, r: r == []),
        ApiCase("models", "load_pretrained of a name that is not shipped",
                lambda e: _api("workbench.pretrained.load_pretrained")("bot_r50_nosuch")),
    ]  # fmt: skip


def _evaluate(e: Env, split: Any, model: str = "bot", size: tuple[int, int] | None = None) -> Any:
    from workbench.evaluate.protocol import evaluate_model

    h, w = size or e.size
    return evaluate_model(e.models[model], split, h, w, device="cpu", progress=False, workers=1)


def _no_queries(split: Any) -> Any:
    import dataclasses

    return dataclasses.replace(split, query=split.query.iloc[:0])


# -- devices -------------------------------------------------------------------------------------
def device_cases() -> list[ApiCase]:
    from_pretrained = "workbench.pretrained"

    def load(device: Any) -> Callable[[Env], Any]:
        return lambda e: _api(f"{from_pretrained}.load_pretrained")("bot_r18w16_256", device=device)

    def feats(device: Any) -> Callable[[Env], Any]:
        from workbench.evaluate.features import extract_features

        return lambda e: extract_features(e.bot, _loader(e.images), device=device, progress=False)

    def dist(device: Any) -> Callable[[Env], Any]:
        from workbench.evaluate.distance import compute_distance

        return lambda e: compute_distance(torch.ones(2, 4), torch.zeros(3, 4), device=device)

    def resolve(device: Any) -> Callable[[Env], Any]:
        from workbench.device import resolve_device

        return lambda e: resolve_device(device)

    no_cuda = not torch.cuda.is_available()
    cases = [
        ApiCase("devices", 'load_pretrained(device="auto")', load("auto"),
                lambda e, r: r.card["name"] == "bot_r18w16_256"),
        ApiCase("devices", 'load_pretrained(device=torch.device("cpu"))', load(torch.device("cpu")),
                lambda e, r: next(r.parameters()).device.type == "cpu"),
        ApiCase("devices", 'extract_features(device=torch.device("cpu"))', feats(torch.device("cpu")),
                lambda e, r: r.feats.shape[0] == 4),
        ApiCase("devices", 'compute_distance(device="auto")', dist("auto"),
                lambda e, r: tuple(r.shape) == (2, 3)),
        ApiCase("devices", 'load_pretrained(device="gpu")', load("gpu")),
        ApiCase("devices", 'extract_features(device="gpu")', feats("gpu")),
        ApiCase("devices", 'compute_distance(device="gpu")', dist("gpu")),
        ApiCase("devices", 'resolve_device("cuda:x")', resolve("cuda:x")),
        ApiCase("devices", "resolve_device(3.5)", resolve(3.5)),
    ]  # fmt: skip
    if no_cuda:
        cases += [
            ApiCase("devices", f"{what}(device={d!r}) without CUDA", fn(d))
            for d in ("cuda", "cuda:1")
            for what, fn in (("load_pretrained", load), ("extract_features", feats),
                             ("compute_distance", dist), ("resolve_device", resolve))
        ]  # fmt: skip
    return cases


# -- eval mode restored, nothing else mutated ----------------------------------------------------------
def state_cases() -> list[ApiCase]:
    def trained(fn: Callable[[Env], Any]) -> Callable[[Env], Any]:
        def run(e: Env) -> Any:
            for m in e.models.values():
                m.train()
            try:
                fn(e)
                if not all(m.training for m in e.models.values()):
                    raise Outcome("corrupted", "left the train-mode model in eval mode")
            finally:
                for m in e.models.values():
                    m.eval()
            return True

        return run

    def app(cls_name: str, **kw: Any) -> Callable[[Env], Any]:
        def make(e: Env) -> Any:
            import workbench.widgets as widgets

            cls = getattr(widgets, cls_name)
            if cls_name == "ReceptiveFieldExplorer":
                return cls(e.models["ianet"], e.split.gallery[:3], device="cpu")
            return cls(e.bot, e.split, device="cpu", **kw)

        return make

    def zoo(fn_name: str) -> Callable[[Env], Any]:
        def run(e: Env) -> Any:
            import workbench.evaluate.zoo as z

            return getattr(z, fn_name)(e.bot, e.images[:1])

        return run

    def features(e: Env) -> Any:
        return _features(e, e.images)

    def explain(e: Env) -> Any:
        return _gradcam(e, e.images)

    ok = lambda e, r: True  # noqa: E731
    return [
        ApiCase("state", f"{name} keeps a train-mode model in train mode", trained(fn), ok)
        for name, fn in (
            ("evaluate_model", lambda e: _evaluate(e, e.split)),
            ("extract_features", features),
            ("explain", explain),
            ("explain_pair", lambda e: _pair(e, e.images[:2], e.images[2:])),
            ("zoo.inference_parameters", zoo("inference_parameters")),
            ("zoo.inference_flops", zoo("inference_flops")),
            ("zoo.latency_ms", zoo("latency_ms")),
            ("RankingBrowser", app("RankingBrowser")),
            ("PairExplainer", lambda e: _api("workbench.widgets.PairExplainer")(e.bot, device="cpu")),
            ("ReceptiveFieldExplorer", app("ReceptiveFieldExplorer")),
        )
    ]  # fmt: skip


# -- targets, metrics, the captum adapter --------------------------------------------------------
def argument_cases() -> list[ApiCase]:
    from workbench.explain import targets as T

    def target(make: Callable[[Env], Any]) -> Callable[[Env], Any]:
        def run(e: Env) -> Any:
            from workbench.explain import explain

            return explain("gradcam", e.bot, e.images, make(e))

        return run

    def emb(e: Env) -> torch.Tensor:
        return _embedding(e.bot, e.images[:1])[0]

    def metric(fn_name: str, maps: Callable[[Env], Any], masks: Callable[[Env], Any]) -> Callable:
        def run(e: Env) -> Any:
            import workbench.explain.metrics as M

            return getattr(M, fn_name)(maps(e), masks(e))

        return run

    def curve(**kw: Any) -> Callable[[Env], Any]:
        def run(e: Env) -> Any:
            import workbench.explain.metrics as M

            x = e.images[:2]
            maps = kw.pop("maps", torch.rand(2, 8, 4))
            return M.deletion_curve(lambda im: e.bot(im).norm(dim=1), x, maps, **kw)

        return run

    def captum(**params: Any) -> Callable[[Env], Any]:
        def run(e: Env) -> Any:
            from workbench.explain import explain

            return explain("captum", e.bot, e.images[:1], T.EmbeddingSimilarity(emb(e)), **params)

        return run

    def method(name: str, **params: Any) -> Callable[[Env], Any]:
        def run(e: Env) -> Any:
            from workbench.explain import explain

            return explain(name, e.bot, e.images[:1], T.EmbeddingSimilarity(emb(e)), **params)

        return run

    zeros = lambda e: torch.zeros(2, 8, 4)  # noqa: E731
    corner = lambda e: torch.zeros(2, 8, 4, dtype=torch.bool).index_put_(  # noqa: E731
        (torch.tensor([0, 1]), torch.tensor([0, 0]), torch.tensor([0, 0])), torch.tensor(True)
    )
    half = lambda e: torch.arange(32).view(1, 8, 4).expand(2, -1, -1) < 16  # noqa: E731
    nan_maps = lambda e: torch.full((2, 8, 4), float("nan"))  # noqa: E731
    return [
        ApiCase("targets", "IdentityLogit(label=99) of a 6-class model", target(lambda e: T.IdentityLogit(99))),
        ApiCase("targets", "IdentityLogit(label=-1)", target(lambda e: T.IdentityLogit(-1))),
        ApiCase("targets", "IdentityLogit(label=2.5)", target(lambda e: T.IdentityLogit(2.5))),
        ApiCase("targets", "IdentityLogit(label=[1, 2]) for 4 images", target(lambda e: T.IdentityLogit(torch.tensor([1, 2])))),
        ApiCase("targets", "GroupEmbedding(index=6, groups=6)", target(lambda e: T.GroupEmbedding(6))),
        ApiCase("targets", "GroupEmbedding(index=-1)", target(lambda e: T.GroupEmbedding(-1))),
        ApiCase("targets", "GroupEmbedding(groups=0)", target(lambda e: T.GroupEmbedding(0, groups=0))),
        ApiCase("targets", "GroupEmbedding(groups=10**6)", target(lambda e: T.GroupEmbedding(0, groups=10**6))),
        ApiCase("targets", "EmbeddingSimilarity(metric='cos')", target(lambda e: T.EmbeddingSimilarity(emb(e), metric="cos"))),
        ApiCase("targets", "EmbeddingSimilarity(reference of the wrong width)", target(lambda e: T.EmbeddingSimilarity(torch.zeros(7)))),
        ApiCase("targets", "EmbeddingSimilarity(reference with a NaN)", target(lambda e: T.EmbeddingSimilarity(emb(e) * float("nan")))),
        ApiCase("targets", "EmbeddingSimilarity(reference = a list)", target(lambda e: T.EmbeddingSimilarity(emb(e).tolist()))),
        ApiCase("targets", "PairDistance(reference of 3 rows for 4 images)", target(lambda e: T.PairDistance(torch.zeros(3, e.bot.embedding_dim)))),
        ApiCase("targets", "AttributeLogit on a model without attributes", target(lambda e: T.AttributeLogit(0))),
        ApiCase("targets", "a target that is not callable", target(lambda e: "similarity")),
        ApiCase("metrics", "pointing_game of all-zero maps (a miss: they point nowhere)",
                metric("pointing_game", zeros, corner), lambda e, r: not bool(r.any())),
        ApiCase("metrics", "pointing_game of NaN maps", metric("pointing_game", nan_maps, half)),
        ApiCase("metrics", "energy_in_mask of NaN maps", metric("energy_in_mask", nan_maps, half)),
        ApiCase("metrics", "energy_in_mask with masks of another size",
                metric("energy_in_mask", zeros, lambda e: torch.ones(2, 16, 8))),
        ApiCase("metrics", "energy_in_mask with float masks in 0..255",
                metric("energy_in_mask", lambda e: torch.rand(2, 8, 4), lambda e: half(e).float() * 255),
                lambda e, r: True),
        ApiCase("metrics", "pointing_game with a mask of 3 values",
                metric("pointing_game", lambda e: torch.rand(2, 8, 4), lambda e: torch.randint(0, 3, (2, 8, 4)))),
        ApiCase("metrics", "deletion_curve steps=0", curve(steps=0)),
        ApiCase("metrics", "deletion_curve steps=-3", curve(steps=-3)),
        ApiCase("metrics", "deletion_curve steps=2.5", curve(steps=2.5)),
        ApiCase("metrics", "deletion_curve with NaN maps", curve(maps=torch.full((2, 8, 4), float("nan")))),
        ApiCase("metrics", "deletion_curve with (B, 3, h, w) maps", curve(maps=torch.rand(2, 3, 8, 4))),
        ApiCase("metrics", "curve_area of a one-point curve",
                lambda e: _api("workbench.explain.metrics.curve_area")(torch.ones(2, 1))),
        ApiCase("metrics", "x_map with components of another width",
                lambda e: _api("workbench.evaluate.explain_metrics.x_map")(
                    np.full((3, 5), 0.2), np.zeros((3, 4), bool))),
        ApiCase("captum", "algorithm 'IntegratedGradient' (typo)", captum(algorithm="IntegratedGradient")),
        ApiCase("captum", "attribute_kwargs n_step (typo)", captum(attribute_kwargs={"n_step": 4})),
        ApiCase("captum", "attribute_kwargs n_steps=0", captum(attribute_kwargs={"n_steps": 0})),
        ApiCase("captum", "attribute_kwargs n_steps=-5", captum(attribute_kwargs={"n_steps": -5})),
        ApiCase("captum", "attribute_kwargs internal_batch_size=0", captum(attribute_kwargs={"internal_batch_size": 0})),
        ApiCase("captum", "attribute_kwargs is a list", captum(attribute_kwargs=[("n_steps", 4)])),
        ApiCase("captum", "attribute_kwargs additional_forward_args (taken by the adapter)",
                captum(attribute_kwargs={"additional_forward_args": (1,)})),
        ApiCase("captum", "LayerGradCam with layer 'layer9'", lambda e: _api("workbench.explain.explain")(
            "captum", e.bot, e.images[:1], T.EmbeddingSimilarity(emb(e)), layer="layer9", algorithm="LayerGradCam")),
        ApiCase("captum", "algorithm 'NoiseTunnel' (a wrapper, not an algorithm)", captum(algorithm="NoiseTunnel")),
        ApiCase("explain", "method 'gradcamm' (typo)", method("gradcamm")),
        ApiCase("explain", "gradcam with an unknown parameter", method("gradcam", relu=True)),
        ApiCase("explain", "gradcam layer 'embedding' (a vector)",
                lambda e: _api("workbench.explain.explain")("gradcam", e.bot, e.images, T.EmbeddingSimilarity(emb(e)), layer="embedding")),
    ]  # fmt: skip


# -- data warnings -------------------------------------------------------------------------------
def data_cases() -> list[ApiCase]:
    import dataclasses

    def evaluate(split: Callable[[Env], Any]) -> Callable[[Env], Any]:
        return lambda e: _evaluate(e, split(e))

    def overlap(e: Env) -> Any:  # test identities also in train
        train = e.split.train.copy()
        gallery = e.split.gallery
        extra = gallery[gallery.pid > 0].iloc[:5].copy()
        return dataclasses.replace(e.split, train=_api("pandas.concat")([train, extra]))

    def distractor_queries(e: Env) -> Any:
        q = e.split.query.copy()
        q.loc[q.index[:3], "pid"] = 0
        return dataclasses.replace(e.split, query=q)

    def junk_queries(e: Env) -> Any:
        q = e.split.query.copy()
        q.loc[q.index[:3], "pid"] = -1
        return dataclasses.replace(e.split, query=q)

    def mixed_sizes(e: Env) -> Any:
        import cv2

        from workbench.data.dataset import read_image

        folder = e.work / "mixed"
        folder.mkdir(exist_ok=True)
        g = e.split.gallery.copy()
        paths = []
        for i, p in enumerate(g.path):
            img = read_image(p)
            if i % 2:
                img = cv2.resize(img, (32, 64))  # half of the others (128×64)
            out = folder / Path(p).name
            cv2.imwrite(str(out), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
            paths.append(str(out))
        g["path"] = paths
        return dataclasses.replace(e.split, gallery=g)

    def other_attributes(e: Env) -> Any:
        from workbench.data.attributes import check_attributes, load_attributes

        return check_attributes(load_attributes(e.data, "train"), e.split.query)

    return [
        ApiCase("data", "train and test share identities", evaluate(overlap)),
        ApiCase("data", "distractor (pid 0) queries", evaluate(distractor_queries)),
        ApiCase("data", "junk (pid -1) queries", evaluate(junk_queries)),
        ApiCase("data", "gallery images of mixed sizes (64×32 upscaled, 128×64 reduced)",
                lambda e: _evaluate(e, mixed_sizes(e))),
        ApiCase("data", "attribute table of the train split for the query", other_attributes),
    ]  # fmt: skip


# -- run folders: lock, full disk, read-only ------------------------------------------------------------
def run_cases() -> list[ApiCase]:
    tiny = ["--model-config", '{"backbone": "resnet18", "width": 8}', "--height", "64",
            "--width", "32", "--batch-size", "16", "--workers", "0", "--eval-every", "0",
            "--max-steps", "1", "--quiet", "--device", "cpu"]  # fmt: skip

    def cli(args: list[str]) -> tuple[int, str]:
        from workbench.cli import main

        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = main(args)
            except SystemExit as ex:
                code = int(ex.code or 0)
        return code, err.getvalue()

    def judge(code: int, err: str, intact: bool) -> None:
        if not intact:
            raise Outcome("corrupted", "the last good checkpoint/weights changed")
        if code == 0:
            raise Outcome("silent", "exit 0")
        if "Traceback" in err or "bug in the workbench" in err or err.count("\n") > 2:
            raise Outcome("raw error", err.strip().splitlines()[-1][:120])
        raise Outcome("refused", err.strip()[:120])

    def train_once(e: Env, out: Path, *extra: str) -> tuple[int, str]:
        return cli(
            ["train", "--out", str(out), "--data", str(e.data), "--epochs", "1", *tiny, *extra]
        )

    def base_run(e: Env) -> Path:
        run = e.work / "run_base"
        if not (run / "model.json").exists():
            code, err = train_once(e, run)
            if code:
                raise RuntimeError(f"fixture run failed: {err}")
        return run

    def copy_run(e: Env, name: str) -> Path:
        import shutil

        dest = e.work / name
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(base_run(e), dest)
        return dest

    def second_train(e: Env) -> Any:  # a run in progress holds the folder
        from workbench.train.config import TrainConfig
        from workbench.train.trainer import Trainer

        run = e.work / "run_locked"
        import shutil

        shutil.rmtree(run, ignore_errors=True)
        cfg = TrainConfig.from_dict({"model": "bot", "model_config": {"backbone": "resnet18", "width": 8},
                                     "data": {"root": str(e.data), "height": 64, "width": 32,
                                              "batch_size": 16, "workers": 0},
                                     "optim": {"epochs": 1}, "device": "cpu"})  # fmt: skip
        first = Trainer(cfg, run, progress=False)
        try:
            code, err = train_once(e, run)
        finally:
            release = getattr(first, "close", None)
            if callable(release):
                release()
        judge(code, err, True)

    def export_while_training(e: Env) -> Any:
        from workbench.train.config import TrainConfig
        from workbench.train.trainer import Trainer

        run = copy_run(e, "run_busy")
        _fresh(e.work / "w_busy")
        cfg = TrainConfig.load(run / "config.json")
        cfg.optim.epochs = 2
        first = Trainer(cfg, run, resume=True, progress=False)
        try:
            code, err = cli(["export", "--run", str(run), "--name", "m", "--folder",
                             str(e.work / "w_busy"), "--quiet"])  # fmt: skip
        finally:
            release = getattr(first, "close", None)
            if callable(release):
                release()
        judge(code, err, True)

    def full_disk_checkpoint(e: Env) -> Any:
        run = copy_run(e, "run_full")
        ckpt = run / "checkpoint.pt"
        before = ckpt.read_bytes()
        with _full_disk_for(".checkpoint.pt."):
            code, err = cli(["train", "--out", str(run), "--resume", "--epochs", "2", *tiny])
        judge(code, err, ckpt.read_bytes() == before)

    def full_disk_export(e: Env) -> Any:
        run = base_run(e)
        folder = _fresh(e.work / "w_full")
        import os as _os

        real = _os.fsync

        def no_space(fd):
            raise OSError(errno.ENOSPC, "No space left on device")

        _os.fsync = no_space
        try:
            code, err = cli(
                [
                    "export",
                    "--run",
                    str(run),
                    "--name",
                    "m",
                    "--folder",
                    str(folder),
                    "--quiet",
                    "--no-eval",
                ]
                if _has_flag("--no-eval")
                else [
                    "export",
                    "--run",
                    str(run),
                    "--name",
                    "m",
                    "--folder",
                    str(folder),
                    "--quiet",
                ]
            )
        finally:
            _os.fsync = real
        judge(code, err, not (folder / "m.safetensors").exists())

    def read_only_checkpoint(e: Env) -> Any:
        run = copy_run(e, "run_ro")
        ckpt = run / "checkpoint.pt"
        before = ckpt.read_bytes()
        import tempfile as _tf

        real = _tf.mkstemp

        def denied(*a, **k):
            if Path(k.get("dir", "")) == run:
                raise PermissionError(errno.EACCES, "Permission denied", str(run))
            return real(*a, **k)

        _tf.mkstemp = denied
        try:
            code, err = cli(["train", "--out", str(run), "--resume", "--epochs", "2", *tiny])
        finally:
            _tf.mkstemp = real
        judge(code, err, ckpt.read_bytes() == before)

    return [
        ApiCase("runs", "a second `train` into a folder a run is using", second_train),
        ApiCase("runs", "`export` of a run that is still training", export_while_training),
        ApiCase("runs", "full disk while writing a checkpoint", full_disk_checkpoint),
        ApiCase("runs", "full disk while exporting weights", full_disk_export),
        ApiCase("runs", "read-only run folder at the checkpoint", read_only_checkpoint),
    ]


def _fresh(folder: Path) -> Path:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
    return folder


def _has_flag(flag: str) -> bool:
    from workbench.cli import build_parser

    return flag in build_parser()._subparsers._group_actions[0].choices["export"].format_help()


class _FullDisk:
    """A file object whose ``write`` fails as on a full disk (ENOSPC), after a few bytes."""

    def __init__(self, f: Any) -> None:
        self._f = f

    def write(self, data: Any) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._f, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._f.close()


@contextlib.contextmanager
def _full_disk_for(marker: str):
    """Files opened with ``os.fdopen`` whose path contains ``marker`` cannot be written."""
    import os

    real = os.fdopen

    def fdopen(fd: int, *a: Any, **k: Any) -> Any:
        f = real(fd, *a, **k)
        try:
            path = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return f
        return _FullDisk(f) if marker in path else f

    os.fdopen = fdopen
    try:
        yield
    finally:
        os.fdopen = real


# -- running -------------------------------------------------------------------------------------
def all_cases() -> list[ApiCase]:
    return [*image_cases(), *model_cases(), *device_cases(), *state_cases(), *argument_cases(),
            *data_cases(), *run_cases()]  # fmt: skip


def _raised_by_workbench(tb: Any) -> bool:
    """Whether the innermost frame of a traceback is a ``raise`` statement of the workbench."""
    import workbench

    root = str(Path(workbench.__file__).parent)
    frames = traceback.extract_tb(tb)
    if not frames or not frames[-1].filename.startswith(root):
        return False
    return (frames[-1].line or "").lstrip().startswith("raise")


def classify(case: ApiCase, env: Env) -> tuple[str, str]:
    """``(outcome, detail)`` of one case (see the module docstring)."""
    env.reset()
    before = env.snapshot()
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("always")
        try:
            result = case.run(env)
            error = None
        except Outcome as o:
            env.reset()
            return o.kind, o.detail
        except Exception as e:
            result, error = None, e
    state_changed = env.snapshot() != before
    # a warning of the workbench (libraries' own warnings come from site-packages)
    ours = [
        w
        for w in caught
        if issubclass(w.category, UserWarning)
        and ("site-packages" not in w.filename or "/workbench/" in w.filename)
    ]
    if error is not None:
        detail = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"[:140]
        kind = (
            "refused"
            if not isinstance(error, RAW_TYPES)
            and str(error)
            and _raised_by_workbench(error.__traceback__)
            else "raw error"
        )
    elif ours:
        kind, detail = "message", f"warning: {str(ours[0].message).splitlines()[0]}"[:140]
    else:
        try:
            right = case.check is not None and bool(case.check(env, result))
        except Exception as e:
            right, detail = False, f"check failed: {type(e).__name__}: {e}"[:140]
        kind = "converted" if right else MISSED if case.statistical else "silent"
        detail = "" if right else "accepted without a word"
    if state_changed and kind != "raw error":
        kind, detail = "corrupted", f"model mode or weights changed ({kind}: {detail})"[:140]
    env.reset()
    return kind, detail


def run_all(work: Path | None = None, verbose: bool = True) -> dict[str, Any]:
    """Run every case; returns ``{"rows": [(category, name, outcome, detail)], "counts": {...}}``."""
    torch.set_num_threads(1)
    with contextlib.ExitStack() as stack:
        if work is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bad_api_")))
        env = Env(work)
        rows = []
        for case in all_cases():
            kind, detail = classify(case, env)
            rows.append((case.category, case.name, kind, detail))
            if verbose:
                print(f"{case.category:8} {kind:10} {case.name:60} {detail}", flush=True)
    counts = Counter(kind for *_, kind, _ in rows)
    return {"rows": rows, "counts": dict(counts)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", type=Path, default=None, help="fixtures folder (default: temporary)")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    report = run_all(args.work, verbose=not args.quiet)
    counts = report["counts"]
    total = sum(counts.values())
    kinds = (*GOOD, MISSED, *BAD)
    print(f"{total} API cases: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in kinds))
    return 1 if any(counts.get(k) for k in BAD) else 0


if __name__ == "__main__":
    sys.exit(main())
