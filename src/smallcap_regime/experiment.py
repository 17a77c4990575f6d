"""Experiment configs (``experiments/*.toml``): one file = one MLflow experiment.

An experiment names its data source, feature set, the model spec per target, the model options (``[options]``,
:class:`~smallcap_regime.models.options.ModelOptions`), the validation scheme, strategy costs, the registry gate and
the tuning space. The whole file is validated when it loads, against one schema
(:class:`ExperimentFile`), before any work starts: an unknown key, a value of the wrong type or out of range, an
unknown ``primary_metric`` or a bad ``[tuning]`` section is a :class:`~smallcap_regime.errors.ConfigError` that
names the file, the table and the key. ``extends = "quickstart"`` starts from another experiment and overrides
only the keys given (tables merge key by key).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import pandas as pd
from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from .configs import Section, load_config, validate
from .errors import ConfigError
from .models.estimator import TargetEstimator
from .models.lgbm import ModelSpec, load_model_spec
from .models.options import ModelOptions
from .models.search_space import TuningSettings, tuning_settings
from .names import MODEL_METRICS, MODELS, TARGETS, metric_key

if TYPE_CHECKING:
    from .features.build import FeatureSpec


class DataSection(Section):
    source: Literal["live", "sample"]
    small_column: str | None = None
    large_column: str | None = None


class FeaturesSection(Section):
    spec: str
    horizon_months: int = Field(3, ge=1)


class ModelsSection(Section):
    relative: str
    absolute: str


def _month_end(value: Any) -> pd.Timestamp:
    """``"1990-01"`` (as the file says) -> the month end 1990-01-31; a Timestamp is taken as it is."""
    if isinstance(value, pd.Timestamp):
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} is not a month like '1990-01'")
    try:
        return pd.Timestamp(value) + pd.offsets.MonthEnd(0)
    except ValueError:
        raise ValueError(f"{value!r} is not a month like '1990-01'") from None


class ValidationSection(Section):
    """``[validation]``: the purged walk-forward and the post-processing (``Experiment.validation`` is this object;
    ``oos_start`` is read as a month and held as its month end)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    oos_start: Annotated[pd.Timestamp, BeforeValidator(_month_end)]
    refit_every_months: int = Field(12, ge=1)
    min_train_months: int = Field(120, ge=1)
    embargo_months: int = Field(0, ge=0)
    calibration_min_obs: int = Field(48, ge=2)
    interval_coverage: float = Field(0.8, gt=0, lt=1)


#: The validated ``[validation]`` section is what the code runs on.
Validation = ValidationSection


class BaselinesSection(Section):
    ridge_alpha: float = Field(30.0, gt=0)
    logistic_c: float = Field(0.05, gt=0)


class StrategySection(Section):
    cost_bp: float = Field(10.0, ge=0)
    relative_short_side: Literal["reverse", "flat"] = "reverse"


class RegimeSection(Section):
    no_call_band: float = Field(0.05, ge=0, lt=0.5)


class RegistrySection(Section):
    model_name: str = Field("smallcap-regime", min_length=1)
    primary_metric: str = metric_key("relative", "lgbm_cal", "brier_skill")
    #: one-sided level of the gate's paired test: a challenger's per-origin Brier loss must be lower than the
    #: champion's with a Diebold-Mariano p-value below it (:mod:`~smallcap_regime.evaluation.compare`)
    gate_p_value: float = Field(0.10, gt=0, lt=1)

    @field_validator("primary_metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        target, _, rest = value.partition(".")
        model, _, metric = rest.partition(".")
        if target not in TARGETS or model not in MODELS or metric not in MODEL_METRICS:
            raise ValueError(f"{value!r} is not '<target>.<model>.<metric>' with target in {', '.join(TARGETS)}; "
                             f"model in {', '.join(MODELS)}; metric in {', '.join(MODEL_METRICS)}")
        return value


class ExperimentFile(Section):
    """The schema of an experiment file (after ``extends`` is resolved)."""

    description: str = ""
    data: DataSection
    features: FeaturesSection
    models: ModelsSection
    validation: ValidationSection
    baselines: BaselinesSection = BaselinesSection()
    strategy: StrategySection = StrategySection()
    regime: RegimeSection = RegimeSection()
    registry: RegistrySection = RegistrySection()
    options: ModelOptions = ModelOptions()
    # checked after the model specs are loaded (models.search_space.tuning_settings), which it refers to
    tuning: dict[str, Any] = {}


@dataclass(frozen=True)
class Experiment:
    """A parsed, validated experiment config."""

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
    relative_short_side: Literal["reverse", "flat"]
    no_call_band: float
    model_name: str
    primary_metric: str
    #: the validated ``[tuning]`` section (:func:`~smallcap_regime.models.search_space.tuning_settings`); None
    #: when the experiment has none
    tuning: TuningSettings | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    options: ModelOptions = field(default_factory=ModelOptions)
    gate_p_value: float = 0.10

    def features(self) -> FeatureSpec:
        """The feature spec the models read: ``feature_spec`` with the families ``[options]`` switches on."""
        return _spec(self.feature_spec, self.options.valuation)

    def estimator(self, target: str) -> TargetEstimator:
        """The target's unfitted estimator: its model spec with the experiment's ``[options]``."""
        families = _families(self.feature_spec, self.options.valuation) if self.options.drop_families else None
        return TargetEstimator.from_spec(self.models[target], self.options, families)

    def estimators(self) -> dict[str, TargetEstimator]:
        """``{target: unfitted estimator}`` for both targets."""
        return {target: self.estimator(target) for target in TARGETS}

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


def _spec(feature_spec: str, valuation: bool) -> FeatureSpec:
    """Read afresh each time (a spec edited while a process runs is not served from a cache)."""
    from .features.build import load_feature_spec

    spec = load_feature_spec(feature_spec)
    return spec.with_families("valuation") if valuation else spec


def _families(feature_spec: str, valuation: bool = False) -> dict[str, str]:
    from .configs import resolve_config

    path = resolve_config("features", feature_spec)
    return _families_of(str(path), path.stat().st_mtime_ns, valuation)


@lru_cache(maxsize=8)
def _families_of(path: str, mtime_ns: int, valuation: bool) -> dict[str, str]:
    """Feature -> family of a spec file as it is now (keyed by its modification time: an edit is seen)."""
    return _spec(path, valuation).family_of()


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; tables merge key by key, other values replace."""
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _resolve_extends(name_or_path: str | Path, seen: tuple[Path, ...] = ()) -> tuple[dict[str, Any], Path]:
    raw, path = load_config("experiments", name_or_path)
    if path in seen:
        chain = " -> ".join(p.stem for p in (*seen, path))
        raise ConfigError(f"{path}: extends forms a cycle ({chain})")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw, path
    if not isinstance(parent, str):
        raise ConfigError(f"{path}: extends must be the name or path of another experiment, got {parent!r}")
    base, _ = _resolve_extends(parent, (*seen, path))
    return _merge(base, raw), path


def load_experiment(name_or_path: str | Path, *,
                    model_overrides: dict[str, dict[str, dict]] | None = None) -> Experiment:
    """Read and validate an experiment.

    Parameters
    ----------
    name_or_path : a name in ``experiments/`` (``quickstart``, ``live``) or a TOML path.
    model_overrides : ``{target: {"regressor"|"classifier": {param: value}}}`` applied on top of the model specs
        (how tuned parameters reach training).

    Raises
    ------
    ConfigError
        The file, an ``extends`` parent or a model spec is missing or invalid; the message names the file, the
        table and the key.
    """
    raw, path = _resolve_extends(name_or_path)
    cfg = validate(ExperimentFile, raw, path)
    where = str(path)

    models = {}
    for target in TARGETS:
        spec_name = getattr(cfg.models, target)
        spec = load_model_spec(spec_name)
        if spec.target != target:
            raise ConfigError(f"{where} [models]: {target} = {spec_name!r} is a model for target {spec.target!r}")
        for part, params in (model_overrides or {}).get(target, {}).items():
            spec = ModelSpec(spec.name, spec.target,
                             {**spec.regressor, **params} if part == "regressor" else spec.regressor,
                             {**spec.classifier, **params} if part == "classifier" else spec.classifier,
                             spec.path, spec.description)
        models[target] = spec

    exp = Experiment(
        name=path.stem,
        path=path,
        description=cfg.description.strip(),
        data_source=cfg.data.source,
        small_column=cfg.data.small_column,
        large_column=cfg.data.large_column,
        feature_spec=cfg.features.spec,
        horizon=cfg.features.horizon_months,
        models=models,
        validation=cfg.validation,
        ridge_alpha=cfg.baselines.ridge_alpha,
        logistic_c=cfg.baselines.logistic_c,
        cost_bp=cfg.strategy.cost_bp,
        relative_short_side=cfg.strategy.relative_short_side,
        no_call_band=cfg.regime.no_call_band,
        model_name=cfg.registry.model_name,
        primary_metric=cfg.registry.primary_metric,
        tuning=tuning_settings(cfg.tuning, path, models) if cfg.tuning else None,
        raw=raw,
        options=cfg.options,
        gate_p_value=cfg.registry.gate_p_value,
    )
    return exp
