"""The MLflow pyfunc wrapper served by `regime serve` (``mlflow models serve``).

Requests are validated before the model sees them, so a bad payload gets HTTP 400 with a message naming the
problem (missing column, non-numeric value, NaN in a feature the model needs) and the server keeps serving.
"""

from __future__ import annotations

from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from ..models.bundle import RegimeModel


def validate_request(frame: pd.DataFrame, model: RegimeModel) -> pd.DataFrame:
    """Check a request frame against the model's features; returns it as float64 or raises MlflowException."""
    if not isinstance(frame, pd.DataFrame) or frame.empty:
        raise MlflowException.invalid_parameter_value("the request holds no rows; send one row per month end")
    missing = [c for c in model.features if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise MlflowException.invalid_parameter_value(f"missing feature column(s): {shown}")
    values = frame[model.features]
    bad = [c for c in model.features if not (pd.api.types.is_numeric_dtype(values[c]) or values[c].isna().all())]
    if bad:
        raise MlflowException.invalid_parameter_value(
            f"non-numeric value(s) in feature column(s): {', '.join(bad[:10])}; features are numbers (float64)")
    values = values.astype("float64")
    nan_required = [c for c in model.required if values[c].isna().any()]
    if nan_required:
        raise MlflowException.invalid_parameter_value(
            f"NaN/null in feature(s) the model needs: {', '.join(nan_required[:10])}"
            + (f" and {len(nan_required) - 10} more" if len(nan_required) > 10 else "")
            + "; build the row with `regime features` (features absent from the data may be NaN only if the "
              "model was trained without them)")
    if np.isinf(values.to_numpy()).any():
        raise MlflowException.invalid_parameter_value("infinite value in the features")
    return values


class RegimePyfunc(mlflow.pyfunc.PythonModel):
    """pyfunc face of :class:`RegimeModel`: one row of features per month end in, one forecast per row out."""

    def load_context(self, context) -> None:
        self.model = RegimeModel.load(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        return self.model.predict(validate_request(model_input, self.model)).reset_index(drop=True)
