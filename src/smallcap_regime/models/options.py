"""Model options: the ``[options]`` table of an experiment, declared once here.

Every option is read by :class:`~smallcap_regime.models.estimator.TargetEstimator`, the one ``fit`` behind the
backtest folds, the tuning inner folds and the final (registered) model, so an option measured by the backtest is
the option that ships. The defaults reproduce the model as it was before options existed, except the
calibration map: anchored with a slope floor of 0.5 since issue 20 (the unconstrained Platt map could reverse a
ranking; the monotone one without a floor flattened forecasts to a drifting base rate).

Adding an option: declare the field here (with its validator), read it in ``TargetEstimator.fit`` (or in the
post-processing, for options that act after the fit), and add a case to ``tests/test_options.py``, which checks that
the final model trained on the last backtest fold's rows forecasts what that fold's model forecast.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from ..configs import Section
from ..features.families import FAMILIES


class ModelOptions(Section):
    """``[options]``: how both targets' LightGBM models are fitted and calibrated (all off by default but the
    anchored calibration map).

    Attributes
    ----------
    drop_families : feature families the models (LightGBM and the linear baselines) leave out.
    monotone : feature -> +1 (the forecast may only rise with it) or -1; LightGBM monotone constraints for both
        targets. Features the feature set lacks are skipped.
    valuation : switch on the held ``valuation`` feature family (the small-minus-big book-to-market spread, Ken
        French 25 portfolios; :meth:`~smallcap_regime.features.build.FeatureSpec.with_families`) as model input,
        for every fit and for the served model's plausible ranges. Live data only (the offline sample has no
        book-to-market).
    train_start : first origin (``YYYY-MM``) of the rows the models are trained and evaluated on; None (default):
        the first month the data allow (1926-07 on the live files, 1949-01 on the offline sample). Features are
        computed on the whole panel first (rolling windows warm up on earlier months); rows before the start are
        then left out for every model, baselines included.
    calibration : the probability map fitted on earlier out-of-sample pairs (post-processing,
        :func:`~smallcap_regime.models.calibration.fit_calibration`): ``anchored`` (default since issue 20's second
        round), the base rate known at the fit plus the model's log-odds deviation from its out-of-sample mean times
        the pairs' Platt slope floored at ``min_slope`` - it never reverses two forecasts' order and never flattens a
        forecast to the base rate; ``monotone``, Platt scaling with its slope bounded at >= ``min_slope`` and its
        intercept fitted on the pairs (the default of issue 20's first round, with ``min_slope = 0``); ``platt``, the
        unconstrained fit used before (a negative slope turns a right-way ranking into a wrong-way one).
    min_slope : with ``anchored`` or ``monotone``, the lowest slope allowed (0 to 1; default 0.5): the map keeps at
        least that share of the raw log-odds spread (whether the model has skill is the skill test's call).
    smooth_k : > 1: each forecast (probability, point forecast, interval and drivers) is the mean of the model's
        calibrated forecasts for the latest ``smooth_k`` monthly origins, all made by the same fitted model from
        features known at the time (in the backtest, a fold's model also forecasts the ``smooth_k - 1`` months
        before its test block; the served model averages each request row with the rows before it, so a request
        carries the ``smooth_k - 1`` preceding months, oldest first; ``regime predict`` sends them). 1 (default): off.
    recentre_months : > 0: after the fit, move the Platt intercept so the mean calibrated probability of the
        latest ``recentre_months`` out-of-sample pairs equals their realised base rate (a trailing base rate
        instead of the expanding one); 0 (default): off.
    """

    drop_families: list[str] = []
    monotone: dict[str, Literal[-1, 1]] = {}
    valuation: bool = False
    train_start: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")
    calibration: Literal["anchored", "monotone", "platt"] = "anchored"
    min_slope: float = Field(default=0.5, ge=0.0, le=1.0)
    recentre_months: int = Field(default=0, ge=0, le=600)
    smooth_k: int = Field(default=1, ge=1, le=12)

    @field_validator("drop_families")
    @classmethod
    def _known_families(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in FAMILIES]
        if unknown:
            raise ValueError(f"unknown feature family {unknown[0]!r}; expected some of: {', '.join(FAMILIES)}")
        if len(set(value)) != len(value):
            raise ValueError(f"lists a family twice: {value!r}")
        return value

    @property
    def active(self) -> bool:
        """Whether any option differs from its default."""
        return self != ModelOptions()
