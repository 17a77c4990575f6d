"""`regime predict --what-if SERIES=SHIFT`: the forecast under shifted inputs next to the baseline, with what drove
the difference, in process or through a running `regime serve`.

The scenario row is built by :mod:`.scenario` (the shifted panel through the one dataset builder). The model is
asked once, for a batch: the baseline row, the scenario row, and one row per changed feature holding the baseline
with only that feature at its scenario value. Each feature's share of the difference is its one-at-a-time effect
(what switching it alone does to the probability); the remainder is the features' interaction. The batch goes
through the same door as the forecast (in process or the REST server), so both give the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .errors import RegimeError
from .explain import PROB as PROB_COLUMNS
from .features.labels import feature_text, plain_name, value_text
from .names import TARGETS, output_column
from .scenario import changed_features, parse_shifts, scenario_dataset
from .workflow import Forecast, forecast, resolve_forecast


@dataclass
class Scenario:
    """A what-if forecast.

    Attributes
    ----------
    shifts : series -> shift in the series' own units, applied from the forecast month on.
    baseline : the forecast as the data stand (:func:`~smallcap_regime.workflow.forecast`).
    output : the model's output for the scenario row (same columns as ``baseline.output``).
    features : the scenario's feature row.
    changed : the features the shifts moved (names, in column order).
    effects : target -> feature -> points the feature alone moves P(target > 0) (skilled targets only).
    """

    shifts: dict[str, float]
    baseline: Forecast
    output: pd.Series
    features: pd.Series
    changed: list[str]
    effects: dict[str, dict[str, float]]

    def difference(self) -> pd.DataFrame:
        """Per target: P(> 0) and the point forecast, baseline / scenario / difference (decimals)."""
        rows = {}
        for target in TARGETS:
            for label, column in ((f"P({target} > 0)", PROB_COLUMNS[target]),
                                  (f"{target} forecast", output_column(target, "forecast"))):
                b, s = float(self.baseline.output[column]), float(self.output[column])
                rows[label] = {"baseline": b, "scenario": s, "difference": s - b}
        return pd.DataFrame.from_dict(rows, orient="index")

    def drivers(self, target: str, n: int = 3) -> list[str]:
        """The features that moved P(target > 0) most, in words: ``1-month change in 10-year Treasury yield +3 bp ->
        -47 bp: +1.2 pts``."""
        effects = self.effects.get(target, {})
        top = sorted(effects, key=lambda name: (-abs(effects[name]), self.changed.index(name)))[:n]
        return [f"{feature_text(name, float(self.baseline.features[name]))} -> "
                f"{_value(name, self.features[name])}: {effects[name]:+.1f} pts" for name in top]

    def to_dict(self) -> dict[str, Any]:
        """The scenario block of ``--format json``."""
        diff = self.difference()
        return {
            "shifts": self.shifts,
            "changed_features": self.changed,
            "targets": {target: {
                "p_baseline": float(self.baseline.output[PROB_COLUMNS[target]]),
                "p_scenario": float(self.output[PROB_COLUMNS[target]]),
                "p_difference": float(diff.loc[f"P({target} > 0)", "difference"]),
                "forecast_baseline": float(self.baseline.output[output_column(target, "forecast")]),
                "forecast_scenario": float(self.output[output_column(target, "forecast")]),
                "forecast_difference": float(diff.loc[f"{target} forecast", "difference"]),
                "drivers_of_difference": self.drivers(target, n=len(self.changed)),
            } for target in TARGETS},
            "regime_baseline": self.baseline.output["regime"],
            "regime_scenario": self.output["regime"],
        }


def _value(name: str, value: float) -> str:
    """The value part of :func:`feature_text` (after the plain name)."""
    return value_text(plain_name(name)[1], float(value))


def what_if(home: Path, shifts: list[str], *, as_of: str | None = None, server: str | None = None,
            version: str | None = None, experiment: str | None = None, today: date | None = None) -> Scenario:
    """The forecast with ``shifts`` (``["yield_10y=-0.50", ...]``) applied from the forecast month on.

    Raises
    ------
    RegimeError
        A malformed or non-numeric shift, an unknown series or one the data lack (before any model is loaded),
        or the model refusing a row.
    """
    from .tracking.serving import predict_local, predict_remote

    parsed = parse_shifts(shifts)
    if not parsed:
        raise RegimeError("a scenario needs at least one shift, SERIES=SHIFT")
    # the same experiment forecast() resolves, so the scenario row is built as the baseline row is
    choice, data, when = resolve_forecast(home, experiment=experiment, version=version, as_of=as_of)
    shifted = scenario_dataset(data, parsed, when)  # checks the series before the model is asked anything
    baseline = forecast(home, as_of=as_of, server=server, version=version, experiment=experiment, today=today)
    before, after = data.features.loc[when], shifted.features.loc[when]
    changed = changed_features(before, after)
    rows = [before, after]
    for name in changed:
        row = before.copy()
        row[name] = after[name]
        rows.append(row)
    batch = pd.DataFrame(rows).reset_index(drop=True)
    from mlflow.exceptions import MlflowException

    try:
        out = predict_remote(server, batch) if server else predict_local(choice.uri, batch)
    except (MlflowException, RegimeError) as exc:  # the model's request validation, in process or over HTTP
        message = exc.message if isinstance(exc, MlflowException) else str(exc)
        raise RegimeError(f"the model refused the scenario row of {when.date()}: {message}") from None
    effects: dict[str, dict[str, float]] = {}
    for target in TARGETS:
        skill = out.loc[0, output_column(target, "has_skill")]
        if isinstance(skill, (bool, np.bool_)) and not skill:  # no skill: P is the base rate, nothing moves it
            continue
        p = out[PROB_COLUMNS[target]].to_numpy(dtype="float64")
        effects[target] = {name: float((p[2 + i] - p[0]) * 100) for i, name in enumerate(changed)}
    return Scenario(parsed, baseline, out.iloc[1], after, changed, effects)


def drivers_of_difference(scenario: Scenario, target: str) -> list[str]:
    """:meth:`Scenario.drivers` and the interaction remainder, as lines."""
    lines = scenario.drivers(target)
    effects = scenario.effects.get(target)
    if effects:
        total = float(scenario.output[PROB_COLUMNS[target]] - scenario.baseline.output[PROB_COLUMNS[target]]) * 100
        rest = total - sum(effects.values())
        if abs(rest) >= 0.05:
            lines.append(f"together beyond their separate effects: {rest:+.1f} pts")
    return lines

