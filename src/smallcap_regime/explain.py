"""A forecast in words a portfolio manager can act on: which months, in percent, against the base rate, with the
model's out-of-sample record, and "no demonstrated skill" where calibration has flattened a target to history.

Plain text (no markup): the CLI prints it, the HTML report embeds it, tests read it.
"""

from __future__ import annotations

import math

import pandas as pd

from .names import PROB_COLUMN, output_column
from .values import Forecast

EVENTS = {"relative": "small caps beat large caps", "absolute": "small caps rise"}
PROB = PROB_COLUMN


def pct(x: float, signed: bool = False, digits: int = 1) -> str:
    """A decimal as percent: ``0.0123`` -> ``1.2 %`` (``+1.2 %`` when ``signed``); NaN -> ``-``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x * 100:{'+' if signed else ''}.{digits}f} %"


def has_skill(output: pd.Series, target: str) -> bool:
    """Whether the model's record shows skill for ``target`` (True for a model trained without a record)."""
    value = output.get(output_column(target, "has_skill"))
    return True if value is None or (isinstance(value, float) and math.isnan(value)) else bool(value)


def tilt(p: float, base: float, band: float) -> str:
    """Plain-language reading of a probability against its base rate (``band``: the no-call half-width)."""
    points = (p - base) * 100
    if abs(points) < band * 100:
        return f"no call: within {band * 100:.0f} points of the base rate"
    side = ("up", "above") if points > 0 else ("down", "below")
    return f"leans {side[0]}: {abs(points):.1f} points {side[1]} normal"


def forecast_header(fc: Forecast) -> str:
    return (f"forecast made at {fc.as_of.date()} for {fc.window} (the next {fc.horizon} months, "
            f"{fc.source} data)")


