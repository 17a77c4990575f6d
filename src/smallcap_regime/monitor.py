"""`regime monitor`: is the champion still looking at the world it was trained on, and how has it done live?

Drift (:mod:`.evaluation.drift`) compares the latest feature row and the last 12 months with the rows the model was
fitted on (origins whose target was realised by the end of its training data). The live record counts the calls
the model made after it became champion (``promoted_at`` tag; at the earliest the first month after its training
data ended) whose quarter has ended: right when the probability's side of the model's base rate matched the sign.
Both are logged to MLflow as metrics of the registered model (on a ``monitor`` run, linked to the version's logged
model) and as tags on the model version.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .dataset import build_dataset
from .errors import RegimeError
from .evaluation.drift import Drift, feature_drift
from .evaluation.record import forecast_window
from .experiment import load_experiment
from .explain import PROB
from .models.bundle import RegimeModel
from .models.skill import accuracy_text
from .names import TARGETS
from .workflow import default_experiment


@dataclass
class Monitor:
    """What `regime monitor` reports.

    Attributes
    ----------
    model : which model (``models:/name/version [note]``).
    version : registered version.
    drift : :class:`~smallcap_regime.evaluation.drift.Drift` of the latest features.
    since : first origin counted in the live record (month end).
    live : per target, the live calls: origin, p, base_rate, realised, right (NaN while pending).
    """

    model: str
    version: str
    drift: Drift
    since: pd.Timestamp
    live: dict[str, pd.DataFrame]

    def record(self, target: str) -> tuple[int, int, int]:
        """(right, realised, pending) live calls of ``target``."""
        calls = self.live[target]
        done = calls["right"].dropna()
        return int(done.sum()), len(done), len(calls) - len(done)

    def metrics(self) -> dict[str, float]:
        """What is logged to MLflow: ``drift.share_outside``, ``drift.psi.<family>``, ``drift.psi_max``,
        ``drift.psi_mean``, ``drift.high`` (0/1), ``live.<target>.calls_right`` / ``calls_made`` / ``calls_pending``."""
        out = {"drift.share_outside": self.drift.share_outside, "drift.high": float(self.drift.high),
               "drift.psi_mean": self.drift.psi_mean}
        out |= {f"drift.psi.{family}": float(v) for family, v in self.drift.psi.items()}
        if len(self.drift.psi):
            out["drift.psi_max"] = float(self.drift.psi.max())
        for target in TARGETS:
            right, made, pending = self.record(target)
            out |= {f"live.{target}.calls_right": float(right), f"live.{target}.calls_made": float(made),
                    f"live.{target}.calls_pending": float(pending)}
        return out

    def lines(self) -> list[str]:
        """The monitor in words."""
        d = self.drift
        lines = [f"drift at {d.as_of.date()} against the training rows {d.train_first.date()}.."
                 f"{d.train_last.date()}: {d.share_outside * 100:.0f} % of the features outside their training "
                 f"range, mean PSI {d.psi_mean:.2f}: drift {'HIGH' if d.high else 'not high'} (high: 10 % or more "
                 "outside; `regime predict` then warns)"]
        for name, row in d.outside.iterrows():
            lines.append(f"  outside: {name} = {row['value']:.4g} (trained on {row['train_min']:.4g}.."
                         f"{row['train_max']:.4g})")
        lines.append(f"live record since {self.since.date()} (calls made after promotion whose quarter has ended):")
        for target in TARGETS:
            right, made, pending = self.record(target)
            lines.append(f"  {target}: {accuracy_text(right, made)}" + (f", {pending} pending" if pending else "")
                         + ("" if made else " - no quarter has ended since promotion yet"))
        return lines

    def to_dict(self) -> dict[str, Any]:
        """``regime monitor --format json``."""
        from .export import history_rows, plain

        d = self.drift
        return plain({
            "model": self.model, "version": self.version, "as_of": d.as_of,
            "drift": {"share_outside": d.share_outside, "high": d.high, "psi_mean": d.psi_mean,
                      "outside": [{"feature": k, **v} for k, v in d.outside.to_dict("index").items()],
                      "psi": d.psi.to_dict(), "train_first": d.train_first, "train_last": d.train_last},
            "live": {"since": self.since, **{t: {"right": self.record(t)[0], "made": self.record(t)[1],
                                                 "pending": self.record(t)[2],
                                                 "calls": history_rows(self.live[t]).to_dict("records")}
                                             for t in TARGETS}},
        })


def load_model(uri: str) -> RegimeModel:
    """The registered model's :class:`~smallcap_regime.models.bundle.RegimeModel` (its record, maps and meta)."""
    import mlflow

    return mlflow.pyfunc.load_model(uri).unwrap_python_model().model


def logged_model_id(mv) -> str | None:
    """The id of the logged model a registered version was made from (MLflow 3: ``models:/m-...`` source)."""
    if getattr(mv, "model_id", None):
        return mv.model_id
    source = mv.source or ""
    return source.removeprefix("models:/") if source.startswith("models:/m-") else None


def monitor(home: Path, *, experiment: str | None = None, version: str | None = None,
            since: str | None = None, log: bool = True) -> Monitor:
    """Drift and live record of the champion (or ``version``); logged to MLflow unless ``log`` is False.

    Parameters
    ----------
    since : count live calls from this month (``2019-01``) instead of the promotion date.
    """
    import mlflow
    from mlflow import MlflowClient

    from .tracking import store
    from .tracking.registry import PROMOTED_AT
    from .tracking.serving import choose_model

    exp = load_experiment(experiment or default_experiment(home))
    choice = choose_model(home, exp.model_name, version=version)
    if experiment is None and choice.experiment and choice.experiment != exp.name:
        exp = load_experiment(choice.experiment)
    store.configure(home)  # choose_model may have read the home's registry without MLflow (the fast path)
    client = MlflowClient()
    mv = client.get_model_version(exp.model_name, choice.version)
    model = load_model(choice.uri)
    data = build_dataset(exp, home=home)
    features = data.features[model.features]
    data_last = pd.Timestamp(model.meta.get("data_last") or features.index[-1])
    trained = data.target("relative").loc[: data_last - pd.offsets.MonthEnd(exp.horizon)].dropna().index
    drift = feature_drift(features, features.loc[trained], data.spec.family_of())
    if since is not None:
        try:
            start = pd.Timestamp(since) + pd.offsets.MonthEnd(0)
        except ValueError:
            raise RegimeError(f"since {since!r} is not a month like 2019-01") from None
        if start <= data_last:
            raise RegimeError(f"since {since}: the model was trained on data to {data_last.date()}, so its calls "
                              "up to then are in-sample, not a live record; give a later month")
    else:
        promoted = (mv.tags or {}).get(PROMOTED_AT)
        stamp = pd.Timestamp(promoted) if promoted else pd.Timestamp(mv.creation_timestamp, unit="ms", tz="UTC")
        start = max(data_last + pd.offsets.MonthEnd(1), stamp.tz_localize(None) + pd.offsets.MonthEnd(0))
    rows = features.loc[start:]
    out = (model.predict(rows) if len(rows)
           else pd.DataFrame({PROB[t]: pd.Series(dtype="float64") for t in TARGETS}, index=rows.index))
    live = {}
    for target in TARGETS:
        p, base = out[PROB[target]].astype("float64"), model.maps[target].base_rate
        realised = data.target(target).reindex(rows.index)
        right = ((p > base) == (realised > 0)).astype("float64").where(realised.notna())
        live[target] = pd.DataFrame({"window": [forecast_window(t, exp.horizon) for t in rows.index], "p": p,
                                     "base_rate": base, "call": ["up" if x > base else "down" for x in p],
                                     "realised": realised, "right": right,
                                     "running_hit": right.expanding().mean().ffill()},
                                    index=rows.index.rename("origin"))
    result = Monitor(f"{choice.uri} [{choice.note}]", choice.version, drift, start, live)
    if log:
        metrics = result.metrics()
        experiment_id = store.retry_race(lambda: mlflow.set_experiment(exp.name).experiment_id)
        with mlflow.start_run(experiment_id=experiment_id, run_name=f"monitor v{choice.version}"):
            mlflow.set_tags({"monitor_of": choice.uri, "model_version": choice.version})
            mlflow.log_metrics(metrics, model_id=logged_model_id(mv))
        for key in ("drift.share_outside", "drift.high", "live.relative.calls_right", "live.relative.calls_made"):
            client.set_model_version_tag(exp.model_name, choice.version, f"monitor.{key}", repr(metrics[key]))
        client.set_model_version_tag(exp.model_name, choice.version, "monitor.as_of", str(drift.as_of.date()))
    return result
