"""Experiment configs (``experiments/*.toml``): one file = one MLflow experiment.

An experiment names its data source, feature set, the model spec per target, the validation scheme, strategy
costs, the registry gate and the tuning space. Everything is validated here, with messages naming file and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .configs import load_config
from .errors import ConfigError
from .models.lgbm import TARGETS, ModelSpec, load_model_spec


@dataclass(frozen=True)
class Validation:
    oos_start: pd.Timestamp
    refit_every_months: int = 12
    min_train_months: int = 120
    embargo_months: int = 0
    calibration_min_obs: int = 48
    interval_coverage: float = 0.8


@dataclass(frozen=True)
class Experiment:
    """A parsed experiment config."""

    name: str
    path: Path
    description: str
    data_source: str
    small_column: str | None
    large_column: str | None
    feature_spec: str
    horizon: int
    models: dict[str, ModelSpec]
    validation: Validation
    ridge_alpha: float
    logistic_c: float
    cost_bp: float
    relative_short_side: str
    no_call_band: float
    model_name: str
    primary_metric: str
    tuning: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

    def flat_params(self) -> dict[str, str]:
        """The whole config flattened to ``section.key`` strings (for MLflow params), model specs included."""
        out: dict[str, str] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            elif prefix != "description":
                out[prefix] = str(value)

        walk("", {k: v for k, v in self.raw.items() if k != "description"})
        for target, spec in self.models.items():
            walk(f"model.{target}.regressor", spec.regressor)
            walk(f"model.{target}.classifier", spec.classifier)
        return out


def _get(section: dict, key: str, kind: type, where: str, default: Any = ...) -> Any:
    if key not in section:
        if default is ...:
            raise ConfigError(f"{where}: missing key '{key}'")
        return default
    value = section[key]
    if kind is float and isinstance(value, int):
        value = float(value)
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise ConfigError(f"{where}: '{key}' must be {kind.__name__}, got {value!r}")
    return value


def load_experiment(name_or_path: str | Path, *, model_overrides: dict[str, dict[str, dict]] | None = None) -> Experiment:
    """Read and validate an experiment.

    Parameters
    ----------
    model_overrides : ``{target: {"regressor"|"classifier": {param: value}}}`` applied on top of the model specs
        (how tuned parameters reach training).
    """
    raw, path = load_config("experiments", name_or_path)
    where = str(path)
    for section in ("data", "features", "models", "validation"):
        if not isinstance(raw.get(section), dict):
            raise ConfigError(f"{where}: missing section [{section}]")
    data, feats, val = raw["data"], raw["features"], raw["validation"]
    source = _get(data, "source", str, f"{where} [data]")
    if source not in ("live", "sample"):
        raise ConfigError(f"{where} [data]: source {source!r} must be 'live' or 'sample'")
    horizon = _get(feats, "horizon_months", int, f"{where} [features]", 3)
    if horizon < 1:
        raise ConfigError(f"{where} [features]: horizon_months must be >= 1, got {horizon}")

    models = {}
    for target in TARGETS:
        spec_name = _get(raw["models"], target, str, f"{where} [models]")
        spec = load_model_spec(spec_name)
        if spec.target != target:
            raise ConfigError(f"{where} [models]: {target} = {spec_name!r} is a model for target {spec.target!r}")
        for part, params in (model_overrides or {}).get(target, {}).items():
            spec = ModelSpec(spec.name, spec.target,
                             {**spec.regressor, **params} if part == "regressor" else spec.regressor,
                             {**spec.classifier, **params} if part == "classifier" else spec.classifier,
                             spec.path, spec.description)
        models[target] = spec

    vwhere = f"{where} [validation]"
    oos = _get(val, "oos_start", str, vwhere)
    try:
        oos_start = pd.Timestamp(oos) + pd.offsets.MonthEnd(0)
    except ValueError:
        raise ConfigError(f"{vwhere}: oos_start {oos!r} is not a month like '1990-01'") from None
    validation = Validation(
        oos_start=oos_start,
        refit_every_months=_get(val, "refit_every_months", int, vwhere, 12),
        min_train_months=_get(val, "min_train_months", int, vwhere, 120),
        embargo_months=_get(val, "embargo_months", int, vwhere, 0),
        calibration_min_obs=_get(val, "calibration_min_obs", int, vwhere, 48),
        interval_coverage=_get(val, "interval_coverage", float, vwhere, 0.8),
    )
    if not 0 < validation.interval_coverage < 1:
        raise ConfigError(f"{vwhere}: interval_coverage must be in (0, 1), got {validation.interval_coverage}")
    base, strat = raw.get("baselines", {}), raw.get("strategy", {})
    short_side = _get(strat, "relative_short_side", str, f"{where} [strategy]", "reverse")
    if short_side not in ("reverse", "flat"):
        raise ConfigError(f"{where} [strategy]: relative_short_side must be 'reverse' or 'flat', got {short_side!r}")
    reg = raw.get("registry", {})
    return Experiment(
        name=path.stem,
        path=path,
        description=raw.get("description", "").strip(),
        data_source=source,
        small_column=data.get("small_column"),
        large_column=data.get("large_column"),
        feature_spec=_get(feats, "spec", str, f"{where} [features]"),
        horizon=horizon,
        models=models,
        validation=validation,
        ridge_alpha=_get(base, "ridge_alpha", float, f"{where} [baselines]", 30.0),
        logistic_c=_get(base, "logistic_c", float, f"{where} [baselines]", 0.05),
        cost_bp=_get(strat, "cost_bp", float, f"{where} [strategy]", 10.0),
        relative_short_side=short_side,
        no_call_band=_get(raw.get("regime", {}), "no_call_band", float, f"{where} [regime]", 0.05),
        model_name=_get(reg, "model_name", str, f"{where} [registry]", "smallcap-regime"),
        primary_metric=_get(reg, "primary_metric", str, f"{where} [registry]", "relative.lgbm_cal.brier_skill"),
        tuning=dict(raw.get("tuning", {})),
        raw=raw,
    )
