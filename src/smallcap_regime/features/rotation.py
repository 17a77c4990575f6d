"""Rotation status by the commentators' rule, and its own point-in-time record.

The seeds' rule: a rotation into small caps is "under way" once small caps have beaten large caps in each of the
last 2 months and "confirmed" after 3 (the same for large caps the other way). Whether a confirmation means
anything is an empirical question, so the status carries its record: at the origins where a small-cap rotation
was confirmed, how often small caps kept leading over the next ``horizon`` months, next to the base rate (the
share of all origins followed by small-cap leadership). The record at month end t counts only origins whose
``horizon`` months had ended by t, so it is what one could have known then.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..values import CONFIRMED_MONTHS, UNDER_WAY_MONTHS, RotationStatus  # noqa: F401  (re-exported)

SMALL, LARGE = "small_ret", "large_ret"
NONE = "no rotation"


def streak(panel: pd.DataFrame, small: str = SMALL, large: str = LARGE) -> pd.Series:
    """Signed run of months small caps beat (+) or trailed (-) large caps, up to and including month t (0: tie,
    NaN: a leg missing); known at month end t."""
    sign = np.sign(panel[small].astype("float64") - panel[large].astype("float64"))
    run = sign.ne(sign.shift()).cumsum()  # NaN != NaN: a missing month breaks the run
    return sign * (sign.groupby(run).cumcount() + 1)


def status_of(run: float) -> str:
    """The status text of a signed streak: ``small-cap rotation confirmed (3 months)``, ``... under way (2
    months)``, the large-cap equivalents, or ``no rotation`` (saying which side led last month)."""
    if run is None or np.isnan(run) or run == 0:
        return NONE
    if abs(run) < UNDER_WAY_MONTHS:
        return f"{NONE} ({'small' if run > 0 else 'large'} caps ahead last month only)"
    leg = "small-cap" if run > 0 else "large-cap"
    stage = "confirmed" if abs(run) >= CONFIRMED_MONTHS else "under way"
    return f"{leg} rotation {stage} ({abs(run):.0f} months ahead in a row)"


def rotation_status(panel: pd.DataFrame, relative_target: pd.Series, as_of: pd.Timestamp,
                    horizon: int) -> RotationStatus:
    """The status at ``as_of`` and the record of the rule over origins whose forward window ended by then.

    Parameters
    ----------
    panel : the monthly point-in-time panel (``small_ret``, ``large_ret``).
    relative_target : the ``horizon``-month forward small-minus-large return per origin (decimal, NaN where not
        realised), on the panel's index.
    as_of : the month end the status is read at.
    horizon : months in the forward window.
    """
    runs = streak(panel.loc[:as_of])
    # origin s is known at as_of only when its window s+1..s+horizon has ended: s <= as_of - horizon months
    last_known = as_of - pd.offsets.MonthEnd(horizon)
    known = relative_target.loc[:last_known].dropna()
    confirmed = runs.reindex(known.index) >= CONFIRMED_MONTHS
    large_confirmed = runs.reindex(known.index) <= -CONFIRMED_MONTHS
    kept = known > 0
    return RotationStatus(
        as_of=str(as_of.date()), streak_months=float(runs.iloc[-1]) if len(runs) else float("nan"),
        status=status_of(float(runs.iloc[-1]) if len(runs) else float("nan")),
        confirmed_n=int(confirmed.sum()), confirmed_kept=int((kept & confirmed).sum()),
        base_n=len(known), base_kept=int(kept.sum()), horizon=horizon,
        large_confirmed_n=int(large_confirmed.sum()), large_confirmed_kept=int((~kept & large_confirmed).sum()))
