"""What a reviewer reads in the MLflow UI: the headline metrics of a training run, its name, its comparison with
the champion, and the description of each model version.

The MLflow UI lists metric columns, compare rows and charts alphabetically, and its columns show about 17
characters of a name. The headline metrics are therefore short and numbered: the gate metric
(``[registry] primary_metric``, e.g. ``relative.lgbm_cal.brier_skill``) is ``0_gate_rel_brier_skill``, so it is the
first metric column, the first compare row and the first chart, and the others follow in a fixed order
(``1_rel_auc``, ...). They are rounded to 4 significant digits, which is all a reviewer reads and fits a
column. The parent run of a training holds only these; the ``backtest`` child holds every metric at full precision
under its plain ``<target>.<model>.<metric>`` name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..evaluation.headline import (  # noqa: F401  (re-exported: the headline set lives below tracking)
    DIGITS,
    HEADLINE,
    HEADLINE_NOTE,
    gate_name,
    headline,
    headline_names,
    headline_view,
    lower_is_better,
    rounded,
)
from .registry import Decision

#: Columns of the ``vs_champion`` table.
VS_COLUMNS = ("metric", "this run", "champion", "better?")


def run_name(experiment: str, study: str | None = None, trial: int | None = None, force: bool = False) -> str:
    """``train quickstart``, ``train quickstart (tuned: study S, trial N)``, ``... forced``: short and stable;
    the tuned values themselves are params and tags, never part of the name."""
    name = f"train {experiment}"
    if study:
        name += f" (tuned: study {study}" + (f", trial {trial})" if trial is not None else ")")
    return name + (" forced" if force else "")


def vs_champion(this: dict[str, float], champion: dict[str, float] | None, primary: str) -> pd.DataFrame:
    """``metric | this run | champion | better?`` over the headline metrics.

    ``better?`` is ``yes``/``no``/``equal`` for this run against the champion (lower is better for p-values and
    losses), ``no champion`` when there is none, ``n/a`` for buy-and-hold (the same market for every model).
    """
    rows = []
    for name in headline_names(primary):
        if name not in this:
            continue
        mine = this[name]
        theirs = (champion or {}).get(name, math.nan)
        if champion is None:
            verdict = "no champion"
        elif dict(HEADLINE).get(name, ("", "", ""))[1] == "strategy.buy_and_hold" or math.isnan(theirs):
            verdict = "n/a"
        elif math.isclose(mine, theirs, rel_tol=1e-12, abs_tol=1e-12):
            verdict = "equal"
        else:
            verdict = "yes" if (mine < theirs) == lower_is_better(name, primary) else "no"
        rows.append((name, mine, theirs, verdict))
    return pd.DataFrame(rows, columns=list(VS_COLUMNS))


def vs_champion_markdown(table: pd.DataFrame, champion_label: str) -> str:
    """The table as markdown (MLflow renders run and version descriptions as markdown)."""
    lines = [f"| metric | this run | {champion_label} | better? |", "|---|---:|---:|---|"]
    for row in table.itertuples(index=False):
        champ = "" if math.isnan(row[2]) else f"{row[2]:.{DIGITS}g}"
        lines.append(f"| `{row[0]}` | {row[1]:.{DIGITS}g} | {champ} | {row[3]} |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Trained:
    """What a version description says about the training that registered it."""

    experiment: str
    run_id: str
    params_source: str
    dataset: str
    fingerprint: str


def gate_tags(decision: Decision) -> dict[str, str]:
    """The gate decision as model-version tags, written once on the version the training registered."""
    return {"gate": decision.reason, "gate_promoted": str(decision.promote), "gate_forced": str(decision.forced),
            "gate_metric": decision.metric, "gate_value": repr(decision.value),
            "gate_champion_version": decision.champion_version or "none",
            "gate_champion_value": "none" if decision.champion_value is None else repr(decision.champion_value)}


def gate_test(decision: Decision) -> str:
    """What the gate tested, in words: the baselines, the champion's metric and, where both models' out-of-sample
    forecasts were compared origin by origin, the paired test's statistic, p-value and both scores."""
    champion = (f" and the champion v{decision.champion_version} ({decision.champion_value:.4f})"
                if decision.champion_version else " (no champion before)")
    text = (f"`{decision.metric}` = {decision.value:.4f} must beat every baseline of its target{champion} on the "
            "same out-of-sample folds")
    if decision.comparison is not None:
        text += f"; paired test against the champion: {decision.comparison.summary()}"
    return text


def version_description(trained: Trained, decision: Decision, table: pd.DataFrame) -> str:
    """Markdown for a model version: what was trained on which data, the gate's test and decision, vs champion."""
    outcome = ("promoted to @champion (forced)" if decision.forced else
               "promoted to @champion" if decision.promote else "not promoted")
    label = f"champion v{decision.champion_version}" if decision.champion_version else "champion"
    return "\n".join([
        f"Trained by run `{trained.run_id}` of experiment **{trained.experiment}**, parameters from "
        f"{trained.params_source}.",
        f"Data: {trained.dataset} (fingerprint `{trained.fingerprint[:16]}`).",
        f"Gate test: {gate_test(decision)}.",
        f"Gate decision at registration: **{outcome}**: {decision.reason}.",
        "Which version is champion now: the registered model's `@champion` alias (this text is not updated).", "",
        vs_champion_markdown(table, label)])


#: Experiment tag naming the gate metric of the experiment's latest training (its runs view sorts on it).
PRIMARY_TAG = "regime.primary_metric"


def experiment_view(tags: dict[str, str]) -> str:
    """The headline view of an experiment, for the gate metric its trainings recorded (default: the config's)."""
    from ..experiment import RegistrySection

    return headline_view(tags.get(PRIMARY_TAG) or RegistrySection().primary_metric)


def champion_metrics(client, champion: dict | None) -> dict[str, float] | None:
    """The headline metrics of the champion's training run (None without a champion or its run)."""
    from mlflow.exceptions import MlflowException

    if champion is None or not champion.get("run_id"):
        return None if champion is None else {}
    try:
        return dict(client.get_run(champion["run_id"]).data.metrics)
    except MlflowException:
        return {}


def record_version(client, model_name: str, version: str, registered: bool, run_id: str, decision: Decision,
                   trained: Trained, table: pd.DataFrame, facts: dict[str, str]) -> None:
    """Write the gate decision onto the version, once.

    A newly registered version gets ``facts`` (experiment, primary metric and its value, data source), the
    :func:`gate_tags` and its description. A version reused by an identical retrain keeps them untouched: that
    training's decision goes to its own tag ``gate_retrain.<run id>`` and a line appended to the description.
    Which version is champion lives only in the ``@champion`` alias.
    """
    if registered:
        for key, value in {**facts, "run_id": run_id, **gate_tags(decision)}.items():
            client.set_model_version_tag(model_name, version, key, value)
        client.update_model_version(model_name, version, description=version_description(trained, decision, table))
        return
    outcome = "promoted (forced)" if decision.forced else "promoted" if decision.promote else "not promoted"
    client.set_model_version_tag(model_name, version, "retrained_by_run_id", run_id)
    client.set_model_version_tag(model_name, version, f"gate_retrain.{run_id}", f"{outcome}: {decision.reason}")
    old = client.get_model_version(model_name, version).description or ""
    line = f"Retrained identically by run `{run_id}`: gate {outcome}: {decision.reason}."
    client.update_model_version(model_name, version, description=f"{old}\n\n{line}".strip())
