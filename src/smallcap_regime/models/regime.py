"""Regime labels from the two calibrated probabilities.

Relative strength is not absolute return: small caps can beat large caps while both fall. The four regimes are the
quadrants of P(small outperforms) x P(small-cap return > 0), each probability read against its historical base rate:
small caps rise in about two quarters of three, so P(rise) = 0.57 is a below-normal chance of a rise, not a rally.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SMALL_LED_RALLY = "small-cap-led rally"
SMALL_FALL_LESS = "small caps fall less than large"
LARGE_LED_RALLY = "large-cap-led rally"
RISK_OFF = "risk-off"
NO_CALL = "no confident call"
REGIMES = (SMALL_LED_RALLY, SMALL_FALL_LESS, LARGE_LED_RALLY, RISK_OFF, NO_CALL)


def regime_arrays(p_outperform: np.ndarray, p_positive: np.ndarray, no_call_band: float = 0.05,
                  base_outperform: np.ndarray | float = 0.5,
                  base_positive: np.ndarray | float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The regime rule on plain arrays (the serving path calls this with no pandas in between).

    Parameters
    ----------
    p_outperform, p_positive : calibrated probabilities, shape (n,), NaN where unknown.
    no_call_band : see :func:`regime_labels`.
    base_outperform, base_positive : base rates the probabilities are read against (scalars or shape (n,)).

    Returns
    -------
    regime, leaning : object arrays of shape (n,) holding one of :data:`REGIMES` (None where a probability is NaN).
    confidence : float64 array of shape (n,), in [0.25, 1] (NaN where a probability is NaN).
    """
    rel = np.asarray(p_outperform, dtype="float64")
    ab = np.asarray(p_positive, dtype="float64")
    base_rel = np.broadcast_to(np.asarray(base_outperform, dtype="float64"), rel.shape)
    base_abs = np.broadcast_to(np.asarray(base_positive, dtype="float64"), ab.shape)
    up_rel, up_abs = rel > base_rel, ab > base_abs
    leaning = np.select(
        [up_rel & up_abs, up_rel & ~up_abs, ~up_rel & up_abs],
        [SMALL_LED_RALLY, SMALL_FALL_LESS, LARGE_LED_RALLY],
        RISK_OFF,
    ).astype(object)
    confidence = np.maximum(rel, 1 - rel) * np.maximum(ab, 1 - ab)
    unsure = (np.abs(rel - base_rel) < no_call_band) | (np.abs(ab - base_abs) < no_call_band)
    missing = np.isnan(rel) | np.isnan(ab)
    regime = np.where(unsure, NO_CALL, leaning).astype(object)
    regime[missing] = None
    leaning[missing] = None
    return regime, leaning, confidence


def regime_labels(p_outperform: pd.Series, p_positive: pd.Series, no_call_band: float = 0.05,
                  base_outperform: pd.Series | float = 0.5, base_positive: pd.Series | float = 0.5) -> pd.DataFrame:
    """Label each origin with its regime and a confidence.

    Parameters
    ----------
    p_outperform, p_positive : calibrated probabilities, same index.
    no_call_band : when either probability is within ``base rate +/- no_call_band`` the call is "no confident
        call" (the ``leaning`` column still says which quadrant it leans to).
    base_outperform, base_positive : the base rates each probability is read against (a number, or a Series on
        the same index holding the rate known at each origin); a probability above its base rate leans "up".

    Returns
    -------
    DataFrame with ``regime`` (one of :data:`REGIMES`), ``leaning`` (the quadrant regardless of the band) and
    ``confidence`` = P(that quadrant) if the two events were independent, in [0.25, 1].
    """
    if not p_outperform.index.equals(p_positive.index):
        raise ValueError("p_outperform and p_positive have different indexes")
    regime, leaning, confidence = regime_arrays(
        p_outperform.to_numpy(dtype="float64"), p_positive.to_numpy(dtype="float64"), no_call_band,
        np.asarray(base_outperform, dtype="float64"), np.asarray(base_positive, dtype="float64"))
    return pd.DataFrame({"regime": regime, "leaning": leaning, "confidence": confidence}, index=p_outperform.index)
