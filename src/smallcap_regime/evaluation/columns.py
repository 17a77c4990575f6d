"""Names of the backtest's models, metrics and prediction columns (one place builds them all)."""

from __future__ import annotations

#: Every model reported per target. ``lgbm``/``linear`` are refitted per fold; ``*_cal`` are their post-processed
#: forecasts; ``hist_mean`` (prevailing mean / base rate) and ``momentum`` are the benchmarks.
MODELS = ("lgbm", "lgbm_cal", "linear", "linear_cal", "hist_mean", "momentum")
FITTED = ("lgbm", "linear")

#: Metrics reported per (target, model): the names ``[registry] primary_metric`` may use.
MODEL_METRICS = ("r2_oos", "cw_stat", "cw_pvalue", "cw_stat_nonoverlap", "cw_pvalue_nonoverlap", "hit_rate_sign",
                 "auc", "brier", "brier_skill", "log_loss", "balanced_accuracy", "hit_rate", "hit_rate_ref",
                 "hit_rate_majority", "base_rate")


def col(target: str, *parts: str) -> str:
    """A prediction-frame column: ``col("relative", "lgbm_cal", "p")`` -> ``"relative.lgbm_cal.p"``.

    Kinds: ``<model>.f`` point forecast (decimal), ``<model>.p`` P(target > 0), ``y`` realised target, ``up`` its
    0/1 label, ``lo``/``hi`` interval bounds, ``shrink_weight``.
    """
    return ".".join((target, *parts))
