"""The counterfactual game for every shipped model: the table of docs/counterfactuals.md.

    python benchmarks/counterfactual_zoo.py --data data/synth --out outputs/counterfactual

Needs counterfactuals beside the dataset (``workbench synth --counterfactuals 24``, or
``add_counterfactuals``). For every card in weights/ but the AAM interpreters (they rank by
their distilled distance and are the reference here), plays the game with the default methods
(Grad-CAM at layer2/3/4, DAAF holistic, Integrated Gradients, Occlusion; plus the lead's
decomposition where ``workbench.explain`` registers it) and writes per model ``summary.csv``,
``pairs.csv``, ``sensitivity.csv``; then ``profiles.csv``: each model's median |Δ| per factor
beside the interpreter's attribute change on the same pairs, with their Spearman correlation.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import pandas as pd

import workbench
from workbench.evaluate.counterfactual import (
    DEFAULT_METHODS,
    MethodSpec,
    counterfactual_game,
    interpreter_changes,
)
from workbench.explain import list_explainers


def verdict(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method: the person-mask score of the faithfulness report and the game's scores on
    the same maps (kept edits; person factors pooled, background apart)."""
    kept = rows[rows.kept]
    out = {}
    for method, group in kept.groupby("method", sort=False):
        person = group[group.factor != "background"]
        bg = group[group.factor == "background"]
        out[method] = {
            "person_energy": group.person_energy.mean(),
            "person_chance": group.person_chance.mean(),
            "game_energy_person_factors": person.energy.mean(),
            "game_chance_person_factors": person.chance.mean(),
            "game_ratio_person_factors": person.energy.mean() / person.chance.mean(),
            "game_pointing_person_factors": person.pointing.mean(),
            "background_kept": len(bg),
            "game_ratio_background": bg.energy.mean() / bg.chance.mean()
            if len(bg)
            else float("nan"),
        }
    return pd.DataFrame(out).T


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/synth")
    parser.add_argument("--out", default="outputs/counterfactual")
    parser.add_argument("--originals", type=int, default=None)
    parser.add_argument("--models", nargs="*", default=None)
    parser.add_argument("--interpreter", default="interpreter_bot256")
    args = parser.parse_args()
    out = Path(args.out)
    names = args.models or [
        p.stem for p in sorted(Path("weights").glob("*.json")) if not p.stem.startswith("interp")
    ]
    methods = list(DEFAULT_METHODS)
    if "decomposition" in list_explainers():
        methods.insert(3, MethodSpec("decomposition"))
    from workbench.data.readers import load_split

    split = load_split(args.data)
    interpreter = workbench.load_pretrained(args.interpreter)
    profiles, summaries, verdicts, timings = [], [], [], {}
    for name in names:
        t0 = time.perf_counter()
        model = workbench.load_pretrained(name)
        game = counterfactual_game(
            model, args.data, methods, split=split, originals=args.originals, device="cpu",
            progress=False,
        )  # fmt: skip
        game.save(out / name)
        timings[name] = round(time.perf_counter() - t0, 1)
        summaries.append(game.summary.assign(model=name))
        verdicts.append(verdict(game.rows).assign(model=name))
        aam = interpreter_changes(interpreter, args.data, game.rows, device="cpu")
        aam_profile = aam.groupby("factor").attribute_change.apply(lambda d: d.abs().median())
        profile = game.sensitivity[["median_abs_delta", "rank"]].join(
            aam_profile.rename("aam_median_abs_change")
        )
        annotated = profile.dropna()
        rho = annotated.median_abs_delta.corr(annotated.aam_median_abs_change, method="spearman")
        profiles.append(
            profile.assign(model=name, spearman=rho, threshold=game.settings["threshold"])
        )
        print(f"{name}: {timings[name]} s, Spearman {rho:.2f}", flush=True)
        print(game.sensitivity.to_string(), flush=True)
    pd.concat(summaries).to_csv(out / "summary_all.csv", index=False)
    pd.concat(profiles).to_csv(out / "profiles.csv")
    pd.concat(verdicts).to_csv(out / "verdicts.csv")
    (out / "timings.json").write_text(json.dumps(timings, indent=1))


if __name__ == "__main__":
    main()
