"""Mirror pairs as data: ``data/mirror_pairs.yaml``, read and checked against the code lists.

A pair is two flows, reported by two member states, that count the same movements and should
match within known differences (unit, lag, coverage). The warehouse reseeds ``dim_mirror_pair``
from this file on every load (transforms/storage/warehouse/dimensions.py); the views ``v_mirror`` and ``pub_mirror``
compare the two sides (sql/views.sql) and transforms/ops/mirror.py warns about pairs out of tolerance.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import yaml

from transforms.config import DATA_DIR
from transforms.contracts import codelists

PAIRS_FILE = DATA_DIR / "mirror_pairs.yaml"
LANGS = ("es", "en", "pt", "fr")
SIDE_KEYS = {"reporter", "flow_types", "unit", "citizenship", "counterpart"}
PAIR_KEYS = {"id", "label", "a", "b", "lag_months", "tolerance", "note"}
COLUMNS = [
    "pair_id",
    "sort_order",
    *(f"label_{lang}" for lang in LANGS),
    *(
        f"{s}_{c}"
        for s in "ab"
        for c in ("reporter_iso3", "flow_type", "unit", "citizenship_iso3", "counterpart_iso3")
    ),
    "lag_months",
    "tolerance",
    "note",
]
_ID = re.compile(r"^[a-z][a-z0-9_]*$")


class MirrorPairError(ValueError):
    """A pair of the mirror pairs file is invalid: the message names the file, the pair and why."""


def _side(where: str, side: object) -> dict:
    if not isinstance(side, dict):
        raise MirrorPairError(f"{where}: a side is a mapping of {sorted(SIDE_KEYS)}")
    unknown = set(side) - SIDE_KEYS
    if unknown:
        raise MirrorPairError(f"{where}: unknown keys {sorted(unknown)} (allowed: {sorted(SIDE_KEYS)})")
    countries, flows, units = (
        codelists.codes("countries"),
        codelists.codes("flow_types"),
        codelists.codes("units"),
    )
    reporter = side.get("reporter")
    if reporter not in countries or reporter.startswith("_"):
        raise MirrorPairError(
            f"{where}: reporter {reporter!r} is not a country of data/codelists/countries.csv"
        )
    types = side.get("flow_types")
    if not isinstance(types, list) or not types:
        raise MirrorPairError(f"{where}: flow_types must be a non-empty list of flow type codes")
    bad = [t for t in types if t not in flows]
    if bad:
        raise MirrorPairError(f"{where}: flow types {bad} are not in data/codelists/flow_types.csv")
    if side.get("unit") not in units:
        raise MirrorPairError(f"{where}: unit {side.get('unit')!r} is not in data/codelists/units.csv")
    for key in ("citizenship", "counterpart"):
        if side.get(key) is not None and side[key] not in countries:
            raise MirrorPairError(
                f"{where}: {key} {side[key]!r} is not a code of data/codelists/countries.csv"
            )
    return side


def _pair(path: Path, n: int, raw: object) -> dict:
    where = f"{path.name}, pair {n}"
    if not isinstance(raw, dict):
        raise MirrorPairError(f"{where}: a pair is a mapping of {sorted(PAIR_KEYS)}")
    where = f"{path.name}, pair {n} ({raw.get('id')})"
    unknown = set(raw) - PAIR_KEYS
    missing = PAIR_KEYS - {"note"} - set(raw)
    if unknown or missing:
        raise MirrorPairError(f"{where}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")
    if not isinstance(raw["id"], str) or not _ID.match(raw["id"]):
        raise MirrorPairError(f"{where}: id must be lower-case letters, digits and _")
    label = raw["label"]
    if not isinstance(label, dict) or any(not str(label.get(lang) or "").strip() for lang in LANGS):
        raise MirrorPairError(f"{where}: label needs es, en, pt and fr")
    lag, tolerance = raw["lag_months"], raw["tolerance"]
    if not isinstance(lag, int) or isinstance(lag, bool) or not 0 <= lag <= 24:
        raise MirrorPairError(f"{where}: lag_months must be a whole number of months from 0 to 24")
    if not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or not 0 <= tolerance <= 2:
        raise MirrorPairError(f"{where}: tolerance must be an absolute asymmetry from 0 to 2")
    return {**raw, "a": _side(f"{where}, side a", raw["a"]), "b": _side(f"{where}, side b", raw["b"])}


def load_pairs(path: Path = PAIRS_FILE) -> list[dict]:
    """The pairs of ``path``, checked: every reporter, flow type, unit and country exists in the
    code lists, ids are unique; a clear error names the file, the pair and the problem."""
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise MirrorPairError(f"{path}: cannot read the mirror pairs ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("pairs"), list):
        raise MirrorPairError(f"{path.name}: expected a mapping with a 'pairs' list")
    pairs = [_pair(path, n, raw) for n, raw in enumerate(doc["pairs"], start=1)]
    ids = [p["id"] for p in pairs]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise MirrorPairError(f"{path.name}: pair ids {dupes} are used more than once")
    return pairs


def pair_frame(path: Path = PAIRS_FILE) -> pd.DataFrame:
    """The rows of ``dim_mirror_pair``: one per pair, a side's flow types comma-separated."""
    rows = []
    for order, p in enumerate(load_pairs(path), start=1):
        row = {"pair_id": p["id"], "sort_order": order}
        row |= {f"label_{lang}": str(p["label"][lang]).strip() for lang in LANGS}
        for s in "ab":
            side = p[s]
            row |= {
                f"{s}_reporter_iso3": side["reporter"],
                f"{s}_flow_type": ",".join(side["flow_types"]),
                f"{s}_unit": side["unit"],
                f"{s}_citizenship_iso3": side.get("citizenship"),
                f"{s}_counterpart_iso3": side.get("counterpart"),
            }
        row |= {
            "lag_months": p["lag_months"],
            "tolerance": float(p["tolerance"]),
            "note": " ".join(str(p.get("note") or "").split()) or None,
        }
        rows.append(row)
    return pd.DataFrame(rows, columns=COLUMNS)
