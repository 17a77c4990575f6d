"""The ``[research]`` table of an experiment: model variants, every one off unless switched on.

Each key is one variant measured by ``benchmarks/research.py``; the defaults reproduce the baseline backtest
exactly. A variant becomes a default only by the adoption rule in the README.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ..configs import Section
from ..features.families import FAMILIES


class ResearchSection(Section):
    """``[research]``: model variants (all off by default).

    Attributes
    ----------
    combination : add ``rsz`` (Rapach-Strauss-Zhou mean of one-variable regressions / logistic fits, one per
        feature) and ``combo`` (equal-weight mean of ``lgbm``, ``linear`` and ``rsz``; ``combo_cal`` averages
        their calibrated forecasts) to both targets.
    pooled : stack the other size spreads of the same portfolio file as extra training rows (live: terciles,
        quintiles, deciles of ``Portfolios_Formed_on_ME``; offline sample: its size quintiles 1, 3, 5).
    drop_families : feature families left out of every fitted model (ablation).
    stable_subset : inside each fold, keep only the features whose univariate slope on the target has the same
        sign in every decade of the training window with at least ``stable_min_months`` rows.
    stable_min_months : rows a training decade needs to vote in ``stable_subset``.
    monotone : feature -> +1 (forecast rises with it) or -1, LightGBM monotone constraints for both targets;
        features the feature set lacks are skipped.
    categorical : LightGBM treats the category codes of the feature set (month, presidential-cycle year) as
        categories instead of ordered numbers.
    absolute_vol_scaled : the absolute target's regressors learn ``y / sigma`` (sigma = the small leg's trailing
        volatility over the horizon) and forecast ``sigma * prediction``.
    absolute_stress : add ``stress`` to the absolute target: the base rate and mean return in the current
        stress regime (credit spread or VIX above its training-window ``stress_quantile``), shrunk toward the
        unconditional ones.
    stress_quantile : training-window quantile above which an indicator signals stress.
    """

    combination: bool = False
    pooled: bool = False
    drop_families: list[str] = []
    stable_subset: bool = False
    stable_min_months: int = Field(36, ge=12)
    monotone: dict[str, Literal[-1, 1]] = {}
    categorical: bool = False
    absolute_vol_scaled: bool = False
    absolute_stress: bool = False
    stress_quantile: float = Field(0.75, gt=0, lt=1)

    @field_validator("drop_families")
    @classmethod
    def _known_families(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown feature family {unknown[0]!r}; expected some of: {', '.join(FAMILIES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"lists a family twice: {value!r}")
        return value
