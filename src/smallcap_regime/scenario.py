"""What-if scenarios on the panel: shift named input series (in their own units) from the forecast month on and
rebuild every feature through the one dataset builder, so that the features built from a series (levels,
changes, curve slopes, implied rate cuts) move together, exactly as they would had the data said so.

``--what-if yield_10y=-0.50`` lowers the 10-year yield by 50 bp at the forecast month end and after: its level
falls 50 bp, its 1-, 3- and 6-month changes fall 50 bp, the 10y-2y and 10y-3m slopes narrow 50 bp; no other
feature moves.
"""

from __future__ import annotations

import math
from dataclasses import replace

import pandas as pd

from .data import Panel
from .data.schema import panel_columns
from .dataset import Dataset, build_dataset
from .errors import RegimeError

#: What each source lacks, said when a scenario names it.
MISSING_HINTS = {
    ("sample", "fed_funds"): "the offline sample has no policy rate, so a rate-cut scenario cannot run on it; "
                             "shift its long-rate proxy instead (aaa=-0.50) or pull live data with "
                             "`regime data pull`",
}


def parse_shifts(texts: list[str] | None) -> dict[str, float]:
    """``["yield_10y=-0.50", "fed_funds=-0.5"]`` -> ``{"yield_10y": -0.5, "fed_funds": -0.5}``.

    Raises
    ------
    RegimeError
        A text without ``=``, an empty series name, a shift that is not a finite number, or a series named twice.
    """
    shifts: dict[str, float] = {}
    for text in texts or []:
        name, sep, amount = text.partition("=")
        name = name.strip()
        if not sep or not name:
            raise RegimeError(f"shift {text!r}: expected SERIES=SHIFT in the series' own units, e.g. "
                              "yield_10y=-0.50 (50 bp lower)")
        try:
            value = float(amount)
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            raise RegimeError(f"shift {text!r}: the shift {amount.strip()!r} is not a number; give it in the "
                              "series' own units, e.g. yield_10y=-0.50 (50 bp lower)")
        if name in shifts:
            raise RegimeError(f"the shifts name {name} twice; give one shift per series")
        shifts[name] = value
    return shifts


def check_series(panel: Panel, shifts: dict[str, float], when: pd.Timestamp) -> None:
    """Every shifted series exists in this panel with a value at ``when``.

    Raises
    ------
    RegimeError
        An unknown series (the message lists the series this data can shift), one this source does not have (the
        offline sample and ``fed_funds``: it says so), or one with no value at the forecast month.
    """
    have = [c for c in panel.frame.columns if panel.frame[c].notna().any()]
    for name in shifts:
        if name not in panel_columns() and name not in panel.frame.columns:
            raise RegimeError(f"scenario: unknown series {name!r}; series of the {panel.source} data: "
                              f"{', '.join(have)}")
        if name not in have:
            hint = MISSING_HINTS.get((panel.source, name), f"series of this data: {', '.join(have)}")
            raise RegimeError(f"scenario: {name} is not in the {panel.source} data: {hint}")
        if pd.isna(panel.frame[name].get(when)):
            raise RegimeError(f"scenario: {name} has no value at {when.date()}, the forecast month; nothing to "
                              "shift")


def shifted_panel(panel: Panel, shifts: dict[str, float], start: pd.Timestamp) -> Panel:
    """A copy of ``panel`` with each series raised by its shift at ``start`` and after (earlier rows untouched)."""
    frame = panel.frame.copy()
    later = frame.index >= start
    for name, amount in shifts.items():
        frame.loc[later, name] = frame.loc[later, name] + amount
    return replace(panel, frame=frame)


def scenario_dataset(data: Dataset, shifts: dict[str, float], when: pd.Timestamp) -> Dataset:
    """The experiment's dataset rebuilt by :func:`~smallcap_regime.dataset.build_dataset` from the shifted panel."""
    check_series(data.panel, shifts, when)
    return build_dataset(data.experiment, panel=shifted_panel(data.panel, shifts, when))


def changed_features(before: pd.Series, after: pd.Series) -> list[str]:
    """Features whose value differs between two rows (NaN equals NaN)."""
    same = (before == after) | (before.isna() & after.isna())
    return [name for name in before.index if not same[name]]
