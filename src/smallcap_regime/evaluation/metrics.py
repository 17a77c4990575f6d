"""Forecast-evaluation metrics: pure functions over month-end indexed pandas Series.

Definitions follow ``docs/evaluation.md``. Conventions used throughout:

* Inputs are ``pd.Series`` indexed by month-end origins ``t`` (sorted, unique), values are decimal
  returns (0.01 = 1 %) or probabilities in [0, 1].
* ``y`` at origin ``t`` is the ``h``-month target realised over months ``t+1 .. t+h``; consecutive monthly
  origins therefore overlap by ``h - 1`` months.
* "Up" means strictly positive: a target is up iff ``y > 0``; a score predicts up iff
  ``score > threshold`` (a probability predicts up iff ``p > 0.5``). Ties count as "not up", which matches
  the labels ``target > 0`` and the strategy rule "long when P > 0.5".
* The primitive metrics (``r2_oos``, ``clark_west``, ``hit_rate``, ``auc``, ...) refuse NaN and raise
  ``ValueError``; they never drop rows silently. The ``*_report`` functions drop incomplete rows and report
  how many rows they used (``n``), returning NaN metrics instead of raising when too few rows are left,
  so that they can be applied per decade with :func:`by_decade`.
* Positional operations (the prevailing mean's ``h``-row lag, non-overlapping subsampling) count rows,
  so the series must hold one row per monthly origin, including origins whose target is still unknown
  (NaN).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd

__all__ = [
    "auc",
    "balanced_accuracy",
    "brier",
    "brier_skill",
    "brier_skill_interval",
    "by_decade",
    "clark_west",
    "classification_report",
    "hit_rate",
    "log_loss",
    "newey_west_se",
    "non_overlapping",
    "prevailing_mean",
    "r2_oos",
    "regression_report",
]


# --------------------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------------------


def _check_horizon(horizon: int, name: str = "horizon") -> int:
    if isinstance(horizon, bool) or not isinstance(horizon, (int, np.integer)):
        raise ValueError(f"{name} must be an integer >= 1, got {horizon!r}")
    if horizon < 1:
        raise ValueError(f"{name} must be >= 1, got {horizon}")
    return int(horizon)


def _check_lags(lags: int) -> int:
    if isinstance(lags, bool) or not isinstance(lags, (int, np.integer)):
        raise ValueError(f"lags must be an integer >= 0, got {lags!r}")
    if lags < 0:
        raise ValueError(f"lags must be >= 0, got {lags}")
    return int(lags)


def _as_float(x: object, name: str) -> pd.Series:
    """Return ``x`` as a float64 Series (booleans become 0/1, nullable NA becomes NaN)."""
    if not isinstance(x, pd.Series):
        raise ValueError(f"{name} must be a pandas Series, got {type(x).__name__}")
    if x.dtype == "float64":  # the usual case: no copy (nothing here writes to it)
        return x
    try:
        return x.astype("float64")
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric, got dtype {x.dtype}") from exc


def _same_index(ref: pd.Series, other: pd.Series, ref_name: str, other_name: str) -> None:
    if not ref.index.equals(other.index):
        raise ValueError(f"{ref_name} and {other_name} have different indexes")


def _check_sorted(s: pd.Series, name: str) -> None:
    if not (s.index.is_monotonic_increasing and s.index.is_unique):
        raise ValueError(f"{name} index must be sorted increasing without duplicates")


def _no_nan(s: pd.Series, name: str) -> None:
    n_bad = int(np.isnan(s.to_numpy()).sum())  # float64 by now (_as_float)
    if n_bad:
        raise ValueError(
            f"{name} contains {n_bad} NaN value(s); drop incomplete rows first "
            "(regression_report / classification_report do this)"
        )


def _non_empty(s: pd.Series, name: str, minimum: int = 1) -> None:
    if len(s) < minimum:
        raise ValueError(f"{name} needs at least {minimum} observation(s), got {len(s)}")


def _check_prob(p: pd.Series, name: str) -> None:
    values = p.to_numpy()
    finite = values[~np.isnan(values)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise ValueError(
            f"{name}: probabilities must lie in [0, 1], got min {finite.min():g}, max {finite.max():g}"
        )


def _check_binary(y: pd.Series, name: str) -> None:
    values = y.to_numpy()
    values = values[~np.isnan(values)]
    if not np.isin(values, (0.0, 1.0)).all():
        raise ValueError(f"{name} must contain only 0/1 or booleans")


def _paired(
    y: object, y_name: str, others: dict[str, object], allow_nan: bool = False
) -> tuple[pd.Series, ...]:
    """Coerce ``y`` and ``others`` to float Series with identical indexes (and no NaN unless allowed)."""
    ys = _as_float(y, y_name)
    out = [ys]
    for name, value in others.items():
        s = _as_float(value, name)
        _same_index(ys, s, y_name, name)
        out.append(s)
    if not allow_nan:
        for s, name in zip(out, [y_name, *others], strict=True):
            _no_nan(s, name)
    return tuple(out)


def _binary_prob(
    y_up: object, p_up: object, extra: dict[str, object] | None = None
) -> tuple[pd.Series, ...]:
    series = _paired(y_up, "y_up", {"p_up": p_up, **(extra or {})})
    _non_empty(series[0], "y_up")
    _check_binary(series[0], "y_up")
    for s, name in zip(series[1:], ["p_up", *(extra or {})], strict=True):
        _check_prob(s, name)
    return series


def _nonoverlap_mask(valid: np.ndarray, horizon: int) -> np.ndarray:
    """Keep valid rows whose row distance to the LAST valid row is a multiple of ``horizon``."""
    keep = np.zeros(valid.shape, dtype=bool)
    positions = np.flatnonzero(valid)
    if positions.size:
        last = positions[-1]
        keep[positions[(last - positions) % horizon == 0]] = True
    return keep


# --------------------------------------------------------------------------------------------------------
# point-forecast skill
# --------------------------------------------------------------------------------------------------------


def prevailing_mean(y: pd.Series, horizon: int, min_obs: int = 1) -> pd.Series:
    """Expanding historical mean of the targets fully realised at each origin.

    At origin ``t`` (row position ``i``) the benchmark is the mean of all non-NaN ``y`` at row positions
    ``<= i - horizon``: the target of origin ``s`` covers months ``s+1 .. s+h`` and is only known at
    ``s + h``. Targets of origins ``t-h+1 .. t`` are excluded.

    Parameters
    ----------
    y : pd.Series, shape (n,)
        Complete target history (training period included), one row per monthly origin, sorted by date;
        NaN where the target is unknown (e.g. the last ``h`` origins). Decimal returns or 0/1 labels
        (the prevailing mean of 0/1 labels is the expanding base rate used as Brier reference).
    horizon : int
        Target horizon ``h`` in months (rows), ``>= 1``.
    min_obs : int, default 1
        Minimum number of realised targets required; NaN is returned where fewer are available.

    Returns
    -------
    pd.Series, shape (n,)
        Benchmark forecast, same index and units as ``y``.
    """
    horizon = _check_horizon(horizon)
    min_obs = _check_horizon(min_obs, "min_obs")
    ys = _as_float(y, "y")
    _check_sorted(ys, "y")
    total = ys.fillna(0.0).cumsum().shift(horizon)
    count = ys.notna().astype("float64").cumsum().shift(horizon)
    out = (total / count).where(count >= min_obs)
    out.name = ys.name
    return out


def r2_oos(y: pd.Series, forecast: pd.Series, benchmark: pd.Series) -> float:
    """Campbell-Thompson out-of-sample R^2 of ``forecast`` against ``benchmark``.

    ``R2_OS = 1 - sum (y - f)^2 / sum (y - m)^2``. Positive means the forecast has lower squared error
    than the benchmark (usually :func:`prevailing_mean`).

    Parameters
    ----------
    y, forecast, benchmark : pd.Series, shape (n,)
        Realised targets, model forecasts and benchmark forecasts (same units) on identical indexes,
        without NaN.

    Returns
    -------
    float
        Dimensionless; ``<= 1``. NaN if the benchmark makes no error at all (``sum (y - m)^2 == 0``).
    """
    ys, fs, ms = _paired(y, "y", {"forecast": forecast, "benchmark": benchmark})
    _non_empty(ys, "y")
    sse_f = float(((ys - fs) ** 2).sum())
    sse_m = float(((ys - ms) ** 2).sum())
    if sse_m == 0.0:
        return float("nan")
    return 1.0 - sse_f / sse_m


def newey_west_se(x: np.ndarray | pd.Series, lags: int) -> float:
    """Newey-West (Bartlett kernel) standard error of the sample mean of ``x``.

    ``se = sqrt(LRV / n)`` with ``LRV = g_0 + 2 * sum_{j=1..L} (1 - j / (L + 1)) * g_j`` and
    ``g_j = (1/n) * sum_{t=j+1..n} (x_t - xbar)(x_{t-j} - xbar)`` (divisor ``n``, no small-sample
    correction). With ``lags=0`` this is ``sqrt(var_ddof0(x) / n)``.

    Parameters
    ----------
    x : array-like, shape (n,)
        Observations in time order, no NaN, ``n >= 2``.
    lags : int
        Bartlett truncation lag ``L`` (``h - 1`` for ``h``-month overlapping targets), ``0 <= L < n``.

    Returns
    -------
    float
        Standard error of ``mean(x)``, same units as ``x``.
    """
    lags = _check_lags(lags)
    arr = np.asarray(x, dtype="float64").ravel()
    if np.isnan(arr).any():
        raise ValueError(f"x contains {int(np.isnan(arr).sum())} NaN value(s)")
    n = arr.size
    if n < 2:
        raise ValueError(f"x needs at least 2 observations, got {n}")
    if lags >= n:
        raise ValueError(f"lags must be < number of observations ({n}), got {lags}")
    dev = arr - arr.mean()
    lrv = float(dev @ dev) / n
    for j in range(1, lags + 1):
        weight = 1.0 - j / (lags + 1.0)
        lrv += 2.0 * weight * float(dev[j:] @ dev[:-j]) / n
    return float(np.sqrt(max(lrv, 0.0) / n))


def clark_west(y: pd.Series, forecast: pd.Series, benchmark: pd.Series, lags: int) -> tuple[float, float]:
    """Clark-West (2007) test that ``forecast`` improves on the nested ``benchmark``.

    ``d_t = (y_t - m_t)^2 - [(y_t - f_t)^2 - (m_t - f_t)^2]``; statistic ``mean(d) / se(mean(d))`` with the
    Newey-West standard error (``lags`` = ``h - 1`` for overlapping origins, 0 on non-overlapping ones,
    see :func:`non_overlapping`); one-sided p-value ``1 - Phi(stat)``.

    Degenerate case: if ``d`` is constant (zero variance, e.g. ``forecast == benchmark`` gives
    ``d == 0``), the ratio is undefined. Then ``d == 0`` returns ``(0.0, 0.5)`` (no evidence either way),
    and a constant non-zero ``d`` returns ``(+inf, 0.0)`` or ``(-inf, 1.0)`` by its sign.

    Parameters
    ----------
    y, forecast, benchmark : pd.Series, shape (n,)
        Same index, no NaN, ``n >= 2``.
    lags : int
        Newey-West lag, ``0 <= lags < n``.

    Returns
    -------
    tuple of float
        ``(statistic, one_sided_p_value)``.
    """
    ys, fs, ms = _paired(y, "y", {"forecast": forecast, "benchmark": benchmark})
    _non_empty(ys, "y", minimum=2)
    lags = _check_lags(lags)
    if lags >= len(ys):
        raise ValueError(f"lags must be < number of observations ({len(ys)}), got {lags}")
    d = ((ys - ms) ** 2 - ((ys - fs) ** 2 - (ms - fs) ** 2)).to_numpy()
    if np.ptp(d) == 0.0:
        if d[0] == 0.0:
            return 0.0, 0.5
        return (float("inf"), 0.0) if d[0] > 0 else (float("-inf"), 1.0)
    se = newey_west_se(d, lags)
    if se == 0.0:  # Bartlett LRV can only vanish for degenerate series; treat like the constant case
        return 0.0, 0.5
    stat = float(d.mean() / se)
    return stat, 0.5 * math.erfc(stat / math.sqrt(2.0))  # 1 - Phi(stat), exact in the upper tail


def non_overlapping(series: pd.Series | pd.DataFrame, horizon: int) -> pd.Series | pd.DataFrame:
    """Every ``horizon``-th row, aligned to the LAST row so that the most recent origin is kept.

    Rows kept are positions ``n-1, n-1-h, n-1-2h, ...`` (returned in the original order). The selection
    is positional: drop unknown targets at the end first if the newest *realised* origin should anchor
    the grid (the report and strategy functions do this).

    Parameters
    ----------
    series : pd.Series or pd.DataFrame, shape (n,) or (n, k)
        One row per monthly origin, sorted by date.
    horizon : int
        Spacing ``h`` in rows, ``>= 1``.

    Returns
    -------
    pd.Series or pd.DataFrame, shape (ceil(n / h),) or (ceil(n / h), k)
    """
    horizon = _check_horizon(horizon)
    if not isinstance(series, (pd.Series, pd.DataFrame)):
        raise ValueError(f"series must be a pandas Series or DataFrame, got {type(series).__name__}")
    if not (series.index.is_monotonic_increasing and series.index.is_unique):
        raise ValueError("series index must be sorted increasing without duplicates")
    n = len(series)
    return series.iloc[(n - 1 - np.arange(n)) % horizon == 0]


# --------------------------------------------------------------------------------------------------------
# direction skill
# --------------------------------------------------------------------------------------------------------


def hit_rate(y: pd.Series, score: pd.Series, threshold: float = 0.0) -> float:
    """Share of origins where the predicted direction equals the realised one.

    Predicted up iff ``score > threshold``; realised up iff ``y > 0`` (ties count as "not up").
    Use ``threshold=0`` for point forecasts of returns and ``threshold=0.5`` for probabilities;
    ``y`` may be a return or a 0/1 label.

    Parameters
    ----------
    y, score : pd.Series, shape (n,)
        Same index, no NaN.
    threshold : float, default 0.0

    Returns
    -------
    float
        Fraction in [0, 1].
    """
    ys, ss = _paired(y, "y", {"score": score})
    _non_empty(ys, "y")
    return float(((ss > threshold) == (ys > 0)).mean())


def balanced_accuracy(y_up: pd.Series, p_up: pd.Series) -> float:
    """Mean of per-class recall of the prediction ``p_up > 0.5``.

    Only classes present in ``y_up`` are averaged (with a single class it is that class's recall,
    as in scikit-learn).

    Parameters
    ----------
    y_up : pd.Series of bool or 0/1, shape (n,)
    p_up : pd.Series of float in [0, 1], shape (n,)

    Returns
    -------
    float
        In [0, 1]; 0.5 for a constant prediction when both classes occur.
    """
    ys, ps = _binary_prob(y_up, p_up)
    actual = ys.to_numpy() == 1.0
    predicted = ps.to_numpy() > 0.5
    recalls = [float((predicted[actual == c] == c).mean()) for c in (False, True) if (actual == c).any()]
    return float(np.mean(recalls))


def auc(y_up: pd.Series, p_up: pd.Series) -> float:
    """Area under the ROC curve of ``p_up`` for the label ``y_up`` (tied scores count one half).

    Computed with the Mann-Whitney rank identity
    ``AUC = (sum of average ranks of positives - n1 (n1 + 1) / 2) / (n1 * n0)``, which equals
    ``sklearn.metrics.roc_auc_score`` (ties included) without its ~2 s import.

    Parameters
    ----------
    y_up : pd.Series of bool or 0/1, shape (n,)
    p_up : pd.Series of float in [0, 1], shape (n,)

    Returns
    -------
    float
        In [0, 1]; 0.5 for an uninformative score. NaN if ``y_up`` contains only one class.
    """
    ys, ps = _binary_prob(y_up, p_up)
    positive = ys.to_numpy() == 1.0
    n1 = int(positive.sum())
    n0 = positive.size - n1
    if n1 == 0 or n0 == 0:
        return float("nan")
    ranks = ps.rank(method="average").to_numpy()
    return float((ranks[positive].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def brier(y_up: pd.Series, p_up: pd.Series) -> float:
    """Brier score ``mean((p_up - y_up)^2)`` (lower is better; 0.25 for a constant 0.5)."""
    ys, ps = _binary_prob(y_up, p_up)
    return float(((ps - ys) ** 2).mean())


def brier_skill(y_up: pd.Series, p_up: pd.Series, p_ref: pd.Series | float) -> float:
    """Brier skill score ``1 - brier(y, p) / brier(y, p_ref)``.

    Parameters
    ----------
    y_up, p_up : pd.Series, shape (n,)
    p_ref : pd.Series, shape (n,), or float
        Reference probabilities, normally the expanding base rate
        (``prevailing_mean(y_up_full_history, horizon)``); a scalar is broadcast.

    Returns
    -------
    float
        ``<= 1``; positive means better than the reference. NaN if the reference is perfect.
    """
    if not isinstance(p_ref, pd.Series):
        p_ref = pd.Series(float(p_ref), index=getattr(y_up, "index", None))
    ys, ps, rs = _binary_prob(y_up, p_up, {"p_ref": p_ref})
    ref = float(((rs - ys) ** 2).mean())
    if ref == 0.0:
        return float("nan")
    return 1.0 - float(((ps - ys) ** 2).mean()) / ref


def brier_skill_interval(y_up: pd.Series, p_up: pd.Series, p_ref: pd.Series, block: int, level: float = 0.90,
                         reps: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of :func:`brier_skill` from a circular block bootstrap of the origins.

    Consecutive monthly origins share h - 1 months of their targets, so origins are resampled in blocks of
    ``block`` (the horizon) with :class:`arch.bootstrap.CircularBlockBootstrap`, keeping each origin's forecast, its
    reference and its outcome together. A lower bound above 0 is skill the overlap-aware sampling noise does not
    explain; ``(nan, nan)`` with fewer than two blocks of origins or a perfect reference.

    Parameters
    ----------
    y_up, p_up, p_ref : pd.Series, shape (n,), aligned; rows with a NaN are dropped.
    block : block length in origins (>= 1).
    level : two-sided coverage of the interval (0.90: the 5th and 95th percentiles).
    reps, seed : bootstrap replications and seed (fixed: a rerun gives the same interval).
    """
    from arch.bootstrap import CircularBlockBootstrap

    frame = pd.concat([_as_float(y_up, "y_up"), _as_float(p_up, "p_up"), _as_float(p_ref, "p_ref")],
                      axis=1).dropna()
    ys, ps, rs = _binary_prob(frame.iloc[:, 0], frame.iloc[:, 1], {"p_ref": frame.iloc[:, 2]})
    y, p, r = ys.to_numpy(float), ps.to_numpy(float), rs.to_numpy(float)
    if len(y) < 2 * block or float(((r - y) ** 2).sum()) == 0.0:
        return float("nan"), float("nan")
    loss, ref = (p - y) ** 2, (r - y) ** 2

    def skill(loss: np.ndarray, ref: np.ndarray) -> np.ndarray:
        denom = ref.sum()
        return np.array([1.0 - loss.sum() / denom if denom > 0 else 0.0])

    boot = CircularBlockBootstrap(max(int(block), 1), loss, ref, seed=seed)
    ci = boot.conf_int(skill, reps=reps, method="percentile", size=level)
    return float(ci[0, 0]), float(ci[1, 0])


def log_loss(y_up: pd.Series, p_up: pd.Series, eps: float = 1e-6) -> float:
    """Mean negative log-likelihood ``-mean(y log p + (1 - y) log(1 - p))``, natural log.

    Probabilities are clipped to ``[eps, 1 - eps]`` so a confident miss costs at most ``-log(eps)``.
    """
    if not 0.0 < eps < 0.5:
        raise ValueError(f"eps must lie in (0, 0.5), got {eps}")
    ys, ps = _binary_prob(y_up, p_up)
    p = np.clip(ps.to_numpy(), eps, 1.0 - eps)
    y = ys.to_numpy()
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


# --------------------------------------------------------------------------------------------------------
# grouping and reports
# --------------------------------------------------------------------------------------------------------


def by_decade(frame: pd.DataFrame, func: Callable[[pd.DataFrame], dict]) -> pd.DataFrame:
    """Apply ``func`` to the rows of each calendar decade of ``frame``'s DatetimeIndex.

    Parameters
    ----------
    frame : pd.DataFrame, shape (n, k)
        Indexed by a DatetimeIndex.
    func : callable
        ``func(sub_frame) -> dict`` of scalars (e.g. a lambda around :func:`regression_report`).

    Returns
    -------
    pd.DataFrame
        One row per decade that has rows, index labels like ``"1970s"`` (name ``decade``), the keys of
        ``func``'s dicts as columns plus ``rows`` (row count of the decade's sub-frame).
    """
    if not isinstance(frame, pd.DataFrame):
        raise ValueError(f"frame must be a pandas DataFrame, got {type(frame).__name__}")
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise ValueError("frame must have a DatetimeIndex")
    decade = (frame.index.year // 10) * 10
    records: dict[str, dict] = {}
    for start in sorted(set(decade)):
        sub = frame[decade == start]
        result = dict(func(sub))
        result["rows"] = len(sub)
        records[f"{start}s"] = result
    out = pd.DataFrame.from_dict(records, orient="index")
    out.index.name = "decade"
    return out


_REGRESSION_KEYS = (
    "r2_oos",
    "cw_stat",
    "cw_pvalue",
    "cw_stat_nonoverlap",
    "cw_pvalue_nonoverlap",
    "hit_rate",
    "n",
    "n_nonoverlap",
)


def regression_report(
    y: pd.Series, forecast: pd.Series, benchmark: pd.Series, horizon: int
) -> dict[str, float]:
    """Point-forecast skill of ``forecast`` vs ``benchmark`` on the rows where all three are known.

    Rows with NaN in ``y``, ``forecast`` or ``benchmark`` are dropped (the benchmark is needed for
    R2_OS and Clark-West; using one sample for every metric keeps them comparable).

    Parameters
    ----------
    y, forecast, benchmark : pd.Series, shape (n,)
        Identical, sorted indexes (one row per monthly origin).
    horizon : int
        ``h``; Clark-West on all rows uses Newey-West with ``h - 1`` lags, on non-overlapping rows
        (every ``h``-th used row counted back from the last one) with 0 lags.

    Returns
    -------
    dict of float
        Keys ``r2_oos``, ``cw_stat``, ``cw_pvalue``, ``cw_stat_nonoverlap``, ``cw_pvalue_nonoverlap``,
        ``hit_rate`` (sign of forecast vs sign of y), ``n`` (rows used), ``n_nonoverlap``. Metrics are NaN
        when too few rows remain (R2/hit rate need 1, Clark-West needs 2 and more than ``lags``).
    """
    horizon = _check_horizon(horizon)
    ys, fs, ms = _paired(y, "y", {"forecast": forecast, "benchmark": benchmark}, allow_nan=True)
    _check_sorted(ys, "y")
    valid = (ys.notna() & fs.notna() & ms.notna()).to_numpy()
    keep = _nonoverlap_mask(valid, horizon)
    out = dict.fromkeys(_REGRESSION_KEYS, float("nan"))
    n, n_no = int(valid.sum()), int(keep.sum())
    out["n"], out["n_nonoverlap"] = float(n), float(n_no)
    if n >= 1:
        out["r2_oos"] = r2_oos(ys[valid], fs[valid], ms[valid])
        out["hit_rate"] = hit_rate(ys[valid], fs[valid], 0.0)
    if n >= 2 and n > horizon - 1:
        out["cw_stat"], out["cw_pvalue"] = clark_west(ys[valid], fs[valid], ms[valid], horizon - 1)
    if n_no >= 2:
        out["cw_stat_nonoverlap"], out["cw_pvalue_nonoverlap"] = clark_west(ys[keep], fs[keep], ms[keep], 0)
    return out


_CLASSIFICATION_KEYS = (
    "auc",
    "brier",
    "brier_skill",
    "log_loss",
    "balanced_accuracy",
    "hit_rate",
    "hit_rate_ref",
    "hit_rate_majority",
    "base_rate",
    "n",
)


def classification_report(
    y_up: pd.Series, p_up: pd.Series, p_ref: pd.Series | float
) -> dict[str, float]:
    """Direction skill of ``p_up`` on the rows where ``y_up``, ``p_up`` and ``p_ref`` are all known.

    Parameters
    ----------
    y_up : pd.Series, shape (n,)
        1/0 (or bool) label ``target > 0``; NaN (or NA) where the target is unknown.
    p_up : pd.Series, shape (n,)
        Forecast probabilities in [0, 1].
    p_ref : pd.Series, shape (n,), or float
        Reference probabilities, normally the expanding base rate known at each origin
        (``prevailing_mean(y_up, horizon)``).

    Returns
    -------
    dict of float
        ``auc`` (NaN with one class), ``brier``, ``brier_skill`` (vs ``p_ref``), ``log_loss``,
        ``balanced_accuracy``, ``hit_rate`` (``p_up > 0.5`` vs label), ``hit_rate_ref`` (``p_ref > 0.5``,
        i.e. always the majority class of the expanding training history), ``hit_rate_majority``
        (always the majority realised on these rows: a hindsight ceiling for constant forecasts),
        ``base_rate`` (share of up labels) and ``n`` (rows used). All NaN (``n = 0``) if no row is complete.
    """
    ys = _as_float(y_up, "y_up")
    if not isinstance(p_ref, pd.Series):
        p_ref = pd.Series(float(p_ref), index=ys.index)
    ys, ps, rs = _paired(ys, "y_up", {"p_up": p_up, "p_ref": p_ref}, allow_nan=True)
    _check_binary(ys, "y_up")
    _check_prob(ps, "p_up")
    _check_prob(rs, "p_ref")
    valid = ys.notna() & ps.notna() & rs.notna()
    ys, ps, rs = ys[valid], ps[valid], rs[valid]
    out = dict.fromkeys(_CLASSIFICATION_KEYS, float("nan"))
    out["n"] = float(len(ys))
    if len(ys) == 0:
        return out
    base = float(ys.mean())
    out.update(
        auc=auc(ys, ps),
        brier=brier(ys, ps),
        brier_skill=brier_skill(ys, ps, rs),
        log_loss=log_loss(ys, ps),
        balanced_accuracy=balanced_accuracy(ys, ps),
        hit_rate=hit_rate(ys, ps, 0.5),
        hit_rate_ref=hit_rate(ys, rs, 0.5),
        hit_rate_majority=max(base, 1.0 - base),
        base_rate=base,
    )
    return out
