"""Value types several layers share (the low floor): a forecast, a target's record of calls, the model chosen.

They hold data only and import nothing from the package, so the evaluation (HTML report), tracking (serving) and
workflow layers can all name them without importing one another.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

#: The seeds' rotation rule: small caps ahead in each of the last 2 months = under way, 3 = confirmed.
UNDER_WAY_MONTHS, CONFIRMED_MONTHS = 2, 3


@dataclass(frozen=True)
class ModelChoice:
    """A registered model version to answer with: its MLflow URI, version, experiment and how it was chosen."""

    uri: str
    version: str
    experiment: str
    note: str


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


@dataclass
class Forecast:
    """A forecast for one month end and where it came from.

    Attributes
    ----------
    as_of : the month end the forecast is made at (its features use data published by then).
    output : one row of the model's output (:data:`~smallcap_regime.models.bundle.OUTPUT_COLUMNS`).
    features : the feature row sent to the model.
    model : which model answered, and how.
    source : ``live`` or ``sample`` data.
    notes : the data's notes (e.g. the offline-sample note).
    horizon : months forecast.
    window : the months forecast, e.g. ``2017-04..2017-06``.
    in_sample : the target at ``as_of`` is realised, so the model was fitted on it: not what it would have said then.
    warnings : stale data or inputs, and the in-sample warning, in words.
    no_call_band : the experiment's "no confident call" half-width around each base rate.
    rotation : rotation status at ``as_of`` with its point-in-time record (:mod:`.features.rotation`).
    valuation, valuation_record : the descriptive valuation reading at ``as_of`` and the out-of-sample record of
        its past calls (:func:`~smallcap_regime.features.valuation.valuation_lines`); "" without book-to-market.
    """

    as_of: pd.Timestamp
    output: pd.Series
    features: pd.Series
    model: str
    source: str
    notes: list[str]
    horizon: int = 3
    window: str = ""
    in_sample: bool = False
    warnings: list[str] = field(default_factory=list)
    no_call_band: float = 0.05
    rotation: RotationStatus | None = None
    valuation: str = ""
    valuation_record: str = ""


@dataclass
class History:
    """The out-of-sample calls of one target (:func:`~smallcap_regime.evaluation.record.past_calls`) and whose."""

    calls: pd.DataFrame
    model: str
    target: str
    horizon: int
