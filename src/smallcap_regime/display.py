"""Rich rendering helpers shared by the CLI commands.

Nothing heavy is built at import: pandas and Rich tables load with the first table, so that `regime --help` starts
without them. The consoles are built when first used and again whenever the terminal settings in the environment
change (``COLUMNS``, ``NO_COLOR``, ``TERM``, ...): a console built at import would keep the width of the shell that
imported it, whatever a later caller (a test's ``env={"COLUMNS": ...}``) sets.
"""

from __future__ import annotations

import math
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

#: The environment variables a Rich console reads when it is built.
CONSOLE_ENV = ("COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "TERM", "COLORTERM", "TTY_COMPATIBLE",
               "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES")


class LazyConsole:
    """A Rich :class:`Console` built at call time: every attribute is the one of a console made for the current
    environment (rebuilt when one of :data:`CONSOLE_ENV` changed since the last use, else the same console, so a
    progress bar and the prints inside it share one)."""

    def __init__(self, stderr: bool = False) -> None:
        self._stderr = stderr
        self._built: tuple[tuple[str | None, ...], Console] | None = None

    def get(self) -> Console:
        """The console for the environment as it is now."""
        key = tuple(os.environ.get(name) for name in CONSOLE_ENV)
        if self._built is None or self._built[0] != key:
            self._built = (key, Console(stderr=self._stderr))
        return self._built[1]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


console = LazyConsole()
err_console = LazyConsole(stderr=True)


def fmt(value: Any, digits: int = 4) -> str:
    """One table cell: NaN/None as '-', flags as yes/no, floats to ``digits`` decimals (``digits=0``: integers)."""
    import numpy as np  # here, not at import: `regime --help` starts without numpy

    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    if isinstance(value, datetime):  # pandas.Timestamp is a datetime
        return value.date().isoformat()
    return escape(str(value))


def frame_table(frame: pd.DataFrame, title: str | None = None, *, index: bool = False, digits: int = 4,
                styles: dict[str, str] | None = None) -> Table:
    """A Rich table from a DataFrame (numbers right-aligned, NaN as '-').

    Columns holding only whole numbers (counts such as ``n`` or ``rows``) print as integers, boolean columns as
    yes/no, other numbers with ``digits`` decimals.
    """
    from rich.table import Table

    table = Table(title=title, header_style="bold", show_lines=False)
    whole = {name for name in frame.columns if _whole_numbers(frame[name])}
    columns = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    for name in columns:
        table.add_column(name, justify="left" if name in (frame.index.name, "source", "series", "model", "family")
                         else "right",
                         style=(styles or {}).get(name))
    for idx, row in frame.iterrows():
        cells = ([fmt(idx, digits)] if index else []) + [fmt(v, 0 if name in whole else digits)
                                                         for name, v in row.items()]
        table.add_row(*cells)
    return table


def _whole_numbers(column: pd.Series) -> bool:
    """A numeric, non-boolean column whose values (NaN aside) are all whole numbers."""
    import numpy as np
    import pandas as pd

    if column.dtype == bool or not pd.api.types.is_numeric_dtype(column):
        return False
    values = column.dropna().to_numpy(dtype="float64")
    return len(values) > 0 and bool(np.all(values == np.round(values)))


def feature_value(name: str, value: float) -> str:
    """A feature's value as people read it: ``_flag`` features as yes/no, whole numbers (basis points, counts,
    category codes) as integers, others with 4 decimals."""
    if math.isnan(value):
        return "-"
    if name.endswith("_flag"):
        return "yes" if value else "no"
    return f"{value:.0f}" if value == round(value) else f"{value:.4f}"
