"""Every name the layers share: targets, their columns, models, metrics and prediction columns.

This module imports nothing from the package (the lowest floor): builders of names live here so that a column
such as ``relative_3m`` or ``relative.lgbm_cal.p`` is spelt in one place.
"""

from __future__ import annotations

#: The two forecast targets: small minus large return, and the small-cap return.
TARGETS = ("relative", "absolute")

#: Every model reported per target. ``lgbm``/``linear`` are refitted per fold; ``*_cal`` are their post-processed
#: forecasts; ``hist_mean`` (prevailing mean / base rate) and ``momentum`` are the benchmarks.
MODELS = ("lgbm", "lgbm_cal", "linear", "linear_cal", "hist_mean", "momentum")
FITTED = ("lgbm", "linear")
#: The baselines a candidate must beat to be registered (``[registry]``), next to it in every headline.
BASELINES = ("hist_mean", "momentum", "linear", "linear_cal")

#: Metrics reported per (target, model): the names ``[registry] primary_metric`` may use.
MODEL_METRICS = ("r2_oos", "cw_stat", "cw_pvalue", "cw_stat_nonoverlap", "cw_pvalue_nonoverlap", "hit_rate_sign",
                 "auc", "brier", "brier_skill", "log_loss", "balanced_accuracy", "hit_rate", "hit_rate_ref",
                 "hit_rate_majority", "base_rate")

#: The forecast's probability column per target (the rest of a target's output is ``<target>_<name>``).
PROB_COLUMN = {"relative": "p_outperform", "absolute": "p_positive"}

#: Boosters of a bundle per target: ``<target>_<part>``.
BOOSTER_PARTS = ("regressor", "classifier")


def col(target: str, *parts: str) -> str:
    """A prediction-frame column: ``col("relative", "lgbm_cal", "p")`` -> ``"relative.lgbm_cal.p"``.

    Kinds: ``<model>.f`` point forecast (decimal), ``<model>.p`` P(target > 0), ``y`` realised target, ``up`` its
    0/1 label, ``lo``/``hi`` interval bounds, ``shrink_weight``.
    """
    return ".".join((target, *parts))


def target_column(target: str, horizon: int, *, label: bool = False) -> str:
    """A targets-frame column: ``target_column("relative", 3)`` -> ``"relative_3m"`` (``"relative_3m_up"`` with
    ``label``: 1.0 if the target is > 0)."""
    return f"{target}_{horizon}m" + ("_up" if label else "")


def tbill_column(horizon: int) -> str:
    """The compounded T-bill return over the horizon: ``"tbill_3m"``."""
    return f"tbill_{horizon}m"


def booster_name(target: str, part: str) -> str:
    """A bundle's booster: ``booster_name("relative", "classifier")`` -> ``"relative_classifier"``."""
    return f"{target}_{part}"


def metric_key(target: str, model: str, metric: str) -> str:
    """A metric as logged to MLflow and named by ``[registry] primary_metric``: ``relative.lgbm_cal.brier_skill``."""
    return col(target, model, metric)


def strategy_key(target: str, strategy: str, metric: str) -> str:
    """A timing strategy's statistic as logged to MLflow: ``relative.strategy.lgbm_cal.sharpe``."""
    return col(target, "strategy", strategy, metric)


def output_column(target: str, name: str) -> str:
    """A forecast (model output) column: ``output_column("relative", "forecast")`` -> ``"relative_forecast"``."""
    return f"{target}_{name}"

#: Metrics where lower is better (losses, p-values, volatility).
LOWER_IS_BETTER = {"brier", "log_loss", "volatility", "cw_pvalue", "cw_pvalue_nonoverlap"}

def split_metric(primary: str) -> tuple[str, str, str]:
    """``relative.lgbm_cal.r2_oos`` -> (target, model, metric)."""
    parts = primary.split(".")
    if len(parts) != 3:
        raise ValueError(f"primary_metric {primary!r} must look like '<target>.<model>.<metric>'")
    return parts[0], parts[1], parts[2]
