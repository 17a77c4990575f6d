"""Paired comparison of two models' out-of-sample probabilities on the same origins: the champion gate's evidence.

A challenger replaces the champion only when its per-origin Brier loss is lower by more than noise explains.
Consecutive monthly origins forecast overlapping h-month targets, so the loss differentials are autocorrelated up to
lag h - 1: the Diebold-Mariano statistic uses a Newey-West (Bartlett, h - 1 lags) standard error, and the p-value
is one-sided (H1: the challenger's expected loss is lower). The gate also asks that the challenger's AUC is not worse.

    >>> import pandas as pd
    >>> idx = pd.date_range("2000-01-31", periods=6, freq="ME")
    >>> champ = pd.DataFrame({"y_up": [1, 0, 1, 0, 1, 0], "p": [0.5] * 6}, index=idx)
    >>> chal = champ.assign(p=[0.9, 0.1, 0.9, 0.1, 0.9, 0.1])
    >>> c = compare_forecasts(champ, chal, horizon=1, level=0.10)
    >>> (c.n, round(c.champion_brier, 2), round(c.challenger_brier, 2))
    (6, 0.25, 0.01)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from scipy.stats import norm

from ..names import col
from .metrics import auc, newey_west_se

#: Columns of a gate forecast frame (indexed by origin): the realised 0/1 label and the probability.
FORECAST_COLUMNS = ("y_up", "p")


@dataclass(frozen=True)
class ForecastComparison:
    """Challenger vs champion on their common realised out-of-sample origins.

    Attributes
    ----------
    n : common origins with a realised label (monthly, overlapping by h - 1).
    first, last : first and last common origin (ISO dates; "" when none).
    champion_brier, challenger_brier : mean Brier loss on those origins (lower is better).
    champion_auc, challenger_auc : AUC on those origins.
    statistic : Diebold-Mariano statistic of the loss differential champion - challenger (> 0: challenger better).
    p_value : one-sided p-value of ``statistic`` (standard normal).
    lags : Newey-West lags (h - 1).
    level : the gate's significance level (``[registry] gate_p_value``).
    """

    n: int
    first: str
    last: str
    champion_brier: float
    challenger_brier: float
    champion_auc: float
    challenger_auc: float
    statistic: float
    p_value: float
    lags: int
    level: float

    @property
    def significant(self) -> bool:
        """The challenger's Brier loss is lower beyond noise: p below the level."""
        return not math.isnan(self.p_value) and self.p_value < self.level

    @property
    def auc_not_worse(self) -> bool:
        return not (self.challenger_auc < self.champion_auc - 1e-12)

    @property
    def passes(self) -> bool:
        """Lower Brier loss at the gate's level, and AUC not worse."""
        return self.significant and self.auc_not_worse

    def summary(self) -> str:
        """One line: both scores, the statistic and its p-value."""
        return (f"Brier {self.challenger_brier:.4f} vs champion {self.champion_brier:.4f}, "
                f"AUC {self.challenger_auc:.3f} vs {self.champion_auc:.3f} on {self.n} common origins "
                f"{self.first}..{self.last}; Diebold-Mariano (Newey-West, {self.lags} lags) "
                f"{self.statistic:+.2f}, one-sided p {self.p_value:.3f} (level {self.level:g})")

    def why_not(self) -> str:
        """Why the challenger fails the test ("" when it passes)."""
        reasons = []
        if not self.significant:
            reasons.append(f"its lower loss is not significant (p {self.p_value:.3f} >= {self.level:g})"
                           if self.statistic > 0 else "its Brier loss is not lower")
        if not self.auc_not_worse:
            reasons.append(f"its AUC is worse ({self.challenger_auc:.3f} vs {self.champion_auc:.3f})")
        return " and ".join(reasons)

    def tags(self) -> dict[str, str]:
        """Model-version tags (``gate_*``) with every number of the comparison."""
        return {"gate_test": "diebold-mariano-newey-west", "gate_n": str(self.n),
                "gate_origins": f"{self.first}..{self.last}", "gate_statistic": f"{self.statistic:.4f}",
                "gate_p_value": f"{self.p_value:.4f}", "gate_level": f"{self.level:g}",
                "gate_brier": f"{self.challenger_brier:.6f}", "gate_champion_brier": f"{self.champion_brier:.6f}",
                "gate_auc": f"{self.challenger_auc:.4f}", "gate_champion_auc": f"{self.champion_auc:.4f}"}


def gate_forecasts(predictions: pd.DataFrame, target: str, model: str) -> pd.DataFrame:
    """The out-of-sample probabilities of ``model`` for ``target`` a gate compares, indexed by origin.

    ``predictions`` is a backtest's prediction frame (``oos`` flag, ``<target>.up``, ``<target>.<model>.p``);
    origins whose target is not realised yet are left out.
    """
    oos = predictions[predictions["oos"].astype(bool)]
    frame = pd.DataFrame({"y_up": oos[col(target, "up")], "p": oos[col(target, model, "p")]}).dropna()
    frame.index.name = "origin"
    return frame


def compare_forecasts(champion: pd.DataFrame, challenger: pd.DataFrame, horizon: int,
                      level: float) -> ForecastComparison:
    """Diebold-Mariano comparison of two models' Brier losses on their common origins.

    Parameters
    ----------
    champion, challenger : frames indexed by origin with :data:`FORECAST_COLUMNS` (:func:`gate_forecasts`).
    horizon : target horizon h in months (Newey-West lags h - 1).
    level : one-sided significance level the challenger must beat.

    Both models are scored against the challenger's realised labels: they come from the newer data, and Ken French
    revises history between vintages, so a champion trained months ago may hold a label that has since flipped.
    """
    both = champion[list(FORECAST_COLUMNS)].join(challenger[list(FORECAST_COLUMNS)], how="inner",
                                                 lsuffix="_champion", rsuffix="_challenger").dropna().sort_index()
    y = both["y_up_challenger"].astype("float64")
    loss_champ = (both["p_champion"] - y) ** 2
    loss_chal = (both["p_challenger"] - y) ** 2
    n, lags = len(both), max(int(horizon) - 1, 0)
    nan = float("nan")
    if n <= max(lags, 1):
        return ForecastComparison(n, "", "", nan, nan, nan, nan, nan, nan, lags, level)
    diff = (loss_champ - loss_chal).to_numpy()
    se = newey_west_se(diff, lags)
    mean = float(diff.mean())
    stat = mean / se if se > 0 else (0.0 if mean == 0 else math.copysign(math.inf, mean))
    return ForecastComparison(
        n=n, first=str(both.index[0].date()), last=str(both.index[-1].date()),
        champion_brier=float(loss_champ.mean()), challenger_brier=float(loss_chal.mean()),
        champion_auc=auc(y, both["p_champion"]), challenger_auc=auc(y, both["p_challenger"]),
        statistic=float(stat), p_value=float(norm.sf(stat)), lags=lags, level=float(level))
