"""Feature families: each turns its validated TOML section into feature definitions.

A :class:`Feature` carries its name (which states the unit), formula, unit, inputs and a ``compute`` function
that maps the monthly point-in-time panel (row t = what was published by month end t) to one float series on
the panel's index. Computations use only backward-looking operations (``shift(k)`` with k >= 0, ``rolling`` with
``min_periods = window``, expanding maxima and cumulative products), so a feature at t never reads a row after t.
A missing or all-NaN input column gives NaN features, never zeros.

Rows are months: ``shift(k)`` means k months because the panel index is checked to be consecutive month ends
(:func:`check_monthly_index`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..data.schema import panel_columns
from ..errors import ConfigError
from .ops import change, compound, pct_change

Compute = Callable[[pd.DataFrame], pd.Series]

@dataclass(frozen=True)
class Derived:
    """An input series computed from panel columns (usable in a spec wherever a panel column is)."""

    description: str
    inputs: tuple[str, ...]
    compute: Compute


#: Derived inputs. The Fama-French ``rf`` is the bill return over month t, fixed by the bill yield at the start
#: of the month, so the implied yield is known by month end t (about one month stale, never ahead).
DERIVED: dict[str, Derived] = {
    "yield_tbill_1m": Derived(
        "1-month T-bill yield implied by rf, percent p.a. (= rf * 12 * 100)",
        ("rf",),
        lambda panel: 1200.0 * column(panel, "rf"),
    ),
}



def known_inputs() -> frozenset[str]:
    """Names a feature spec may read: the panel's columns (from the data layer's schema) and derived series."""
    return frozenset(panel_columns()) | frozenset(DERIVED)


@dataclass(frozen=True)
class Feature:
    """One feature: metadata for the catalogue plus the function computing it from the panel.

    Attributes
    ----------
    name : str
        Column name; its suffix states the unit (``_bp``, ``_pct``, ``_flag``, ...).
    unit : str
        Unit in words.
    formula : str
        How the value at month end t is computed (``x[t-k]`` = value k months earlier).
    inputs : tuple of str
        Panel columns or :data:`DERIVED` series named in the spec.
    compute : callable
        ``panel -> float series`` on the panel index.
    note : str
        Caveats (approximations, estimator choice); proxy notes are added by the catalogue from the spec.
    categorical : bool
        Integer codes to be treated as categories by the model.
    family : str
        Family name, filled in by the spec loader.
    bounds : tuple of float, optional
        Hard limits of the definition (a percentile rank is within 0..100) when neither the formula nor the unit
        gives them; used by the served model's range check.
    """

    name: str
    unit: str
    formula: str
    inputs: tuple[str, ...]
    compute: Compute
    note: str = ""
    categorical: bool = False
    family: str = ""
    bounds: tuple[float, float] | None = None


# ---------------------------------------------------------------------------------------------------------------
# Backward-looking building blocks


def column(panel: pd.DataFrame, name: str) -> pd.Series:
    """A panel column or derived series as float64; all-NaN if the panel lacks it (never zero-filled)."""
    if name in DERIVED:
        return DERIVED[name].compute(panel).rename(name)
    if name in panel.columns:
        return panel[name].astype("float64")
    return pd.Series(np.nan, index=panel.index, name=name, dtype="float64")


def relative_strength(panel: pd.DataFrame, small: str, large: str) -> pd.Series:
    """Relative-strength line: small-leg wealth / large-leg wealth, = cumulative product of (1+s)/(1+l).

    The line restarts at a missing month (a gap is not treated as a zero return); windowed features on it are
    scale-free, and rolling windows containing the gap are NaN through ``min_periods``.
    """
    gross = (1.0 + column(panel, small)) / (1.0 + column(panel, large))
    segment = gross.isna().cumsum()
    return gross.groupby(segment).cumprod()


def _flag(condition: pd.Series, *valid: pd.Series) -> pd.Series:
    """Boolean condition as 1.0/0.0, NaN where any of ``valid`` is NaN."""
    known = pd.concat(valid, axis=1).notna().all(axis=1)
    return condition.astype("float64").where(known)


# ---------------------------------------------------------------------------------------------------------------
# Feature constructors shared by the families (closures are built in factories to bind loop variables)


def _scaled(fn: Compute, scale: float) -> Compute:
    return lambda panel: scale * fn(panel)


def _changed(fn: Compute, months: int, scale: float) -> Compute:
    return lambda panel: scale * change(fn(panel), months)


def _pct_changed(fn: Compute, months: int) -> Compute:
    return lambda panel: pct_change(fn(panel), months)


def _input(name: str) -> Compute:
    return lambda panel: column(panel, name)


def _difference(left: str, right: str) -> Compute:
    return lambda panel: column(panel, left) - column(panel, right)


def _changes(
    stem: str,
    fn: Compute,
    expr: str,
    months: Sequence[int],
    *,
    scale: float,
    unit: tuple[str, str],
    inputs: tuple[str, ...],
    note: str = "",
) -> list[Feature]:
    """``{stem}_chg_{k}m_{unit tag}`` = scale * (x[t] - x[t-k]) with x = ``fn(panel)`` described by ``expr``."""
    tag, words = unit
    return [
        Feature(
            f"{stem}_chg_{k}m_{tag}",
            words,
            (f"x[t] - x[t-{k}]" if scale == 1.0 else f"{scale:g} * (x[t] - x[t-{k}])") + f", x = {expr}",
            inputs,
            _changed(fn, k, scale),
            note,
        )
        for k in months
    ]


def _pct_changes(stem: str, source: str, months: Sequence[int]) -> list[Feature]:
    """``{stem}_chg_{k}m_pct`` = 100 * (x[t] / x[t-k] - 1) for a panel column x."""
    return [
        Feature(f"{stem}_chg_{k}m_pct", "percent", f"100 * ({source}[t] / {source}[t-{k}] - 1)", (source,),
                _pct_changed(_input(source), k))
        for k in months
    ]


BP = ("bp", "basis points")


def _token(name: str) -> str:
    """Short label of a rate column for slope names: ``yield_10y`` -> ``10y``, ``aaa`` -> ``aaa``."""
    return name.removeprefix("yield_")


def _rate_level_and_changes(name: str, months: Sequence[int], *, level: bool) -> list[Feature]:
    """Level of a percent-p.a. rate (optional) and its k-month changes in bp."""
    features = _changes(name, _input(name), name, months, scale=100.0, unit=BP, inputs=(name,))
    if level:
        features.insert(0, Feature(f"{name}_pct", "percent p.a.", name, (name,), _input(name)))
    return features


def _spread_and_changes(
    stem: str, fn: Compute, expr: str, months: Sequence[int], inputs: tuple[str, ...], note: str = ""
) -> list[Feature]:
    """A spread in bp (``fn`` already in bp) and its k-month changes in bp."""
    level = Feature(f"{stem}_bp", "basis points", expr, inputs, fn, note)
    return [level, *_changes(stem, fn, expr, months, scale=1.0, unit=BP, inputs=inputs, note=note)]


# ---------------------------------------------------------------------------------------------------------------
# Families: ``family(params) -> list[Feature]``; params are validated by the spec loader (keys: FAMILIES)


def yields(params: Mapping[str, Any]) -> list[Feature]:
    """Long-yield level and changes, mid-yield changes, curve slopes long-mid and long-short with changes.

    Parameters
    ----------
    params : mapping
        ``long`` (column, required; live ``yield_10y``), ``mid`` (optional, ``yield_2y``), ``short`` (optional,
        ``yield_3m``), ``changes_months`` (list of k). Inputs in percent p.a.; changes and slopes in bp.
    """
    long, mid, short, months = params["long"], params.get("mid"), params.get("short"), params["changes_months"]
    features = _rate_level_and_changes(long, months, level=True)
    if mid:
        features += _rate_level_and_changes(mid, months, level=False)
    for other in (mid, short):
        if other:
            expr = f"100 * ({long} - {other})"
            features += _spread_and_changes(
                f"slope_{_token(long)}_{_token(other)}", _scaled(_difference(long, other), 100.0), expr, months,
                (long, other),
            )
    return features


IMPLIED_CUTS_NOTE = (
    "approximation: the 1-year yield ~ the average expected policy rate over the next 12 months, so "
    "(policy - 1y) / cut size counts expected cuts weighted by how early they come (a cut in month 12 barely "
    "counts; a cut now counts fully); it ignores the term premium (biasing toward hikes) and the different "
    "day-count/compounding conventions of bills, notes and overnight rates"
)


def rate_cuts(params: Mapping[str, Any]) -> list[Feature]:
    """Curve-implied policy expectations: tenor yields minus the policy rate and the implied number of cuts.

    Parameters
    ----------
    params : mapping
        ``policy`` (column, ``fed_funds``), ``tenors`` (columns, e.g. 3-month, 1-year, 2-year yields),
        ``cuts_tenor`` (column, ``yield_1y``), ``cut_size_bp`` (25), ``changes_months``. All in percent p.a.
    """
    policy, months = params["policy"], params["changes_months"]
    features: list[Feature] = []
    for tenor in params["tenors"]:
        features += _spread_and_changes(
            f"{tenor}_minus_{policy}", _scaled(_difference(tenor, policy), 100.0), f"100 * ({tenor} - {policy})",
            months, (tenor, policy),
        )
    tenor, size = params["cuts_tenor"], float(params["cut_size_bp"])
    stem, expr = f"implied_cuts_{_token(tenor)}", f"100 * ({policy} - {tenor}) / {size:g}"
    fn = _scaled(_difference(policy, tenor), 100.0 / size)
    unit = ("count", f"number of {size:g} bp cuts (negative = hikes)")
    features.append(Feature(f"{stem}_count", unit[1], expr, (policy, tenor), fn, IMPLIED_CUTS_NOTE))
    features += _changes(stem, fn, expr, months, scale=1.0, unit=unit, inputs=(policy, tenor), note=IMPLIED_CUTS_NOTE)
    return features


CALENDAR_NOTE = (
    "calendar convention: describes the forecast window t+1..t+h (known in advance, so leak-free), not the "
    "origin month t"
)
PRESIDENTIAL = ("election", "post_election", "midterm", "pre_election")


def _window_months(index: pd.DatetimeIndex, window: int) -> list[np.ndarray]:
    """Calendar months (1..12) of t+1, ..., t+window for each origin month end t."""
    periods = index.to_period("M")
    return [np.asarray((periods + j).month) for j in range(1, window + 1)]


def _fwd_month(panel: pd.DataFrame) -> pd.Series:
    return pd.Series(_window_months(panel.index, 1)[0], index=panel.index, dtype="float64")


def _fwd_month_cycle(trig: Callable[[np.ndarray], np.ndarray]) -> Compute:
    return lambda panel: trig(2.0 * math.pi * _fwd_month(panel) / 12.0)


def _window_contains(months: tuple[int, ...], window: int) -> Compute:
    def compute(panel: pd.DataFrame) -> pd.Series:
        hit = np.any([np.isin(m, months) for m in _window_months(panel.index, window)], axis=0)
        return pd.Series(hit, index=panel.index, dtype="float64")

    return compute


def _pres_cycle(panel: pd.DataFrame) -> pd.Series:
    # US presidential elections fall in years divisible by 4: year % 4 = 0 election, 1 post-election, ...
    return pd.Series((panel.index.to_period("M") + 1).year % 4, index=panel.index, dtype="float64")


def _pres_is(code: int) -> Compute:
    return lambda panel: (_pres_cycle(panel) == code).astype("float64")


def seasonality(params: Mapping[str, Any]) -> list[Feature]:
    """Calendar of the forecast window: first month, January / Nov-Jan / December flags, presidential cycle.

    Parameters
    ----------
    params : mapping
        ``window_months`` = the forecast horizon h (must equal the target horizon).
    """
    h = params["window_months"]
    note = CALENDAR_NOTE
    features = [
        Feature("fwd_month", "calendar month 1..12 (category)", "month of t+1", (), _fwd_month, note,
                categorical=True),
        Feature("fwd_month_sin", "unitless, [-1, 1]", "sin(2 pi * month(t+1) / 12)", (), _fwd_month_cycle(np.sin),
                note),
        Feature("fwd_month_cos", "unitless, [-1, 1]", "cos(2 pi * month(t+1) / 12)", (), _fwd_month_cycle(np.cos),
                note),
    ]
    windows = {
        "january": ((1,), "January (small-cap January effect)"),
        "nov_jan": ((11, 12, 1), "any of November, December, January"),
        "december": ((12,), "December (year-end tax-loss selling)"),
    }
    for label, (months, words) in windows.items():
        features.append(
            Feature(f"fwd_{h}m_has_{label}_flag", "flag 0/1", f"1 if t+1..t+{h} contains {words}", (),
                    _window_contains(months, h), note)
        )
    features.append(
        Feature("fwd_pres_cycle", "category 0..3", "year(t+1) % 4: 0 election, 1 post-election, 2 midterm, "
                "3 pre-election", (), _pres_cycle, note, categorical=True)
    )
    features += [
        Feature(f"fwd_pres_{label}_flag", "flag 0/1", f"1 if year(t+1) % 4 == {code}", (), _pres_is(code), note)
        for code, label in enumerate(PRESIDENTIAL)
    ]
    return features


def short_interest(params: Mapping[str, Any]) -> list[Feature]:
    """Days to cover and short-share changes for the small and large ETFs, and the small-minus-large spread.

    Parameters
    ----------
    params : mapping
        ``small`` / ``large`` ETF symbols (``iwm`` / ``spy``; columns ``si_<sym>_days_to_cover`` and
        ``si_<sym>_short_shares``), ``changes_months``. NaN before FINRA data exists (2018), never 0.
    """
    small, large, months = params["small"], params["large"], params["changes_months"]
    days = ("days", "days of average volume")
    features: list[Feature] = []
    for sym in (small, large):
        dtc = f"si_{sym}_days_to_cover"
        features.append(Feature(f"si_{sym}_dtc_days", days[1], dtc, (dtc,), _input(dtc)))
        features += _changes(f"si_{sym}_dtc", _input(dtc), dtc, months, scale=1.0, unit=days, inputs=(dtc,))
        features += _pct_changes(f"si_{sym}_short_shares", f"si_{sym}_short_shares", months)
    left, right = f"si_{small}_days_to_cover", f"si_{large}_days_to_cover"
    stem, expr, fn = f"si_dtc_{small}_minus_{large}", f"{left} - {right}", _difference(left, right)
    features.append(Feature(f"{stem}_days", days[1], expr, (left, right), fn))
    features += _changes(stem, fn, expr, months, scale=1.0, unit=days, inputs=(left, right))
    return features


def credit(params: Mapping[str, Any]) -> list[Feature]:
    """Credit spreads (Baa-Aaa, Baa-Treasury, high-yield OAS) in bp and financial conditions, with changes.

    Parameters
    ----------
    params : mapping
        ``baa`` and ``aaa`` (yields, percent p.a.; both or neither), ``baa_treasury`` (spread column, percent),
        ``hy_oas`` (percent), ``nfci`` (std units), ``changes_months``. All optional except the windows.
    """
    months = params["changes_months"]
    features: list[Feature] = []
    baa, aaa = params.get("baa"), params.get("aaa")
    if baa and aaa:
        features += _spread_and_changes(
            f"{baa}_{aaa}_spread", _scaled(_difference(baa, aaa), 100.0), f"100 * ({baa} - {aaa})", months,
            (baa, aaa),
        )
    for key in ("baa_treasury", "hy_oas"):
        if name := params.get(key):
            features += _spread_and_changes(name, _scaled(_input(name), 100.0), f"100 * {name}", months, (name,))
    if nfci := params.get("nfci"):
        std = ("std", "standard deviations (positive = tighter)")
        features.append(Feature(f"{nfci}_std", std[1], nfci, (nfci,), _input(nfci)))
        features += _changes(nfci, _input(nfci), nfci, months, scale=1.0, unit=std, inputs=(nfci,))
    return features


def macro(params: Mapping[str, Any]) -> list[Feature]:
    """Unemployment change (pp), inflation y/y (%), sentiment change (points), dollar and money-fund changes (%),
    VIX level.

    Parameters
    ----------
    params : mapping
        Optional columns ``unemployment``, ``inflation`` (price index), ``sentiment``, ``dollar``, ``mmf``,
        ``vix``; ``changes_months`` for the changes.
    """
    months = params["changes_months"]
    features: list[Feature] = []
    if name := params.get("unemployment"):
        features += _changes(name, _input(name), name, months, scale=1.0, unit=("pp", "percentage points"),
                             inputs=(name,))
    if name := params.get("inflation"):
        features.append(Feature(f"{name}_yoy_pct", "percent", f"100 * ({name}[t] / {name}[t-12] - 1)", (name,),
                                _pct_changed(_input(name), 12)))
    if name := params.get("sentiment"):
        features += _changes(name, _input(name), name, months, scale=1.0, unit=("pts", "index points"),
                             inputs=(name,))
    for key in ("dollar", "mmf"):
        if name := params.get(key):
            features += _pct_changes(name, name, months)
    if name := params.get("vix"):
        features.append(Feature(f"{name}_pts", "index points", name, (name,), _input(name)))
    return features


def _momentum(name: str, months: int) -> Compute:
    return lambda panel: compound(column(panel, name), months)


def _rs_momentum(small: str, large: str, months: int) -> Compute:
    return lambda panel: (1.0 + compound(column(panel, small), months)) / (
        1.0 + compound(column(panel, large), months)
    ) - 1.0


def _rs_ma_distance(small: str, large: str, months: int) -> Compute:
    def compute(panel: pd.DataFrame) -> pd.Series:
        rs = relative_strength(panel, small, large)
        return rs / rs.rolling(months, min_periods=months).mean() - 1.0

    return compute


def _rs_drawdown(small: str, large: str) -> Compute:
    def compute(panel: pd.DataFrame) -> pd.Series:
        rs = relative_strength(panel, small, large)
        return rs / rs.groupby(rs.isna().cumsum()).cummax() - 1.0

    return compute


def _rs_breakout(small: str, large: str, months: int) -> Compute:
    def compute(panel: pd.DataFrame) -> pd.Series:
        rs = relative_strength(panel, small, large)
        prior_high = rs.shift(1).rolling(months, min_periods=months).max()
        return _flag(rs > prior_high, rs, prior_high)

    return compute


def _streak(small: str, large: str) -> Compute:
    def compute(panel: pd.DataFrame) -> pd.Series:
        sign = np.sign(column(panel, small) - column(panel, large))
        run = sign.ne(sign.shift()).cumsum()  # NaN != NaN, so a missing month breaks the run
        return sign * (sign.groupby(run).cumcount() + 1)

    return compute


def _daily_vol(rvar: str, months: int) -> Compute:
    # clip: a rolling sum of non-negative values can come out at -1e-20 from floating-point cancellation
    return lambda panel: np.sqrt(
        column(panel, rvar).rolling(months, min_periods=months).sum().clip(lower=0.0) * 12.0 / months
    )


def _monthly_vol(ret: str, months: int) -> Compute:
    return lambda panel: column(panel, ret).rolling(months, min_periods=months).std() * math.sqrt(12.0)


def _ratio(numerator: Compute, denominator: Compute) -> Compute:
    return lambda panel: numerator(panel) / denominator(panel)


VOL_ESTIMATORS: dict[str, tuple[str, Callable[[str, int], Compute], str, str]] = {
    # vol_source -> (name tag, estimator(column, months), formula template, note)
    "daily": ("rvol", _daily_vol, "sqrt(sum({src}[t-j], j=0..{m1}) * 12 / {m})",
              "realized volatility from daily returns: monthly sums of squared daily returns, annualised"),
    "monthly": ("mvol", _monthly_vol, "std({src}[t-j], j=0..{m1}) * sqrt(12)",
                "fallback estimator (no daily data): sample std (ddof=1) of monthly returns, annualised; noisier "
                "and slower than daily realized volatility, hence the different name"),
}


def technical(params: Mapping[str, Any]) -> list[Feature]:
    """Relative-strength momentum, trend, drawdown and breakout, rotation streak, small-leg momentum, volatility,
    factor momentum.

    Parameters
    ----------
    params : mapping
        ``small_ret``/``large_ret`` (columns), ``momentum_months``, ``ma_months``, ``breakout_months``,
        ``vol_source`` ("daily": from ``small_rvar``/``large_rvar``; "monthly": std of monthly returns),
        ``vol_months``, optional ``factors`` (columns) with ``factor_momentum_months``.
    """
    small, large = params["small_ret"], params["large_ret"]
    legs = (small, large)
    features = [
        Feature(f"rs_mom_{k}m", "decimal", f"prod(1 + {small}[t-j]) / prod(1 + {large}[t-j]) - 1, j=0..{k - 1}",
                legs, _rs_momentum(small, large, k), "relative-strength line = small wealth / large wealth")
        for k in params["momentum_months"]
    ]
    ma, high = params["ma_months"], params["breakout_months"]
    features += [
        Feature(f"rs_dist_ma_{ma}m", "decimal", f"RS[t] / mean(RS[t-j], j=0..{ma - 1}) - 1", legs,
                _rs_ma_distance(small, large, ma), "RS = cumulative product of (1 + small) / (1 + large)"),
        Feature("rs_drawdown", "decimal (<= 0)", "RS[t] / max(RS[s], s <= t) - 1", legs, _rs_drawdown(small, large),
                "expanding peak since the start of the data (restarts after a missing month)"),
        Feature(f"rs_breakout_{high}m_high_flag", "flag 0/1", f"1 if RS[t] > max(RS[t-j], j=1..{high})", legs,
                _rs_breakout(small, large, high)),
        Feature("rotation_streak_months", "months (signed)",
                f"consecutive months with sign({small} - {large}) equal to this month's, times that sign", legs,
                _streak(small, large), "+n = n months of small-cap outperformance in a row, -n = underperformance; "
                "0 on a tie; restarts after a missing month"),
    ]
    features += [
        Feature(f"small_mom_{k}m", "decimal", f"prod(1 + {small}[t-j], j=0..{k - 1}) - 1", (small,),
                _momentum(small, k))
        for k in params["momentum_months"]
    ]
    tag, estimator, template, note = VOL_ESTIMATORS[params["vol_source"]]
    daily = params["vol_source"] == "daily"
    sources = {"small": params["small_rvar"] if daily else small, "large": params["large_rvar"] if daily else large}
    for m in params["vol_months"]:
        vols = {leg: estimator(src, m) for leg, src in sources.items()}
        features += [
            Feature(f"{leg}_{tag}_{m}m_ann", "annualised decimal", template.format(src=src, m=m, m1=m - 1), (src,),
                    vols[leg], note)
            for leg, src in sources.items()
        ]
        features.append(Feature(f"{tag}_ratio_small_large_{m}m", "ratio",
                                f"small_{tag}_{m}m_ann / large_{tag}_{m}m_ann", tuple(sources.values()),
                                _ratio(vols["small"], vols["large"]), note))
    for factor in params.get("factors", ()):
        features += [
            Feature(f"{factor}_mom_{k}m", "decimal", f"prod(1 + {factor}[t-j], j=0..{k - 1}) - 1", (factor,),
                    _momentum(factor, k), "compounded like a return (the factor is a zero-cost long-short return)")
            for k in params["factor_momentum_months"]
        ]
    return features


VALUATION_NOTE = (
    "aggregate book-to-market of size quintiles 1 and 5 (Fama-French 25 size x BE/ME portfolios): book equity of "
    "fiscal year t-1 from the June t formation, market equity moved with each portfolio's returns since; positive "
    "= small caps cheaper. Value spreads trend for decades, so the level alone is not a forecast"
)


def log_spread(small: str, large: str) -> Compute:
    def compute(panel: pd.DataFrame) -> pd.Series:
        ratio = column(panel, small) / column(panel, large)
        return np.log(ratio.where(ratio > 0))  # a non-positive book-to-market is no valuation: NaN, not -inf

    return compute


def trailing_z(fn: Compute, months: int) -> Compute:
    def compute(panel: pd.DataFrame) -> pd.Series:
        x = fn(panel)
        window = x.rolling(months, min_periods=months)
        return (x - window.mean()) / window.std()

    return compute


def trailing_rank(fn: Compute, months: int) -> Compute:
    # share of the window (t included) at or below x[t], ties counted half: 100 * rank / n, in (0, 100]
    return lambda panel: 100.0 * fn(panel).rolling(months, min_periods=months).rank(pct=True)


def trailing_z_bound(months: int) -> float:
    """Largest |z| a value can have against a window of ``months`` values that includes it (sample std)."""
    return (months - 1) / math.sqrt(months)


def valuation(params: Mapping[str, Any]) -> list[Feature]:
    """Small-minus-big log book-to-market spread, its changes, and its z-score and percentile rank in a trailing window.

    Parameters
    ----------
    params : mapping
        ``small_btm`` / ``large_btm`` (columns, aggregate book-to-market ratios; live ``btm_size_q1`` /
        ``btm_size_q5``), ``changes_months`` (list of k), ``window_months`` (trailing window of the stationary
        forms, e.g. 120 = 10 years).
    """
    small, large, window = params["small_btm"], params["large_btm"], params["window_months"]
    inputs, stem, expr = (small, large), "smb_btm_spread", f"log({small} / {large})"
    spread = log_spread(small, large)
    log_points = ("log", "log points (natural log of a ratio; 0.1 ~ 10 %)")
    features = [Feature(f"{stem}_log", log_points[1], expr, inputs, spread, VALUATION_NOTE)]
    features += _changes(stem, spread, expr, params["changes_months"], scale=1.0, unit=log_points, inputs=inputs,
                         note=VALUATION_NOTE)
    features += [
        Feature(f"{stem}_z_{window}m_std", f"standard deviations (trailing {window}-month z-score)",
                f"(x[t] - mean(x[t-j])) / std(x[t-j]), j=0..{window - 1}, x = {expr}", inputs,
                trailing_z(spread, window), f"{VALUATION_NOTE}; sample std (ddof=1)",
                bounds=(-trailing_z_bound(window), trailing_z_bound(window))),
        Feature(f"{stem}_rank_{window}m_pct", "percentile rank, percent (0..100)",
                f"100 * share of x[t-j], j=0..{window - 1}, at or below x[t] (ties count half), x = {expr}", inputs,
                trailing_rank(spread, window), VALUATION_NOTE, bounds=(0.0, 100.0)),
    ]
    return features


# ---------------------------------------------------------------------------------------------------------------
# Spec schemas. The spec loader (build.py) checks each key's kind; each family's ``rules`` checks the conditions
# that involve several keys and raises ConfigError with a message the loader prefixes with file and section.


@dataclass(frozen=True)
class Key:
    """One TOML key of a family section.

    ``kind``: "column" (panel column or derived series), "columns" (non-empty list of them), "months" (non-empty
    list of distinct integers >= ``min_value``), "month" (integer >= ``min_value``), "positive" (number > 0),
    "choice" (one of ``choices``).
    """

    kind: str
    required: bool = False
    choices: tuple[str, ...] = ()
    min_value: int = 1


def _no_rules(params: Mapping[str, Any]) -> None:
    """Families whose keys are independent."""


@dataclass(frozen=True)
class Family:
    """A family's planner, its TOML keys and its cross-key rules."""

    plan: Callable[[Mapping[str, Any]], list[Feature]]
    keys: dict[str, Key]
    rules: Callable[[Mapping[str, Any]], None] = _no_rules


def _credit_rules(params: Mapping[str, Any]) -> None:
    if ("baa" in params) != ("aaa" in params):
        raise ConfigError("'baa' and 'aaa' go together (the quality spread needs both); set both or neither")


def _short_interest_rules(params: Mapping[str, Any]) -> None:
    if params["small"] == params["large"]:
        raise ConfigError(f"'small' and 'large' must be different ETFs, both are {params['small']!r}")


def _technical_rules(params: Mapping[str, Any]) -> None:
    rvar_keys = [k for k in ("small_rvar", "large_rvar") if k in params]
    if params["vol_source"] == "daily" and len(rvar_keys) < 2:
        raise ConfigError("vol_source = \"daily\" needs both 'small_rvar' and 'large_rvar'")
    if params["vol_source"] == "monthly":
        if rvar_keys:
            raise ConfigError(f"{rvar_keys[0]!r} is only used with vol_source = \"daily\"")
        if min(params["vol_months"]) < 2:
            raise ConfigError("vol_months must be >= 2 with vol_source = \"monthly\" (a std needs two months)")
    if ("factors" in params) != ("factor_momentum_months" in params):
        raise ConfigError("'factors' and 'factor_momentum_months' go together; set both or neither")


def _valuation_rules(params: Mapping[str, Any]) -> None:
    if params["small_btm"] == params["large_btm"]:
        raise ConfigError(f"'small_btm' and 'large_btm' must be different columns, both are {params['small_btm']!r}")


MONTHS = Key("months", required=True)
COLUMN = Key("column")
SYMBOLS = ("iwm", "spy")

#: Family registry in output order (features are sorted by this order, then by name).
FAMILIES: dict[str, Family] = {
    "yields": Family(
        yields, {"long": Key("column", True), "mid": COLUMN, "short": COLUMN, "changes_months": MONTHS}
    ),
    "rate_cuts": Family(
        rate_cuts,
        {"policy": Key("column", True), "tenors": Key("columns", True), "cuts_tenor": Key("column", True),
         "cut_size_bp": Key("positive", True), "changes_months": MONTHS},
    ),
    "credit": Family(
        credit,
        {"baa": COLUMN, "aaa": COLUMN, "baa_treasury": COLUMN, "hy_oas": COLUMN, "nfci": COLUMN,
         "changes_months": MONTHS},
        _credit_rules,
    ),
    "macro": Family(
        macro,
        {"unemployment": COLUMN, "inflation": COLUMN, "sentiment": COLUMN, "dollar": COLUMN, "mmf": COLUMN,
         "vix": COLUMN, "changes_months": MONTHS},
    ),
    "short_interest": Family(
        short_interest,
        {"small": Key("choice", True, SYMBOLS), "large": Key("choice", True, SYMBOLS), "changes_months": MONTHS},
        _short_interest_rules,
    ),
    "technical": Family(
        technical,
        {"small_ret": Key("column", True), "large_ret": Key("column", True), "momentum_months": MONTHS,
         "ma_months": Key("month", True, min_value=2), "breakout_months": Key("month", True),
         "vol_source": Key("choice", True, tuple(VOL_ESTIMATORS)), "vol_months": MONTHS, "small_rvar": COLUMN,
         "large_rvar": COLUMN, "factors": Key("columns"), "factor_momentum_months": Key("months")},
        _technical_rules,
    ),
    "seasonality": Family(seasonality, {"window_months": Key("month", True)}),
    "valuation": Family(
        valuation,
        {"small_btm": Key("column", True), "large_btm": Key("column", True), "changes_months": MONTHS,
         "window_months": Key("month", True, min_value=12)},
        _valuation_rules,
    ),
}
