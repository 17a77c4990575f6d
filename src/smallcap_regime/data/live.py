"""Build the monthly panel from the live cache (what `regime data pull` stored)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..errors import NoDataError
from .book_to_market import QUINTILE_COLUMNS, size_quintile_book_to_market
from .cache import Cache
from .catalog import fred_specs, load_catalog
from .panel import Panel, RawSeries, assemble_panel, monthly_from_daily
from .schema import SHORT_INTEREST_FIELDS, short_interest_column
from .sources import FINRA_KEY, PORTFOLIOS_25_KEY, PORTFOLIOS_KEY, leg_columns

FACTOR_NAMES = {"Mkt-RF": "mkt_excess_ret", "SMB": "smb", "HML": "hml", "RF": "rf"}


def _leg_columns(frame: pd.DataFrame, small_column: str, large_column: str, key: str) -> None:
    missing = [c for c in (small_column, large_column) if c not in frame.columns]
    if missing:
        raise NoDataError(f"{key} has no column(s) {', '.join(map(repr, missing))}; it has {', '.join(frame.columns)}")


def load_live_panel(home: Path, small_column: str | None = None, large_column: str | None = None) -> Panel:
    """Month-end point-in-time panel from the cache; series that were never pulled are simply absent (NaN).

    Parameters
    ----------
    small_column, large_column : columns of ``Portfolios_Formed_on_ME`` used as the small and large legs
        (default from ``series.toml``: ``Lo 30`` and ``Hi 30``).
    """
    default_small, default_large = leg_columns()
    small_column = small_column or default_small
    large_column = large_column or default_large
    cache = Cache(home)
    manifest = cache.manifest()
    if PORTFOLIOS_KEY not in manifest:
        raise NoDataError(
            "no live data in the cache (Portfolios_Formed_on_ME missing); run `regime data pull` "
            "or use the offline sample (data source \"sample\")"
        )
    ports = cache.read(PORTFOLIOS_KEY)
    _leg_columns(ports, small_column, large_column, PORTFOLIOS_KEY)
    returns = pd.DataFrame({"small_ret": ports[small_column], "large_ret": ports[large_column]})
    if "french/factors_monthly" in manifest:
        returns = returns.join(cache.read("french/factors_monthly").rename(columns=FACTOR_NAMES), how="left")
    if "french/portfolios_me_daily" in manifest:
        daily = cache.read("french/portfolios_me_daily")
        _leg_columns(daily, small_column, large_column, "french/portfolios_me_daily")
        rvar = monthly_from_daily(daily[small_column], "small").join(
            monthly_from_daily(daily[large_column], "large").drop(columns="n_days"), how="outer")
        returns = returns.join(rvar, how="left")
    if PORTFOLIOS_25_KEY in manifest:  # book-to-market of the smallest and largest size quintiles
        btm = size_quintile_book_to_market(cache.read(PORTFOLIOS_25_KEY))
        returns = returns.join(btm[[QUINTILE_COLUMNS[1], QUINTILE_COLUMNS[5]]], how="left")

    raws = []
    for spec in fred_specs():
        key = f"fred/{spec.series_id}"
        if key in manifest:
            raws.append(RawSeries(spec.name, cache.read(key)["value"], spec.freq, spec.lag, spec.max_age,
                                  spec.priority, key))
    if FINRA_KEY in manifest:
        finra_cfg = load_catalog()["finra"]
        si = cache.read(FINRA_KEY)
        for symbol, rows in si.groupby("symbol"):
            rows = rows.set_index(pd.DatetimeIndex(rows["settlement_date"]))
            for field in SHORT_INTEREST_FIELDS:
                raws.append(RawSeries(short_interest_column(symbol, field), rows[field].astype("float64"), "daily",
                                      finra_cfg["lag"], finra_cfg["max_age"], origin=FINRA_KEY))
    frame = assemble_panel(returns, raws)
    vintages = {key: {"source": e.source, "url": e.url, "fetched_at": e.fetched_at, "sha256": e.sha256,
                      "first": e.first, "last": e.last} for key, e in manifest.items()}
    notes = [f"live data: small leg = {small_column!r}, large leg = {large_column!r} (value-weighted)"]
    return Panel(frame=frame, source="live", vintages=vintages, notes=notes)
