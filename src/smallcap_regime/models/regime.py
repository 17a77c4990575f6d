"""Regime labels from the calibrated probabilities of the targets that have demonstrated skill.

Relative strength is not absolute return: small caps can beat large caps while both fall. With both targets
skilled, the four regimes are the quadrants of P(small outperforms) x P(small-cap return > 0), each probability read
against its historical base rate: small caps rise in about two quarters of three, so P(rise) = 0.57 is a
below-normal chance of a rise, not a rally. A target without demonstrated skill says only its base rate, so it
cannot veto a call: with only the relative target skilled the regime is small- or large-cap leadership (the
absolute side is the base rate), with only the absolute target skilled it is small caps rising or falling. The
card, the report's regime strip and ``regime history`` all use :func:`regime_arrays`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SMALL_LED_RALLY = "small-cap-led rally"
SMALL_FALL_LESS = "small caps fall less than large"
LARGE_LED_RALLY = "large-cap-led rally"
RISK_OFF = "risk-off"
SMALL_LEAD = "small-cap leadership likely"
LARGE_LEAD = "large-cap leadership likely"
SMALL_RISE = "small caps likely to rise"
SMALL_FALL = "small caps likely to fall"
NO_CALL = "no confident call"
REGIMES = (SMALL_LED_RALLY, SMALL_FALL_LESS, LARGE_LED_RALLY, RISK_OFF, SMALL_LEAD, LARGE_LEAD, SMALL_RISE,
           SMALL_FALL, NO_CALL)


def regime_arrays(p_outperform: np.ndarray, p_positive: np.ndarray, no_call_band: float = 0.05,
                  base_outperform: np.ndarray | float = 0.5, base_positive: np.ndarray | float = 0.5,
                  skilled: tuple[bool, bool] = (True, True)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The regime rule on plain arrays (the serving path calls this with no pandas in between).

    Parameters
    ----------
    p_outperform, p_positive : calibrated probabilities, shape (n,), NaN where unknown.
    no_call_band : see :func:`regime_labels`.
    base_outperform, base_positive : base rates the probabilities are read against (scalars or shape (n,)).
    skilled : whether (relative, absolute) have demonstrated skill; only skilled targets take part in the call.

    Returns
    -------
    regime, leaning : object arrays of shape (n,) holding one of :data:`REGIMES` (None where a probability the
        rule reads is NaN; :data:`NO_CALL` everywhere when neither target is skilled).
    confidence : float64 array of shape (n,): the probability of the called side (the product over the skilled
        targets, as if independent); NaN where a probability the rule reads is NaN.
    """
    rel = np.asarray(p_outperform, dtype="float64")
    ab = np.asarray(p_positive, dtype="float64")
    base_rel = np.broadcast_to(np.asarray(base_outperform, dtype="float64"), rel.shape)
    base_abs = np.broadcast_to(np.asarray(base_positive, dtype="float64"), ab.shape)
    up_rel, up_abs = rel > base_rel, ab > base_abs
    unsure_rel, unsure_abs = np.abs(rel - base_rel) < no_call_band, np.abs(ab - base_abs) < no_call_band
    sure_rel, sure_abs = np.maximum(rel, 1 - rel), np.maximum(ab, 1 - ab)
    use_rel, use_abs = skilled
    if use_rel and use_abs:
        leaning = np.select([up_rel & up_abs, up_rel & ~up_abs, ~up_rel & up_abs],
                            [SMALL_LED_RALLY, SMALL_FALL_LESS, LARGE_LED_RALLY], RISK_OFF).astype(object)
        unsure, confidence = unsure_rel | unsure_abs, sure_rel * sure_abs
        missing = np.isnan(rel) | np.isnan(ab)
    elif use_rel:
        leaning = np.where(up_rel, SMALL_LEAD, LARGE_LEAD).astype(object)
        unsure, confidence, missing = unsure_rel, sure_rel, np.isnan(rel)
    elif use_abs:
        leaning = np.where(up_abs, SMALL_RISE, SMALL_FALL).astype(object)
        unsure, confidence, missing = unsure_abs, sure_abs, np.isnan(ab)
    else:  # nothing with a record to call from
        leaning = np.full(rel.shape, NO_CALL, dtype=object)
        unsure, confidence, missing = np.ones(rel.shape, bool), np.full(rel.shape, np.nan), np.zeros(rel.shape, bool)
    regime = np.where(unsure, NO_CALL, leaning).astype(object)
    regime[missing] = None
    leaning[missing] = None
    confidence = np.where(missing, np.nan, confidence)
    return regime, leaning, confidence


def regime_labels(p_outperform: pd.Series, p_positive: pd.Series, no_call_band: float = 0.05,
                  base_outperform: pd.Series | float = 0.5, base_positive: pd.Series | float = 0.5,
                  skilled: tuple[bool, bool] = (True, True)) -> pd.DataFrame:
    """Label each origin with its regime and a confidence.

    Parameters
    ----------
    p_outperform, p_positive : calibrated probabilities, same index.
    no_call_band : when a probability the rule reads is within ``base rate +/- no_call_band`` the call is "no
        confident call" (the ``leaning`` column still says which side it leans to).
    base_outperform, base_positive : the base rates each probability is read against (a number, or a Series on
        the same index holding the rate known at each origin); a probability above its base rate leans "up".
    skilled : whether (relative, absolute) have demonstrated skill (:func:`regime_arrays`).

    Returns
    -------
    DataFrame with ``regime`` (one of :data:`REGIMES`), ``leaning`` (the side regardless of the band) and
    ``confidence`` (:func:`regime_arrays`).
    """
    if not p_outperform.index.equals(p_positive.index):
        raise ValueError("p_outperform and p_positive have different indexes")
    regime, leaning, confidence = regime_arrays(
        p_outperform.to_numpy(dtype="float64"), p_positive.to_numpy(dtype="float64"), no_call_band,
        np.asarray(base_outperform, dtype="float64"), np.asarray(base_positive, dtype="float64"), skilled)
    return pd.DataFrame({"regime": regime, "leaning": leaning, "confidence": confidence}, index=p_outperform.index)
