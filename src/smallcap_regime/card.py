"""The forecast card in words a portfolio manager can act on: the regime from the targets with demonstrated skill,
the rotation status with its record, each target against its base rate with its one accuracy figure (calls against
the base rate, right N of M) and its drivers in words, three pushing up and three pushing down; and the record of
past calls for `regime history`.

Plain text (no markup): the CLI prints it, the HTML report embeds it, tests read it. The helpers it shares with the
older wording (percent, base-rate tilt, the header) stay in :mod:`.explain`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from .explain import EVENTS, PROB, has_skill, pct, tilt
from .models.drivers import split
from .models.regime import NO_CALL
from .models.skill import HIT_LABEL, NO_SKILL, accuracy_text
from .names import TARGETS, output_column

if TYPE_CHECKING:
    from .values import Forecast

LEGEND = ("relative = small-cap minus large-cap return; absolute = small-cap return; P = probability it is > 0; "
          "hist. = no demonstrated skill: the historical base rate and mean")



def forecast_table(output: pd.Series) -> pd.DataFrame:
    """Per target: P(> 0), its base rate, the point forecast and the interval, all in percent (text cells).

    A target without demonstrated skill has no forecast of its own: its row shows the base rate and the
    historical mean with the interval around it, marked ``hist.``.
    """
    coverage = output.get("relative_interval_coverage", float("nan"))
    interval = f"{coverage * 100:.0f} % interval" if not math.isnan(coverage) else "interval"
    rows = {}
    for target in TARGETS:
        mark = "" if has_skill(output, target) else " hist."
        lo, hi = output[output_column(target, "lo")] * 100, output[output_column(target, "hi")] * 100
        rows[target] = {
            "P(> 0)": pct(output[PROB[target]]) + mark,
            "base rate": pct(output.get(output_column(target, "base_rate"), float("nan"))),
            "forecast": pct(output[output_column(target, "forecast")], signed=True) + mark,
            interval: "-" if math.isnan(lo) else f"{lo:+.1f} .. {hi:+.1f} %"}
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("target")


def _known(value) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def record_line(output: pd.Series, target: str, skilled: bool = True) -> str | None:
    """The target's one accuracy figure (calls against the base rate, right N of M), with, for a target with skill,
    how calls of this kind fared, and AUC, Brier skill and the P>0.5 hit rate; None without a record."""
    made = output.get(output_column(target, "calls_made_all"))
    if not _known(made):
        return None
    text = (f"out of sample, {accuracy_text(int(output[f'{target}_calls_right_all']), int(made))}; AUC "
            f"{output[f'{target}_auc']:.2f}, Brier skill {output[f'{target}_brier_skill']:+.3f}, {HIT_LABEL} "
            f"{pct(output[f'{target}_hit_rate'])}")
    if not skilled:
        return text
    kind = "above" if output[PROB[target]] > output[output_column(target, "base_rate")] else "at or below"
    right, like = int(output[output_column(target, "calls_right")]), int(output[output_column(target, "calls_made")])
    return text + f"; of them, calls {kind} the base rate like this one: right {right} of {like}"


def driver_lines(output: pd.Series, target: str, prefix: str = "  ") -> list[str]:
    """``pushing up: ...`` and ``pushing down: ...``, one driver per line, in words."""
    lines = []
    for side, word in (("up", "up"), ("down", "down")):
        drivers = split(output.get(output_column(target, f"drivers_{side}"), ""))
        if drivers:
            lines.append(f"{prefix}pushing P {word}:")
            lines += [f"{prefix}  {d}" for d in drivers]
    return lines


def target_lines(output: pd.Series, target: str, band: float) -> list[str]:
    """What the forecast says about one target, its record and its drivers (none without demonstrated skill)."""
    p, base = output[PROB[target]], output.get(output_column(target, "base_rate"), float("nan"))
    head = f"{target}: P({EVENTS[target]}) {pct(p)}"
    record = record_line(output, target, skilled=has_skill(output, target))
    if not has_skill(output, target):
        return ([f"{target}: {NO_SKILL}, P({EVENTS[target]}) = {pct(base)}; the forecast shown is the historical "
                 "mean"] + ([f"  {record}"] if record else []))
    lines = [f"{head} vs base rate {pct(base)}: {tilt(p, base, band)}" if not math.isnan(base) else head]
    if record:
        lines.append(f"  {record}")
    return lines + driver_lines(output, target)


def regime_line(output: pd.Series) -> str:
    """The regime and what it rests on: which targets have skill, and that the others are their base rates."""
    skilled = [t for t in TARGETS if has_skill(output, t)]
    unskilled = [t for t in TARGETS if t not in skilled]
    if not skilled:
        return (f"regime: {output['regime']} (neither target has demonstrated skill: both are their base "
                "rates)")
    basis = f"from {' and '.join(skilled)}, read against {'its' if len(skilled) == 1 else 'each'} base rate"
    if output["regime"] == NO_CALL:
        basis += f", leaning {output['regime_leaning']} but inside the no-call band"
    if unskilled:
        basis += (f"; {unskilled[0]} has no demonstrated skill: that side is its base rate, "
                  f"P({EVENTS[unskilled[0]]}) {pct(output[PROB[unskilled[0]]])}")
    return f"regime: {output['regime']} ({basis})"


def forecast_lines(fc: Forecast) -> list[str]:
    """The whole forecast in words, after the table: regime, then each target's reading, record and drivers."""
    lines = [regime_line(fc.output)]
    rotation = getattr(fc, "rotation", None)
    if rotation is not None:
        lines.append(rotation.line())
    for target in TARGETS:
        lines += target_lines(fc.output, target, fc.no_call_band)
    reading, record = getattr(fc, "valuation", ""), getattr(fc, "valuation_record", "")
    if reading:  # a descriptive indicator with its own record, whatever the models read
        lines.append(f"valuation (descriptive): {reading}")
        if record:
            lines.append(f"  record of this reading, out of sample {record}")
    return lines


def history_table(calls: pd.DataFrame) -> pd.DataFrame:
    """:func:`~smallcap_regime.evaluation.record.past_calls` as text cells in percent, one row per forecast window
    (the call was made at the month end before it), pending calls marked; fits 80 columns."""
    return pd.DataFrame({
        "P(> 0)": calls["p"].map(pct).to_numpy(), "base": calls["base_rate"].map(pct).to_numpy(),
        "call": calls["call"].to_numpy(), "realised": calls["realised"].map(lambda x: pct(x, signed=True)).to_numpy(),
        "result": calls["right"].map(lambda x: "pending" if math.isnan(x) else ("right" if x else "wrong")).to_numpy(),
        "right so far": calls["running_hit"].map(pct).to_numpy(),
    }, index=pd.Index(calls["window"], name="forecast for"))


def history_summary(calls: pd.DataFrame, horizon: int) -> str:
    """How many of the listed calls were right (the accuracy figure the card and the report print), how many are
    pending, the regimes called over the range (the card's rule), and how to read the table."""
    realised = calls["right"].dropna()
    if calls.empty:
        return "no out-of-sample calls in this range"
    text = (f"{len(calls)} calls {calls.index[0].date()}..{calls.index[-1].date()}, "
            f"{accuracy_text(int(realised.sum()), len(realised))}")
    pending = len(calls) - len(realised)
    text += f", {pending} pending" if pending else ""
    if "regime" in calls:
        counts = calls["regime"].dropna().value_counts()
        text += ". regime called (the card's rule): " + ", ".join(f"{name} {n}" for name, n in counts.items())
    return (text + ". right so far: the same figure over every out-of-sample call up to that one. Calls a month "
            f"apart share {horizon - 1} of their {horizon} months, so neighbours often share an outcome.")
