"""The descriptive valuation reading and its own out-of-sample record.

The seeds' claim "small caps trade at a discount" made checkable: how much cheaper (on book-to-market) small caps
are relative to large caps than over the trailing window, and how often, in the past, a wider-than-usual discount
was followed by small caps outperforming over the next quarter, against the base rate. The reading is a fixed
rule (no fitted parameter), computed point in time from the same panel columns and formulas as the ``valuation``
feature family, so its record is out of sample by construction; it is shown whether or not the family is model
input.

>>> reading = valuation_reading(panel)                     # doctest: +SKIP
>>> reading.sentence()                                     # doctest: +SKIP
'small caps are 0.40 log points cheaper relative to large caps than their 10-year average (...)'
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import NoDataError
from .families import log_spread, trailing_rank, trailing_z
from .targets import build_targets

SMALL_BTM, LARGE_BTM = "btm_size_q1", "btm_size_q5"
WINDOW_MONTHS = 120
HORIZON_MONTHS = 3
SERIES_COLUMNS = ("spread_log", "mean_log", "deviation_log", "z_std", "rank_pct")


def _window_words(months: int) -> str:
    return f"{months // 12}-year" if months % 12 == 0 else f"{months}-month"


def valuation_series(panel: pd.DataFrame, *, small: str = SMALL_BTM, large: str = LARGE_BTM,
                     window_months: int = WINDOW_MONTHS) -> pd.DataFrame:
    """Point-in-time valuation measures at every month end of ``panel``.

    Returns
    -------
    DataFrame on the panel's index, float64: ``spread_log`` = log(small / large book-to-market) (positive = small
    caps cheaper), ``mean_log`` its trailing ``window_months`` mean (t included), ``deviation_log`` = spread -
    mean (log points cheaper than usual), ``z_std`` the trailing z-score and ``rank_pct`` the percentile rank
    (0..100) - the last two equal the ``valuation`` family's features for the same window. NaN until a full
    window of spreads exists.

    Raises
    ------
    NoDataError
        ``panel`` has no book-to-market columns (the offline sample; pull `25_Portfolios_5x5` for them).
    """
    missing = [c for c in (small, large) if c not in panel.columns or panel[c].isna().all()]
    if missing:
        raise NoDataError(f"no book-to-market data ({', '.join(missing)}) in this panel: the valuation reading "
                          "needs Ken French's 25_Portfolios_5x5 (`regime data pull`); the offline sample has none")
    spread = log_spread(small, large)
    x = spread(panel)
    mean = x.rolling(window_months, min_periods=window_months).mean()
    out = pd.DataFrame({"spread_log": x, "mean_log": mean, "deviation_log": x - mean,
                        "z_std": trailing_z(spread, window_months)(panel),
                        "rank_pct": trailing_rank(spread, window_months)(panel)}, index=panel.index)
    return out.astype("float64")


@dataclass(frozen=True)
class ValuationReading:
    """The valuation reading at one month end (log points: 0.1 ~ 10 % cheaper)."""

    as_of: pd.Timestamp
    spread_log: float
    mean_log: float
    deviation_log: float
    z_std: float
    rank_pct: float
    window_months: int

    def sentence(self) -> str:
        """One line for the card: "small caps are 0.40 log points cheaper relative to large caps than ..."."""
        side = "cheaper" if self.deviation_log >= 0 else "dearer"
        return (f"small caps are {abs(self.deviation_log):.2f} log points {side} relative to large caps than their "
                f"{_window_words(self.window_months)} average (book-to-market spread {self.spread_log:+.2f} vs "
                f"{self.mean_log:+.2f}; z {self.z_std:+.1f}, {self.rank_pct:.0f}th percentile of the window)")

    def as_dict(self) -> dict[str, object]:
        return {"as_of": self.as_of.date().isoformat(), "spread_log": self.spread_log, "mean_log": self.mean_log,
                "deviation_log": self.deviation_log, "z_std": self.z_std, "rank_pct": self.rank_pct,
                "window_months": self.window_months, "sentence": self.sentence()}


def valuation_reading(panel: pd.DataFrame, as_of: str | pd.Timestamp | None = None, *,
                      window_months: int = WINDOW_MONTHS) -> ValuationReading:
    """The reading at ``as_of`` (default: the last month end with one), from data published by then.

    Raises
    ------
    NoDataError
        No book-to-market columns, or no full trailing window at or before ``as_of``.
    """
    series = valuation_series(panel, window_months=window_months)
    if as_of is not None:
        series = series.loc[:pd.Timestamp(as_of)]
    known = series.dropna()
    if known.empty:
        raise NoDataError(f"no valuation reading{' by ' + str(as_of) if as_of is not None else ''}: it needs "
                          f"{window_months} months of book-to-market spreads")
    row = known.iloc[-1]
    return ValuationReading(as_of=pd.Timestamp(known.index[-1]), window_months=window_months,
                            **{c: float(row[c]) for c in SERIES_COLUMNS})


def valuation_calls(panel: pd.DataFrame, *, window_months: int = WINDOW_MONTHS,
                    horizon_months: int = HORIZON_MONTHS) -> pd.DataFrame:
    """The reading's call at every origin with a known outcome.

    Returns
    -------
    DataFrame indexed by origin month end: the :func:`valuation_series` columns, ``cheap`` (1.0 when the spread
    is wider than its trailing mean, i.e. ``deviation_log > 0``: the reading says small caps are cheaper than
    usual), ``relative_<h>m`` (next-h-month small minus large return, decimal) and ``small_won`` (1.0 if it is
    > 0). Only origins with both a reading and a realised outcome.
    """
    series = valuation_series(panel, window_months=window_months)
    target = build_targets(panel, horizon_months)
    h = f"relative_{horizon_months}m"
    calls = series.assign(cheap=(series["deviation_log"] > 0).astype("float64"), **{h: target[h]},
                          small_won=target[f"{h}_up"])
    return calls.dropna(subset=["deviation_log", h])


def _month_end(when: str | pd.Timestamp | None) -> pd.Timestamp | None:
    return None if when is None else pd.Timestamp(when) + pd.offsets.MonthEnd(0)


@dataclass(frozen=True)
class ValuationRecord:
    """How the reading's past calls turned out (origins ``first``..``last``, overlapping ``horizon``-month windows).

    ``base_rate`` is the share of all origins where small caps outperformed; ``hit_rate_cheap`` the share among
    origins where the reading said "cheaper than usual", ``hit_rate_dear`` among the others. ``se_gap`` is the
    standard error of ``hit_rate_cheap - hit_rate_dear`` counting ``n / horizon`` independent windows (monthly
    origins with quarterly outcomes overlap), a rough guide, not a test.
    """

    first: pd.Timestamp
    last: pd.Timestamp
    horizon_months: int
    window_months: int
    n: int
    base_rate: float
    n_cheap: int
    hit_rate_cheap: float
    n_dear: int
    hit_rate_dear: float
    se_gap: float
    mean_relative_cheap: float
    mean_relative_dear: float

    def sentence(self) -> str:
        head = (f"{self.first:%Y-%m}..{self.last:%Y-%m}: when small caps were cheaper than their "
                f"{_window_words(self.window_months)} average ({self.n_cheap} of {self.n} months)")
        if not self.n_cheap:
            return f"{head}: never, so no record yet (base rate {100 * self.base_rate:.0f} %)"
        gap = 100 * (self.hit_rate_cheap - self.hit_rate_dear)
        tail = (f"{100 * self.hit_rate_dear:.0f} % otherwise; gap {gap:+.0f} +/- {100 * self.se_gap:.0f} pp"
                if self.n_dear else "never dearer in this stretch")
        return (f"{head}, they outperformed over the next {self.horizon_months} months "
                f"{100 * self.hit_rate_cheap:.0f} % of the time, against a base rate of {100 * self.base_rate:.0f} % "
                f"({tail})")

    def as_dict(self) -> dict[str, object]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["first"], out["last"] = self.first.date().isoformat(), self.last.date().isoformat()
        return out | {"sentence": self.sentence()}


def valuation_record(panel: pd.DataFrame, *, start: str | pd.Timestamp | None = None,
                     end: str | pd.Timestamp | None = None, window_months: int = WINDOW_MONTHS,
                     horizon_months: int = HORIZON_MONTHS) -> ValuationRecord:
    """The reading's out-of-sample record over origins ``start``..``end`` (default: all with an outcome).

    Every call uses only data published by its origin (trailing window, no fitted parameter); the outcome is the
    realised next-``horizon_months`` relative return. Raises NoDataError when no origin qualifies.
    """
    calls = valuation_calls(panel, window_months=window_months, horizon_months=horizon_months)
    # months given as "2004-12" mean the whole month: origins are month ends
    calls = calls.loc[_month_end(start):_month_end(end)]
    if calls.empty:
        raise NoDataError("no origin with both a valuation reading and a realised outcome in the chosen range")
    cheap = calls["cheap"] == 1.0
    won, rel = calls["small_won"], calls[f"relative_{horizon_months}m"]

    def rate(mask: pd.Series) -> float:
        return float(won[mask].mean()) if mask.any() else math.nan

    p1, p0 = rate(cheap), rate(~cheap)
    n1, n0 = int(cheap.sum()), int((~cheap).sum())
    variance = sum(p * (1 - p) / (n / horizon_months) for p, n in ((p1, n1), (p0, n0)) if n)
    return ValuationRecord(
        first=pd.Timestamp(calls.index[0]), last=pd.Timestamp(calls.index[-1]), horizon_months=horizon_months,
        window_months=window_months, n=len(calls), base_rate=float(won.mean()), n_cheap=n1, hit_rate_cheap=p1,
        n_dear=n0, hit_rate_dear=p0, se_gap=float(np.sqrt(variance)) if n1 and n0 else math.nan,
        mean_relative_cheap=float(rel[cheap].mean()) if n1 else math.nan,
        mean_relative_dear=float(rel[~cheap].mean()) if n0 else math.nan,
    )


def valuation_lines(panel: pd.DataFrame, as_of: pd.Timestamp, *, start: str | pd.Timestamp | None = None,
                    horizon_months: int = HORIZON_MONTHS) -> tuple[str, str]:
    """The reading at ``as_of`` and its record over origins ``start``.. whose outcome was realised by ``as_of``, as
    two sentences for a forecast card; ``("", "")`` without book-to-market data (e.g. the offline sample)."""
    try:
        reading = valuation_reading(panel, as_of).sentence()
    except NoDataError:
        return "", ""
    try:
        end = pd.Timestamp(as_of) - pd.offsets.MonthEnd(horizon_months)
        record = valuation_record(panel, start=start, end=end, horizon_months=horizon_months).sentence()
    except NoDataError:
        record = ""
    return reading, record
