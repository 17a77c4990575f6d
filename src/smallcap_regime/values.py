"""Value types several layers share (the low floor): a forecast, a target's record of calls, the model chosen.

They hold data only and import nothing from the package, so the evaluation (HTML report), tracking (serving) and
workflow layers can all name them without importing one another.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class ModelChoice:
    """A registered model version to answer with: its MLflow URI, version, experiment and how it was chosen."""

    uri: str
    version: str
    experiment: str
    note: str


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
    valuation: str = ""
    valuation_record: str = ""


@dataclass
class History:
    """The out-of-sample calls of one target (:func:`~smallcap_regime.evaluation.record.past_calls`) and whose."""

    calls: pd.DataFrame
    model: str
    target: str
    horizon: int
