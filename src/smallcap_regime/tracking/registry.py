"""Model registry gate: alias ``champion`` moves only to a model that beats its baselines and the champion.

Beating the champion means a paired test on the same out-of-sample origins
(:func:`~smallcap_regime.evaluation.compare.compare_forecasts`): lower per-origin Brier loss with a Diebold-Mariano
p-value below ``[registry] gate_p_value`` and an AUC not worse. The champion's forecasts are read from the artifact
:data:`GATE_FORECASTS` of the run that registered it; a champion registered before that artifact existed is compared
on its recorded metric value, as before.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from ..names import BASELINES, LOWER_IS_BETTER, split_metric  # noqa: F401  (re-exported)
from .store import lost_store, retry_race

if TYPE_CHECKING:
    import pandas as pd

    from ..evaluation.compare import ForecastComparison

CHAMPION = "champion"
#: The latest registered candidate that was not promoted (what a reviewer compares with the champion).
CHALLENGER = "challenger"
#: Run artifact holding the out-of-sample probabilities the gate compares (origin, y_up, p).
GATE_FORECASTS = "gate_forecasts.csv"


@dataclass(frozen=True)
class Decision:
    promote: bool
    forced: bool
    reason: str
    value: float
    champion_value: float | None = None
    champion_version: str | None = None
    metric: str = ""
    comparison: ForecastComparison | None = None

    def summary(self) -> str:
        """One line saying which metric the gate scored and how it moved against the champion."""
        if self.champion_value is None:
            return f"gate metric {self.metric} = {self.value:.4f} (no champion before)"
        return (f"gate metric {self.metric} = {self.value:.4f} vs champion v{self.champion_version} "
                f"{self.champion_value:.4f} ({self.value - self.champion_value:+.4f})")


def _better(a: float, b: float, metric: str) -> bool:
    return a < b if metric in LOWER_IS_BETTER else a > b



def decide(metrics, primary: str, experiment: str, champion: dict | None, force: bool,
           comparison: ForecastComparison | None = None) -> Decision:
    """Whether a new model should become champion.

    Parameters
    ----------
    metrics : the backtest's metrics frame (index target, model).
    primary : ``<target>.<model>.<metric>``.
    experiment : name of the experiment the new model came from.
    champion : ``{"version", "value", "experiment", "primary_metric"}`` of the current champion, or None.
    force : promote regardless (the decision still says what the gate would have done).
    comparison : the paired test of this model against the champion on common origins; None (no champion, or one
        without stored forecasts): the champion is compared on its recorded ``value``.
    """
    target, model, metric = split_metric(primary)
    value = float(metrics.loc[(target, model), metric])
    reasons = []
    if math.isnan(value):
        reasons.append(f"{primary} is NaN")
    for baseline in BASELINES:
        if (target, baseline) not in metrics.index or baseline == model:
            continue
        base_value = float(metrics.loc[(target, baseline), metric])
        if not math.isnan(base_value) and not _better(value, base_value, metric):
            reasons.append(f"does not beat baseline {baseline} ({metric} {value:.4f} vs {base_value:.4f})")
    champ_value = champ_version = None
    if champion:
        champ_version, champ_value = champion["version"], float(champion["value"])
        if champion.get("experiment") != experiment or champion.get("primary_metric") != primary:
            reasons.append(f"champion v{champ_version} comes from experiment {champion.get('experiment')!r} "
                           f"scored on {champion.get('primary_metric')!r}: not comparable: force the "
                           "promotion to replace it (`regime train --force`)")
        elif comparison is not None:
            if not comparison.passes:
                reasons.append(f"does not beat champion v{champ_version} beyond noise: {comparison.why_not()} "
                               f"({comparison.summary()})")
        elif not _better(value, champ_value, metric):
            reasons.append(f"does not beat champion v{champ_version} ({metric} {value:.4f} vs {champ_value:.4f})")
    if comparison is not None and champion and not reasons:
        reason = f"beats its baselines and champion v{champ_version} ({comparison.summary()})"
    elif not reasons:
        reason = (f"beats its baselines and champion v{champ_version} ({value:.4f} vs {champ_value:.4f})"
                  if champion else "beats its baselines; no champion yet")
    if not reasons:
        return Decision(True, False, reason, value, champ_value, champ_version, primary, comparison)
    if force:
        return Decision(True, True, "forced although it " + "; ".join(reasons), value, champ_value,
                        champ_version, primary, comparison)
    return Decision(False, False, "; ".join(reasons), value, champ_value, champ_version, primary, comparison)


def current_champion(client, model_name: str) -> dict | None:
    """The champion's version, the tags recorded when it was registered and its training run, or None."""
    from mlflow.exceptions import MlflowException

    try:
        version = client.get_model_version_by_alias(model_name, CHAMPION)
    except MlflowException as exc:
        if lost_store(exc) is not None:  # an outage is not "no champion": the gate must not promote on it
            raise
        return None
    tags = version.tags or {}
    return {"version": version.version, "value": float(tags.get("primary_metric_value", "nan")),
            "experiment": tags.get("experiment"), "primary_metric": tags.get("primary_metric"),
            "run_id": tags.get("run_id") or version.run_id}


#: Model version tag: when the version last became champion (ISO 8601, UTC).
PROMOTED_AT = "promoted_at"


def champion_forecasts(client, champion: dict | None) -> pd.DataFrame | None:
    """The champion's stored out-of-sample forecasts (:data:`GATE_FORECASTS` of its run), or None without them."""
    from mlflow.exceptions import MlflowException

    if not champion or not champion.get("run_id"):
        return None
    import tempfile

    import pandas as pd

    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = client.download_artifacts(champion["run_id"], GATE_FORECASTS, tmp)
            return pd.read_csv(path, index_col="origin", parse_dates=["origin"])
    except (MlflowException, OSError) as exc:
        if isinstance(exc, MlflowException) and lost_store(exc) is not None:
            raise
        return None


def set_champion(client, model_name: str, version: str, attempts: int = 3) -> None:
    """Point ``@champion`` at ``version`` (retried: two trainings may set it at once, :func:`store.retry_race`)."""
    retry_race(lambda: client.set_registered_model_alias(model_name, CHAMPION, version), attempts)


def move_aliases(client, model_name: str, version: str, promote: bool) -> None:
    """After a gate decision on ``version``: ``@champion`` if promoted, else ``@challenger`` (unless it already
    is the champion, as when an identical model is retrained)."""
    from mlflow.exceptions import MlflowException

    if promote:
        set_champion(client, model_name, version)
        # when it became champion: `regime monitor` counts its live record from here
        client.set_model_version_tag(model_name, version, PROMOTED_AT,
                                     datetime.now(UTC).isoformat(timespec="seconds"))
        try:  # the champion is no longer a challenger
            if str(client.get_model_version_by_alias(model_name, CHALLENGER).version) == version:
                client.delete_registered_model_alias(model_name, CHALLENGER)
        except MlflowException as exc:
            if lost_store(exc) is not None:
                raise
        return
    champion = current_champion(client, model_name)
    if champion is None or str(champion["version"]) != version:
        client.set_registered_model_alias(model_name, CHALLENGER, version)
