#!/usr/bin/env python3
"""Write docs/contracts.md from the contract models (every key: type, default, meaning, example)
and the named checks. ``--check``: exit 1 when the committed file is out of date.

Usage: .venv/bin/python scripts/contract_docs.py [--check]
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from transforms.contracts.docs import DOC_PATH, render, undocumented  # noqa: E402


def main(argv: list[str]) -> int:
    missing = undocumented()
    if missing:
        print(f"keys without a meaning or an example (a docstring 'meaning. Example: ...'): {missing}")
        return 1
    path = ROOT / DOC_PATH
    text = render()
    if "--check" in argv:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            print(f"{DOC_PATH} is out of date: run .venv/bin/python scripts/contract_docs.py")
            return 1
        return 0
    path.write_text(text, encoding="utf-8")
    print(f"wrote {DOC_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
