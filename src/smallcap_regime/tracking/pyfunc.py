"""The MLflow pyfunc wrapper served by `regime serve` (``mlflow models serve``).

Requests are validated before the model sees them, so a bad payload gets HTTP 400 with a message naming the
problem (missing column, non-numeric value, NaN in a feature the model needs, a value outside the feature's
plausible range) and the server keeps serving. Each output row says which registered version answered
(``model_version``), read from the ``registered_model_meta`` file MLflow writes when it loads ``models:/...``.

This module and ``models/`` travel with the logged model (``code_paths``): it imports nothing from the package
beyond them, so the model loads where only its ``requirements.txt`` is installed.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from ..models.bundle import OUTPUT_COLUMNS, RegimeModel, as_records

#: What the served model returns: the bundle's columns plus the registered version that produced them.
SERVED_COLUMNS = [*OUTPUT_COLUMNS, "model_version"]
UNREGISTERED = "unregistered"
#: Written by MLflow next to ``MLmodel`` when a model is downloaded through a ``models:/`` URI.
REGISTERED_MODEL_META = "registered_model_meta"
#: Set to "true" by MLflow's scoring server (``mlflow.pyfunc.scoring_server.init``) before it serves. The server
#: JSON-encodes a DataFrame by first turning it into records; handing it records directly gives the same JSON at
#: a third of a one-row request's cost. Should MLflow drop the flag, the model returns a DataFrame: slower, same JSON.
SERVING_FLAG = "_MLFLOW_IS_IN_SERVING_ENVIRONMENT"
FLOAT64 = np.dtype("float64")
#: Drivers per row and target of a request of up to :data:`DRIVERS_MAX_ROWS` rows that does not say otherwise.
DRIVERS = 3
#: A larger request gets no drivers unless its ``params`` ask: their TreeSHAP is most of a batch's cost, and a
#: script scoring a history rarely reads them. The forecasts themselves never depend on the batch size.
DRIVERS_MAX_ROWS = 100
#: The signature's default ``drivers``: :data:`DRIVERS` up to :data:`DRIVERS_MAX_ROWS` rows, none above.
AUTO_DRIVERS = -1


def drivers_param(params: dict | None, n_features: int, n_rows: int = 1) -> int:
    """The ``drivers`` inference param as a count in ``[0, n_features]``, or MlflowException (HTTP 400).

    -1 (the default) means :data:`DRIVERS` for a request of up to :data:`DRIVERS_MAX_ROWS` rows and 0 above; a
    model registered before the default existed carries 3 in its signature and lists drivers for every row."""
    value = (params or {}).get("drivers", AUTO_DRIVERS)
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not -1 <= value <= n_features:
        raise MlflowException.invalid_parameter_value(
            f"params drivers = {value!r}: give the number of drivers per row and target, 0 to {n_features} (0 "
            f"skips them), or -1, the default: {DRIVERS} for up to {DRIVERS_MAX_ROWS} rows, none for a larger batch")
    if value == AUTO_DRIVERS:
        return DRIVERS if n_rows <= DRIVERS_MAX_ROWS else 0
    return int(value)


def _shown(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _bound(value: float | None) -> str:
    return "unbounded" if value is None or math.isinf(value) else f"{value:g}"


def validate_request(frame: pd.DataFrame, model: RegimeModel) -> np.ndarray:
    """Check a request frame against the model's features; returns its values or raises MlflowException.

    The checks run on one float64 array for the whole batch (no per-column pandas work on the serving path).

    Returns
    -------
    float64 array of shape (n_rows, n_features), columns in ``model.features`` order.

    Raises
    ------
    MlflowException
        ``INVALID_PARAMETER_VALUE`` (HTTP 400): no rows, missing column, non-numeric value, NaN in a feature the
        model needs, an infinite value, or a value outside the feature's plausible range (the message names the
        column, the offending value and the range).
    """
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise MlflowException.invalid_parameter_value("the request holds no rows; send one row per month end")
    if frame.columns.tolist() != model.features:  # MLflow's schema enforcement hands them in this order
        missing = [c for c in model.features if c not in frame.columns]
        if missing:
            raise MlflowException.invalid_parameter_value(f"missing feature column(s): {_shown(missing)}")
        frame = frame[model.features]
    dtypes = frame.dtypes.tolist()
    if any(dtype != FLOAT64 for dtype in dtypes):  # the usual request is all float64: one comparison per column
        bad = [c for c, dtype in zip(model.features, dtypes)
               if not pd.api.types.is_numeric_dtype(dtype) and not frame[c].isna().all()]
        if bad:
            raise MlflowException.invalid_parameter_value(
                f"non-numeric value(s) in feature column(s): {_shown(bad)}; features are numbers (float64)")
    array = frame.to_numpy(dtype="float64", na_value=np.nan)
    nan_in = np.isnan(array).any(axis=0)
    if nan_in.any():
        position = {c: i for i, c in enumerate(model.features)}
        nan_required = [c for c in model.required if nan_in[position[c]]]
        if nan_required:
            raise MlflowException.invalid_parameter_value(
                f"NaN/null in feature(s) the model needs: {_shown(nan_required)}; build the row with `regime "
                "features` (features absent from the data may be NaN only if the model was trained without them)")
    infinite = np.isinf(array).any(axis=0)
    if infinite.any():
        names = [c for c, inf in zip(model.features, infinite) if inf]
        raise MlflowException.invalid_parameter_value(f"infinite value in feature column(s): {_shown(names)}")
    outside = (array < model.lower) | (array > model.upper)  # NaN compares False: NaN was checked above
    if outside.any():
        row, column = np.argwhere(outside)[0]  # first offending column of the first offending row
        lo, hi = model.ranges[model.features[column]]
        raise MlflowException.invalid_parameter_value(
            f"{model.features[column]} = {array[row, column]:g} is outside its plausible range [{_bound(lo)}, "
            f"{_bound(hi)}] (from the lag table's series ranges and the feature's formula); check units and the row")
    return array


def registered_version(model_dir: Path) -> str:
    """The registered version MLflow loaded this model as, or ``"unregistered"`` (loaded from a run or path)."""
    import yaml

    meta = model_dir / REGISTERED_MODEL_META
    if not meta.is_file():
        return UNREGISTERED
    return str((yaml.safe_load(meta.read_text()) or {}).get("model_version", UNREGISTERED))


class RegimePyfunc(PythonModel):
    """pyfunc face of :class:`RegimeModel`: one row of features per month end in, one forecast per row out."""

    def load_context(self, context) -> None:
        bundle = Path(context.artifacts["bundle"])
        self.model = RegimeModel.load(bundle)
        # artifacts sit in <model dir>/artifacts/<name>; the model dir holds MLmodel and the registry meta file
        self.version = registered_version(bundle.parent.parent)

    def predict(self, context, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame | list[dict[str, Any]]:
        """One forecast per request row (:data:`SERVED_COLUMNS`): a DataFrame in process; under the scoring server
        the same rows as records, which is what the server turns a DataFrame into before writing its JSON.

        ``params={"drivers": n}`` (MLflow's inference params; over REST ``"params": {"drivers": 3}`` beside the
        data) lists ``n`` drivers per row and target; 0 leaves the drivers columns empty and skips their TreeSHAP,
        most of the cost of a large batch. Default (-1): :data:`DRIVERS` for up to :data:`DRIVERS_MAX_ROWS` rows,
        none for a larger batch (:func:`drivers_param`)."""
        values = validate_request(model_input, self.model)
        n_drivers = drivers_param(params, len(self.model.features), len(values))
        columns = {**self.model.predict_columns(values, n_drivers), "model_version": self.version}
        if _serving():
            return as_records(columns, len(values))
        return pd.DataFrame(columns, index=pd.RangeIndex(len(values)))


def _serving() -> bool:
    """Whether this process is MLflow's scoring server (which sets this flag before it loads the model)."""
    return os.environ.get(SERVING_FLAG, "").lower() in ("true", "1")
