"""Timing strategies on non-overlapping origins and their performance (``docs/evaluation.md``, strategies).

Returns are decimals per holding period of ``h`` months; costs are charged in basis points per unit of position
change. Only non-overlapping origins are traded (one decision per ``h`` months), so positions never overlap.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from .metrics import (
    _as_float,
    _check_horizon,
    _check_prob,
    _check_sorted,
    _no_nan,
    _non_empty,
    _nonoverlap_mask,
    _paired,
    _same_index,
)

__all__ = ["absolute_strategy_returns", "performance", "relative_strategy_returns"]



def _costs(position: np.ndarray, cost_bp: float) -> np.ndarray:
    change = np.abs(np.diff(position, prepend=0.0))
    return cost_bp / 1e4 * change


def _check_cost(cost_bp: float) -> float:
    cost = float(cost_bp)
    if not np.isfinite(cost) or cost < 0:
        raise ValueError(f"cost_bp must be a finite number >= 0, got {cost_bp!r}")
    return cost


def relative_strategy_returns(
    relative_target: pd.Series,
    p_up: pd.Series,
    horizon: int,
    cost_bp: float,
    short_side: Literal["reverse", "flat"] = "reverse",
) -> pd.DataFrame:
    """Long small / short large for ``h`` months when ``P(outperform) > 0.5``, else reverse (or flat).

    Uses non-overlapping origins: rows where both inputs are known, every ``h``-th row counted back from
    the last such row (one trade per quarter for ``h=3``). Position starts flat, so the first trade pays
    costs; a flip from +1 to -1 is a change of 2 and pays twice ``cost_bp``; exiting after the last
    period is not charged. The long/short position is self-financing, so ``net`` is already an
    excess return.

    Parameters
    ----------
    relative_target : pd.Series, shape (n,)
        ``relative_hm`` per monthly origin (decimal), NaN where unknown.
    p_up : pd.Series, shape (n,)
        ``P(relative_hm > 0)`` per origin, NaN where there is no forecast.
    horizon : int
        Holding period ``h`` in months.
    cost_bp : float
        Cost in basis points of the long-short notional per unit of ``|position change|``.
    short_side : {"reverse", "flat"}
        Position when ``p_up <= 0.5``: -1 (short small / long large) or 0.

    Returns
    -------
    pd.DataFrame, shape (n_periods, 4)
        Indexed by origin; columns ``position`` (+1/-1/0), ``gross`` (position * target), ``cost``,
        ``net`` (gross - cost), all decimal per ``h``-month period.
    """
    horizon = _check_horizon(horizon)
    cost = _check_cost(cost_bp)
    if short_side not in ("reverse", "flat"):
        raise ValueError(f"short_side must be 'reverse' or 'flat', got {short_side!r}")
    target, prob = _paired(relative_target, "relative_target", {"p_up": p_up}, allow_nan=True)
    _check_sorted(target, "relative_target")
    _check_prob(prob, "p_up")
    keep = _nonoverlap_mask((target.notna() & prob.notna()).to_numpy(), horizon)
    target, prob = target[keep], prob[keep]
    position = np.where(prob.to_numpy() > 0.5, 1.0, -1.0 if short_side == "reverse" else 0.0)
    gross = position * target.to_numpy()
    costs = _costs(position, cost)
    return pd.DataFrame(
        {"position": position, "gross": gross, "cost": costs, "net": gross - costs}, index=target.index
    )


def absolute_strategy_returns(
    absolute_target: pd.Series,
    p_up: pd.Series,
    tbill_h: pd.Series,
    horizon: int,
    cost_bp: float,
) -> pd.DataFrame:
    """Hold small caps for ``h`` months when ``P(absolute_hm > 0) > 0.5``, else T-bills.

    Non-overlapping origins as in :func:`relative_strategy_returns` (rows where all three inputs are
    known). The initial state is T-bills (position 0), so the first switch into small caps pays costs.
    To trade on "forecast > T-bill return" instead, pass ``(forecast > tbill_h).astype(float)`` as ``p_up``.

    Parameters
    ----------
    absolute_target : pd.Series, shape (n,)
        ``absolute_hm`` per origin (decimal), NaN where unknown.
    p_up : pd.Series, shape (n,)
        Probability in [0, 1], NaN where there is no forecast.
    tbill_h : pd.Series, shape (n,)
        Compounded T-bill return over the same months ``t+1 .. t+h`` (decimal).
    horizon : int
    cost_bp : float
        Cost in basis points per unit of ``|position change|``.

    Returns
    -------
    pd.DataFrame, shape (n_periods, 5)
        Columns ``position`` (1 small caps / 0 T-bills), ``gross``, ``cost``, ``net`` (= gross - cost)
        and ``excess`` (= net - tbill_h), decimal per period.
    """
    horizon = _check_horizon(horizon)
    cost = _check_cost(cost_bp)
    target, prob, tbill = _paired(
        absolute_target, "absolute_target", {"p_up": p_up, "tbill_h": tbill_h}, allow_nan=True
    )
    _check_sorted(target, "absolute_target")
    _check_prob(prob, "p_up")
    keep = _nonoverlap_mask((target.notna() & prob.notna() & tbill.notna()).to_numpy(), horizon)
    target, prob, tbill = target[keep], prob[keep], tbill[keep]
    position = np.where(prob.to_numpy() > 0.5, 1.0, 0.0)
    gross = position * target.to_numpy() + (1.0 - position) * tbill.to_numpy()
    costs = _costs(position, cost)
    net = gross - costs
    return pd.DataFrame(
        {"position": position, "gross": gross, "cost": costs, "net": net, "excess": net - tbill.to_numpy()},
        index=target.index,
    )


def performance(
    returns: pd.Series, periods_per_year: float, position: pd.Series | None = None
) -> dict[str, float]:
    """Summary statistics of a per-period return series.

    Parameters
    ----------
    returns : pd.Series, shape (n,)
        Simple decimal returns per holding period, no NaN. The Sharpe ratio is computed on these as
        given, so pass excess returns (``net`` of the relative strategy, ``excess`` of the absolute one).
    periods_per_year : float
        4 for quarterly (non-overlapping ``h=3``) periods, 12 for monthly.
    position : pd.Series, shape (n,), optional
        Positions held in each period (same index); enables ``turnover``.

    Returns
    -------
    dict
        ``annual_return``: ``prod(1 + r) ** (ppy / n) - 1`` (-1.0 if wealth is wiped out);
        ``volatility``: ``std(r, ddof=1) * sqrt(ppy)``;
        ``sharpe``: ``mean(r) / std(r, ddof=1) * sqrt(ppy)`` (NaN if ``n < 2`` or zero volatility);
        ``max_drawdown``: ``min(W_k / max(1, W_1..W_k) - 1)`` with ``W_k = prod_{i<=k}(1 + r_i)``, so the
        initial wealth 1.0 counts as a peak (``<= 0``);
        ``turnover``: ``mean |position_k - position_{k-1}|`` with ``position_0 = 0`` (start flat; NaN
        without ``position``);
        ``n_periods``: ``n``.
    """
    ppy = float(periods_per_year)
    if not np.isfinite(ppy) or ppy <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year!r}")
    r = _as_float(returns, "returns")
    _no_nan(r, "returns")
    _non_empty(r, "returns")
    values = r.to_numpy()
    n = values.size
    wealth = np.cumprod(1.0 + values)
    final = wealth[-1]
    annual = float(final ** (ppy / n) - 1.0) if final > 0 else -1.0
    peak = np.maximum.accumulate(np.concatenate(([1.0], wealth)))[1:]
    max_dd = float(np.min(wealth / peak - 1.0))
    sd = float(np.std(values, ddof=1)) if n > 1 else float("nan")
    sharpe = float(values.mean() / sd * np.sqrt(ppy)) if n > 1 and sd > 0 else float("nan")
    turnover = float("nan")
    if position is not None:
        pos = _as_float(position, "position")
        _same_index(r, pos, "returns", "position")
        _no_nan(pos, "position")
        turnover = float(np.abs(np.diff(pos.to_numpy(), prepend=0.0)).mean())
    return {
        "annual_return": annual,
        "volatility": sd * float(np.sqrt(ppy)),
        "sharpe": sharpe,
        "max_drawdown": max_dd,
        "turnover": turnover,
        "n_periods": float(n),
    }
