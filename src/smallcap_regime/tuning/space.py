"""The tuning layer's view of an experiment's ``[tuning]`` section (validated when the experiment loads)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from ..experiment import Experiment
from ..models.search_space import METRICS, PARAMS, tuning_settings

__all__ = ["METRICS", "PARAMS", "search_space", "study_name_for", "tuning_settings"]


def search_space(exp: Experiment) -> dict[str, Any]:
    """The experiment's validated ``[tuning]`` section (:func:`~smallcap_regime.models.search_space.tuning_settings`:
    ``objective``, ``target``, ``model``, ``metric``, ``inner_folds``, ``seed`` and ``space``).

    Raises
    ------
    ConfigError
        The experiment has no ``[tuning]`` section.
    """
    if not exp.tuning:
        raise ConfigError(f"{exp.path}: no [tuning] section; add one with an objective and parameter ranges")
    return dict(exp.tuning)


def study_name_for(exp: Experiment) -> str:
    """Default study name: ``<experiment>-<objective>``, e.g. ``quickstart-relative.regressor``."""
    return f"{exp.name}-{search_space(exp)['objective']}"
