"""The monthly panel's column schema, derived from what the data layer loads.

Return and factor columns come from the Ken French files and the offline sample, short-interest columns from the
FINRA symbols, and every other column from the series table (``series.toml`` or ``$REGIME_SERIES_FILE``): a series
added there becomes a panel column that feature specs may read.
"""

from __future__ import annotations

from pathlib import Path

from .catalog import fred_specs, load_catalog

#: Columns built from the Ken French files (or the offline sample), with their units.
MARKET_COLUMNS: dict[str, str] = {
    "small_ret": "small-cap leg monthly total return, decimal",
    "large_ret": "large-cap leg monthly total return, decimal",
    "rf": "1-month T-bill return over the month (Fama-French), decimal",
    "mkt_excess_ret": "Fama-French market excess return, decimal",
    "smb": "Fama-French small-minus-big factor return, decimal",
    "hml": "Fama-French high-minus-low factor return, decimal",
    "small_rvar": "small leg sum of squared daily returns in the month, decimal^2",
    "large_rvar": "large leg sum of squared daily returns in the month, decimal^2",
    "n_days": "trading days in the month",
    "btm_size_q1": "aggregate book-to-market (book equity / market cap) of size quintile 1, the smallest (Fama-French "
                   "25 size x BE/ME portfolios, NYSE breakpoints), price-updated since the June formation, ratio",
    "btm_size_q5": "aggregate book-to-market of size quintile 5, the largest (as btm_size_q1), ratio",
}
#: Book-to-market columns: BE of fiscal year t-1 enters at the June t formation (Fama-French's convention that it
#: is public by then); prices are those of the month end.
BOOK_TO_MARKET_COLUMNS = ("btm_size_q1", "btm_size_q5")

SHORT_INTEREST_FIELDS: dict[str, str] = {
    "days_to_cover": "short interest / average daily volume, days",
    "short_shares": "shares sold short",
}


def short_interest_column(symbol: str, field: str) -> str:
    """Panel column of one FINRA field for one symbol: ``si_iwm_days_to_cover``."""
    return f"si_{symbol.lower()}_{field}"


def panel_columns(path: Path | None = None) -> dict[str, str]:
    """Every column the panel may hold -> its description with unit.

    Parameters
    ----------
    path : series table to read; default ``$REGIME_SERIES_FILE`` or the packaged ``series.toml``.
    """
    columns = dict(MARKET_COLUMNS)
    by_name: dict[str, list[str]] = {}
    units: dict[str, str] = {}
    for spec in sorted(fred_specs(path), key=lambda s: s.priority):
        by_name.setdefault(spec.name, []).append(spec.series_id)
        units.setdefault(spec.name, spec.unit)
    for name, ids in by_name.items():
        columns[name] = f"{units[name] or 'unit not stated'} (FRED {', '.join(ids)})"
    for symbol in load_catalog(path)["finra"].get("symbols", []):
        for field, text in SHORT_INTEREST_FIELDS.items():
            columns[short_interest_column(symbol, field)] = f"{symbol} {text} (FINRA)"
    return columns
