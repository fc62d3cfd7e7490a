"""Contracts read from their YAML files: one contract with line-numbered errors naming the closest
valid key, every contract of the folder (cached while the files do not change), the checks across
contracts (overlaps, two contracts reading one sheet), and a contract bound to one file's name.
Imported by Airflow DAG files: it must stay light (yaml and pydantic only).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from transforms.config import CONTRACTS_DIR
from transforms.contracts.model import (
    CANONICAL_FIELDS,
    Contract,
    ContractError,
    FieldSpec,
    Measure,
    ReaderSpec,
    did_you_mean,
)

# The C loader when libyaml is there: contracts are parsed at every DAG file parse.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _keys_of(model) -> list[str]:
    """The keys a model accepts, as a contract writes them (aliases)."""
    return [f.alias or name for name, f in model.model_fields.items() if name != "path"]


def _model_at(loc: tuple) -> tuple[type[BaseModel] | None, tuple]:
    """The model that owns the last key of ``loc`` (a pydantic error location), walking the
    Contract's annotations; with the location of that key's mapping."""
    import types
    import typing

    model: Any = Contract
    for i, part in enumerate(loc[:-1]):
        if isinstance(model, type) and issubclass(model, BaseModel):
            field = model.model_fields.get(part) or next(
                (f for f in model.model_fields.values() if f.alias == part), None
            )
            if field is None:
                return None, loc[:i]
            model = field.annotation
        elif typing.get_origin(model) in (list, dict):
            model = typing.get_args(model)[-1]
        else:
            return None, loc[:i]
        while typing.get_origin(model) in (typing.Union, types.UnionType):
            model = next(a for a in typing.get_args(model) if a is not type(None))
    return (model if isinstance(model, type) and issubclass(model, BaseModel) else None), loc[:-1]


def _line_of(root, loc: tuple) -> int | None:
    """The 1-based line of the YAML node at ``loc`` (its nearest existing ancestor's)."""
    node, line = root, None
    for part in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if found is None:
                break
            line = found[0].start_mark.line + 1
            node = found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    else:
        if node is not None and line is None:
            line = node.start_mark.line + 1
    return line


def _problems(err: ValidationError, text: str) -> list[str]:
    """Each validation error as "line N: key: problem", an unknown key with the closest valid one."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    out = []
    for e in err.errors():
        # Pydantic's location names the union member or validator step: keep the keys only.
        loc = tuple(x for x in e["loc"] if not (isinstance(x, str) and ("[" in x or x in _STEPS)))
        where = ".".join(str(x) for x in loc)
        message = e["msg"]
        if e["type"] == "extra_forbidden":
            model, _ = _model_at(loc)
            valid = _keys_of(model) if model is not None else []
            if model is Measure:
                valid += list(CANONICAL_FIELDS)
            message = f"unknown key {str(loc[-1])!r}{did_you_mean(loc[-1], valid)}"
            if valid:
                message += f" (valid here: {', '.join(valid)})"
        elif message.startswith("Value error, "):
            message = message[len("Value error, ") :]
        line = _line_of(root, loc) if root is not None else None
        out.append(
            f"line {line}: {where}: {message}" if line else f"{where}: {message}" if where else message
        )
    return list(dict.fromkeys(out))


# Pydantic's location steps that are no keys of the file.
_STEPS = {"function-after", "function-before", "function-plain", "str", "int", "list", "dict"}


def contract_problems(path: str | Path) -> tuple[Contract | None, list[str]]:
    """The contract of a file and the problems that keep it from being used, each naming the file,
    the line and the key (``omh contract lint``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = yaml.load(text, Loader=_LOADER)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        return None, [f"{path.name}: cannot read contract: {exc}"]
    if not isinstance(data, dict):
        return None, [f"{path.name}: a contract is a YAML mapping"]
    if "path" in data:
        return None, [
            f"{path.name}: line {_line_of(yaml.compose(text), ('path',))}: path: not a contract key"
        ]
    data["path"] = str(path)
    try:
        return Contract.model_validate(data), []
    except ValidationError as exc:
        return None, [f"{path.name}: {p}" for p in _problems(exc, text)]


def load_contract(path: str | Path) -> Contract:
    """Parse and check one contract file; errors name the file, the line and the offending key."""
    contract, problems = contract_problems(path)
    if problems:
        raise ContractError("\n".join(problems))
    return contract


@lru_cache(maxsize=4)
def _load_all(directory: str, stamp: tuple) -> dict[str, Contract]:
    contracts: dict[str, Contract] = {}
    for path in sorted(Path(directory).glob("*.yaml")):
        contract = load_contract(path)
        if contract.source_id in contracts:
            raise ContractError(f"{path.name}: source_id '{contract.source_id}' is used twice")
        contracts[contract.source_id] = contract
    check_overlaps(contracts)
    return contracts


def overlap_rules(contracts: dict[str, Contract]) -> list[dict]:
    """The contracts' ``overlaps`` as rows of ``dim_source_overlap``: the source that yields, the
    one a sum uses, one row per root flow type (``None``: every flow type), the periods."""
    rows = {}
    for c in contracts.values():
        for o in c.overlaps:
            winner, loser = (c.source_id, o.source) if o.prefer == "this" else (o.source, c.source_id)
            for flow in o.flows or [None]:
                key = (loser, winner, flow, o.since, o.until)
                rows.setdefault(
                    key,
                    {
                        "source_id": loser,
                        "preferred_source_id": winner,
                        "flow_type": flow,
                        "period_from": o.since,
                        "period_to": o.until,
                        "declared_by": c.source_id,
                        "note": o.note,
                    },
                )
    return list(rows.values())


def check_overlaps(contracts: dict[str, Contract]) -> None:
    """Every overlap names a known source, and two contracts never prefer each other for the same
    flow type (a sum would then use neither, or both)."""
    for c in contracts.values():
        for o in c.overlaps:
            if o.source not in contracts:
                raise ContractError(
                    f"{Path(c.path or c.source_id).name}: overlaps: unknown source '{o.source}'; "
                    "`omh sources` lists them"
                )
    winners: dict[tuple, tuple[str, str]] = {}
    for r in overlap_rules(contracts):
        pair = tuple(sorted((r["source_id"], r["preferred_source_id"])))
        key = (*pair, r["flow_type"], r["period_from"], r["period_to"])
        seen = winners.setdefault(key, (r["preferred_source_id"], r["declared_by"]))
        if seen[0] != r["preferred_source_id"]:
            path = contracts[r["declared_by"]].path or r["declared_by"]
            raise ContractError(
                f"{Path(path).name}: overlaps: '{r['declared_by']}' and '{seen[1]}' each prefer a "
                f"different source for {r['flow_type'] or 'every flow type'}; say the same in both"
            )


def load_contracts(directory: str | Path | None = None) -> dict[str, Contract]:
    """Every contract in the contracts folder, keyed by source id (cached until a file changes)."""
    directory = Path(directory or CONTRACTS_DIR)
    stamp = tuple((p.name, p.stat().st_mtime_ns) for p in sorted(directory.glob("*.yaml")))
    return _load_all(str(directory), stamp)


def bind_to_file(contract: Contract, file_name: str) -> Contract:
    """The contract as it reads one file: every field taken from the file's name (``file_name``)
    becomes the constant the name holds. A name without it is an error naming the field."""

    def bind(node, where: str):
        if isinstance(node, FieldSpec) and node.file_name is not None:
            found = re.search(node.file_name, file_name)
            if not found:
                raise ContractError(
                    f"{file_name}: {where} is read from the file name with the pattern {node.file_name!r}, "
                    "and the name does not match it; rename the file as the contract's landing section shows"
                )
            value = found.group(1) if found.groups() else found.group(0)
            return node.model_copy(update={"value": value, "file_name": None})
        if isinstance(node, BaseModel):
            changes = {}
            for name in type(node).model_fields:
                old = getattr(node, name)
                new = bind(old, f"{where}.{name}" if where else name)
                if new is not old:
                    changes[name] = new
            return node.model_copy(update=changes) if changes else node
        if isinstance(node, dict):
            out = {k: bind(v, f"{where}.{k}") for k, v in node.items()}
            return out if any(out[k] is not node[k] for k in node) else node
        if isinstance(node, list):
            out = [bind(v, f"{where}[{i}]") for i, v in enumerate(node)]
            return out if any(a is not b for a, b in zip(out, node, strict=True)) else node
        return node

    return bind(contract, "")


def _flow_types(contract: Contract) -> set[str] | None:
    """The flow types a contract's values can have: constants, or None when a column says."""
    specs = [contract.field_spec("flow_type", m) for m in contract.values.columns] or [
        contract.field_spec("flow_type")
    ]
    if any(spec is None or spec.value is None for spec in specs):
        return None
    return {spec.value for spec in specs}


def _same_sheet(a: ReaderSpec, b: ReaderSpec) -> bool:
    """Whether two readers may read the same sheet (a pattern of sheets against a sheet name)."""
    if a.format == "csv" or b.format == "csv":
        return a.format == b.format
    if a.sheets is not None and b.sheets is not None:
        return a.sheets == b.sheets
    if a.sheets is not None or b.sheets is not None:
        pattern, sheet = (a.sheets, b.sheet) if a.sheets is not None else (b.sheets, a.sheet)
        return isinstance(sheet, int) or bool(re.search(pattern, sheet))
    return a.sheet == b.sheet


def shared_flows(
    contract: Contract, file_name: str, contracts: dict[str, Contract] | None = None
) -> list[str]:
    """Other contracts that would read the same flow from the same sheet of a file named
    ``file_name`` (same landing folder, a pattern of each matches the name): its figures would be
    loaded twice, under two sources. Returns one sentence per such contract (warnings)."""
    import fnmatch

    out = []
    mine = _flow_types(contract)
    for other in (contracts if contracts is not None else load_contracts()).values():
        if other.source_id == contract.source_id or other.landing.folder != contract.landing.folder:
            continue
        if not any(fnmatch.fnmatch(file_name.lower(), p.lower()) for p in other.landing.patterns):
            continue
        theirs = _flow_types(other)
        if not _same_sheet(contract.reader, other.reader):
            continue
        if mine is not None and theirs is not None and not mine & theirs:
            continue
        flows = ", ".join(sorted((mine or set()) & (theirs or set()))) or "flow types read from the file"
        out.append(
            f"the contract '{other.source_id}' also reads this file's sheet with the same flow ({flows}): "
            "the same figures may be loaded under two sources; narrow one contract's landing patterns or sheet"
        )
    return out


def get_contract(source_id: str, directory: str | Path | None = None) -> Contract:
    contracts = load_contracts(directory)
    if source_id not in contracts:
        raise ContractError(f"unknown source '{source_id}'; `omh sources` lists them")
    return contracts[source_id]
