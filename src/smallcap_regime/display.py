"""Rich rendering helpers shared by the CLI commands.

Only the consoles are built at import: pandas and Rich tables load with the first table, so that `regime --help`
starts without them.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    import pandas as pd
    from rich.table import Table

console = Console()
err_console = Console(stderr=True)


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
