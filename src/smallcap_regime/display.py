"""Rich rendering helpers shared by the CLI commands."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from rich.console import Console
from rich.markup import escape
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return escape(str(value))


def frame_table(frame: pd.DataFrame, title: str | None = None, *, index: bool = False, digits: int = 4,
                styles: dict[str, str] | None = None) -> Table:
    """A Rich table from a DataFrame (numbers right-aligned, NaN as '-')."""
    table = Table(title=title, header_style="bold", show_lines=False)
    columns = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    for name in columns:
        table.add_column(name, justify="left" if name in (frame.index.name, "source", "series", "model") else "right",
                         style=(styles or {}).get(name))
    for idx, row in frame.iterrows():
        cells = ([fmt(idx, digits)] if index else []) + [fmt(v, digits) for v in row.tolist()]
        table.add_row(*cells)
    return table
