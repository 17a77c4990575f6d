"""The ``[tuning]`` section of an experiment: objective, metric, inner folds, seed and a range per hyperparameter.

Checked when the experiment loads (:func:`tuning_settings`); the result is ``Experiment.tuning``, what the tuning
layer runs on. It lives with the model specs, below the experiment loader, because it knows the tunable LightGBM
hyperparameters (:data:`PARAMS`) and checks the ranges against the specs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..names import TARGETS
from .lgbm import ModelSpec

METRICS = {"regressor": "mse", "classifier": "log_loss"}
SETTINGS = ("objective", "metric", "inner_folds", "seed")
DEFAULT_SEED = 42


@dataclass(frozen=True)
class _Param:
    """A tunable LightGBM hyperparameter: value type, what a bound must satisfy, log-scale sampling."""

    kind: type
    valid: Callable[[float], bool]
    rule: str
    log: bool = False


@dataclass(frozen=True)
class TuningSettings:
    """An experiment's validated ``[tuning]`` section: what the tuning layer runs on.

    Attributes
    ----------
    objective : ``<target>.<model>``, e.g. ``relative.classifier``.
    target, model : its two parts (``model`` is ``regressor`` or ``classifier``).
    metric : the minimised inner-fold loss (``mse`` for a regressor, ``log_loss`` for a classifier).
    inner_folds : folds of the inner purged walk-forward before the out-of-sample start.
    seed : the TPE sampler's seed.
    space : hyperparameter -> ``(low, high)`` for the objective's target.
    """

    objective: str
    target: str
    model: str
    metric: str
    inner_folds: int
    seed: int
    space: dict[str, tuple[Any, Any]]


PARAMS: dict[str, _Param] = {
    "n_estimators": _Param(int, lambda v: v >= 1, ">= 1"),
    "num_leaves": _Param(int, lambda v: v >= 2, ">= 2"),
    "max_depth": _Param(int, lambda v: v >= 1, ">= 1"),
    "min_child_samples": _Param(int, lambda v: v >= 1, ">= 1"),
    "bagging_freq": _Param(int, lambda v: v >= 0, ">= 0"),
    "learning_rate": _Param(float, lambda v: v > 0, "> 0", log=True),
    "feature_fraction": _Param(float, lambda v: 0 < v <= 1, "in (0, 1]"),
    "bagging_fraction": _Param(float, lambda v: 0 < v <= 1, "in (0, 1]"),
    "lambda_l1": _Param(float, lambda v: v >= 0, ">= 0"),
    "lambda_l2": _Param(float, lambda v: v >= 0, ">= 0"),
}



def _range(value: Any, name: str, where: str) -> tuple[float, float]:
    param = PARAMS[name]
    numeric = (int,) if param.kind is int else (int, float)
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, numeric) and not isinstance(v, bool) for v in value))
    if not ok:
        kind = "integers" if param.kind is int else "numbers"
        raise ConfigError(f"{where}: {name} must be a [low, high] pair of {kind}, got {value!r}")
    low, high = value
    if not (param.valid(low) and param.valid(high)):
        raise ConfigError(f"{where}: {name} bounds must be {param.rule}, got {value!r}")
    if low > high:
        raise ConfigError(f"{where}: {name} low must be <= high, got {value!r}")
    return (param.kind(low), param.kind(high))


def _ranges(section: dict[str, Any], where: str, extra: tuple[str, ...]) -> dict[str, tuple[float, float]]:
    allowed = (*extra, *PARAMS)
    for key in section:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; expected one of: {', '.join(allowed)}")
    return {name: _range(section[name], name, where) for name in PARAMS if name in section}


def tuning_settings(raw: Mapping[str, Any], path: Path, models: Mapping[str, ModelSpec]) -> TuningSettings:
    """An experiment's validated ``[tuning]`` section.

    Ranges are ``param = [low, high]`` (integers for integer parameters; ``learning_rate`` is sampled on a log
    scale). The top-level ranges apply to every target; a ``[tuning.<target>]`` table overrides them for that
    target, so each target can have its own search space.

    Parameters
    ----------
    raw : the ``[tuning]`` table as read from the file (non-empty).
    path : the experiment file (named in errors).
    models : ``{target: ModelSpec}`` of the experiment (the tuned model's fixed parameters).

    Returns
    -------
    TuningSettings

    Raises
    ------
    ConfigError
        A key is unknown, of the wrong type or out of range; the message names the file
        and the key.
    """
    where = f"{path} [tuning]"
    tables = {k: v for k, v in raw.items() if isinstance(v, dict)}
    for name in tables:
        if name not in TARGETS:
            raise ConfigError(f"{where}: unknown table [tuning.{name}]; per-target tables: {', '.join(TARGETS)}")
    space = _ranges({k: v for k, v in raw.items() if k not in tables}, where, SETTINGS)
    overrides = {name: _ranges(table, f"{path} [tuning.{name}]", ()) for name, table in tables.items()}

    objective = raw.get("objective")
    target, _, model = objective.partition(".") if isinstance(objective, str) else ("", "", "")
    if target not in TARGETS or model not in METRICS:
        choices = ", ".join(f"{t}.{m}" for t in TARGETS for m in METRICS)
        raise ConfigError(f"{where}: objective must be one of {choices}, got {objective!r}")
    metric = raw.get("metric", METRICS[model])
    if metric != METRICS[model]:
        raise ConfigError(f"{where}: metric for a {model} objective must be {METRICS[model]!r}, got {metric!r}")
    folds, seed = raw.get("inner_folds", 4), raw.get("seed", DEFAULT_SEED)
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise ConfigError(f"{where}: inner_folds must be an integer >= 2, got {folds!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"{where}: seed must be an integer >= 0, got {seed!r}")

    space |= overrides.get(target, {})
    if not space:
        raise ConfigError(f"{where}: no parameter ranges; give at least one of: {', '.join(PARAMS)}")
    fixed = getattr(models[target], model)
    if "bagging_fraction" in space and "bagging_freq" not in space and not fixed.get("bagging_freq"):
        raise ConfigError(f"{where}: bagging_fraction has no effect: the {target} {model} spec has no "
                          "bagging_freq > 0 (set it there or add a bagging_freq range)")
    return TuningSettings(objective=str(objective), target=target, model=model, metric=metric, inner_folds=folds,
                          seed=seed, space=space)
