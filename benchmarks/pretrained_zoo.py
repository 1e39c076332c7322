"""The zoo from scratch beside the zoo from the pretrained backbone: the tables of
docs/pretraining.md and the README (issue 21).

    python benchmarks/pretrained_zoo.py --data data/synth --out outputs/pretrained_zoo

For every role of the paper figures whose ``NAME_pt`` (or ``NAME_pt_parts``) card is shipped
(``workbench figures --zoo pretrained|parts``), measured the same way for each of its cards:

* ``zoo.md``: rank-1 / mAP / mINP on the synthetic test split (the cards' metrics, which
  ``workbench export`` measures on the shipped fp16 weights) and the training time;
* ``faithfulness.md``: what the ``faithfulness`` figure draws — the pair Grad-CAM's energy on the
  person mask at layer2/3/4 over its chance level (24 matched pairs, both sides);
* ``attention.md``: the RGA models' spatial attention (attention2–4) on the person mask, the
  faithfulness report of ``workbench explain --method attention --layer attentionK --report``
  (``--pairs`` pairs, seed 0): energy, chance, their ratio and the pointing rate;
* ``activation.md``: where the features are strong, for BoT and RGA-SC and the pretrained
  backbones: each stage's channel norm on the person mask over chance (96 query images,
  :func:`activation_on_person`);
* ``aam.md``: the AAM interpreters' ADRE, X-mAP_e / X-mAP_c and localisation per attribute
  (``workbench aam-eval``, stored in the cards): ``lift`` = the AAM's energy in the attribute's
  region over the region's area share on every image with the region, ``lift_pos`` the same on
  the images that have the attribute.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

import workbench
from workbench.pretrained import list_pretrained
from workbench.viz.figures import PRETRAINED_ZOOS, ZOOS

ZOO_ROLES = ("bot", "daaf", "sa", "sa_plain", "ianet", "rga", "rga_norel", "rga_cbam")
PANEL_ROLES = ("bot", "daaf", "sa", "rga", "ianet")  # the faithfulness figure's roles
RGA_ROLES = ("rga", "rga_norel", "rga_cbam")
AAM_ROLES = ("interpreter", "interpreter_n1", "interpreter_n5")


def twins(roles: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(role, zoo, card name) of every shipped card of each role (scratch, pretrained, parts),
    for the roles whose scratch card and at least one pretrained card are shipped."""
    shipped = {c["name"] for c in list_pretrained()}
    out = []
    for role in roles:
        have = [(role, zoo, ZOOS[zoo][role]) for zoo in ZOOS if ZOOS[zoo][role] in shipped]
        if len(have) > 1 and have[0][1] == "scratch":
            out += have
    return out


def card(name: str) -> dict:
    return next(c for c in list_pretrained() if c["name"] == name)


def zoo_table() -> pd.DataFrame:
    rows = []
    for role, zoo, name in twins(ZOO_ROLES + AAM_ROLES):
        c = card(name)
        m, t = c.get("metrics", {}), c.get("training", {})
        rows.append({
            "role": role, "zoo": zoo, "card": name, "rank1": m.get("rank1"),
            "mAP": m.get("mAP"), "mINP": m.get("mINP"),
            "epochs": c["train_config"]["optim"]["epochs"],
            "lr": c["train_config"]["optim"]["lr"], "train_s": t.get("seconds"),
        })  # fmt: skip
    return pd.DataFrame(rows)


def faithfulness_table(split, pairs: int) -> pd.DataFrame:
    from workbench.viz.figures.beyond import person_energy

    tables = []
    for role, zoo, name in twins(PANEL_ROLES):
        model = workbench.load_pretrained(name)
        t = person_energy({role: model}, split, seed=0, pairs=pairs)
        tables.append(t.assign(zoo=zoo, card=name))
        print(t.assign(card=name).to_string(index=False), flush=True)
    return pd.concat(tables)


def attention_table(split, pairs: int) -> pd.DataFrame:
    from workbench.evaluate.report import faithfulness_report, split_distances
    from workbench.viz.figures.samples import input_size

    rows = []
    for role, zoo, name in twins(RGA_ROLES):
        model = workbench.load_pretrained(name)
        layers = [i.name for i in model.layer_info if i.name.startswith("attention")]
        distmat = split_distances(model, split, input_size(model), "cpu")  # once a model
        for layer in layers:
            r = faithfulness_report(
                model, split, "attention", layer=layer, pairs=pairs, seed=0, curves=False,
                progress=False, device="cpu", distmat=distmat,
            )  # fmt: skip
            s = r.summary
            energy = float(s.loc["energy_on_person"].mean())
            chance = float(s.loc["chance"].mean())
            rows.append({
                "role": role, "zoo": zoo, "card": name, "layer": layer, "energy": energy,
                "chance": chance, "ratio": energy / chance,
                "pointing": float(s.loc["pointing_person"].mean()),
            })  # fmt: skip
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def activation_on_person(
    model, split, layers: tuple[str, ...] = ("layer3", "layer4"), images: int = 96, seed: int = 0
) -> list[dict]:
    """Where a layer's features are strong: the channel norm of each map, upsampled to the
    image, its share of energy on the person mask over the mask's area share (chance), and how
    often its maximum lands on the person; ``images`` query images, 256×128."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    from workbench.data.dataset import ReIDDataset, collate
    from workbench.data.transforms import build_transforms
    from workbench.explain.metrics import area_share, energy_in_mask, pointing_game
    from workbench.models.base import eval_mode

    size = (256, 128)
    rows = np.random.default_rng(seed).choice(len(split.query), images, replace=False)
    data = ReIDDataset(split.query.iloc[np.sort(rows)], build_transforms(*size, train=False))
    batch = collate([data[i] for i in range(len(data))])
    person = batch["parts"] > 0
    with eval_mode(model), torch.no_grad():
        maps = model.feature_maps(batch["image"])
    out = []
    for layer in layers:
        norm = maps[layer].float().norm(dim=1, keepdim=True)
        up = F.interpolate(norm, size=size, mode="bilinear", align_corners=False)[:, 0]
        energy, chance = energy_in_mask(up, person), area_share(person)
        out.append({
            "layer": layer, "energy": float(energy.mean()), "chance": float(chance.mean()),
            "ratio": float(energy.mean() / chance.mean()),
            "pointing": float(pointing_game(up, person).float().mean()),
        })  # fmt: skip
    return out


def activation_table(split) -> pd.DataFrame:
    backbones = [(b, "backbone", b) for b, _ in PRETRAINED_ZOOS.values()]
    shipped = {c["name"] for c in list_pretrained()}
    rows = []
    for role, zoo, name in [*twins(("bot", "rga")), *backbones]:
        if name not in shipped:
            continue
        model = workbench.load_pretrained(name)
        for r in activation_on_person(model, split, ("layer2", "layer3", "layer4")):
            rows.append({"role": role, "zoo": zoo, "card": name, **r})
            print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def aam_table() -> tuple[pd.DataFrame, pd.DataFrame]:
    metrics, local = [], []
    for role, zoo, name in twins(AAM_ROLES):
        e = card(name).get("explanation")
        if not e:
            print(f"{name}: no aam-eval in its card (workbench aam-eval --card)")
            continue
        metrics.append({"role": role, "zoo": zoo, "card": name, **e["metrics"]})
        for row in e["localisation"]:
            lift_pos = row.get("inside_pos", float("nan")) / row.get("chance_pos", float("nan"))
            local.append({"role": role, "zoo": zoo, **row, "lift_pos": lift_pos})
    return pd.DataFrame(metrics), pd.DataFrame(local)


def side_by_side(table: pd.DataFrame, index: list[str], values: list[str]) -> pd.DataFrame:
    """One row per ``index``, the scratch and pretrained ``values`` next to each other."""
    wide = table.pivot_table(index=index, columns="zoo", values=values, aggfunc="first")
    wide.columns = [f"{v} ({z})" for v, z in wide.columns]
    order = [f"{v} ({z})" for v in values for z in ZOOS]
    return wide[[c for c in order if c in wide.columns]].reset_index()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="data/synth")
    parser.add_argument("--out", default="outputs/pretrained_zoo")
    parser.add_argument("--pairs", type=int, default=200, help="pairs of the attention report")
    parser.add_argument("--panel-pairs", type=int, default=24, help="pairs of the panel")
    parser.add_argument(
        "--only", nargs="*", default=["zoo", "faithfulness", "attention", "activation", "aam"],
        help="which tables",
    )  # fmt: skip
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from workbench.data.readers import load_split

    split = load_split(args.data)
    if "zoo" in args.only:
        t = zoo_table()
        t.to_csv(out / "zoo.csv", index=False)
        md = side_by_side(t, ["role"], ["rank1", "mAP", "mINP", "train_s"]).round(1)
        (out / "zoo.md").write_text(md.to_markdown(index=False) + "\n")
        print(md.to_markdown(index=False))
    if "faithfulness" in args.only:
        t = faithfulness_table(split, args.panel_pairs)
        t.to_csv(out / "faithfulness.csv", index=False)
        md = side_by_side(t, ["role", "layer"], ["energy", "chance", "ratio"]).round(3)
        (out / "faithfulness.md").write_text(md.to_markdown(index=False) + "\n")
        print(md.to_markdown(index=False))
    if "attention" in args.only:
        t = attention_table(split, args.pairs)
        t.to_csv(out / "attention.csv", index=False)
        md = side_by_side(t, ["role", "layer"], ["energy", "chance", "ratio", "pointing"])
        (out / "attention.md").write_text(md.round(3).to_markdown(index=False) + "\n")
        print(md.round(3).to_markdown(index=False))
    if "activation" in args.only:
        t = activation_table(split)
        t.to_csv(out / "activation.csv", index=False)
        md = t.drop(columns="energy").round(3).to_markdown(index=False)
        (out / "activation.md").write_text(md + "\n")
        print(md)
    if "aam" in args.only:
        metrics, local = aam_table()
        if len(metrics):
            metrics.to_csv(out / "aam.csv", index=False)
            local.to_csv(out / "aam_localisation.csv", index=False)
            keys = ["adre", "x_map_e", "x_map_c", "rank1", "mAP"]
            md = side_by_side(metrics, ["role"], keys).round(2).to_markdown(index=False)
            md += "\n\n" + side_by_side(
                local[local.role == "interpreter"], ["attribute", "region"], ["lift", "lift_pos"]
            ).round(2).to_markdown(index=False)
            (out / "aam.md").write_text(md + "\n")
            print(md)


if __name__ == "__main__":
    main()
