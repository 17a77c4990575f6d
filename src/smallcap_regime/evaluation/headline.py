"""The headline-metric view of a backtest: which metrics a reviewer compares across runs, every metric as flat
``<target>.<model>.<metric>`` keys for MLflow, and the runs-table view of the UI.

Below tracking and serving (both read it), above the backtest whose results it flattens.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

from ..names import BASELINES, TARGETS, metric_key, strategy_key

if TYPE_CHECKING:
    from .backtest import BacktestResult

#: Headline metrics, per target, for the calibrated LightGBM and every baseline (see docs/evaluation.md).
HEADLINE_MODELS = ("lgbm_cal", *BASELINES)
HEADLINE_METRICS = ("r2_oos", "cw_pvalue", "auc", "brier_skill", "hit_rate")
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


def headline_metrics(result: BacktestResult) -> dict[str, float]:
    """The curated set a reviewer compares across runs (:data:`HEADLINE_METRICS` and strategy Sharpe ratios)."""
    out: dict[str, float] = {}
    for target in TARGETS:
        for model in HEADLINE_MODELS:
            if (target, model) not in result.metrics.index:
                continue
            for metric in HEADLINE_METRICS:
                if not _defined(model, metric):
                    out[metric_key(target, model, metric)] = float(result.metrics.loc[(target, model), metric])
        for strategy in (*HEADLINE_MODELS, "buy_and_hold"):
            if (target, strategy) in result.strategy_metrics.index:
                out[strategy_key(target, strategy, "sharpe")] = float(
                    result.strategy_metrics.loc[(target, strategy), "sharpe"])
    return {k: v for k, v in out.items() if not math.isnan(v)}


def headline_view() -> str:
    """The UI view state (JSON) ``regime ui`` links to: the runs table with the headline columns of the
    calibrated LightGBM, the strategy Sharpe ratios, the dataset and where the parameters came from."""
    metrics = [metric_key(target, "lgbm_cal", metric) for target in TARGETS for metric in HEADLINE_METRICS]
    metrics += [strategy_key(target, s, "sharpe") for target in TARGETS for s in ("lgbm_cal", "buy_and_hold")]
    columns = ["attributes.`Dataset`", *(f"metrics.`{m}`" for m in metrics), "params.`params_source`",
               "params.`forced`"]
    return json.dumps({"selectedColumns": columns})
