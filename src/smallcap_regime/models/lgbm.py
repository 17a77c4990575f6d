"""LightGBM model specs (``models/*.toml``) and deterministic estimators built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightgbm as lgb

from ..configs import load_config
from ..errors import ConfigError

TARGETS = ("relative", "absolute")
# Settings that make a rerun bit-identical; a spec may not switch them off.
DETERMINISTIC = {"deterministic": True, "force_col_wise": True, "num_threads": 1, "verbose": -1}


@dataclass(frozen=True)
class ModelSpec:
    """A target's two LightGBM models: the point forecast (regressor) and P(target > 0) (classifier)."""

    name: str
    target: str
    regressor: dict[str, Any]
    classifier: dict[str, Any]
    path: Path | None = None
    description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def load_model_spec(name_or_path: str | Path) -> ModelSpec:
    raw, path = load_config("models", name_or_path)
    where = str(path)
    for key in ("target", "regressor", "classifier"):
        if key not in raw:
            raise ConfigError(f"{where}: missing [{key}]" if key != "target" else f"{where}: missing key 'target'")
    if raw["target"] not in TARGETS:
        raise ConfigError(f"{where}: target {raw['target']!r} is not one of {', '.join(TARGETS)}")
    for section in ("regressor", "classifier"):
        if "seed" not in raw[section]:
            raise ConfigError(f"{where}: [{section}] needs a fixed 'seed' so reruns are identical")
    return ModelSpec(name=path.stem, target=raw["target"], regressor=dict(raw["regressor"]),
                     classifier=dict(raw["classifier"]), path=path, description=raw.get("description", ""))


def make_regressor(params: dict[str, Any]) -> lgb.LGBMRegressor:
    """LightGBM regressor with the spec's params and the deterministic settings on top."""
    return lgb.LGBMRegressor(**{"objective": "regression", **params, **DETERMINISTIC})


def make_classifier(params: dict[str, Any]) -> lgb.LGBMClassifier:
    return lgb.LGBMClassifier(**{"objective": "binary", **params, **DETERMINISTIC})
