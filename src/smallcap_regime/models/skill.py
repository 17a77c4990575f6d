"""The out-of-sample record a forecast carries: how calls like it fared in the walk-forward backtest.

A probability means little without its track record. Each target of the deployed model keeps the record of its
calibrated LightGBM forecasts over the backtest's reported out-of-sample origins: hit rate next to the base rate,
AUC, Brier skill, and how often calls of each kind (probability above or below the base rate known at the time)
were right. A target has **no demonstrated skill** unless a proper-score test says otherwise: the lower end of the
80 % block-bootstrap interval of its out-of-sample Brier skill (blocks of h origins, since consecutive targets
overlap) must be above 0: a one-sided test at :data:`SKILL_TEST_LEVEL`, the level of the champion gate.
Without it the probability shown is the historical base rate and no drivers are shown.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from ..names import output_column

#: Per target ``<target>_<name>`` output columns: the base rate a probability is read against and the record.
SKILL_COLUMNS = ("base_rate", "has_skill", "hit_rate", "auc", "brier_skill", "calls_right", "calls_made",
                 "calls_right_all", "calls_made_all", "interval_coverage")

#: One-sided level of the skill test: the lower bound of the (1 - 2 level) bootstrap interval must exceed 0.
SKILL_TEST_LEVEL = 0.10
#: Old records' rule (no interval stored): Platt slopes below this leave the probability at the base rate.
FLAT_SLOPE = 0.05
NO_SKILL = "no demonstrated skill: this is the historical base rate"


#: How the one accuracy figure of a target is named wherever it is shown (card, report, history, MLflow metrics
#: ``<target>.lgbm_cal.calls_right`` / ``calls_made`` / ``calls_accuracy``): each out-of-sample call (P above the
#: base rate known at the origin = up, else down) against the realised sign. The share of ``P > 0.5`` matching the
#: sign is a different quantity, always labelled "P>0.5 hit rate".
ACCURACY_LABEL = "calls against the base rate"
HIT_LABEL = "P>0.5 hit rate"


def accuracy_text(right: int, made: int) -> str:
    """``calls against the base rate: right 107 of 178 (60 %)``."""
    share = f" ({right / made * 100:.0f} %)" if made else ""
    return f"{ACCURACY_LABEL}: right {right} of {made}{share}"


def demonstrated_skill(brier_skill: float, platt_a: float, brier_skill_lo: float = math.nan) -> bool:
    """The rule :attr:`SkillRecord.has_skill` and the backtest's regime strip share: the lower end of the Brier
    skill's block-bootstrap interval (one-sided test at :data:`SKILL_TEST_LEVEL`) above 0; without an interval
    (records stored before it existed), positive Brier skill and a slope that does not flatten the probability."""
    if not math.isnan(brier_skill_lo):
        return brier_skill_lo > 0
    return not math.isnan(brier_skill) and brier_skill > 0 and abs(platt_a) >= FLAT_SLOPE


@dataclass(frozen=True)
class SkillRecord:
    """Out-of-sample record of one target's calibrated forecasts (probabilities in [0, 1], counts of origins).

    Attributes
    ----------
    oos_first, oos_last : first and last reported out-of-sample origin with a realised target (ISO dates).
    n : origins with a realised target (monthly, so consecutive ones overlap by h - 1 months).
    base_rate : share of those origins whose target was > 0.
    hit_rate : share where ``P > 0.5`` matched the realised sign (the "P>0.5 hit rate", not the accuracy figure:
        that is :attr:`calls_right` of :attr:`calls_made`).
    hit_rate_ref : the same for always calling the expanding base rate's majority class.
    auc : AUC of the calibrated probability.
    brier_skill : Brier skill against the expanding base rate (> 0: better than history).
    up_calls, up_right : origins where P was above the base rate known then, and how many were followed by > 0.
    down_calls, down_right : origins where P was at or below it, and how many were followed by <= 0.
    shrink_weight : final weight of the model's point forecast against the historical mean (0: the mean only).
    platt_a : final Platt slope on the classifier's log-odds (~0: the base rate whatever the model says).
    interval_coverage : nominal coverage of the conformal interval (0.8 = 80 %).
    brier_skill_lo, brier_skill_hi : 80 % (1 - 2 :data:`SKILL_TEST_LEVEL`) circular-block-bootstrap interval of
        ``brier_skill`` (blocks of h origins); NaN in records stored before the interval existed.
    """

    oos_first: str
    oos_last: str
    n: int
    base_rate: float
    hit_rate: float
    hit_rate_ref: float
    auc: float
    brier_skill: float
    up_calls: int
    up_right: int
    down_calls: int
    down_right: int
    shrink_weight: float
    platt_a: float
    interval_coverage: float
    brier_skill_lo: float = float("nan")
    brier_skill_hi: float = float("nan")

    @property
    def has_skill(self) -> bool:
        """True when the Brier skill's bootstrap interval lies above 0: better than the base rate beyond noise
        (:func:`demonstrated_skill`; records stored before the interval existed keep the old rule)."""
        return demonstrated_skill(self.brier_skill, self.platt_a, self.brier_skill_lo)

    @property
    def calls_right(self) -> int:
        """Realised out-of-sample calls (P above / at-or-below the base rate known then) that were right."""
        return self.up_right + self.down_right

    @property
    def calls_made(self) -> int:
        """Realised out-of-sample calls (= ``n``)."""
        return self.up_calls + self.down_calls

    def accuracy_text(self) -> str:
        """The one accuracy figure of a target, worded as everywhere it is shown (:func:`accuracy_text`)."""
        return accuracy_text(self.calls_right, self.calls_made)

    def calls_like(self, above_base_rate: bool) -> tuple[int, int]:
        """``(right, made)`` for past calls of the same kind as a call above (or at/below) the base rate."""
        return (self.up_right, self.up_calls) if above_base_rate else (self.down_right, self.down_calls)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SkillRecord:
        return cls(**raw)


def record_columns(target: str, p: np.ndarray, base_rate: float, record: SkillRecord | None) -> dict[str, Any]:
    """The ``<target>_<SKILL_COLUMNS>`` of forecasts ``p`` (shape (n,)): base rate, and the record of past calls of
    the kind each one makes (above or at/below ``base_rate``); NaN record fields without a record."""
    out: dict[str, Any] = {output_column(target, "base_rate"): base_rate}
    if record is None:
        return out | {output_column(target, name): np.nan for name in SKILL_COLUMNS[1:]}
    above = np.asarray(p, dtype="float64") > base_rate
    return out | {
        output_column(target, "has_skill"): record.has_skill, output_column(target, "hit_rate"): record.hit_rate,
        output_column(target, "auc"): record.auc, output_column(target, "brier_skill"): record.brier_skill,
        output_column(target, "calls_right"): np.where(above, record.up_right, record.down_right),
        output_column(target, "calls_made"): np.where(above, record.up_calls, record.down_calls),
        output_column(target, "calls_right_all"): record.calls_right,
        output_column(target, "calls_made_all"): record.calls_made,
        output_column(target, "interval_coverage"): record.interval_coverage}
