"""MLflow "model from code" entry point: logging this file instead of a pickled object keeps the model pickle-free."""

from mlflow.models import set_model

from smallcap_regime.tracking.pyfunc import RegimePyfunc

set_model(RegimePyfunc())
