"""Data layer: live sources, the offline sample, the cache and the point-in-time monthly panel.

Everything downstream reads market data only through :func:`load_panel`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .panel import Panel

PANEL_SOURCES = ("live", "sample")


def load_panel(home: Path, source: str = "live", *, small_column: str | None = None,
               large_column: str | None = None) -> Panel:
    """The month-end point-in-time panel from the live cache (``source="live"``) or the offline sample."""
    if source == "sample":
        from .sample import load_sample_panel

        return load_sample_panel()
    if source == "live":
        from .live import load_live_panel

        return load_live_panel(home, small_column, large_column)
    raise ConfigError(f"data source {source!r} is not one of {', '.join(PANEL_SOURCES)}")
