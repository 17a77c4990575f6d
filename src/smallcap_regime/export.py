"""Machine-readable output of `regime predict`, `regime history` and `regime monitor` (``--format json|csv``).

JSON keys are documented in the README ("Machine-readable output"); numbers are decimals (0.385 = 38.5 %),
missing values are null. CSV carries the same fields flattened, one row per forecast (baseline and scenario) or
per call.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .explain import PROB, has_skill
from .models.drivers import split
from .names import TARGETS, output_column

if TYPE_CHECKING:
    from .values import Forecast
    from .whatif import Scenario

FORMATS = ("text", "json", "csv")


def plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars as Python ones, NaN as None, timestamps as ISO dates."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, pd.Timestamp):
        return value.date().isoformat()
    return value


def target_record(output: pd.Series, target: str) -> dict[str, Any]:
    """One target of a forecast: probability, base rate, skill, forecast and interval, accuracy, drivers."""
    def get(name: str) -> Any:
        return output.get(output_column(target, name), math.nan)

    right, made = get("calls_right_all"), get("calls_made_all")
    return {
        "p": output[PROB[target]], "base_rate": get("base_rate"), "has_skill": has_skill(output, target),
        "forecast": get("forecast"), "lo": get("lo"), "hi": get("hi"), "interval_coverage": get("interval_coverage"),
        "accuracy": {"label": "calls against the base rate", "right": right, "made": made,
                     "share": right / made if made and not math.isnan(made) else math.nan},
        "calls_like_this": {"right": get("calls_right"), "made": get("calls_made")},
        "p_above_half_hit_rate": get("hit_rate"), "auc": get("auc"), "brier_skill": get("brier_skill"),
        "drivers_up": split(output.get(output_column(target, "drivers_up"), "")),
        "drivers_down": split(output.get(output_column(target, "drivers_down"), "")),
    }


def forecast_record(fc: Forecast, scenario: Scenario | None = None) -> dict[str, Any]:
    """The forecast card as a dict (``regime predict --format json``)."""
    rotation = getattr(fc, "rotation", None)
    record = {
        "as_of": fc.as_of, "window": fc.window, "horizon_months": fc.horizon, "source": fc.source,
        "model": fc.model, "in_sample": fc.in_sample, "warnings": fc.warnings, "notes": fc.notes,
        "regime": fc.output["regime"], "regime_leaning": fc.output["regime_leaning"],
        "rotation": rotation.to_dict() if rotation is not None else None,
        "targets": {target: target_record(fc.output, target) for target in TARGETS},
        "scenario": scenario.to_dict() if scenario is not None else None,
    }
    return plain(record)


def forecast_rows(fc: Forecast, scenario: Scenario | None = None) -> pd.DataFrame:
    """The forecast as CSV rows: ``case`` baseline (and scenario), then the model's output columns."""
    rows = [{"case": "baseline", "as_of": fc.as_of.date().isoformat(), "window": fc.window,
             "rotation": getattr(fc.rotation, "status", None), **fc.output.to_dict()}]
    if scenario is not None:
        shifts = "; ".join(f"{k}={v:+g}" for k, v in scenario.shifts.items())
        rows.append({"case": f"scenario {shifts}", "as_of": rows[0]["as_of"], "window": fc.window,
                     "rotation": rows[0]["rotation"], **scenario.output.to_dict()})
    return pd.DataFrame(rows)


def history_rows(calls: pd.DataFrame) -> pd.DataFrame:
    """`regime history` as rows: origin, window, p, base_rate, call, realised, right, running_hit, regime."""
    frame = calls.reset_index()
    frame["origin"] = frame["origin"].dt.date.astype(str)
    return frame


def dumps(record: Any) -> str:
    return json.dumps(plain(record), indent=2, allow_nan=False)


def csv_text(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, lineterminator="\n")
