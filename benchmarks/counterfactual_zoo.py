"""The counterfactual game for every shipped model: the table of docs/counterfactuals.md.

    python benchmarks/counterfactual_zoo.py --data data/synth --out outputs/counterfactual

Needs counterfactuals beside the dataset (``workbench synth --counterfactuals 24``, or
``add_counterfactuals``). For every card in weights/ but the AAM interpreters (they rank by
their distilled distance and are the reference here), plays the game with the default methods
(Grad-CAM at layer2/3/4, the exact decomposition's contrast, DAAF holistic, Integrated
Gradients, Occlusion; each where it applies to the model) and writes per model ``summary.csv``,
``pairs.csv``, ``sensitivity.csv``; then ``profiles.csv``: each model's median |Δ| per factor
beside the interpreter's attribute change on the same pairs, with their Spearman correlation,
``verdicts.csv`` (the person-mask energy of the faithfulness report beside the game's scores of
the same maps) and ``tables.md`` (the tables of docs/counterfactuals.md).
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
    counterfactual_game,
    interpreter_changes,
)


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
            "game_top_k_person_factors": person.top_k.mean(),
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
    parser.add_argument("--tables-only", action="store_true", help="rewrite tables.md only")
    args = parser.parse_args()
    out = Path(args.out)
    if args.tables_only:  # summaries and verdicts again from each model's pairs.csv
        rebuild(out)
        (out / "tables.md").write_text(tables(out, target_of(args.interpreter)))
        return
    names = args.models or [
        p.stem for p in sorted(Path("weights").glob("*.json")) if not p.stem.startswith("interp")
    ]
    methods = list(DEFAULT_METHODS)
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
    (out / "tables.md").write_text(tables(out, target_of(args.interpreter)))


def target_of(interpreter: str) -> str:
    """The shipped name of the interpreter's target (the card whose weights it was built on)."""
    cards = workbench.list_pretrained()
    config = next(c for c in cards if c["name"] == interpreter)["model_config"]
    names = {c["name"] for c in cards}
    by_sha = [c["name"] for c in cards if c.get("sha256") == config.get("target_sha256")]
    # an interpreter built on a run's fp32 weights: the run folder is named after the card
    path = Path(str(config.get("target")))
    by_name = [n for n in (path.stem, path.parent.name) if n in names]
    return (by_sha + by_name + ["its target"])[0]


def rebuild(out: Path) -> None:
    """``summary_all.csv`` and ``verdicts.csv`` from the per-model ``pairs.csv`` files (rows
    repeated by a method listed twice are dropped)."""
    from workbench.evaluate.counterfactual import summarize

    models = pd.read_csv(out / "profiles.csv").model.unique()
    summaries, verdicts = [], []
    for name in models:
        rows = pd.read_csv(out / name / "pairs.csv", dtype={"old": str, "new": str})
        rows = rows.drop_duplicates(["original", "factor", "method"])
        summaries.append(summarize(rows).assign(model=name))
        verdicts.append(verdict(rows).assign(model=name))
    pd.concat(summaries).to_csv(out / "summary_all.csv", index=False)
    pd.concat(verdicts).to_csv(out / "verdicts.csv")


def tables(out: Path, target: str = "bot_r18w16_256") -> str:
    """The markdown tables of docs/counterfactuals.md from the CSVs this script wrote."""
    summary = pd.read_csv(out / "summary_all.csv")
    profiles = pd.read_csv(out / "profiles.csv")
    verdicts = pd.read_csv(out / "verdicts.csv", index_col=0)
    factors = list(dict.fromkeys(summary.factor))
    lines = ["### Sensitivity profiles (median |Δ| per factor; rank)\n"]
    prof = profiles.pivot(index="factor", columns="model", values="median_abs_delta").loc[factors]
    rank = profiles.pivot(index="factor", columns="model", values="rank").loc[factors]
    cells = prof.map(lambda v: f"{v:.3f}") + " (" + rank.astype(int).astype(str) + ")"
    own = profiles[profiles.model == target].set_index("factor")  # its target's pairs
    aam = own.aam_median_abs_change.reindex(factors)
    cells[f"AAM interpreter ({target})"] = aam.map(lambda v: "—" if pd.isna(v) else f"{v:.4f}")
    rho = profiles.groupby("model").spearman.first()
    lines.append(cells.to_markdown())
    lines.append(
        "\nSpearman (model's median |Δ| vs the interpreter's, 7 annotated factors): "
        + ", ".join(f"{m} {r:.2f}" for m, r in rho.items())
        + "\n"
    )
    lines.append("### Energy of the map of Δ on the change, over chance (kept edits)\n")
    for model, group in summary.groupby("model", sort=False):
        table = group.pivot(index="factor", columns="method", values="energy_over_chance")
        table = table.loc[factors, list(dict.fromkeys(group.method))]
        kept = group.groupby("factor")[["kept", "pairs"]].first().loc[factors]
        table.insert(0, "kept", kept.kept.astype(str) + "/" + kept.pairs.astype(str))
        lines.append(f"**{model}**\n\n" + table.to_markdown(floatfmt=".2f") + "\n")
    lines.append("### Person-mask energy vs the game, same maps\n")
    lines.append(
        verdicts.reset_index()
        .rename(columns={"index": "method"})
        .to_markdown(index=False, floatfmt=".3f")
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
