"""A forecast in words a portfolio manager can act on: which months, in percent, against the base rate, with the
model's out-of-sample record, and "no demonstrated skill" where calibration has flattened a target to history.

Plain text (no markup): the CLI prints it, the HTML report embeds it, tests read it.
"""

from __future__ import annotations

import math

import pandas as pd

from .models.skill import NO_SKILL
from .names import PROB_COLUMN, TARGETS, output_column
from .values import Forecast

EVENTS = {"relative": "small caps beat large caps", "absolute": "small caps rise"}
PROB = PROB_COLUMN
LEGEND = "relative = small-cap minus large-cap return; absolute = small-cap return; P = probability it is > 0"


def pct(x: float, signed: bool = False, digits: int = 1) -> str:
    """A decimal as percent: ``0.0123`` -> ``1.2 %`` (``+1.2 %`` when ``signed``); NaN -> ``-``."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x * 100:{'+' if signed else ''}.{digits}f} %"


def has_skill(output: pd.Series, target: str) -> bool:
    """Whether the model's record shows skill for ``target`` (True for a model trained without a record)."""
    value = output.get(output_column(target, "has_skill"))
    return True if value is None or (isinstance(value, float) and math.isnan(value)) else bool(value)


def tilt(p: float, base: float, band: float) -> str:
    """Plain-language reading of a probability against its base rate (``band``: the no-call half-width)."""
    points = (p - base) * 100
    if abs(points) < band * 100:
        return f"no call: within {band * 100:.0f} points of the base rate"
    side = ("up", "above") if points > 0 else ("down", "below")
    return f"leans {side[0]}: {abs(points):.1f} points {side[1]} normal"


def forecast_table(output: pd.Series) -> pd.DataFrame:
    """Per target: P(> 0), its base rate, the point forecast and the interval, all in percent (text cells)."""
    coverage = output.get("relative_interval_coverage", float("nan"))
    interval = f"{coverage * 100:.0f} % interval" if not math.isnan(coverage) else "interval"
    rows = {}
    for target in TARGETS:
        rows[target] = {
            "P(> 0)": pct(output[PROB[target]]),
            "base rate": pct(output.get(output_column(target, "base_rate"), float("nan"))),
            "forecast": pct(output[output_column(target, "forecast")], signed=True),
            interval: (f"{pct(output[output_column(target, 'lo')], True)} .. "
                       f"{pct(output[output_column(target, 'hi')], True)}")}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("target")


def record_line(output: pd.Series, target: str, skilled: bool = True) -> str | None:
    """The out-of-sample record (and, for a target with skill, of calls like this one); None without a record."""
    made = output.get(output_column(target, "calls_made"))
    if made is None or (isinstance(made, float) and math.isnan(made)):
        return None
    hit, auc = output[output_column(target, "hit_rate")], output[output_column(target, "auc")]
    text = (f"out of sample: hit rate {pct(hit)}, AUC {auc:.2f}, "
            f"Brier skill {output[output_column(target, 'brier_skill')]:+.3f}")
    if not skilled:
        return text
    kind = "above" if output[PROB[target]] > output[output_column(target, "base_rate")] else "at or below"
    right, made = int(output[output_column(target, "calls_right")]), int(made)
    share = f" ({right / made * 100:.0f} %)" if made else ""
    return f"{text}; calls {kind} the base rate were right {right} of {made} times{share}"


def target_lines(output: pd.Series, target: str, band: float) -> list[str]:
    """What the forecast says about one target, its record and its drivers (none without demonstrated skill)."""
    p, base = output[PROB[target]], output.get(output_column(target, "base_rate"), float("nan"))
    head = f"{target}: P({EVENTS[target]}) {pct(p)}"
    record = record_line(output, target, skilled=has_skill(output, target))
    if not has_skill(output, target):
        return [f"{target}: {NO_SKILL}, P({EVENTS[target]}) = {pct(base)}"] + ([f"  {record}"] if record else [])
    lines = [f"{head} vs base rate {pct(base)}: {tilt(p, base, band)}" if not math.isnan(base) else head]
    if record:
        lines.append(f"  {record}")
    if output.get(output_column(target, "drivers")):
        lines.append(f"  drivers: {output[output_column(target, 'drivers')]}")
    return lines


def forecast_lines(fc: Forecast) -> list[str]:
    """The whole forecast in words, after the table: regime, then each target's reading, record and drivers."""
    o = fc.output
    unskilled = [t for t in TARGETS if not has_skill(o, t)]
    if unskilled:
        reason = (f"{' and '.join(unskilled)} {'has' if len(unskilled) == 1 else 'have'} no demonstrated skill, "
                  "so the regime cannot be called")
    else:
        reason = f"leaning {o['regime_leaning']}; each probability read against its base rate"
    lines = [f"regime: {o['regime']} ({reason})"]
    for target in TARGETS:
        lines += target_lines(o, target, fc.no_call_band)
    reading, record = getattr(fc, "valuation", ""), getattr(fc, "valuation_record", "")
    if reading:  # a descriptive indicator with its own record, whatever the models read
        lines.append(f"valuation (descriptive): {reading}")
        if record:
            lines.append(f"  record of this reading, out of sample {record}")
    return lines


def forecast_header(fc: Forecast) -> str:
    return (f"forecast made at {fc.as_of.date()} for {fc.window} (the next {fc.horizon} months, "
            f"{fc.source} data)")


def history_table(calls: pd.DataFrame) -> pd.DataFrame:
    """:func:`~smallcap_regime.evaluation.record.past_calls` as text cells in percent, one row per forecast window
    (the call was made at the month end before it), pending calls marked; fits 80 columns."""
    return pd.DataFrame({
        "P(> 0)": calls["p"].map(pct).to_numpy(), "base": calls["base_rate"].map(pct).to_numpy(),
        "call": calls["call"].to_numpy(), "realised": calls["realised"].map(lambda x: pct(x, signed=True)).to_numpy(),
        "result": calls["right"].map(lambda x: "pending" if math.isnan(x) else ("right" if x else "wrong")).to_numpy(),
        "hit rate": calls["running_hit"].map(pct).to_numpy(),
    }, index=pd.Index(calls["window"], name="forecast for"))


def history_summary(calls: pd.DataFrame, horizon: int) -> str:
    """One line: how many of the listed calls were right, how many are pending, and how to read the hit rate."""
    realised = calls["right"].dropna()
    if calls.empty:
        return "no out-of-sample calls in this range"
    text = (f"{len(calls)} calls {calls.index[0].date()}..{calls.index[-1].date()}: right {int(realised.sum())} "
            f"of {len(realised)} realised" + (f" ({realised.mean() * 100:.0f} %)" if len(realised) else ""))
    pending = len(calls) - len(realised)
    return (text + (f", {pending} pending" if pending else "")
            + f". hit rate: share right of all out-of-sample calls up to that one. Calls a month apart share "
              f"{horizon - 1} of their {horizon} months, so neighbours often share an outcome.")
