"""The tuning layer's view of an experiment's ``[tuning]`` section (validated when the experiment loads)."""

from __future__ import annotations

from ..errors import ConfigError
from ..experiment import Experiment
from ..models.search_space import METRICS, PARAMS, TuningSettings, tuning_settings

__all__ = ["METRICS", "PARAMS", "TuningSettings", "search_space", "study_name_for", "tuning_settings"]


def search_space(exp: Experiment) -> TuningSettings:
    """The experiment's validated ``[tuning]`` section (:class:`~smallcap_regime.models.search_space.TuningSettings`).

    Raises
    ------
    ConfigError
        The experiment has no ``[tuning]`` section.
    """
    if exp.tuning is None:
        raise ConfigError(f"{exp.path}: no [tuning] section; add one with an objective and parameter ranges")
    return exp.tuning


def study_name_for(exp: Experiment) -> str:
    """Default study name: ``<experiment>-<objective>``, e.g. ``quickstart-relative.regressor``."""
    return f"{exp.name}-{search_space(exp).objective}"
