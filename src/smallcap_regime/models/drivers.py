"""Drivers in words: the features pushing a calibrated probability up and down most, by their plain names and
values in their units (:mod:`smallcap_regime.features.labels`), with the points each one moves the probability:
``12-month market excess return +19.0 %: -2.5 pts``.

Plain Python and numpy on arrays: the served model words its own drivers.
"""

from __future__ import annotations

import numpy as np

from ..features.labels import feature_text

#: Drivers listed per side (pushing the probability up / down).
N_DRIVERS = 3
SEPARATOR = "; "


def driver_texts(features: list[str], values: np.ndarray, points: np.ndarray,
                 n: int = N_DRIVERS) -> tuple[list[str], list[str]]:
    """The ``n`` features pushing each row's probability up most and the ``n`` pushing it down most.

    Parameters
    ----------
    features : feature names, in column order.
    values : float64 array (n_rows, n_features): the feature values shown.
    points : float64 array of the same shape: contributions in probability points (> 0 pushes up).
    n : drivers per side.

    Returns
    -------
    (up, down) : one string per row each, drivers joined by ``"; "``, the largest push first (ties: earlier
    feature first); empty when nothing pushes that way.
    """
    points = np.asarray(points, dtype="float64")
    # stable sorts: the largest push first, ties in feature order; the other side and zeros sort last
    up_order = np.argsort(np.where(points > 0, -points, np.inf), axis=1, kind="stable")[:, :n]
    down_order = np.argsort(np.where(points < 0, points, np.inf), axis=1, kind="stable")[:, :n]
    # plain lists: indexing them per driver costs a fraction of numpy's per-element access
    names, cells, pushes = list(features), np.asarray(values, dtype="float64").tolist(), points.tolist()
    up, down = [], []
    for value, push, ups, downs in zip(cells, pushes, up_order.tolist(), down_order.tolist()):
        up.append(SEPARATOR.join(_text(names[i], value[i], push[i]) for i in ups if push[i] > 0))
        down.append(SEPARATOR.join(_text(names[i], value[i], push[i]) for i in downs if push[i] < 0))
    return up, down


def _text(name: str, value: float, points: float) -> str:
    return f"{feature_text(name, value)}: {points:+.1f} pts"


def split(text: str) -> list[str]:
    """The drivers of one ``<target>_drivers_up``/``_down`` cell as a list."""
    return [part for part in (text or "").split(SEPARATOR) if part]
