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
from typing import TYPE_CHECKING, Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from ..names import (
    BOOSTER_PARTS,
    PROB_COLUMN,
    TARGETS,
    booster_name,
    output_column,
    target_column,
)
from .calibration import CalibrationMaps, Platt, probability_points, shrink, trailing_mean
from .drivers import driver_texts
from .regime import regime_arrays
from .skill import SKILL_COLUMNS, SkillRecord, record_columns

if TYPE_CHECKING:  # the served model needs only the fitted boosters: no estimator (nor its options) at import
    from .estimator import TargetEstimator

OUTPUT_COLUMNS = [
    name for target in TARGETS
    for name in (PROB_COLUMN[target], *(output_column(target, kind) for kind in ("forecast", "lo", "hi")))
]
OUTPUT_COLUMNS += ["regime", "regime_leaning", "confidence",
                   *(output_column(t, side) for t in TARGETS for side in ("drivers_up", "drivers_down"))]
OUTPUT_COLUMNS += [output_column(target, name) for target in TARGETS for name in SKILL_COLUMNS]
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

    @classmethod
    def from_calibration(cls, maps: CalibrationMaps, prevailing_mean: float, base_rate: float,
                         n_train: int) -> TargetMaps:
        """The backtest's final :class:`~.calibration.CalibrationMaps` with what the final fit's rows add."""
        return cls(shrink_weight=float(maps.shrink_weight), prevailing_mean=float(prevailing_mean),
                   base_rate=float(base_rate), platt_a=float(maps.platt.a), platt_b=float(maps.platt.b),
                   interval_lo=float(maps.interval[0]), interval_hi=float(maps.interval[1]), n_train=int(n_train))

    @property
    def platt(self) -> Platt:
        return Platt(self.platt_a, self.platt_b)

    def point(self, raw: np.ndarray) -> np.ndarray:
        """The shrunk point forecast of raw regressor output (:func:`~.calibration.shrink`)."""
        return shrink(raw, self.prevailing_mean, self.shrink_weight)


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
    inputs : per target, the features its boosters read (:attr:`TargetEstimator.columns_`, in order); a target
        missing here reads every feature.

    Attributes
    ----------
    lower, upper : float64 arrays of shape (n_features,): ``ranges`` in feature order, -inf / inf where unbounded.
    """

    def __init__(self, features: list[str], boosters: dict[str, lgb.Booster], maps: dict[str, TargetMaps],
                 horizon: int, no_call_band: float, required: list[str], meta: dict | None = None,
                 ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
                 skill: dict[str, SkillRecord] | None = None, inputs: Mapping[str, list[str]] | None = None):
        self.features = list(features)
        self.inputs = {t: list(names) for t, names in (inputs or {}).items() if list(names) != self.features}
        position = {name: i for i, name in enumerate(self.features)}
        self._columns = {t: np.array([position[n] for n in names], dtype=int) for t, names in self.inputs.items()}
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
        n_drivers : drivers listed per row and target; 0 leaves the drivers columns empty and skips TreeSHAP.

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
            skill = self.has_skill(target)
            raw_f, raw_p = self.raw(values, target, probability=skill, threads=threads)
            if skill:  # [options] smooth_k > 1: each row averaged with the rows before it (trailing_mean)
                f = trailing_mean(m.point(raw_f), self.smooth_k)
                out[PROB_COLUMN[target]] = trailing_mean(m.platt(raw_p), self.smooth_k)
                if n_drivers > 0:  # TreeSHAP: most of a large batch's cost, skipped when no driver is asked for
                    # drivers in words: the n pushing P up and the n pushing it down
                    points = trailing_mean(self._points(values, target, threads), self.smooth_k)
                    out[output_column(target, "drivers_up")], out[output_column(target, "drivers_down")] = (
                        driver_texts(self.features, values, points, n_drivers))
                else:
                    for side in ("drivers_up", "drivers_down"):
                        out[output_column(target, side)] = [""] * len(values)
            else:  # no demonstrated skill: the base rate, the historical mean and its interval; nothing drives it
                f = np.full(len(values), m.prevailing_mean)
                out[PROB_COLUMN[target]] = np.full(len(values), m.base_rate)
                for side in ("drivers_up", "drivers_down"):
                    out[output_column(target, side)] = [""] * len(values)
            out[output_column(target, "forecast")] = f
            out[output_column(target, "lo")] = f + m.interval_lo
            out[output_column(target, "hi")] = f + m.interval_hi
        out["regime"], out["regime_leaning"], out["confidence"] = regime_arrays(
            out["p_outperform"], out["p_positive"], self.no_call_band, self.maps["relative"].base_rate,
            self.maps["absolute"].base_rate, skilled=(self.has_skill("relative"), self.has_skill("absolute")))
        for target in TARGETS:
            out.update(record_columns(target, np.asarray(out[PROB_COLUMN[target]]), self.maps[target].base_rate,
                                      self.skill.get(target)))
        return {c: out[c] for c in OUTPUT_COLUMNS}

    def raw(self, values: np.ndarray, target: str, *, probability: bool = True,
            threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The target's raw forecasts before post-processing: what its fitted
        :class:`~.estimator.TargetEstimator` gives (``predict`` and ``predict_proba[:, 1]``).

        Parameters
        ----------
        values : float64 array of shape (n_rows, n_features), columns in :attr:`features` order.
        probability : also run the classifier (else the probabilities are NaN).
        threads : LightGBM threads (0: its default, all cores).
        """
        inputs = self._inputs(values, target)
        regressor, classifier = (self.boosters[booster_name(target, part)] for part in BOOSTER_PARTS)
        f = np.asarray(regressor.predict(inputs, num_threads=threads))
        p = (np.asarray(classifier.predict(inputs, num_threads=threads)) if probability
             else np.full(len(values), np.nan))
        return f, p

    @property
    def smooth_k(self) -> int:
        """``[options] smooth_k`` the model was trained with: each forecast row is the mean of the calibrated
        forecasts of that row and the ``smooth_k - 1`` rows before it in the request (1: no smoothing)."""
        return int(self.meta.get("options", {}).get("smooth_k", 1))

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

    def _inputs(self, values: np.ndarray, target: str) -> np.ndarray:
        """The columns of ``values`` the target's boosters read."""
        columns = self._columns.get(target)
        return values if columns is None else values[:, columns]

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
        booster = self.boosters[booster_name(target, "classifier")]
        contrib = np.asarray(booster.predict(self._inputs(values, target), pred_contrib=True,
                                             num_threads=threads))[:, :-1]
        columns = self._columns.get(target)
        if columns is None:
            return contrib
        full = np.zeros((len(values), len(self.features)))  # features the target does not read contribute 0
        full[:, columns] = contrib
        return full

    def _points(self, values: np.ndarray, target: str, threads: int = 0) -> np.ndarray:
        """Contributions in calibrated-probability points (:func:`.calibration.probability_points`), shape
        (n_rows, n_features)."""
        booster, m = self.boosters[booster_name(target, "classifier")], self.maps[target]
        raw = np.asarray(booster.predict(self._inputs(values, target), raw_score=True, num_threads=threads))
        return probability_points(self._contributions(values, target, threads), raw, m.platt)

    def _payload(self) -> dict:
        """Everything that decides the forecasts except the boosters (JSON-ready; unbounded sides as null)."""
        ranges = {name: [None if b is None or abs(b) == float("inf") else b for b in bounds]
                  for name, bounds in self.ranges.items()}
        return {"features": self.features, "required": self.required, "horizon": self.horizon,
                "no_call_band": self.no_call_band, "maps": {t: asdict(m) for t, m in self.maps.items()},
                "boosters": sorted(self.boosters), "ranges": ranges,
                "skill": {t: r.to_dict() for t, r in self.skill.items()},
                **({"inputs": self.inputs} if self.inputs else {})}

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
                   payload["required"], payload["meta"], payload.get("ranges"), skill, payload.get("inputs"))


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


def fit_regime_model(features: pd.DataFrame, targets: pd.DataFrame, estimators: Mapping[str, TargetEstimator],
                     final_maps: Mapping[str, CalibrationMaps], horizon: int, no_call_band: float,
                     meta: dict | None = None, ranges: dict[str, tuple[float, float]] | None = None,
                     skill: dict[str, SkillRecord] | None = None) -> RegimeModel:
    """Fit each target's estimator on every origin with a realised target and bundle the fitted boosters.

    Parameters
    ----------
    features : month-end feature frame (all origins).
    targets : ``build_targets`` output on the same index.
    estimators : ``{target: TargetEstimator}``, unfitted (``Experiment.estimator``): the backtest folds' ``fit``.
    final_maps : ``{target: CalibrationMaps}`` fitted on all walk-forward out-of-sample pairs.
    ranges : plausible range per feature, carried by the model to refuse implausible requests.
    skill : ``{target: SkillRecord}``, the backtest's out-of-sample record that every forecast carries.

    Raises
    ------
    ValueError
        A target's realised labels hold one class only (no classifier to ship).
    """
    boosters: dict[str, lgb.Booster] = {}
    maps, inputs = {}, {}
    for target in TARGETS:
        column = target_column(target, horizon)
        realised = targets[column].notna()
        x, y = features[realised], targets.loc[realised, column]
        y_up = targets.loc[realised, target_column(target, horizon, label=True)]
        model = estimators[target].fit(x, y.to_numpy(), y_up.to_numpy())
        if model.regressor_ is None or model.classifier_ is None:
            raise ValueError(f"{target}: every realised label is {model.constant_p_:g}; no classifier to fit")
        boosters[booster_name(target, "regressor")] = model.regressor_
        boosters[booster_name(target, "classifier")] = model.classifier_
        inputs[target] = [model.feature_names_in_[i] for i in model.columns_]
        maps[target] = TargetMaps.from_calibration(final_maps[target], y.mean(), y_up.mean(), int(realised.sum()))
    latest = features.iloc[-1]
    required = [c for c in features.columns if not np.isnan(latest[c])]
    return RegimeModel(list(features.columns), boosters, maps, horizon, no_call_band, required, meta, ranges,
                       skill, inputs)
