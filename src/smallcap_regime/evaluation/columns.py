"""Names of the backtest's models, metrics and prediction columns: re-exported from :mod:`smallcap_regime.names`."""

from __future__ import annotations

from ..names import FITTED, MODEL_METRICS, MODELS, col

__all__ = ["FITTED", "MODELS", "MODEL_METRICS", "col"]
