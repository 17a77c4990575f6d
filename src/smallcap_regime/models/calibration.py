"""Post-processing maps fitted on past out-of-sample predictions only.

Raw tree forecasts are typically far too dispersed for a noisy quarterly target, so the point forecast is shrunk
toward the prevailing mean, ``m + w (f - m)``, with ``w`` the least-squares weight on earlier out-of-sample pairs
(clipped to [0, 1]); probabilities get Platt scaling on the logit. Intervals are split-conformal: empirical
quantiles of earlier out-of-sample residuals.

The default probability map is *anchored* (:func:`fit_anchored`): its level is the base rate of the whole label
history known at the fit (the Brier reference the skill test measures against), and its slope on the model's
log-odds, measured from the mean of the earlier out-of-sample forecasts, is the Platt slope fitted on those pairs,
floored at ``min_slope`` (default 0.5). So the map never reverses two forecasts' order (slope > 0), never flattens a
forecast to the base rate (whether the model has skill is the bootstrap skill test's call, not the map's), and its
level does not drift with the out-of-sample pairs' own base rate - a drift that, in years where the fitted slope is
~0, made the pooled ranking the drifting base rate's (absolute target: calibrated AUC 0.37 live against 0.56 raw).
The plain Platt maps stay as options: ``monotone`` (slope >= ``min_slope``, intercept fitted) and ``platt``
(unconstrained; its slope was negative in 22 of 29 refit years of the absolute target, reversing the ranking).
Optionally the intercept is re-centred so that the mean calibrated probability of the latest pairs equals their
realised base rate (recent stretches had small caps winning far less often than the long history says).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import brentq, minimize

EPS = 1e-6


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), EPS, 1 - EPS)
    return np.log(p / (1 - p))


def shrink(forecast: np.ndarray, mean: np.ndarray | float, weight: float) -> np.ndarray:
    """The shrunk point forecast ``m + w (f - m)``: the one place the formula is written."""
    return mean + weight * (forecast - mean)


def fit_shrinkage(forecast: np.ndarray, mean: np.ndarray, y: np.ndarray) -> float:
    """Weight ``w`` in [0, 1] minimising sum (y - m - w (f - m))^2; 0 when the forecast never departs from m."""
    d = np.asarray(forecast) - np.asarray(mean)
    denom = float(np.sum(d * d))
    if denom <= 0:
        return 0.0
    return float(np.clip(np.sum(d * (np.asarray(y) - np.asarray(mean))) / denom, 0.0, 1.0))


@dataclass(frozen=True)
class Platt:
    """p' = sigmoid(a * logit(p) + b)."""

    a: float = 1.0
    b: float = 0.0

    def __call__(self, p: np.ndarray) -> np.ndarray:
        return self.of_logit(_logit(p))

    def of_logit(self, z: np.ndarray) -> np.ndarray:
        """The calibrated probability of raw log-odds ``z`` (what LightGBM's ``raw_score`` returns)."""
        return 1.0 / (1.0 + np.exp(-np.clip(self.a * np.asarray(z, dtype="float64") + self.b, -50, 50)))


def probability_points(contrib: np.ndarray, raw_logit: np.ndarray, platt: Platt) -> np.ndarray:
    """TreeSHAP contributions (log-odds, before calibration) as calibrated-probability points.

    A feature's points are how much the calibrated probability would fall, in percentage points, if its
    contribution were removed from the raw log-odds: ``100 * (P(z) - P(z - c_i))`` with ``P`` the Platt map. A
    target whose calibration is flat (slope ~0) thus has drivers of ~0 points, as it should.

    Parameters
    ----------
    contrib : array of shape (n_rows, n_features), LightGBM ``pred_contrib`` without its bias column.
    raw_logit : array of shape (n_rows,), the classifier's raw log-odds (contributions plus bias).
    platt : the calibration map applied to the classifier.

    Returns
    -------
    array of shape (n_rows, n_features), percentage points (+2.0 = two points more likely because of it).
    """
    z = np.asarray(raw_logit, dtype="float64")[:, None]
    return 100.0 * (platt.of_logit(z) - platt.of_logit(z - np.asarray(contrib, dtype="float64")))


def fit_platt(p_raw: np.ndarray, y_up: np.ndarray, ridge: float = 1.0, monotone: bool = True,
              min_slope: float = 0.0) -> Platt:
    """Platt scaling: penalised logistic fit of the label on logit(p), pulled toward the identity (a=1, b=0).

    The penalty keeps the map sane when few pairs are available or the classes are separable. ``monotone`` bounds
    the slope at ``a >= 0`` (the map never reverses the order of two raw probabilities); False is the unconstrained
    fit the project used before (``[options] calibration = "platt"``). ``min_slope`` raises the bound: the map
    keeps at least that share of the raw log-odds spread (the intercept is fitted given the slope).
    """
    x = _logit(p_raw)
    y = np.asarray(y_up, dtype="float64")
    prior = np.array([1.0, 0.0])

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = theta[0] * x + theta[1]
        # log(1 + e^z) - y z, written stably
        value = np.sum(np.logaddexp(0.0, z) - y * z) + 0.5 * ridge * np.sum((theta - prior) ** 2)
        resid = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50))) - y
        grad = np.array([np.sum(resid * x), np.sum(resid)]) + ridge * (theta - prior)
        return float(value), grad

    bounds = [(float(min_slope), None), (None, None)] if monotone else None
    if monotone and min_slope > prior[0]:
        prior = np.array([float(min_slope), 0.0])
    theta = minimize(loss, prior, jac=True, method="L-BFGS-B", bounds=bounds).x
    return Platt(float(theta[0]), float(theta[1]))


#: The most log-odds spread (standard deviation over the pairs) the anchored map's slope floor alone may keep:
#: 0.5 is about +-12 points of probability around a base rate near one half. A slope the pairs support is kept
#: whatever the spread; the cap only stops the floor from passing on most of an over-dispersed model's spread
#: (the live logistic baseline's raw log-odds have s.d. 2.5, LightGBM's 0.6-0.7, where the cap never binds).
FLOOR_MAX_SD = 0.5


def fit_anchored(p_raw: np.ndarray, y_up: np.ndarray, rate: float, min_slope: float = 0.5) -> Platt:
    """The anchored map ``p' = sigmoid(logit(rate) + a (logit(p) - mean logit(p_raw)))``.

    ``a`` is the monotone Platt slope of the pairs (:func:`fit_platt`) floored at ``min_slope``, a floor lowered
    where needed so that it alone keeps a log-odds s.d. of at most :data:`FLOOR_MAX_SD`; ``rate`` (clipped to
    [0.01, 0.99]) is the base rate known at the fit, so a forecast at the pairs' mean log-odds gets the base rate.
    """
    z = _logit(p_raw)
    spread = float(np.std(z))
    floor = min(min_slope, FLOOR_MAX_SD / spread) if spread > 0 else min_slope
    a = fit_platt(p_raw, y_up, monotone=True, min_slope=floor).a
    rate = float(np.clip(rate, 0.01, 0.99))
    return Platt(a, float(np.log(rate / (1 - rate)) - a * np.mean(z)))


def recentre(platt: Platt, p_raw: np.ndarray, rate: float) -> Platt:
    """``platt`` with its intercept moved so that the mean calibrated probability of ``p_raw`` equals ``rate``.

    The slope (and so the ranking) is kept; ``rate`` is clipped to [0.01, 0.99].
    """
    z = _logit(p_raw)
    target = float(np.clip(rate, 0.01, 0.99))

    def gap(b: float) -> float:
        return float(np.mean(Platt(platt.a, b).of_logit(z))) - target

    return Platt(platt.a, float(brentq(gap, -60.0, 60.0)))


def trailing_mean(values: np.ndarray, k: int) -> np.ndarray:
    """Mean of each row and the ``k - 1`` rows before it (fewer at the start), along axis 0: the ``smooth_k``
    option's average of the last ``k`` monthly forecasts, in the backtest and in the served model alike.

    >>> trailing_mean(np.array([1.0, 2.0, 3.0, 4.0]), 3)
    array([1. , 1.5, 2. , 3. ])
    """
    a = np.asarray(values, dtype="float64")
    if k <= 1 or len(a) == 0:
        return a
    c = np.cumsum(a, axis=0)
    out = c.copy()
    out[k:] = c[k:] - c[:-k]
    n = np.minimum(np.arange(1, len(a) + 1), k).reshape((-1,) + (1,) * (a.ndim - 1))
    return out / n


def conformal_interval(residuals: np.ndarray, coverage: float) -> tuple[float, float]:
    """Lower and upper residual quantiles giving ``coverage`` (e.g. 0.8 -> 10th and 90th percentiles).

    Uses the finite-sample-adjusted levels of split conformal prediction; NaN when there are too few residuals
    to reach the requested coverage.
    """
    r = np.sort(np.asarray(residuals, dtype="float64")[~np.isnan(residuals)])
    n = len(r)
    alpha = (1 - coverage) / 2
    # round off the float error of (n + 1) * alpha before floor/ceil: with coverage 0.8, (19 + 1) * 0.1 evaluates
    # to 1.9999999999999996, whose floor would pick the 1st instead of the 2nd order statistic
    k_hi = int(np.ceil(round((n + 1) * (1 - alpha), 9)))
    if n == 0 or k_hi > n:
        return float("nan"), float("nan")
    k_lo = max(int(np.floor(round((n + 1) * alpha, 9))), 1)
    return float(r[k_lo - 1]), float(r[k_hi - 1])


@dataclass
class CalibrationMaps:
    """Post-processing of one model's raw forecasts, fitted on out-of-sample pairs realised before some date.

    Attributes
    ----------
    shrink_weight : ``w`` of :func:`shrink` (0: the prevailing mean, 1: the raw forecast).
    platt : calibration map of the raw probability.
    interval : conformal residual quantiles ``(lo, hi)`` added to the shrunk forecast (NaN: too few residuals).
    n_pairs : out-of-sample pairs the maps were fitted on.
    """

    shrink_weight: float = 0.0
    platt: Platt = field(default_factory=Platt)
    interval: tuple[float, float] = (float("nan"), float("nan"))
    n_pairs: int = 0


def fit_calibration(forecast: np.ndarray, raw_p: np.ndarray, y: np.ndarray, up: np.ndarray, mean: np.ndarray,
                    base_rate: np.ndarray, min_obs: int, coverage: float, *, method: str = "anchored",
                    min_slope: float = 0.5, recentre_months: int = 0) -> CalibrationMaps:
    """Shrinkage, Platt and conformal maps from earlier out-of-sample pairs: the one calibration function.

    Parameters
    ----------
    forecast, raw_p : the model's raw point forecasts and probabilities, shape (n,).
    y, up : the realised targets and their 0/1 labels, shape (n,).
    mean, base_rate : the prevailing mean and base rate known at each origin, shape (n,).
    min_obs : complete pairs needed; fewer -> the conservative fallback: forecast = prevailing mean (w = 0),
        probability = the latest known base rate (Platt with a = 0, b = its logit), no interval.
    coverage : conformal interval coverage.
    method : the probability map: ``anchored`` (:func:`fit_anchored`, level = the latest pair's base rate),
        ``monotone`` (Platt, slope >= ``min_slope``) or ``platt`` (unconstrained) (:func:`fit_platt`).
    min_slope : the lowest slope of the ``anchored`` and ``monotone`` maps.
    recentre_months : > 0: re-centre the Platt intercept on the base rate of the latest ``recentre_months`` pairs
        (:func:`recentre`); 0: keep the fitted intercept.

    Rows with any NaN among the six arrays are left out.
    """
    rows = np.column_stack([forecast, raw_p, y, up, mean, base_rate]).astype("float64")
    pairs = rows[~np.isnan(rows).any(axis=1)]
    if len(pairs) < min_obs:
        base = rows[:, 5][~np.isnan(rows[:, 5])]
        rate = float(np.clip(base[-1], 1e-3, 1 - 1e-3)) if len(base) else 0.5
        return CalibrationMaps(0.0, Platt(0.0, float(np.log(rate / (1 - rate)))), n_pairs=len(pairs))
    f, p, yy, u, m = pairs[:, 0], pairs[:, 1], pairs[:, 2], pairs[:, 3], pairs[:, 4]
    w = fit_shrinkage(f, m, yy)
    if method == "anchored":
        platt = fit_anchored(p, u, float(pairs[-1, 5]), min_slope)
    elif method in ("monotone", "platt"):
        platt = fit_platt(p, u, monotone=method == "monotone", min_slope=min_slope)
    else:
        raise ValueError(f"unknown calibration method {method!r}; expected anchored, monotone or platt")
    if recentre_months > 0:
        platt = recentre(platt, p[-recentre_months:], float(np.mean(u[-recentre_months:])))
    return CalibrationMaps(w, platt, conformal_interval(yy - shrink(f, m, w), coverage), len(pairs))
