"""Rotation status by the commentators' rule, and its own point-in-time record.

The seeds' rule: a rotation into small caps is "under way" once small caps have beaten large caps in each of the
last 2 months and "confirmed" after 3 (the same for large caps the other way). Whether a confirmation means
anything is an empirical question, so the status carries its record: at the origins where a small-cap rotation
was confirmed, how often small caps kept leading over the next ``horizon`` months, next to the base rate (the
share of all origins followed by small-cap leadership). The record at month end t counts only origins whose
``horizon`` months had ended by t, so it is what one could have known then.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

SMALL, LARGE = "small_ret", "large_ret"
UNDER_WAY_MONTHS, CONFIRMED_MONTHS = 2, 3
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


@dataclass(frozen=True)
class RotationStatus:
    """The rotation status at one month end and the record of its rule up to then.

    Attributes
    ----------
    as_of : month end (ISO date).
    streak_months : signed run of months small caps led (+) or trailed (-).
    status : :func:`status_of` the streak.
    confirmed_n : past origins (whose next ``horizon`` months had ended by ``as_of``) with a confirmed small-cap
        rotation.
    confirmed_kept : of those, how many were followed by small caps beating large caps over the next quarter.
    base_n, base_kept : the same over all past origins: the base rate of small-cap leadership.
    horizon : months in the forward window.
    large_confirmed_n, large_confirmed_kept : the same for confirmed large-cap rotations (kept = large caps kept
        leading); the line shows the record of the side the status is on.
    """

    as_of: str
    streak_months: float
    status: str
    confirmed_n: int
    confirmed_kept: int
    base_n: int
    base_kept: int
    horizon: int
    large_confirmed_n: int = 0
    large_confirmed_kept: int = 0

    @property
    def confirmed_rate(self) -> float:
        return self.confirmed_kept / self.confirmed_n if self.confirmed_n else float("nan")

    @property
    def base_rate(self) -> float:
        return self.base_kept / self.base_n if self.base_n else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"confirmed_rate": self.confirmed_rate, "base_rate": self.base_rate}

    def line(self) -> str:
        """``rotation: small-cap rotation confirmed (4 months ahead in a row); after a confirmed small-cap rotation
        small caps kept leading over the next 3 months 41 of 70 times (59 %) vs 52 % of all 816 months ...``;
        the record is the large-cap one when large caps are the side ahead."""
        large = not math.isnan(self.streak_months) and self.streak_months <= -UNDER_WAY_MONTHS
        leg = "large" if large else "small"
        n, kept = ((self.large_confirmed_n, self.large_confirmed_kept) if large
                   else (self.confirmed_n, self.confirmed_kept))
        base = (self.base_n - self.base_kept) / self.base_n if large and self.base_n else self.base_rate
        record = (f"after a confirmed {leg}-cap rotation {leg} caps kept leading over the next {self.horizon} "
                  f"months {kept} of {n} times ({kept / n * 100:.0f} %) vs {base * 100:.0f} % of all "
                  f"{self.base_n} months" if n else f"no confirmed {leg}-cap rotation with a known outcome yet")
        return f"rotation: {self.status}; {record} (only quarters ended by {self.as_of} counted)"


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
