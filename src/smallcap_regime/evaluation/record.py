"""The walk-forward's record of past calls: what the model would have said at each origin, and how it turned out.

Every out-of-sample origin of the backtest was forecast by a model fitted only on data published before it, and
calibrated on earlier out-of-sample pairs only: these are the calls the model could really have made then. A call
is read against the base rate known at the time (the expanding share of past targets > 0): a probability above it
calls the target up, at or below it calls it down, and the call is right when the realised target agrees.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..models.regime import regime_arrays
from ..models.skill import SKILL_TEST_LEVEL, SkillRecord
from ..names import TARGETS, col, metric_key
from .metrics import brier_skill_interval

MODEL = "lgbm_cal"


def forecast_window(origin: pd.Timestamp, horizon: int) -> str:
    """The months a forecast made at month end ``origin`` covers, e.g. ``2017-04..2017-06`` for 2017-03-31, h=3."""
    first = (origin + pd.offsets.MonthBegin(1)).strftime("%Y-%m")
    last = (origin + pd.offsets.MonthEnd(horizon)).strftime("%Y-%m")
    return first if horizon == 1 else f"{first}..{last}"


def past_calls(predictions: pd.DataFrame, target: str, horizon: int) -> pd.DataFrame:
    """The out-of-sample calls of one target, oldest first.

    Parameters
    ----------
    predictions : a backtest's prediction frame (``BacktestResult.predictions`` or its ``predictions.parquet``).
    target : ``relative`` or ``absolute``.
    horizon : target horizon in months.

    Returns
    -------
    DataFrame indexed by origin (``origin``) with ``window`` (months forecast), ``p`` (calibrated P(target > 0)),
    ``base_rate`` (known at the origin), ``call`` (``up``/``down``), ``realised`` (decimal return, NaN while
    pending), ``right`` (bool, NaN while pending), ``running_hit`` (share right among realised calls so far: the
    accuracy figure of :data:`~smallcap_regime.models.skill.ACCURACY_LABEL` as it stood) and, when the predictions
    carry it, ``regime`` (the call of :func:`~smallcap_regime.models.regime.regime_arrays` at that origin).
    """
    oos = predictions[predictions["oos"].astype(bool)]
    p, base = oos[col(target, MODEL, "p")], oos[col(target, "hist_mean", "p")]
    realised, up = oos[col(target, "y")], oos[col(target, "up")]
    above = p > base
    right = (above == (up == 1)).astype("float64").where(realised.notna())
    frame = pd.DataFrame({
        "window": [forecast_window(t, horizon) for t in oos.index],
        "p": p, "base_rate": base, "call": np.where(above, "up", "down"), "realised": realised, "right": right,
        # expanding mean over realised calls; pending ones carry the record as it stood
        "running_hit": right.expanding().mean().ffill(),
    }, index=oos.index.rename("origin"))
    if "regime" in oos:
        frame["regime"] = oos["regime"]
    return frame


def skilled_targets(predictions: pd.DataFrame, metrics: pd.DataFrame, final_maps: dict, horizon: int,
                    interval_coverage: float) -> tuple[bool, bool]:
    """Whether (relative, absolute) show demonstrated skill in a backtest: the deployed model's
    :attr:`SkillRecord.has_skill`, from the same out-of-sample calls, Brier skill interval and final maps."""
    return tuple(skill_record(predictions, t, horizon, metrics.loc[(t, MODEL)], final_maps[t].shrink_weight,
                              final_maps[t].platt.a, interval_coverage).has_skill
                 for t in TARGETS)  # type: ignore[return-value]


def skilled_regimes(predictions: pd.DataFrame, metrics: pd.DataFrame, final_maps: dict, no_call_band: float,
                    horizon: int, interval_coverage: float) -> pd.DataFrame:
    """``predictions`` with ``regime``, ``leaning`` and ``confidence`` from the targets with demonstrated skill
    (:func:`~smallcap_regime.models.regime.regime_arrays`), each probability read against the base rate known at
    its origin: the rule the forecast card uses, so the report's strip and ``regime history`` agree with it."""
    regime, leaning, confidence = regime_arrays(
        predictions[col("relative", MODEL, "p")].to_numpy(dtype="float64"),
        predictions[col("absolute", MODEL, "p")].to_numpy(dtype="float64"), no_call_band,
        predictions[col("relative", "hist_mean", "p")].to_numpy(dtype="float64"),
        predictions[col("absolute", "hist_mean", "p")].to_numpy(dtype="float64"),
        skilled_targets(predictions, metrics, final_maps, horizon, interval_coverage))
    return predictions.assign(regime=regime, leaning=leaning, confidence=confidence)


def record_metrics(skill: dict[str, SkillRecord]) -> dict[str, float]:
    """The accuracy figure per target as MLflow metrics: ``<target>.lgbm_cal.calls_right``, ``calls_made`` and
    ``calls_accuracy`` (share right), the numbers the card, the report and ``regime history`` print."""
    out: dict[str, float] = {}
    for target, record in skill.items():
        out[metric_key(target, MODEL, "calls_right")] = float(record.calls_right)
        out[metric_key(target, MODEL, "calls_made")] = float(record.calls_made)
        if record.calls_made:
            out[metric_key(target, MODEL, "calls_accuracy")] = record.calls_right / record.calls_made
    return out


def skill_record(predictions: pd.DataFrame, target: str, horizon: int, metrics: pd.Series, shrink_weight: float,
                 platt_a: float, interval_coverage: float) -> SkillRecord:
    """The :class:`SkillRecord` of one target from its backtest.

    Parameters
    ----------
    predictions : the backtest's prediction frame.
    metrics : the backtest's out-of-sample metrics of the calibrated LightGBM for this target
        (``BacktestResult.metrics.loc[(target, "lgbm_cal")]``).
    shrink_weight, platt_a : the final calibration maps the deployed model uses.
    interval_coverage : nominal coverage of the conformal interval.
    """
    calls = past_calls(predictions, target, horizon).dropna(subset=["right"])
    lo, hi = float("nan"), float("nan")
    if len(calls):
        lo, hi = brier_skill_interval((calls["realised"] > 0).astype("float64"), calls["p"], calls["base_rate"],
                                      horizon, level=1 - 2 * SKILL_TEST_LEVEL)
    up, down = calls[calls["call"] == "up"], calls[calls["call"] == "down"]
    dates = calls.index
    return SkillRecord(
        oos_first=str(dates[0].date()) if len(dates) else "", oos_last=str(dates[-1].date()) if len(dates) else "",
        n=len(calls), base_rate=float(metrics["base_rate"]), hit_rate=float(metrics["hit_rate"]),
        hit_rate_ref=float(metrics["hit_rate_ref"]), auc=float(metrics["auc"]),
        brier_skill=float(metrics["brier_skill"]), up_calls=len(up), up_right=int(up["right"].sum()),
        down_calls=len(down), down_right=int(down["right"].sum()), shrink_weight=float(shrink_weight),
        platt_a=float(platt_a), interval_coverage=float(interval_coverage), brier_skill_lo=lo, brier_skill_hi=hi)


def backtest_skill(result) -> dict[str, SkillRecord]:
    """Per-target :class:`SkillRecord` of a :class:`~smallcap_regime.evaluation.backtest.BacktestResult`."""
    exp = result.experiment
    return {target: skill_record(result.predictions, target, exp.horizon, result.metrics.loc[(target, MODEL)],
                                 result.final_maps[target].shrink_weight, result.final_maps[target].platt.a,
                                 exp.validation.interval_coverage)
            for target in TARGETS}
