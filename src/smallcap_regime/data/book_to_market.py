"""Aggregate book-to-market of the size quintiles, from Ken French's 25 size x book-to-market portfolios.

Fama and French form the portfolios at the end of June t with book equity of fiscal year t-1 (public by then:
a 10-K is due within 90 days of the fiscal year end, and they take the fiscal year ending in calendar year
t-1) over market equity at the end of June t. The file gives, for each portfolio, the value-weighted average
``BE_FYt-1/ME_June t``; its row for July t is the formation value (weights of end-June market caps, like the
July return). Between formations the book equity is fixed and only prices move, so

    BM_j(m) = BM_j(July t) / G_j(m),    G_j(m) = prod_{k = July t .. m} (1 + r_j(k))

for each portfolio j, and the aggregate book-to-market of size quintile q (sum of book over sum of market
equity, i.e. the market-cap weighted mean of its five BE/ME buckets) is

    BM_q(m) = sum_j ME_j(June t) BM_j(July t) / sum_j ME_j(June t) G_j(m),

with ME_j(June t) = number of firms x average market cap in the row of July t (the file's average market cap
is that of the end of the previous month). Everything in the value for month m is known at the end of m.

Approximations: ``r_j`` are total returns, so dividends count as price gains (about 1-3 % a year, reset every
July); firms that delist keep their book equity in the sum until the next formation. Both are small against the
spread's moves (tenths of a log point).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .french import portfolio_field

QUINTILE_COLUMNS = {q: f"btm_size_q{q}" for q in range(1, 6)}
FORMATION_MONTH = 7  # the first month of formation year t is July t


def formation_year(index: pd.DatetimeIndex) -> np.ndarray:
    """Formation year of the portfolios held in each month: t for July t .. June t+1."""
    return np.asarray(index.year - (index.month < FORMATION_MONTH))


def formation_book_to_market(frame: pd.DataFrame) -> pd.DataFrame:
    """The value-weighted BE/ME of each of the 25 portfolios at formation, one row per formation year.

    Parameters
    ----------
    frame : the output of :func:`~smallcap_regime.data.french.parse_portfolios_25`.

    Returns
    -------
    DataFrame indexed by formation year (int, named ``formation_year``), columns ``ME1 BM1`` .. ``ME5 BM5``:
    the July rows of the ``beme`` section (a year whose July is not in the frame is absent).
    """
    beme = portfolio_field(frame, "beme")
    july = beme[beme.index.month == FORMATION_MONTH]
    return july.set_axis(pd.Index(july.index.year, name="formation_year"), axis=0)


def size_quintile_book_to_market(frame: pd.DataFrame) -> pd.DataFrame:
    """Monthly aggregate book-to-market of each size quintile, price-updated since the June formation.

    Parameters
    ----------
    frame : the output of :func:`~smallcap_regime.data.french.parse_portfolios_25` (month-end index).

    Returns
    -------
    DataFrame on the frame's index with columns ``btm_size_q1`` (smallest) .. ``btm_size_q5`` (largest), ratios
    (module docstring). NaN for months before the first July in the frame, and for the rest of a formation year
    once any of the quintile's five portfolios lacks its formation values or a return.
    """
    ret, firms, size = (portfolio_field(frame, name) for name in ("ret", "firms", "size"))
    beme = portfolio_field(frame, "beme")
    year = formation_year(frame.index)
    july = frame.index.month == FORMATION_MONTH

    def at_formation(values: pd.DataFrame) -> np.ndarray:
        """Each month's value of the July row of its formation year (NaN if that July is absent)."""
        rows = values[july].set_axis(frame.index.year[july], axis=0)
        return rows.reindex(year).to_numpy()

    # gross return since formation; a missing month makes the rest of the formation year unknown, not zero
    log_gross = np.log1p(ret)
    cumulative = log_gross.groupby(year).cumsum()
    broken = log_gross.isna().groupby(year).cummax()
    gross = np.exp(cumulative.where(~broken)).to_numpy()
    started = pd.Series(july, index=frame.index).groupby(year).cummax().to_numpy()[:, None]
    gross = np.where(started, gross, np.nan)

    me0 = at_formation(firms * size)  # market cap at the end of June t, $ millions
    book = me0 * at_formation(beme)  # book equity, $ millions
    market = me0 * gross  # market cap now, by price moves since formation
    out = {}
    for q, name in QUINTILE_COLUMNS.items():
        cols = slice(5 * (q - 1), 5 * q)
        out[name] = _ratio_of_sums(book[:, cols], market[:, cols])
    return pd.DataFrame(out, index=frame.index, dtype="float64")


def _ratio_of_sums(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Row sums' ratio, NaN when any cell of the row is missing (a missing bucket would change the quintile)."""
    complete = np.isfinite(numerator).all(axis=1) & np.isfinite(denominator).all(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = numerator.sum(axis=1) / denominator.sum(axis=1)
    return np.where(complete, ratio, np.nan)
