"""Harmonize: a contract's long table of cells -> canonical observations (see DOMAIN.md).

``run`` is the sequence of steps (its docstring lists them); each step is a module of its own.
"""

from transforms.stages.harmonize.model import CANONICAL_COLUMNS, FIELD_CODELIST, KEY_COLUMNS, Harmonized
from transforms.stages.harmonize.run import harmonize

__all__ = ["CANONICAL_COLUMNS", "FIELD_CODELIST", "KEY_COLUMNS", "Harmonized", "harmonize"]
