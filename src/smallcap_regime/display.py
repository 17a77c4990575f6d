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
    """One table cell: NaN/None as '-', floats to ``digits`` decimals, timestamps as dates, text escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, datetime):  # pandas.Timestamp is a datetime
        return value.date().isoformat()
    return escape(str(value))


def frame_table(frame: pd.DataFrame, title: str | None = None, *, index: bool = False, digits: int = 4,
                styles: dict[str, str] | None = None) -> Table:
    """A Rich table from a DataFrame (numbers right-aligned, NaN as '-')."""
    from rich.table import Table

    table = Table(title=title, header_style="bold", show_lines=False)
    columns = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    for name in columns:
        table.add_column(name, justify="left" if name in (frame.index.name, "source", "series", "model") else "right",
                         style=(styles or {}).get(name))
    for idx, row in frame.iterrows():
        cells = ([fmt(idx, digits)] if index else []) + [fmt(v, digits) for v in row.tolist()]
        table.add_row(*cells)
    return table
