"""Plain names of features and their values in their units, for people: ``mkt_excess_ret_mom_12m`` = 0.1896 reads
"12-month market excess return +19.0 %", ``fwd_3m_has_january_flag`` = 0 reads "January in the window: no".

Feature names state their units (``_bp``, ``_pct``, ``_flag``, ...: see :mod:`.families`), so the plain name and
the unit follow from the name alone. That lets the served model word its drivers with nothing but the feature
names it carries; the catalogue prints the same plain names (a test checks each one against the feature's unit).
This module imports nothing heavy: it travels with the served model.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache

#: Panel columns and stems as words.
SERIES = {
    "aaa": "Aaa corporate yield", "baa": "Baa corporate yield", "yield_10y": "10-year Treasury yield",
    "yield_2y": "2-year Treasury yield", "yield_1y": "1-year Treasury yield", "yield_3m": "3-month Treasury yield",
    "yield_tbill_1m": "1-month T-bill yield", "tbill_1m": "1-month T-bill yield", "fed_funds": "fed funds rate",
    "baa_aaa_spread": "Baa-Aaa credit spread", "baa_10y_spread": "Baa-10-year credit spread",
    "hy_oas": "high-yield credit spread", "nfci": "financial conditions index (NFCI, + = tighter)",
    "cpi": "CPI inflation", "mmf_assets": "money-market fund assets", "umcsent": "consumer sentiment",
    "unrate": "unemployment rate", "usd_broad": "broad dollar index", "vix": "VIX",
    "hml": "value factor (HML)", "smb": "size factor (SMB)", "mkt_excess_ret": "market excess return",
    "small": "small-cap", "large": "large-cap", "rs": "small minus large relative", "iwm": "IWM", "spy": "SPY",
    "implied_cuts_1y": "Fed cuts priced over 1 year",
}
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
PRES_CYCLE = ("election year", "post-election year", "midterm year", "pre-election year")

# unit kinds: how a value is written
BP, PCT, PP, DECIMAL, ANNUAL, RATIO, FLAG, MONTHS_SIGNED, DAYS, POINTS, STD, CUTS, MONTH, CYCLE, UNITLESS = (
    "bp", "pct", "pp", "decimal", "annualised", "ratio", "flag", "months", "days", "points", "std", "cuts",
    "month", "cycle", "unitless")
BP_LEVEL, PCT_LEVEL, POINTS_CHG = "bp level", "pct level", "points change"


def _series(stem: str) -> str:
    if stem in SERIES:
        return SERIES[stem]
    slope = re.fullmatch(r"slope_(\w+?)_(\w+)", stem)
    if slope:
        a, b = (_tenor(x) for x in slope.groups())
        return f"{a} minus {b} yield slope"
    minus = re.fullmatch(r"(\w+?)_minus_(\w+)", stem)
    if minus:
        return f"{_series(minus.group(1))} minus {_series(minus.group(2))}"
    return stem.replace("_", " ")


def _tenor(stem: str) -> str:
    """``10y`` -> ``10-year``, ``3m`` -> ``3-month``, ``aaa`` -> ``Aaa``, ``tbill_1m`` -> ``1-month T-bill``."""
    m = re.fullmatch(r"(\d+)([ym])", stem)
    if m:
        return f"{m.group(1)}-{'year' if m.group(2) == 'y' else 'month'}"
    return {"aaa": "Aaa", "baa": "Baa", "tbill_1m": "1-month T-bill"}.get(stem, stem.replace("_", " "))


@lru_cache(maxsize=4096)  # a function of the name alone; a served batch words thousands of drivers
def plain_name(name: str) -> tuple[str, str]:
    """``(plain name, unit kind)`` of a feature name; unknown patterns fall back to the name with spaces."""
    m = re.fullmatch(r"fwd_(\d+)m_has_(\w+)_flag", name)
    if m:
        what = {"nov_jan": "November-January", "december": "December", "january": "January"}.get(
            m.group(2), m.group(2).replace("_", " "))
        return f"{what} in the window", FLAG
    m = re.fullmatch(r"fwd_pres_(\w+)_flag", name)
    if m:
        year = m.group(1).replace("_", "-")
        return f"window in {'an' if year[0] in 'aeiou' else 'a'} {year} year", FLAG
    fixed = {
        "fwd_month": ("first month of the window", MONTH),
        "fwd_month_sin": ("season of the window (sine)", UNITLESS),
        "fwd_month_cos": ("season of the window (cosine)", UNITLESS),
        "fwd_pres_cycle": ("presidential cycle of the window", CYCLE),
        "rotation_streak_months": ("months small caps led in a row (- = large)", MONTHS_SIGNED),
        "rs_drawdown": ("small/large relative strength below its peak", DECIMAL),
    }
    if name in fixed:
        return fixed[name]
    m = re.fullmatch(r"rs_breakout_(\d+)m_high_flag", name)
    if m:
        return f"small/large relative strength at a {m.group(1)}-month high", FLAG
    m = re.fullmatch(r"rs_dist_ma_(\d+)m", name)
    if m:
        return f"small/large relative strength vs its {m.group(1)}-month average", DECIMAL
    m = re.fullmatch(r"(\w+?)_mom_(\d+)m", name)
    if m:
        stem = m.group(1)
        what = {"rs": "small minus large return", "small": "small-cap return", "large": "large-cap return"}.get(
            stem, _series(stem) + (" return" if stem in ("hml", "smb") else ""))
        return f"{m.group(2)}-month {what}", DECIMAL
    m = re.fullmatch(r"(small|large)_([mr])vol_(\d+)m_ann", name)
    if m:
        return f"{m.group(3)}-month {_series(m.group(1))} volatility", ANNUAL
    m = re.fullmatch(r"([mr])vol_ratio_small_large_(\d+)m", name)
    if m:
        return f"{m.group(2)}-month small/large volatility ratio", RATIO
    m = re.fullmatch(r"si_dtc_iwm_minus_spy(?:_chg_(\d+)m)?_days", name)
    if m:
        return _changed("IWM minus SPY short interest, days to cover", m.group(1)), DAYS
    m = re.fullmatch(r"si_(iwm|spy)_dtc(?:_chg_(\d+)m)?_days", name)
    if m:
        return _changed(f"{m.group(1).upper()} short interest, days to cover", m.group(2)), DAYS
    m = re.fullmatch(r"si_(iwm|spy)_short_shares_chg_(\d+)m_pct", name)
    if m:
        return _changed(f"{m.group(1).upper()} shares sold short", m.group(2)), PCT
    units = (("_bp", BP), ("_pct", PCT), ("_pp", PP), ("_std", STD), ("_pts", POINTS), ("_count", CUTS),
             ("_days", DAYS))
    for suffix, kind in units:
        if name.endswith(suffix):
            stem = name[: -len(suffix)]
            yoy = stem.endswith("_yoy")
            stem = stem.removesuffix("_yoy")
            m = re.fullmatch(r"(\w+?)_chg_(\d+)m", stem)
            if m:
                return _changed(_series(m.group(1)), m.group(2)), POINTS_CHG if kind == POINTS else kind
            if kind == CUTS:
                return _series(stem), kind
            level = {BP: BP_LEVEL, PCT: PCT_LEVEL}.get(kind, kind) if not yoy else kind
            return _series(stem) + (", year on year" if yoy else ""), level
    return name.replace("_", " "), UNITLESS


def _changed(what: str, months: str | None) -> str:
    return what if months is None else f"{months}-month change in {what}"


def value_text(kind: str, value: float) -> str:
    """A value in its unit: ``+35 bp``, ``4.10 %``, ``+19.0 %`` (a decimal return), ``yes``, ``March``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if kind == FLAG:
        return "yes" if value else "no"
    if kind == MONTH:
        return MONTHS[int(value) - 1] if 1 <= value <= 12 else f"{value:g}"
    if kind == CYCLE:
        return PRES_CYCLE[int(value)] if 0 <= value <= 3 else f"{value:g}"
    write = FORMATS.get(kind)
    return write(value) if write else f"{value:g}"


#: How a value of each remaining unit kind is written (one function per kind: a served batch writes thousands).
FORMATS = {
    BP: lambda v: f"{v:+.0f} bp", BP_LEVEL: lambda v: f"{v:.0f} bp", PCT: lambda v: f"{v:+.1f} %",
    PCT_LEVEL: lambda v: f"{v:.2f} %", PP: lambda v: f"{v:+.2f} pp", DECIMAL: lambda v: f"{v * 100:+.1f} %",
    ANNUAL: lambda v: f"{v * 100:.1f} % a year", RATIO: lambda v: f"{v:.2f}",
    MONTHS_SIGNED: lambda v: f"{v:+.0f} months", DAYS: lambda v: f"{v:+.2f} days", POINTS: lambda v: f"{v:.1f}",
    POINTS_CHG: lambda v: f"{v:+.1f} points", STD: lambda v: f"{v:+.2f} sd", CUTS: lambda v: f"{v:+.1f} cuts",
    UNITLESS: lambda v: f"{v:+.2f}",
}


def feature_text(name: str, value: float) -> str:
    """``12-month market excess return +19.0 %``; a flag reads ``January in the window: no``."""
    plain, kind = plain_name(name)
    sep = ": " if kind in (FLAG, MONTH, CYCLE) else " "
    return f"{plain}{sep}{value_text(kind, value)}"
