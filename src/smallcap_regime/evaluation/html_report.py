"""One self-contained HTML page per backtest or training run: the current forecast card, the record of past calls,
strategies, calibration, per-decade metrics and the drivers.

Every figure is an inline base64 PNG and the styles are inline, so the file opens from disk, as an e-mail
attachment or in MLflow's artifact view with no network and nothing beside it.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from ..card import LEGEND, forecast_lines, forecast_table
from ..data.cache import atomic_write_bytes
from ..explain import forecast_header
from ..features.rotation import rotation_status
from ..features.valuation import valuation_lines
from ..models.bundle import RegimeModel
from ..names import TARGETS
from ..values import Forecast
from .backtest import BacktestResult
from .plots import plot_beeswarm, plot_calibration, plot_regime_timeline, plot_strategies
from .record import forecast_window
from .report import identical_strategies

REPORT = "report.html"
#: (section id, heading) in page order: the structure tests and readers rely on.
SECTIONS = (
    ("forecast", "Current forecast"),
    ("timeline", "Past calls, right or wrong"),
    ("strategies", "Growth of 1: strategies vs buy-and-hold"),
    ("calibration", "Calibration"),
    ("decades", "Per-decade metrics"),
    ("drivers", "Drivers (SHAP beeswarm)"),
)
DECADE_COLUMNS = {"rows": "origins", "r2_oos": "R2_OS", "hit_rate": "P>0.5 hit rate",
                  "base_rate": "base rate",
                  "auc": "AUC", "brier_skill": "Brier skill"}
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 1.5em auto; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .6em 0; }
td, th { padding: .2em .7em; border-bottom: 1px solid #eee; white-space: nowrap; }
th { text-align: left; background: #f4f4f4; } td { text-align: right; }
.card { border: 1px solid #bbb; border-radius: 6px; padding: .8em 1.2em; background: #fafafa; }
.warn { color: #8a5a00; } .muted { color: #666; font-size: .9em; } img { max-width: 100%; }
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    """A DataFrame as an HTML table: counts as integers, other numbers with ``digits`` decimals."""
    shown = frame.copy()
    for name in shown.columns:
        column = shown[name]
        if pd.api.types.is_numeric_dtype(column) and column.dtype != bool:
            places = 0 if column.dropna().eq(column.dropna().round()).all() else digits
            shown[name] = column.map(lambda v, places=places: "-" if pd.isna(v) else f"{v:.{places}f}")
    return shown.to_html(escape=True, border=0)


def report_forecast(result: BacktestResult, model: RegimeModel, label: str) -> Forecast:
    """The model's forecast at the backtest's latest origin, as :func:`~smallcap_regime.workflow.forecast` gives."""
    exp = result.experiment
    rows = result.features.tail(model.smooth_k)  # a smoothed model averages the row with the ones before it
    row = rows.tail(1)
    when = row.index[0]
    valuation = valuation_lines(result.panel.frame, when, start=exp.validation.oos_start,
                                horizon_months=exp.horizon)
    return Forecast(when, model.predict(rows).iloc[-1], row.iloc[0], label, result.panel.source,
                    list(result.panel.notes), exp.horizon, forecast_window(when, exp.horizon), False, [],
                    exp.no_call_band, rotation_status(result.panel.frame, result.targets[f"relative_{exp.horizon}m"],
                                                      when, exp.horizon), *valuation)


def _card(fc: Forecast) -> str:
    # the card's indentation (records, drivers under their target) becomes a margin, not lost whitespace
    lines = "".join((f'<p style="margin-left:{(len(line) - len(line.lstrip())) * 0.6:g}em">' if line[:1] == " "
                     else "<p>") + f"{html.escape(line.strip())}</p>" for line in forecast_lines(fc))
    notes = "".join(f'<p class="warn">{html.escape(n)}</p>' for n in fc.notes + fc.warnings)
    return (f'<div class="card"><p><b>{html.escape(forecast_header(fc))}</b></p>'
            f"{_table(forecast_table(fc.output))}<p class=\"muted\">{html.escape(LEGEND)}</p>{lines}{notes}"
            f'<p class="muted">model: {html.escape(fc.model)}</p></div>')


def record_paragraphs(model: RegimeModel) -> str:
    """Each target's one accuracy figure under the timeline, worded as on the card and in history."""
    parts = [f"<p>{target}: {html.escape(record.accuracy_text())}"
             + ("" if record.has_skill else " (no demonstrated skill)") + "</p>"
             for target, record in model.skill.items()]
    return "".join(parts) + ('<p class="muted">The regime strip uses the card\'s rule: only targets with '
                             "demonstrated skill take part in the call.</p>")


def _decades(result: BacktestResult) -> str:
    parts = []
    metrics = result.decade_metrics.reset_index("decade")
    for target in TARGETS:
        frame = metrics[metrics.index == (target, "lgbm_cal")].set_index("decade")
        parts.append(f"<h3>{target} (calibrated LightGBM, out of sample)</h3>"
                     + _table(frame[list(DECADE_COLUMNS)].rename(columns=DECADE_COLUMNS)))
    h = result.experiment.horizon
    return "".join(parts) + ('<p class="muted">R2_OS against the prevailing mean; P&gt;0.5 hit rate = P &gt; 0.5 '
                             "vs the realised sign (not the card's calls against the base rate); "
                             "Brier skill against the expanding base rate; monthly origins share "
                             f"{h - 1} of their {h} months.</p>")


def write_report(result: BacktestResult, model: RegimeModel, out_dir: Path, *, label: str,
                 figures: dict[str, Path] | None = None) -> Path:
    """Write ``report.html`` (and its figures, as PNG files beside it) into ``out_dir``.

    Parameters
    ----------
    result : the backtest.
    model : the model fitted on all realised origins (the one training registers, or a backtest's own fit): it
        makes the forecast card and its TreeSHAP contributions draw the beeswarm.
    label : which model this is, shown on the card (e.g. ``models:/smallcap-regime/3`` or ``backtest fit``).
    figures : already drawn ``strategies``/``calibration``/``regimes`` PNGs (from ``save_backtest``) to reuse.

    Returns
    -------
    Path of the HTML file.
    """
    figures = dict(figures or {})
    h = result.experiment.horizon
    if "plot_strategies" not in figures:
        figures["plot_strategies"] = plot_strategies(result.strategy_returns, out_dir / "strategies.png")
    if "plot_calibration" not in figures:
        figures["plot_calibration"] = plot_calibration(result.oos, out_dir / "calibration.png")
    if "plot_regimes" not in figures:
        figures["plot_regimes"] = plot_regime_timeline(result.predictions, out_dir / "regimes.png", h)
    skilled = [t for t in TARGETS if model.has_skill(t)]
    points = {t: model.points(result.features, t) for t in skilled}
    drivers = (_img(plot_beeswarm(points, result.features, out_dir / "beeswarm.png"), "SHAP beeswarm")
               if points else "")
    unskilled = [t for t in TARGETS if t not in skilled]
    if unskilled:
        drivers += (f"<p>{' and '.join(unskilled)}: no demonstrated skill out of sample, so no drivers are shown "
                    "(its probability is the historical base rate).</p>")
    body = {
        "forecast": _card(report_forecast(result, model, label)),
        "timeline": _img(figures["plot_regimes"], "regime timeline") + record_paragraphs(model),
        "strategies": _img(figures["plot_strategies"], "growth of 1") + "".join(
            f'<p class="muted">{target}: {", ".join(same)} held the same position as buy-and-hold in every quarter '
            "(their lines lie under its line).</p>"
            for target in TARGETS if (same := identical_strategies(result, target))),
        "calibration": _img(figures["plot_calibration"], "calibration"),
        "decades": _decades(result),
        "drivers": drivers + ('<p class="muted">Each dot is one month end; its position is how many percentage '
                              "points the feature moved the calibrated probability (LightGBM TreeSHAP "
                              "contributions through the Platt map).</p>"),
    }
    exp, panel = result.experiment, result.panel
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = "".join(f'<section id="{sid}"><h2>{html.escape(title)}</h2>{body[sid]}</section>'
                       for sid, title in SECTIONS)
    page = (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>smallcap-regime: '
            f"{html.escape(exp.name)}</title><style>{STYLE}</style></head><body>"
            f"<h1>smallcap-regime report: {html.escape(exp.name)}</h1>"
            f'<p class="muted">{html.escape(panel.source)} data {panel.first.date()}..{panel.last.date()}, '
            f"out of sample from {exp.validation.oos_start.date()}, horizon {h} months; written {stamp}</p>"
            f"{sections}</body></html>")
    path = out_dir / REPORT
    atomic_write_bytes(path, page.encode("utf-8"))
    return path
