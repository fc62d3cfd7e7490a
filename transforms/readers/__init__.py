"""Generic readers: a landing file and its reader options -> a grid of text cells.

Readers know nothing of contracts' meaning, validation or storage: they decode the file,
find the header and hand back every cell as text with its physical row number, so that
every value stays traceable to (file, sheet, row, column).
"""

from transforms.readers.dispatch import read_grid
from transforms.readers.grid import Grid, ReadError

__all__ = ["Grid", "ReadError", "read_grid"]
