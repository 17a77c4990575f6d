"""The deployable forecaster: four LightGBM models plus the post-processing that makes their output honest.

``RegimeModel`` holds, per target, the regressor (point forecast) and classifier (P(target > 0)) fitted on every
origin whose target is realised, the shrinkage weight and Platt map fitted on all walk-forward out-of-sample pairs,
the conformal residual quantiles, and the prevailing mean / base rate the shrinkage pulls toward. It is saved as
LightGBM text models plus one JSON file: no pickles, readable and diffable. It also carries each target's
out-of-sample record from the backtest (:class:`~smallcap_regime.models.skill.SkillRecord`), so that every forecast
says how calls like it fared and whether the target has any demonstrated skill at all.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from .calibration import Platt, probability_points
from .drivers import driver_texts
from .lgbm import TARGETS, make_classifier, make_regressor
from .regime import regime_arrays
from .skill import SKILL_COLUMNS, SkillRecord, record_columns

OUTPUT_COLUMNS = [
    "p_outperform", "relative_forecast", "relative_lo", "relative_hi",
    "p_positive", "absolute_forecast", "absolute_lo", "absolute_hi",
    "regime", "regime_leaning", "confidence",
    "relative_drivers_up", "relative_drivers_down", "absolute_drivers_up", "absolute_drivers_down",
]
OUTPUT_COLUMNS += [f"{target}_{name}" for target in TARGETS for name in SKILL_COLUMNS]
PROB_COLUMN = {"relative": "p_outperform", "absolute": "p_positive"}
# Batches smaller than this are predicted on one thread: starting and spin-waiting an OpenMP team costs far more
# than it saves on a few rows (on a busy machine a one-row call went from 0.03 ms to ~10 ms with the default team);
# larger batches (TreeSHAP is ~0.05 ms per row and classifier) use LightGBM's default, all cores.
PARALLEL_ROWS = 256


@dataclass
class TargetMaps:
    """Post-processing of one target (all in the target's decimal units)."""

    shrink_weight: float
    prevailing_mean: float
    base_rate: float
    platt_a: float
    platt_b: float
    interval_lo: float
    interval_hi: float
    n_train: int


class RegimeModel:
    """Fitted forecaster for both targets.

    Parameters
    ----------
    features : feature names, in the column order the boosters expect.
    boosters : ``{"relative_regressor": Booster, "relative_classifier": Booster, ...}``.
    maps : per target post-processing.
    horizon : target horizon in months.
    no_call_band : regime "no confident call" band around each base rate.
    required : features that must not be NaN in a request (they were present in the latest training row).
    meta : free-form provenance (experiment, data range, fingerprint).
    ranges : feature -> ``(lo, hi)`` plausible range (either side may be None = unbounded); a request outside it
        is refused (see :func:`smallcap_regime.features.ranges.plausible_ranges`).
    skill : per target out-of-sample record from the backtest; None for a model trained without one.

    Attributes
    ----------
    lower, upper : float64 arrays of shape (n_features,): ``ranges`` in feature order, -inf / inf where unbounded.
    """

    def __init__(self, features: list[str], boosters: dict[str, lgb.Booster], maps: dict[str, TargetMaps],
                 horizon: int, no_call_band: float, required: list[str], meta: dict | None = None,
                 ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
                 skill: dict[str, SkillRecord] | None = None):
        self.features = list(features)
        self.boosters = boosters
        self.maps = maps
        self.horizon = horizon
        self.no_call_band = no_call_band
        self.required = list(required)
        self.meta = meta or {}
        self.ranges = {name: tuple(bounds) for name, bounds in (ranges or {}).items()}
        self.skill = skill or {}
        # the ranges as arrays in feature order (-inf/inf: unbounded), so a request is checked in one comparison
        bounds = [self.ranges.get(name, (None, None)) for name in self.features]
        self.lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds], dtype="float64")
        self.upper = np.array([np.inf if hi is None else hi for _, hi in bounds], dtype="float64")

    def predict(self, x: pd.DataFrame, n_drivers: int = 3) -> pd.DataFrame:
        """Forecast for each row of ``x`` (n_rows x features; extra columns ignored, NaN allowed).

        Returns
        -------
        DataFrame (n_rows x :data:`OUTPUT_COLUMNS`) on ``x``'s index: :meth:`predict_columns` as a frame.
        """
        return pd.DataFrame(self.predict_columns(self._values(x), n_drivers), index=x.index)

    def predict_columns(self, values: np.ndarray, n_drivers: int = 3) -> dict[str, Any]:
        """The forecast of each row of a float64 array, as whole columns (no pandas: the serving path's core).

        Parameters
        ----------
        values : float64 array of shape (n_rows, n_features), columns in :attr:`features` order, NaN allowed.
        n_drivers : drivers listed per row and target.

        Returns
        -------
        ``{column: values}`` in :data:`OUTPUT_COLUMNS` order; each value is an array or list of length n_rows, or
        one scalar shared by every row (a target's base rate and out-of-sample record). Probabilities in [0, 1],
        forecasts and interval bounds as decimal returns over the next ``horizon`` months, the regime label (each
        probability read against its base rate), its confidence, the top drivers (features moving each calibrated
        probability most, in percentage points: :meth:`points`; in words, ``n_drivers`` up and down:
        :func:`.drivers.driver_texts`) and per target the base rate and out-of-sample record (:data:`SKILL_COLUMNS`;
        NaN for a model trained without a record). A target with no demonstrated skill gets its base rate as the
        probability, the historical mean as its forecast and no drivers.
        """
        threads = 1 if len(values) < PARALLEL_ROWS else 0  # 0 = LightGBM's default
        out: dict[str, Any] = {}
        for target in TARGETS:
            m = self.maps[target]
            raw_f = np.asarray(self.boosters[f"{target}_regressor"].predict(values, num_threads=threads))
            f = m.prevailing_mean + m.shrink_weight * (raw_f - m.prevailing_mean)
            if self.has_skill(target):
                raw_p = np.asarray(self.boosters[f"{target}_classifier"].predict(values, num_threads=threads))
                out[PROB_COLUMN[target]] = Platt(m.platt_a, m.platt_b)(raw_p)
                # issue-21 hook: drivers in words, three pushing up and three pushing down
                out[f"{target}_drivers_up"], out[f"{target}_drivers_down"] = driver_texts(
                    self.features, values, self._points(values, target, threads), n_drivers)
            else:  # no demonstrated skill: the honest probability is the base rate, and nothing drives it
                out[PROB_COLUMN[target]] = np.full(len(values), m.base_rate)
                out[f"{target}_drivers_up"] = out[f"{target}_drivers_down"] = [""] * len(values)
                # issue-21 hook: no forecast of its own either: the historical mean, the interval around it
                f = np.full(len(values), m.prevailing_mean)
            out[f"{target}_forecast"] = f
            out[f"{target}_lo"] = f + m.interval_lo
            out[f"{target}_hi"] = f + m.interval_hi
        out["regime"], out["regime_leaning"], out["confidence"] = regime_arrays(
            out["p_outperform"], out["p_positive"], self.no_call_band, self.maps["relative"].base_rate,
            self.maps["absolute"].base_rate, skilled=(self.has_skill("relative"), self.has_skill("absolute")))
        for target in TARGETS:
            out.update(record_columns(target, np.asarray(out[PROB_COLUMN[target]]), self.maps[target].base_rate,
                                      self.skill.get(target)))
        return {c: out[c] for c in OUTPUT_COLUMNS}

    def has_skill(self, target: str) -> bool:
        """Whether the backtest showed skill for ``target`` (assumed for a model trained without a record)."""
        record = self.skill.get(target)
        return record is None or record.has_skill

    def points(self, x: pd.DataFrame, target: str) -> pd.DataFrame:
        """Per-feature contributions in calibrated-probability points (:func:`.calibration.probability_points`)."""
        return pd.DataFrame(self._points(self._values(x), target), index=x.index, columns=self.features)

    def contributions(self, x: pd.DataFrame, target: str) -> pd.DataFrame:
        """Per-feature contributions (log-odds, before calibration) of the target's classifier (TreeSHAP)."""
        return pd.DataFrame(self._contributions(self._values(x), target), index=x.index, columns=self.features)

    def _values(self, x: pd.DataFrame) -> np.ndarray:
        """The features of ``x`` as a float64 array of shape (n_rows, n_features), in the boosters' column order."""
        if list(x.columns) != self.features:  # MLflow's schema enforcement already hands them in this order
            missing = [c for c in self.features if c not in x.columns]
            if missing:
                raise ValueError(f"missing feature column(s): {', '.join(missing)}")
            x = x[self.features]
        return x.to_numpy(dtype="float64")

    def _contributions(self, values: np.ndarray, target: str, threads: int = 0) -> np.ndarray:
        """TreeSHAP contributions of the target's classifier for a whole batch in one call.

        Parameters
        ----------
        values : float64 array of shape (n_rows, n_features).
        threads : LightGBM threads (0: its default, all cores).

        Returns
        -------
        float64 array of shape (n_rows, n_features) in log-odds (LightGBM's bias column dropped).
        """
        booster = self.boosters[f"{target}_classifier"]
        return np.asarray(booster.predict(values, pred_contrib=True, num_threads=threads))[:, :-1]

    def _points(self, values: np.ndarray, target: str, threads: int = 0) -> np.ndarray:
        """Contributions in calibrated-probability points (:func:`.calibration.probability_points`), shape
        (n_rows, n_features)."""
        booster, m = self.boosters[f"{target}_classifier"], self.maps[target]
        raw = np.asarray(booster.predict(values, raw_score=True, num_threads=threads))
        return probability_points(self._contributions(values, target, threads), raw, Platt(m.platt_a, m.platt_b))

    def _payload(self) -> dict:
        """Everything that decides the forecasts except the boosters (JSON-ready; unbounded sides as null)."""
        ranges = {name: [None if b is None or abs(b) == float("inf") else b for b in bounds]
                  for name, bounds in self.ranges.items()}
        return {"features": self.features, "required": self.required, "horizon": self.horizon,
                "no_call_band": self.no_call_band, "maps": {t: asdict(m) for t, m in self.maps.items()},
                "boosters": sorted(self.boosters), "ranges": ranges,
                "skill": {t: r.to_dict() for t, r in self.skill.items()}}

    def digest(self) -> str:
        """sha256 of the boosters and the post-processing, not the provenance: equal digests forecast alike."""
        h = hashlib.sha256(json.dumps(self._payload(), sort_keys=True, default=str).encode())
        for name in sorted(self.boosters):
            h.update(self.boosters[name].model_to_string().encode())
        return h.hexdigest()

    def save(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        for name, booster in self.boosters.items():
            booster.save_model(str(directory / f"{name}.txt"))
        payload = {**self._payload(), "meta": self.meta}
        (directory / "bundle.json").write_text(json.dumps(payload, indent=2, default=str))
        return directory

    @classmethod
    def load(cls, directory: Path) -> RegimeModel:
        payload = json.loads((directory / "bundle.json").read_text())
        boosters = {name: lgb.Booster(model_file=str(directory / f"{name}.txt")) for name in payload["boosters"]}
        maps = {t: TargetMaps(**m) for t, m in payload["maps"].items()}
        skill = {t: SkillRecord.from_dict(r) for t, r in payload.get("skill", {}).items()}
        return cls(payload["features"], boosters, maps, payload["horizon"], payload["no_call_band"],
                   payload["required"], payload["meta"], payload.get("ranges"), skill)


def as_records(columns: Mapping[str, Any], n_rows: int) -> list[dict[str, Any]]:
    """Columns as ``n_rows`` records of plain Python values: for :meth:`RegimeModel.predict_columns` output, what
    ``DataFrame(columns).to_dict("records")`` gives (the same JSON; tested), without building the frame, which
    costs more than the four boosters on a one-row request.

    Parameters
    ----------
    columns : ``{name: array, list or scalar}`` as :meth:`RegimeModel.predict_columns` returns (a scalar is
        shared by every row).
    n_rows : rows in each non-scalar column.
    """
    def plain(value: Any) -> list:
        if isinstance(value, np.ndarray):
            return value.tolist()  # numpy scalars become Python ones, as pandas' to_dict does
        if isinstance(value, list):
            return value
        return [value.item() if isinstance(value, np.generic) else value] * n_rows

    names = list(columns)
    return [dict(zip(names, row)) for row in zip(*(plain(v) for v in columns.values()))]


def fit_regime_model(features: pd.DataFrame, targets: pd.DataFrame, specs: dict, final_maps: dict,
                     horizon: int, no_call_band: float, meta: dict | None = None,
                     ranges: dict[str, tuple[float, float]] | None = None,
                     skill: dict[str, SkillRecord] | None = None) -> RegimeModel:
    """Fit the four boosters on every origin with a realised target.

    Parameters
    ----------
    features : month-end feature frame (all origins).
    targets : ``build_targets`` output on the same index.
    specs : ``{target: ModelSpec}``.
    final_maps : ``{target: CalibrationMaps}`` fitted on all walk-forward out-of-sample pairs.
    ranges : plausible range per feature, carried by the model to refuse implausible requests.
    skill : ``{target: SkillRecord}``, the backtest's out-of-sample record that every forecast carries.
    """
    boosters, maps = {}, {}
    for target in TARGETS:
        column = f"{target}_{horizon}m"
        realised = targets[column].notna()
        x, y, y_up = features[realised], targets.loc[realised, column], targets.loc[realised, f"{column}_up"]
        boosters[f"{target}_regressor"] = make_regressor(specs[target].regressor).fit(x, y).booster_
        boosters[f"{target}_classifier"] = make_classifier(specs[target].classifier).fit(x, y_up.astype(int)).booster_
        cm = final_maps[target]
        maps[target] = TargetMaps(
            shrink_weight=float(cm.shrink_weight), prevailing_mean=float(y.mean()), base_rate=float(y_up.mean()),
            platt_a=float(cm.platt.a), platt_b=float(cm.platt.b), interval_lo=float(cm.interval[0]),
            interval_hi=float(cm.interval[1]), n_train=int(realised.sum()))
    latest = features.iloc[-1]
    required = [c for c in features.columns if not np.isnan(latest[c])]
    return RegimeModel(list(features.columns), boosters, maps, horizon, no_call_band, required, meta, ranges,
                       skill)
