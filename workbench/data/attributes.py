"""Attribute annotation files of Lin et al. (``market_attribute.mat``, ``duke_attribute.mat``).

File format (see ``shared/reference/aam.md`` §4): top-level key ``market_attribute`` /
``duke_attribute`` holding a 1×1 struct with fields ``train`` and ``test``; each is a 1×1 struct
with one uint8 1×N array per attribute (1 = no / first value, 2 = yes / second value; age 1..4)
plus ``image_index``, a 1×N cell of 4-character id strings. The field order differs between
train and test, so everything is indexed by name.

``load_attributes`` reads one split into a per-identity table (workbench 0/1 coding, a 0 in the
file -> ``<NA>``), ``check_attributes`` tells when its ids do not match a split's, and
``write_attribute_mat`` writes the format back (the synthetic dataset ships one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from workbench.data.schema import get_schema
from workbench.data.split import Split

MAT_KEYS = {"market1501": "market_attribute", "dukemtmc": "duke_attribute"}


def write_attribute_mat(
    path: str | Path, train: pd.DataFrame, test: pd.DataFrame, schema: str = "market1501"
) -> None:
    """Write per-identity attribute tables (index pid, workbench 0/1 coding) in Lin et al.'s format.

    The file is byte-reproducible: scipy's creation-date header is replaced by a fixed one.
    """
    from scipy.io import savemat

    attrs = get_schema(schema)

    def struct(df: pd.DataFrame, reverse: bool) -> dict:
        names = [a.name for a in attrs]
        missing = [n for n in names if n not in df.columns]
        if missing:
            raise ValueError(f"attribute table lacks columns {missing} of schema {schema!r}")
        out: dict = {}
        # real files store train and test fields in different orders; so do we
        for name in reversed(names) if reverse else names:
            out[name] = (df[name].to_numpy(np.int64) + 1).astype(np.uint8)[None, :]
        ids = np.empty((1, len(df)), dtype=object)
        for i, pid in enumerate(df.index):
            ids[0, i] = f"{int(pid):04d}"
        out["image_index"] = ids
        return out

    key = MAT_KEYS[schema]
    path = Path(path)
    savemat(path, {key: {"train": struct(train, False), "test": struct(test, True)}})
    raw = bytearray(path.read_bytes())
    header = f"MATLAB 5.0 MAT-file, written by reid-workbench ({schema} attributes)".encode()
    raw[:116] = header.ljust(116, b" ")
    path.write_bytes(bytes(raw))


ATTRIBUTE_FILES = {"market1501": "market_attribute.mat", "dukemtmc": "duke_attribute.mat"}
# where a dataset root may keep the file: the attribute repos' own folders, then the image folders
SEARCH_DIRS = (
    ".",
    "attribute",
    "attributes",
    "Market-1501_Attribute",
    "DukeMTMC-attribute",
    "Market-1501-v15.09.15",
    "market1501",
    "DukeMTMC-reID",
    "dukemtmc-reid",
)
SPLITS = ("train", "test")


class AttributeFileError(ValueError):
    """An attribute .mat file that is not in Lin et al.'s format; names the file and the fix."""


def find_attribute_file(root: str | Path, schema: str | None = None) -> Path:
    """The ``market_attribute.mat`` / ``duke_attribute.mat`` in or below a dataset root.

    Looks in ``root/<d>`` for each ``d`` of ``SEARCH_DIRS``; with ``schema`` only for its file.
    """
    root = Path(root)
    names = [ATTRIBUTE_FILES[schema]] if schema else list(ATTRIBUTE_FILES.values())
    found = {}
    for d in SEARCH_DIRS:
        for name in names:
            if name not in found and (root / d / name).is_file():
                found[name] = root / d / name
    if not found:
        where = ", ".join("ROOT" if d == "." else f"ROOT/{d}" for d in SEARCH_DIRS)
        raise FileNotFoundError(
            f"{root}: no {' or '.join(names)} in {where}; pass the .mat file's path "
            f"(the files come from github.com/vana77/Market-1501_Attribute and DukeMTMC-attribute)"
        )
    if len(found) > 1:
        raise AttributeFileError(
            f"{root}: found {sorted(map(str, found.values()))}; pass schema='market1501' or "
            f"schema='dukemtmc' to choose one"
        )
    return next(iter(found.values()))


def _fields(struct: np.ndarray) -> tuple[str, ...]:
    return struct.dtype.names or ()


def _get(struct: np.ndarray, name: str) -> np.ndarray:
    """A field of a 1×1 MATLAB struct as loaded by scipy (the value sits in a 1×1 object array)."""
    value = struct[name]
    return value.flat[0] if value.dtype == object and value.size == 1 else value


def _detect_schema(mat: dict, path: Path, schema: str | None) -> tuple[str, np.ndarray]:
    keys = [k for k in mat if not k.startswith("__")]
    by_key = {key: name for name, key in MAT_KEYS.items()}
    found = [k for k in keys if k in by_key]
    if not found:
        raise AttributeFileError(
            f"{path}: top-level key(s) {keys} are none of {sorted(by_key)}; this is not an "
            f"attribute file of Lin et al. (market_attribute.mat / duke_attribute.mat)"
        )
    key = found[0]
    if schema is not None and by_key[key] != schema:
        raise AttributeFileError(
            f"{path}: holds {key!r} ({by_key[key]} attributes) but schema={schema!r} was asked; "
            f"pass schema={by_key[key]!r} or the {ATTRIBUTE_FILES[schema]} file"
        )
    return by_key[key], mat[key]


def _pids(split_struct: np.ndarray, where: str) -> np.ndarray:
    if "image_index" not in _fields(split_struct):
        raise AttributeFileError(f"{where} lacks the field 'image_index' (the identity ids)")
    cells = np.asarray(_get(split_struct, "image_index")).ravel()  # (N,) of 1-element str arrays
    try:
        pids = np.array([int(np.asarray(c).ravel()[0]) for c in cells], dtype=np.int64)
    except (IndexError, ValueError, TypeError):
        raise AttributeFileError(
            f"{where}: image_index must be a cell of id strings like '0002'"
        ) from None
    if len(np.unique(pids)) != len(pids):
        raise AttributeFileError(f"{where}: image_index lists some ids twice")
    return pids


def load_attributes(
    path_or_root: str | Path, split: str = "train", schema: str | None = None
) -> pd.DataFrame:
    """Read one split of ``market_attribute.mat`` / ``duke_attribute.mat`` (Lin et al., PR 2019).

    Args:
        path_or_root: the .mat file, or a dataset root holding it (see ``find_attribute_file``).
        split: ``"train"`` (ids of bounding_box_train) or ``"test"`` (ids of query / gallery).
        schema: ``"market1501"`` or ``"dukemtmc"``; ``None`` detects it from the top-level key.

    Returns:
        A table indexed by ``pid`` (int, sorted), one column per attribute of the schema in
        schema order, in the workbench coding: file value ``v`` -> ``v - 1`` (0/1, age 0..3),
        dtype int8. ``df.attrs`` holds ``schema``, ``split`` and ``source``.

    Unknown values: a 0 in the file means "not annotated" (DukeMTMC-reID train ids 370 and 679
    have ``top`` = 0; AMD's code turns it into an invalid -3). Such cells become ``<NA>`` and only
    their columns become pandas' nullable ``Int8``; ``df.fillna(0).astype("int8")`` gives a dense
    table. Any other value outside 1..k raises, naming the file, split and attribute.
    """
    from scipy.io import loadmat
    from scipy.io.matlab import MatReadError

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    path = Path(path_or_root)
    if path.is_dir():
        path = find_attribute_file(path, schema)
    try:
        mat = loadmat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such attribute file") from None
    except (MatReadError, ValueError, TypeError, OSError, NotImplementedError) as e:  # v7.3: HDF5
        raise AttributeFileError(f"{path}: not a readable MATLAB .mat file ({e})") from None
    schema, top = _detect_schema(mat, path, schema)
    if split not in _fields(top):
        raise AttributeFileError(
            f"{path}: no split {split!r} in {MAT_KEYS[schema]} (it has {list(_fields(top))})"
        )
    struct = _get(top, split)
    where = f"{path} [{split}]"
    pids = _pids(struct, where)
    columns = {}
    for attr in get_schema(schema):
        if attr.name not in _fields(struct):
            raise AttributeFileError(
                f"{where}: no attribute field {attr.name!r}; the {schema} schema expects "
                f"{[a.name for a in get_schema(schema)]}. Fix: use the complete file "
                f"(github.com/vana77/Market-1501_Attribute, DukeMTMC-attribute) or regenerate "
                f"the synthetic one (`workbench synth`)"
            )
        raw = np.asarray(_get(struct, attr.name)).ravel().astype(np.int64)  # (N,) 1..k, 0 unknown
        if len(raw) != len(pids):
            raise AttributeFileError(
                f"{where}: attribute {attr.name!r} has {len(raw)} values for {len(pids)} ids"
            )
        k = len(attr.values)
        invalid = (raw < 0) | (raw > k)
        if invalid.any():
            raise AttributeFileError(
                f"{where}: attribute {attr.name!r} has values {np.unique(raw[invalid]).tolist()} outside "
                f"1..{k} (ids {pids[invalid][:5].tolist()}); the file is corrupt or not in the "
                f"1/2 coding of Lin et al."
            )
        coded = (raw - 1).astype(np.int8)  # (N,) workbench coding
        if (raw == 0).any():
            coded = pd.array(coded, dtype="Int8")
            coded[raw == 0] = pd.NA
        columns[attr.name] = coded
    table = pd.DataFrame(columns, index=pd.Index(pids, name="pid")).sort_index()
    table.attrs.update(schema=schema, split=split, source=str(path))
    return table


def check_attributes(
    attributes: pd.DataFrame, table: pd.DataFrame | Split, *, allow_extra: bool = False
) -> None:
    """Raise if the attribute ids do not match the identities of a split table.

    Args:
        attributes: a table from :func:`load_attributes` (index ``pid``).
        table: a part table with a ``pid`` column, or a whole ``Split``; then the part follows
            ``attributes.attrs["split"]``: ``train`` -> ``split.train``, ``test`` -> query and
            gallery together. Junk (-1) and distractors (0) have no attributes and are ignored.
        allow_extra: accept attribute ids absent from the table (e.g. the 408 gallery-only
            DukeMTMC-reID test ids when checking against the query alone).

    Raises:
        ValueError: saying how many ids are missing / extra, a few of them, and, when the ids
            barely overlap, to load the other split.
    """
    split = attributes.attrs.get("split")
    if isinstance(table, Split):
        if split not in SPLITS:
            raise ValueError("attributes.attrs['split'] is unset; pass split.train or split.query")
        parts = [table.train] if split == "train" else [table.query, table.gallery]
        pids = pd.concat([p["pid"] for p in parts])
    else:
        pids = table["pid"]
    pids = pids.to_numpy()
    wanted = set(pids[pids > 0].tolist())
    have = set(attributes.index.astype(int).tolist())
    missing, extra = sorted(wanted - have), sorted(have - wanted)
    if not missing and (allow_extra or not extra):
        return
    source = attributes.attrs.get("source", "attributes")
    lines = [
        f"{source} (split={split!r}): attribute ids do not match the table's {len(wanted)} ids:"
    ]
    if missing:
        lines.append(f"  {len(missing)} table ids have no attributes, e.g. {missing[:5]}")
    if extra and not allow_extra:
        lines.append(f"  {len(extra)} attribute ids are not in the table, e.g. {extra[:5]}")
    if len(wanted & have) < len(wanted) / 2 and split in SPLITS:
        other = SPLITS[1 - SPLITS.index(split)]
        lines.append(f"  these look like another part's ids: load them with split={other!r}")
    elif extra and not missing:
        lines.append("  checking the query alone? pass allow_extra=True or the whole Split")
    raise ValueError("\n".join(lines))


def split_attributes(
    path_or_root: str | Path, table: pd.DataFrame, split: str = "train"
) -> pd.DataFrame:
    """Attributes of one split, checked against that split's table (what trainers load).

    Finds the .mat under a dataset root (or takes the file), reads ``split`` with
    :func:`load_attributes` and checks that its ids are the table's (:func:`check_attributes`).
    Errors name the file and the fix.
    """
    path = Path(path_or_root)
    if path.is_dir():
        path = find_attribute_file(path)
    attributes = load_attributes(path, split)
    try:
        check_attributes(attributes, table)
    except ValueError as err:
        raise AttributeFileError(
            f"{err}\nfix: use the attribute file of this dataset ({path} belongs to another "
            f"one or split), or regenerate it (`workbench synth` writes market_attribute.mat)"
        ) from None
    return attributes
