"""LightGBM model specs (``models/*.toml``).

The models are fitted by :class:`~smallcap_regime.models.estimator.TargetEstimator`; ``make_regressor`` and
``make_classifier`` are the scikit-learn wrappers with the same parameters, the reference it is tested against.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import field_validator

from ..configs import Section, load_config, validate

if TYPE_CHECKING:
    import lightgbm as lgb

from ..names import TARGETS  # noqa: F401  (re-exported: the targets of a model spec)

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


class ModelSpecFile(Section):
    """The schema of a model spec file; ``[regressor]``/``[classifier]`` hold LightGBM parameters."""

    description: str = ""
    target: Literal["relative", "absolute"]
    regressor: dict[str, Any]
    classifier: dict[str, Any]

    @field_validator("regressor", "classifier")
    @classmethod
    def _seeded(cls, params: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(params.get("seed"), int):
            raise ValueError("needs an integer 'seed' so reruns are identical")
        return params


def load_model_spec(name_or_path: str | Path) -> ModelSpec:
    """Load ``models/<name>.toml`` (or a path) as a validated :class:`ModelSpec`."""
    raw, path = load_config("models", name_or_path)
    cfg = validate(ModelSpecFile, raw, path)
    return ModelSpec(name=path.stem, target=cfg.target, regressor=dict(cfg.regressor),
                     classifier=dict(cfg.classifier), path=path, description=cfg.description)


def make_regressor(params: dict[str, Any]) -> lgb.LGBMRegressor:
    """LightGBM regressor with the spec's params and the deterministic settings on top."""
    import lightgbm as lgb

    return lgb.LGBMRegressor(**{"objective": "regression", **params, **DETERMINISTIC})


def make_classifier(params: dict[str, Any]) -> lgb.LGBMClassifier:
    """LightGBM binary classifier with the spec's params and the deterministic settings on top."""
    import lightgbm as lgb

    return lgb.LGBMClassifier(**{"objective": "binary", **params, **DETERMINISTIC})
