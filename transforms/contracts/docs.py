"""docs/contracts.md, written from the contract models (``transforms.contracts.model``) and the named
checks (``transforms.contracts.checks``): every key with its type, default, meaning and example.

``scripts/contract_docs.py`` writes the file; ``tests/test_contract_schema.py`` fails when the
committed file differs from what this renders.
"""

from __future__ import annotations

import ast
import inspect
import json
import types
import typing
from functools import cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from transforms.contracts import checks
from transforms.contracts import model as contracts

DOC_PATH = "docs/contracts.md"

_INTRO = """\
# Source contracts: every key

<!-- Written by scripts/contract_docs.py from transforms/contracts/model.py and transforms/contracts/checks.py;
     do not edit by hand (tests/test_contract_schema.py fails when this file is out of date). -->

A contract (`contracts/<source_id>.yaml`) says how one country source's files are read and how
each canonical field of an observation is obtained. Every contract is checked against the keys
below before it is used: an unknown or misplaced key is an error naming the contract file, the
line and the closest valid key, and a contract with an error is not used (`omh check` exits 2).

```bash
.venv/bin/omh contract lint contracts/*.yaml     # 0: every contract is valid; 2: the problems, one a line
```

Shorthands: a field given as a plain value (`flow_type: ENT_REG`) is `{value: ENT_REG}`; an id
given as a plain header (`year: Año`) is `{header: Año}`; `ids` given as a list of headers is
`{header: header}` for each; a value column's canonical fields may be written inline
(`{header: Mujeres, sex: F}` is `{header: Mujeres, fields: {sex: F}}`).

To add a key: declare it in `transforms/contracts/model.py` on its model, with its type and default,
and a docstring under it saying what it does and giving an example (`Example: ...`); then run
`.venv/bin/python scripts/contract_docs.py`.
"""


@cache
def _docstrings() -> dict[tuple[str, str], str]:
    """(model, field) -> the docstring under the field's declaration in transforms/contracts/model.py."""
    tree = ast.parse(Path(contracts.__file__).read_text(encoding="utf-8"))
    out = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        body = node.body
        for stmt, after in zip(body, body[1:], strict=False):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                out[(node.name, stmt.target.id)] = inspect.cleandoc(after.value.value)
    return out


def _description(model: type[BaseModel], name: str) -> str:
    return _docstrings().get((model.__name__, name), "")


def _models() -> list[type[BaseModel]]:
    """The contract's models, in the order a reader meets them (breadth first from Contract)."""
    seen: list[type[BaseModel]] = []
    queue: list[type[BaseModel]] = [contracts.Contract]
    while queue:
        model = queue.pop(0)
        if model in seen:
            continue
        seen.append(model)
        for field in model.model_fields.values():
            queue.extend(m for m in _nested(field.annotation) if m not in seen)
    return seen


def _nested(annotation) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for a in typing.get_args(annotation) for m in _nested(a)]


def _anchor(model: type[BaseModel]) -> str:
    return model.__name__.lower()


def _type(annotation) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"[{annotation.__name__}](#{_anchor(annotation)})"
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, types.UnionType):
        kept = [a for a in args if a is not type(None)]
        return " or ".join(_type(a) for a in kept)
    if origin is list:
        return f"list of {_type(args[0])}"
    if origin is dict:
        return f"mapping: text → {_type(args[1])}"
    names = {str: "text", int: "integer", bool: "true/false", float: "number"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field) -> str:
    if field.is_required():
        return "**required**"
    value: Any = field.default_factory() if field.default_factory is not None else field.default
    if value is PydanticUndefined:
        return "**required**"
    if isinstance(value, BaseModel):
        return "its keys' defaults"
    if value is None:
        return "none"
    return f"`{json.dumps(value, ensure_ascii=False)}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _split(description: str | None) -> tuple[str, str]:
    text = description or ""
    meaning, _, example = text.partition("Example:")
    return meaning.strip(), example.strip()


def _table(model: type[BaseModel]) -> list[str]:
    lines = [
        f"## {model.__name__}",
        "",
        _cell((model.__doc__ or "").strip()),
        "",
        "| key | type | default | meaning | example |",
        "|---|---|---|---|---|",
    ]
    for name, field in model.model_fields.items():
        if field.exclude:  # set by the loader, not a key of the file
            continue
        meaning, example = _split(_description(model, name))
        lines.append(
            f"| `{field.alias or name}` | {_cell(_type(field.annotation))} | {_default(field)} "
            f"| {_cell(meaning)} | {_cell(example)} |"
        )
    return [*lines, ""]


def _checks() -> list[str]:
    lines = [
        "## Named checks",
        "",
        "Every built-in check, by the name a contract's `severity` addresses. `error` refuses the file,",
        "`warning` loads it with the finding recorded. A contract raises or lowers a check with a reason,",
        "recorded with every load of the source (`dq_result` rows of suite `contract`, and the HTML report):",
        "",
        "```yaml",
        "severity:",
        '  guard.own_citizens: {level: warning, reason: "citizens returning by land are counted at the border"}',
        "```",
        "",
        "A locked check can be raised, never lowered (privacy, safe exports, an empty delivery).",
        "",
        "| check | runs in | default | locked | what it finds |",
        "|---|---|---|---|---|",
    ]
    for c in checks.CHECKS.values():
        lines.append(
            f"| `{c.name}` | {c.stage} | {c.default} | {'yes' if c.locked else ''} | {_cell(c.meaning)} |"
        )
    return [*lines, ""]


def undocumented() -> list[str]:
    """Keys declared without a meaning or an example (``Model.key``)."""
    out = []
    for model in _models():
        for name, field in model.model_fields.items():
            meaning, example = _split(_description(model, name))
            if not field.exclude and not (meaning and example):
                out.append(f"{model.__name__}.{field.alias or name}")
    return out


def keys() -> dict[str, list[str]]:
    """Model name -> the keys it accepts (as written in a contract)."""
    return {m.__name__: [f.alias or n for n, f in m.model_fields.items() if not f.exclude] for m in _models()}


def render() -> str:
    lines = [_INTRO]
    for model in _models():
        lines += _table(model)
    lines += _checks()
    return "\n".join(lines).rstrip() + "\n"
