"""The headline-metric view of a backtest: which metrics a reviewer compares across runs, every metric as flat
``<target>.<model>.<metric>`` keys for MLflow, and the runs-table view of the UI.

Below tracking and serving (both read it), above the backtest whose results it flattens.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from ..names import LOWER_IS_BETTER, metric_key, split_metric, strategy_key

if TYPE_CHECKING:
    from .backtest import BacktestResult

#: Metrics that are constants by definition for the prevailing-mean benchmark (R2_OS and Brier skill are measured
#: against it, Clark-West tests against it): logging them would only add columns of 0 and 0.5.
BENCHMARK_DEFINED = {"hist_mean": ("r2_oos", "brier_skill", "cw_stat", "cw_pvalue", "cw_stat_nonoverlap",
                                   "cw_pvalue_nonoverlap")}
#: Score differences worth reading (not p-values, test statistics, counts or base rates).
DELTA_METRICS = ("r2_oos", "auc", "brier_skill", "log_loss", "hit_rate", "balanced_accuracy")
DELTA_BASELINES = ("hist_mean", "momentum", "linear_cal")


def _defined(model: str, metric: str) -> bool:
    return metric in BENCHMARK_DEFINED.get(model, ())


def backtest_metrics(result: BacktestResult) -> dict[str, float]:
    """Every ``<target>.<model>.<metric>`` and strategy stat, plus score deltas of LightGBM to the baselines.

    Deltas (``<metric>_minus_<baseline>``) are logged for :data:`DELTA_METRICS` only, and not where the baseline's
    value is a constant by definition (a delta to it equals the metric itself).
    """
    out: dict[str, float] = {}
    m = result.metrics
    for (target, model), row in m.iterrows():
        for metric, value in row.items():
            if _defined(model, metric):
                continue
            out[metric_key(target, model, metric)] = float(value)
            if model in ("lgbm", "lgbm_cal") and metric in DELTA_METRICS:
                for base in DELTA_BASELINES:
                    if not _defined(base, metric):
                        delta = float(value - m.loc[(target, base), metric])
                        out[metric_key(target, model, f"{metric}_minus_{base}")] = delta
    for (target, strategy), row in result.strategy_metrics.iterrows():
        for metric, value in row.items():
            out[strategy_key(target, strategy, metric)] = float(value)
    return {k: v for k, v in out.items() if not math.isnan(v)}


#: Headline values keep this many significant digits (the ``backtest`` child keeps full precision).
DIGITS = 4
#: The headline set after the gate metric: ``(name, (target, model or strategy, metric))``. A metric equal to the
#: gate metric is not logged twice.
HEADLINE = (
    ("1_rel_auc", ("relative", "lgbm_cal", "auc")),
    # the one accuracy figure the card, the report and `regime history` print: calls against the base rate
    ("2_rel_calls_accuracy", ("relative", "lgbm_cal", "calls_accuracy")),
    # the other quantity, labelled apart everywhere: share of origins where P > 0.5 matched the outcome
    ("3_rel_p50_hit_rate", ("relative", "lgbm_cal", "hit_rate")),
    ("4_rel_brier_skill", ("relative", "lgbm_cal", "brier_skill")),
    ("5_rel_cw_pvalue", ("relative", "lgbm_cal", "cw_pvalue")),
    ("6_abs_brier_skill", ("absolute", "lgbm_cal", "brier_skill")),
    ("7_rel_sharpe", ("relative", "strategy.lgbm_cal", "sharpe")),
    ("8_rel_sharpe_buy_hold", ("relative", "strategy.buy_and_hold", "sharpe")),
)
HEADLINE_NOTE = """Headline metrics (out of sample, from the purged walk-forward; docs/evaluation.md; 4 digits),
numbered so the MLflow UI lists them first and in this order. `0_gate_...` = the registry gate's metric
(`[registry] primary_metric`, full name in the run tag `gate_metric`, e.g. `0_gate_rel_brier_skill`); then, for the
relative target (`rel`) and the calibrated LightGBM: `1_rel_auc` AUC of P(outperform), `2_rel_calls_accuracy` share of
calls against the base rate that were right (the card's accuracy figure), `3_rel_p50_hit_rate` the P>0.5 hit rate,
`4_rel_brier_skill`
Brier skill vs that base rate, `5_rel_cw_pvalue` Clark-West one-sided p vs the prevailing mean;
`6_abs_brier_skill` the absolute target's Brier skill; `7_rel_sharpe` / `8_rel_sharpe_buy_hold` annualised Sharpe
of the relative timing strategy and of buy-and-hold (non-overlapping quarters, net of costs). The `backtest` child
run holds every metric of every model and baseline at full precision."""


def gate_name(primary: str) -> str:
    """The gate metric's column, first in the UI's alphabetical order: ``relative.lgbm_cal.brier_skill`` ->
    ``0_gate_rel_brier_skill``; a model other than ``lgbm_cal`` is named too (``0_gate_abs_auc_lgbm``)."""
    target, model, metric = split_metric(primary)
    return f"0_gate_{target[:3]}_{metric}" + ("" if model == "lgbm_cal" else f"_{model}")


def headline_names(primary: str) -> list[str]:
    """The parent run's metric names, gate metric first (as the UI sorts them)."""
    return [gate_name(primary), *(name for name, key in HEADLINE if ".".join(key) != primary)]


def _value(result, target: str, model: str, metric: str) -> float:
    if metric in ("calls_right", "calls_made", "calls_accuracy"):  # the card's record, not a per-fold metric
        from .record import backtest_skill, record_metrics

        return record_metrics(backtest_skill(result)).get(metric_key(target, model, metric), math.nan)
    if model.startswith("strategy."):
        key = (target, model.removeprefix("strategy."))
        frame = result.strategy_metrics
    else:
        key, frame = (target, model), result.metrics
    if key not in frame.index or metric not in frame.columns:
        return math.nan
    return float(frame.loc[key, metric])


def headline(result, primary: str) -> dict[str, float]:
    """The headline metrics of a backtest (:data:`HEADLINE`, gate metric first), NaN ones left out."""
    out = {gate_name(primary): _value(result, *split_metric(primary))}
    for name, key in HEADLINE:
        if ".".join(key) != primary:
            out[name] = _value(result, *key)
    return {k: rounded(v) for k, v in out.items() if not math.isnan(v)}


def rounded(value: float) -> float:
    """``value`` to :data:`DIGITS` significant digits (a p-value of 5e-7 stays 4.976e-07, not 0)."""
    return float(f"{value:.{DIGITS}g}")


def lower_is_better(name: str, primary: str) -> bool:
    """Whether a lower value of headline metric ``name`` is better (p-values, losses)."""
    keys = {gate_name(primary): split_metric(primary), **dict(HEADLINE)}
    return keys[name][2] in LOWER_IS_BETTER


def headline_view(primary: str) -> str:
    """The runs-table view (JSON) ``regime ui`` links to: the headline columns, gate metric first, then where the
    parameters came from.

    Runs stay in time order: the UI nests child runs (backtest, trials) under their parent only when sorted by
    time, and a sort on the gate metric would list every child as a row of its own. The dataset column is left
    out so that more headline columns fit (the dataset is in the run's inputs, ``data.*`` params and description).
    """
    columns = [*(f"metrics.`{m}`" for m in headline_names(primary)), "params.`params_source`", "params.`forced`"]
    return json.dumps({"selectedColumns": columns})
