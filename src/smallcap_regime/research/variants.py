"""Fit, predict and post-processing hooks of the ``[research]`` variants, called by the backtest's fold loop.

With every switch off (the default) :func:`training_plan` returns the inputs unchanged and no extra model is
fitted, so the baseline backtest is bit-identical. Everything a variant decides (columns, thresholds, scales) is
computed from the fold's training window only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..data import Panel, load_panel
from ..data.catalog import load_catalog
from ..errors import ConfigError
from ..experiment import Experiment
from ..features.build import FeatureSpec, build_features, load_feature_spec
from ..features.targets import build_targets

#: Extra models a variant adds, per target, after the always-fitted ``lgbm`` and ``linear``.
COMBINED = ("lgbm", "linear", "rsz")
#: Stress indicators of the ``stress`` model (credit spreads in bp, VIX in points), used when the feature set has them.
STRESS_INDICATORS = ("baa_aaa_spread_bp", "baa_10y_spread_bp", "hy_oas_bp", "vix_pts")
#: Pseudo-months pulling a stress regime's base rate and mean toward the unconditional ones.
STRESS_PRIOR_MONTHS = 24.0
#: Other size spreads stacked by ``pooled``: live = columns of ``Portfolios_Formed_on_ME``; sample = size quintiles
#: of the linearmodels 5x5 sorts (``S1V`` = mean of S1V1, S1V3, S1V5; ``S1M`` = the size x momentum sort's).
POOLED_SPREADS = {
    "live": (("Lo 30", "Hi 30"), ("Lo 20", "Hi 20"), ("Lo 10", "Hi 10")),
    "sample": (("S1V", "S3V"), ("S3V", "S5V"), ("S1M", "S5M")),
}


def active(exp: Experiment) -> bool:
    """Whether any ``[research]`` switch is on (the backtest then fits through the variants' training plan)."""
    return exp.research != type(exp.research)()


def extra_models(exp: Experiment, target: str) -> tuple[str, ...]:
    """Models a variant fits per fold besides ``lgbm`` and ``linear`` (post-processed like them)."""
    opts = exp.research
    return (("rsz",) if opts.combination else ()) + (("stress",) if opts.absolute_stress and target == "absolute"
                                                     else ())


def derived_models(exp: Experiment) -> tuple[str, ...]:
    """Models built from other models' forecasts after post-processing (``combo`` and ``combo_cal``)."""
    return ("combo", "combo_cal") if exp.research.combination else ()


@lru_cache(maxsize=8)
def _spec(name: str) -> FeatureSpec:
    return load_feature_spec(name)


# ---------------------------------------------------------------------------------------------------------------
# Pooled training rows


@dataclass(frozen=True)
class SpreadRows:
    """Features and targets of one extra size spread, on the base dataset's month ends.

    Attributes
    ----------
    name : ``"<small> - <large>"``.
    features : DataFrame, shape (n_months, n_features), the base feature columns built from the spread's panel.
    targets : DataFrame, shape (n_months, 5), :func:`~smallcap_regime.features.targets.build_targets` output.
    """

    name: str
    features: pd.DataFrame
    targets: pd.DataFrame


def _sample_leg(frame: pd.DataFrame, token: str) -> pd.Series:
    """Equal mix of the sample's portfolios of one size quintile and sort: ``S3V`` -> mean(S3V1, S3V3, S3V5)."""
    return frame[[f"{token}{k}" for k in (1, 3, 5)]].mean(axis=1)


def _spread_panel(exp: Experiment, base: Panel, home: Path | None, small: str, large: str) -> pd.DataFrame:
    if base.source == "live":
        if home is None:
            raise ConfigError(f"experiment {exp.name!r}: [research] pooled reads live spreads: pass home")
        return load_panel(home, "live", small_column=small, large_column=large).frame
    from ..data.sample import load_sample_frames

    frames, _ = load_sample_frames()
    legs = pd.DataFrame({"small_ret": _sample_leg(frames["size_value"], small),
                         "large_ret": _sample_leg(frames["size_value"], large)})
    frame = base.frame.copy()
    frame[["small_ret", "large_ret"]] = legs.reindex(frame.index)
    return frame


def pooled_rows(exp: Experiment, panel: Panel, spec: FeatureSpec, index: pd.DatetimeIndex,
                home: Path | None) -> tuple[SpreadRows, ...]:
    """The other size spreads' features and targets when ``[research] pooled`` is on, else ``()``.

    Raises
    ------
    ConfigError
        The panel is neither the live cache nor the offline sample (no other spreads to stack).
    """
    if not exp.research.pooled:
        return ()
    if panel.source not in POOLED_SPREADS:
        raise ConfigError(f"experiment {exp.name!r}: [research] pooled needs the live or sample data source, "
                          f"the panel is {panel.source!r}")
    french = load_catalog()["french"]
    configured = {"live": (exp.small_column or french["small_column"], exp.large_column or french["large_column"]),
                  "sample": ("S1V", "S5V")}[panel.source]
    rows = []
    for small, large in POOLED_SPREADS[panel.source]:
        if (small, large) == configured:
            continue
        frame = _spread_panel(exp, panel, home, small, large)
        rows.append(SpreadRows(f"{small} - {large}", build_features(frame, spec).reindex(index),
                               build_targets(frame, exp.horizon).reindex(index)))
    return tuple(rows)


# ---------------------------------------------------------------------------------------------------------------
# Training plan of one fold


@dataclass
class TrainingPlan:
    """What the fold's models are fitted on.

    Attributes
    ----------
    x : DataFrame, shape (n_rows, n_features): the training window, plus pooled rows when stacked.
    y : Series, shape (n_rows,): the target (decimal return), divided by ``scale`` when volatility-scaled.
    y_up : Series, shape (n_rows,): the 0/1 label (unchanged by scaling).
    columns : features the models use.
    regressor, classifier : LightGBM parameters (the spec's, plus monotone constraints).
    fit_kwargs : extra arguments of LightGBM's ``fit`` (categorical features).
    scale_column : feature whose horizon-scaled value divides the regression target (None: no scaling).
    scale_fill : training median of the scale, used where it is missing.
    """

    x: pd.DataFrame
    y: pd.Series
    y_up: pd.Series
    columns: list[str]
    regressor: dict[str, Any]
    classifier: dict[str, Any]
    fit_kwargs: dict[str, Any] = field(default_factory=dict)
    scale_column: str | None = None
    scale_fill: float = float("nan")


def stable_columns(x: pd.DataFrame, y: pd.Series, columns: list[str], min_months: int) -> list[str]:
    """Features whose univariate slope on ``y`` has one sign in every training decade with ``min_months`` rows.

    Parameters
    ----------
    x : DataFrame, shape (n_months, n_features), month-end index (the training window only).
    y : Series, shape (n_months,), the realised target.
    columns : candidates.
    min_months : non-missing (x, y) pairs a decade needs to vote; at least two decades must vote.

    Returns
    -------
    The stable candidates in their order; all candidates when none is stable (a model needs inputs).
    """
    decade = (x.index.year // 10) * 10
    signs, votes = [], []
    for start in np.unique(decade):
        sub, ys = x.loc[decade == start, columns], y[decade == start]
        pairs = (sub.notna() & ys.notna().to_numpy()[:, None]).sum()
        slope_sign = np.sign(sub.corrwith(ys).fillna(0.0))
        votes.append(pairs >= min_months)
        signs.append(slope_sign.where(pairs >= min_months, np.nan))
    signs_frame, votes_frame = pd.concat(signs, axis=1), pd.concat(votes, axis=1)
    stable = ((signs_frame.max(axis=1) == signs_frame.min(axis=1)) & (signs_frame.abs().min(axis=1) > 0)
              & (votes_frame.sum(axis=1) >= 2))
    keep = [c for c in columns if stable[c]]
    return keep or list(columns)


def scale_column(exp: Experiment, columns: pd.Index) -> str:
    """The small leg's trailing volatility feature whose window is closest to the horizon.

    Raises
    ------
    ConfigError
        The feature set has no ``small_<rvol|mvol>_<k>m_ann`` feature.
    """
    candidates = {int(c.split("_")[2][:-1]): c for c in columns
                  if c.startswith(("small_rvol_", "small_mvol_")) and c.endswith("m_ann")}
    if not candidates:
        raise ConfigError(f"experiment {exp.name!r}: [research] absolute_vol_scaled needs a small-leg volatility "
                          f"feature (small_rvol_<k>m_ann or small_mvol_<k>m_ann) in feature set {exp.feature_spec!r}")
    return candidates[min(candidates, key=lambda k: (abs(k - exp.horizon), k))]


def _horizon_scale(x: pd.DataFrame, column: str, horizon: int, fill: float) -> np.ndarray:
    """Annualised volatility -> volatility over the horizon, missing values filled."""
    return x[column].fillna(fill).to_numpy() * np.sqrt(horizon / 12.0)


def training_plan(x: pd.DataFrame, y: pd.Series, y_up: pd.Series, columns: list[str], exp: Experiment,
                  target: str, pooled: tuple[SpreadRows, ...] = ()) -> TrainingPlan:
    """Apply the experiment's ``[research]`` switches to one fold's training window.

    Parameters
    ----------
    x, y, y_up : the purged training window (realised rows only): features, target, label.
    columns : the features with data in the window.
    exp, target : experiment and ``relative``/``absolute``.
    pooled : other spreads' rows (:func:`pooled_rows`), taken at the window's month ends.
    """
    opts, spec = exp.research, exp.models[target]
    regressor, classifier = dict(spec.regressor), dict(spec.classifier)
    if opts.drop_families:
        family = _spec(exp.feature_spec).family_of()
        columns = [c for c in columns if family.get(c) not in opts.drop_families]
    if opts.stable_subset:
        columns = stable_columns(x, y, columns, opts.stable_min_months)
    if pooled:
        name = f"{target}_{exp.horizon}m"
        extra = [(rows.features.loc[x.index], rows.targets.loc[x.index, name],
                  rows.targets.loc[x.index, f"{name}_up"]) for rows in pooled]
        extra = [(xe[ye.notna()], ye.dropna(), ue[ye.notna()]) for xe, ye, ue in extra]
        x = pd.concat([x, *(e[0] for e in extra)])
        y = pd.concat([y, *(e[1] for e in extra)])
        y_up = pd.concat([y_up, *(e[2] for e in extra)])
    monotone = [opts.monotone.get(c, 0) for c in columns]
    if any(monotone):
        regressor["monotone_constraints"] = classifier["monotone_constraints"] = monotone
    fit_kwargs: dict[str, Any] = {}
    categorical = [c for c in _spec(exp.feature_spec).categorical if c in columns] if opts.categorical else []
    if categorical:
        fit_kwargs["categorical_feature"] = categorical
        # LightGBM's default min_data_per_group (100) would forbid most splits on ~300-800 monthly rows
        for params in (regressor, classifier):
            params.setdefault("min_data_per_group", params.get("min_child_samples", 20))
    plan = TrainingPlan(x, y, y_up, columns, regressor, classifier, fit_kwargs)
    if opts.absolute_vol_scaled and target == "absolute":
        plan.scale_column = scale_column(exp, x.columns)
        plan.scale_fill = float(x[plan.scale_column].median())
        plan.y = y / _horizon_scale(x, plan.scale_column, exp.horizon, plan.scale_fill)
    return plan


# ---------------------------------------------------------------------------------------------------------------
# Extra models


@dataclass(frozen=True)
class RSZ:
    """Rapach-Strauss-Zhou combination: the mean of one-variable forecasts, one per feature.

    Point forecast: OLS of y on each feature; probability: L2-penalised logistic regression of the label on each
    standardised feature. A missing feature value contributes that feature's unconditional forecast.

    Attributes
    ----------
    x_mean, x_std : per-feature training mean and standard deviation (feature units), shape (k,).
    y_mean, slope : per-feature OLS forecast at the feature mean (target units) and slope, shape (k,).
    logit_a, logit_b : per-feature logistic intercept and slope on the standardised feature, shape (k,).
    """

    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    slope: np.ndarray
    logit_a: np.ndarray
    logit_b: np.ndarray

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Point forecasts and probabilities, each shape (n,), from features of shape (n, k)."""
        centred = np.nan_to_num(x - self.x_mean)
        f = self.y_mean + self.slope * centred
        p = 1.0 / (1.0 + np.exp(-(self.logit_a + self.logit_b * centred / self.x_std)))
        return f.mean(axis=1), p.mean(axis=1)


def fit_rsz(x: np.ndarray, y: np.ndarray, y_up: np.ndarray, penalty: float = 1.0, iterations: int = 25) -> RSZ:
    """Fit the one-variable models of every column of ``x`` (shape (n, k)) at once.

    The OLS of feature j uses the rows where it is known; the logistic fit counts a missing value as the
    feature's mean. Constant or (almost) empty features get slope 0 and the overall mean. ``penalty`` is the L2
    weight on each standardised logistic slope (sklearn's default C = 1).
    """
    ok = ~np.isnan(x)
    n_ok = np.maximum(ok.sum(axis=0), 1)
    x_mean = np.where(ok, x, 0.0).sum(axis=0) / n_ok
    xc = np.where(ok, x - x_mean, 0.0)
    y_mean = np.where(ok.sum(axis=0) >= 2, (ok * y[:, None]).sum(axis=0) / n_ok, y.mean())
    yc = np.where(ok, y[:, None] - y_mean, 0.0)
    sxx = (xc * xc).sum(axis=0)
    slope = np.where(sxx > 0, (xc * yc).sum(axis=0) / np.where(sxx > 0, sxx, 1.0), 0.0)
    x_std = np.where(sxx > 0, np.sqrt(sxx / n_ok), 1.0)
    z = xc / x_std
    rate = np.clip(y_up.mean(), 1e-3, 1 - 1e-3)
    a, b = np.full(x.shape[1], np.log(rate / (1 - rate))), np.zeros(x.shape[1])
    lab = y_up[:, None]
    for _ in range(iterations):  # Newton steps on each feature's two parameters, vectorised over features
        p = 1.0 / (1.0 + np.exp(-(a + b * z)))
        w = p * (1 - p)
        ga, gb = (p - lab).sum(axis=0), ((p - lab) * z).sum(axis=0) + penalty * b
        haa, hab, hbb = w.sum(axis=0), (w * z).sum(axis=0), (w * z * z).sum(axis=0) + penalty
        det = haa * hbb - hab * hab
        a, b = a - (hbb * ga - hab * gb) / det, b - (haa * gb - hab * ga) / det
    return RSZ(x_mean, x_std, y_mean, slope, a, b)


@dataclass(frozen=True)
class StressModel:
    """Base rate and mean target in the current stress regime, shrunk toward the unconditional ones.

    Attributes
    ----------
    thresholds : indicator -> training-window quantile; stress when any indicator is above its threshold.
    mean, rate : regime (0 calm, 1 stress) -> shrunk mean target (decimal) and P(target > 0).
    """

    thresholds: dict[str, float]
    mean: tuple[float, float]
    rate: tuple[float, float]

    def stressed(self, x: pd.DataFrame) -> np.ndarray:
        flags = [(x[name] > level).to_numpy() for name, level in self.thresholds.items()]
        return np.any(flags, axis=0) if flags else np.zeros(len(x), dtype=bool)

    def predict(self, x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        regime = self.stressed(x).astype(int)
        return np.asarray(self.mean)[regime], np.asarray(self.rate)[regime]


def fit_stress(x: pd.DataFrame, y: pd.Series, y_up: pd.Series, quantile: float) -> StressModel:
    """Stress thresholds and regime-conditional mean and base rate from the training window."""
    thresholds = {name: float(x[name].quantile(quantile)) for name in STRESS_INDICATORS
                  if name in x.columns and x[name].notna().sum() >= STRESS_PRIOR_MONTHS}
    model = StressModel(thresholds, (0.0, 0.0), (0.5, 0.5))
    regime = model.stressed(x)
    k, y_all, up_all = STRESS_PRIOR_MONTHS, float(y.mean()), float(y_up.mean())
    def shrunk(values: pd.Series, prior: float, r: bool) -> float:
        return float((values[regime == r].sum() + k * prior) / ((regime == r).sum() + k))

    return StressModel(thresholds, (shrunk(y, y_all, False), shrunk(y, y_all, True)),
                       (shrunk(y_up, up_all, False), shrunk(y_up, up_all, True)))


def fit_extra(plan: TrainingPlan, exp: Experiment, target: str) -> dict[str, Any]:
    """Fit the variant's extra models on the plan's rows; name -> fitted model."""
    fitted: dict[str, Any] = {}
    if "rsz" in extra_models(exp, target):
        fitted["rsz"] = fit_rsz(plan.x[plan.columns].to_numpy(), plan.y.to_numpy(), plan.y_up.to_numpy())
    if "stress" in extra_models(exp, target):
        fitted["stress"] = fit_stress(plan.x, plan.y, plan.y_up, exp.research.stress_quantile)
    return fitted


def predict_extra(fitted: dict[str, Any], plan: TrainingPlan, x: pd.DataFrame, horizon: int,
                  out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add the extra models' forecasts to ``out`` and undo the target scaling of every point forecast.

    Parameters
    ----------
    fitted : :func:`fit_extra` output.
    plan : the fold's :class:`TrainingPlan`.
    x : test features, shape (n, n_features).
    horizon : months.
    out : ``"<model>.f"``/``"<model>.p"`` -> forecasts of shape (n,) (the base models'); updated and returned.
    """
    if "rsz" in fitted:
        out["rsz.f"], out["rsz.p"] = fitted["rsz"].predict(x[plan.columns].to_numpy())
    if "stress" in fitted:
        out["stress.f"], out["stress.p"] = fitted["stress"].predict(x)
    if plan.scale_column is not None:
        scale = _horizon_scale(x, plan.scale_column, horizon, plan.scale_fill)
        for name in [k for k in out if k.endswith(".f")]:
            out[name] = out[name] * scale
    return out


def combine(pred: pd.DataFrame, target: str) -> None:
    """Fill ``combo`` (mean of the raw lgbm, linear, rsz forecasts) and ``combo_cal`` (mean of calibrated ones)."""
    for suffix in ("", "_cal"):
        for kind in ("f", "p"):
            parts = [f"{target}.{model}{suffix}.{kind}" for model in COMBINED]
            pred[f"{target}.combo{suffix}.{kind}"] = pred[parts].mean(axis=1, skipna=False)


def not_applicable(exp: Experiment, features: pd.DataFrame) -> str | None:
    """Why a variant cannot change anything on this window's features (None: it can)."""
    opts = exp.research
    usable = {c for c in features.columns if features[c].notna().any()}
    family = _spec(exp.feature_spec).family_of()
    empty = [f for f in opts.drop_families if not any(family.get(c) == f for c in usable)]
    if opts.drop_families and len(empty) == len(opts.drop_families):
        return f"feature set {exp.feature_spec!r} has no data for family {', '.join(empty)}"
    if opts.monotone and not set(opts.monotone) & usable:
        return f"feature set {exp.feature_spec!r} has none of {', '.join(sorted(opts.monotone))}"
    if opts.absolute_stress and not set(STRESS_INDICATORS) & usable:
        return f"feature set {exp.feature_spec!r} has no stress indicator ({', '.join(STRESS_INDICATORS)})"
    return None
