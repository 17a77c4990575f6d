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
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PythonModel

from ..models.bundle import OUTPUT_COLUMNS, RegimeModel

#: What the served model returns: the bundle's columns plus the registered version that produced them.
SERVED_COLUMNS = [*OUTPUT_COLUMNS, "model_version"]
UNREGISTERED = "unregistered"
#: Written by MLflow next to ``MLmodel`` when a model is downloaded through a ``models:/`` URI.
REGISTERED_MODEL_META = "registered_model_meta"


def _shown(names: list[str], limit: int = 10) -> str:
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _bound(value: float | None) -> str:
    return "unbounded" if value is None or math.isinf(value) else f"{value:g}"


def validate_request(frame: pd.DataFrame, model: RegimeModel) -> pd.DataFrame:
    """Check a request frame against the model's features; returns it as float64 or raises MlflowException.

    The checks run on one float64 array for the whole batch (no per-column pandas work on the serving path).

    Returns
    -------
    DataFrame of shape (n_rows, n_features), float64, columns in ``model.features`` order, the request's index.

    Raises
    ------
    MlflowException
        ``INVALID_PARAMETER_VALUE`` (HTTP 400): no rows, missing column, non-numeric value, NaN in a feature the
        model needs, an infinite value, or a value outside the feature's plausible range (the message names the
        column, the offending value and the range).
    """
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise MlflowException.invalid_parameter_value("the request holds no rows; send one row per month end")
    missing = [c for c in model.features if c not in frame.columns]
    if missing:
        raise MlflowException.invalid_parameter_value(f"missing feature column(s): {_shown(missing)}")
    values = frame if list(frame.columns) == model.features else frame[model.features]
    bad = [c for c, dtype in zip(model.features, values.dtypes)
           if not pd.api.types.is_numeric_dtype(dtype) and not values[c].isna().all()]
    if bad:
        raise MlflowException.invalid_parameter_value(
            f"non-numeric value(s) in feature column(s): {_shown(bad)}; features are numbers (float64)")
    array = values.to_numpy(dtype="float64", na_value=np.nan)
    position = {c: i for i, c in enumerate(model.features)}
    nan_in = np.isnan(array).any(axis=0)
    nan_required = [c for c in model.required if nan_in[position[c]]]
    if nan_required:
        raise MlflowException.invalid_parameter_value(
            f"NaN/null in feature(s) the model needs: {_shown(nan_required)}; build the row with `regime features` "
            "(features absent from the data may be NaN only if the model was trained without them)")
    infinite = [c for c, inf in zip(model.features, np.isinf(array).any(axis=0)) if inf]
    if infinite:
        raise MlflowException.invalid_parameter_value(f"infinite value in feature column(s): {_shown(infinite)}")
    for column, (lo, hi) in model.ranges.items():
        if column not in position:
            continue
        col = array[:, position[column]]
        outside = ((col < lo) if lo is not None else False) | ((col > hi) if hi is not None else False)
        if np.any(outside):
            raise MlflowException.invalid_parameter_value(
                f"{column} = {col[outside][0]:g} is outside its plausible range [{_bound(lo)}, {_bound(hi)}] "
                "(from the lag table's series ranges and the feature's formula); check units and the row")
    return pd.DataFrame(array, index=frame.index, columns=model.features)


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

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        out = self.model.predict(validate_request(model_input, self.model)).reset_index(drop=True)
        out["model_version"] = self.version
        return out
