"""Plausible value ranges of features, derived from the lag table's ``range`` of each input series.

The served model rejects a request whose features fall outside these ranges (a 500 % yield, month 13, a flag of
7), so garbage in cannot quietly become a forecast. A feature's range follows from its formula: the formula
strings the families generate (``100 * (baa - aaa)``, ``x[t] - x[t-3], x = 100 * hy_oas``,
``100 * (cpi[t] / cpi[t-12] - 1)``) are evaluated with interval arithmetic over the input ranges; features whose
formula is not plain arithmetic (compounded returns, volatilities) get the bounds their unit implies (a
compounded return is >= -1, a volatility >= 0), or the bounds their definition states (``Feature.bounds``: a
percentile rank within 0..100, a z-score against a window that includes the value). ``log(...)`` of a positive
interval is allowed. Nothing here is tuned to data: every bound is a hard limit of the definition or of the lag
table.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass

from ..data.catalog import fred_specs
from ..data.schema import BOOK_TO_MARKET_COLUMNS
from .build import FeatureSpec
from .families import Feature

INF = math.inf
#: Bounds a unit implies when the formula is not plain arithmetic over ranged inputs.
UNIT_BOUNDS: dict[str, tuple[float, float]] = {
    "flag 0/1": (0.0, 1.0),
    "calendar month 1..12 (category)": (1.0, 12.0),
    "category 0..3": (0.0, 3.0),
    "unitless, [-1, 1]": (-1.0, 1.0),
    "decimal": (-1.0, INF),  # compounded returns and relative-strength ratios minus 1
    "decimal (<= 0)": (-1.0, 0.0),
    "annualised decimal": (0.0, INF),
    "ratio": (0.0, INF),
}
#: Market inputs (decimal returns) are >= -1; the bill yield implied by rf is a bill yield like DGS3MO's.
RETURN_INPUTS = ("small_ret", "large_ret", "rf", "mkt_excess_ret", "smb", "hml")
DERIVED_LIKE = {"yield_tbill_1m": "yield_3m"}
#: Aggregate book-to-market of a size quintile, ratio: a market-cap weighted mean of portfolio BE/ME, which the
#: parser accepts up to 500 (real extremes 0.1 to 48 for single portfolios); a quintile below 0.01 (book worth
#: 1 % of market value across a fifth of the market) is not a plausible input.
BTM_RANGE = (0.01, 500.0)


@dataclass(frozen=True)
class Interval:
    """A closed interval [lo, hi]; arithmetic treats each operand as an independent value in its interval."""

    lo: float
    hi: float

    def __add__(self, other: Interval) -> Interval:
        return Interval(self.lo + other.lo, self.hi + other.hi)

    def __sub__(self, other: Interval) -> Interval:
        return Interval(self.lo - other.hi, self.hi - other.lo)

    def __mul__(self, other: Interval) -> Interval:
        # 0 times an unbounded side is 0 here (a bound of 0 is exact), not NaN
        products = [0.0 if a == 0 or b == 0 else a * b for a in (self.lo, self.hi) for b in (other.lo, other.hi)]
        return Interval(min(products), max(products))

    def __truediv__(self, other: Interval) -> Interval:
        if other.lo <= 0 <= other.hi:
            raise ValueError("division by an interval containing 0")
        return self * Interval(1 / other.hi, 1 / other.lo)


def input_ranges() -> dict[str, Interval]:
    """Panel column -> plausible range: the lag table's ``range`` (widest over the series feeding a column)."""
    out: dict[str, Interval] = {}
    for spec in fred_specs():
        if spec.valid_range is None:
            continue
        lo, hi = spec.valid_range
        old = out.get(spec.name)
        out[spec.name] = Interval(min(lo, old.lo), max(hi, old.hi)) if old else Interval(lo, hi)
    for name in RETURN_INPUTS:
        out[name] = Interval(-1.0, INF)
    for name in BOOK_TO_MARKET_COLUMNS:  # aggregate BE/ME: within the bounds the parser accepts per portfolio
        out[name] = Interval(BTM_RANGE[0], BTM_RANGE[1])
    for name, like in DERIVED_LIKE.items():
        if like in out:
            out[name] = out[like]
    return out


def _evaluate(node: ast.AST, names: dict[str, Interval]) -> Interval:
    """Interval value of a formula's syntax tree: numbers, names, ``name[t-k]``, + - * / and parentheses."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, names)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return Interval(float(node.value), float(node.value))
    if isinstance(node, ast.Name):
        return names[node.id]
    if isinstance(node, ast.Subscript):  # x[t-k]: the same series at another month, an independent value
        return _evaluate(node.value, names)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "log"
            and len(node.args) == 1):  # natural log: increasing, defined for positive values
        inner = _evaluate(node.args[0], names)
        if inner.lo <= 0:
            raise ValueError("log of an interval reaching 0")
        return Interval(math.log(inner.lo), math.log(inner.hi))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Sub | ast.Mult | ast.Div):
        left, right = _evaluate(node.left, names), _evaluate(node.right, names)
        ops = {ast.Add: Interval.__add__, ast.Sub: Interval.__sub__, ast.Mult: Interval.__mul__,
               ast.Div: Interval.__truediv__}
        return ops[type(node.op)](left, right)
    raise ValueError(f"not plain arithmetic: {ast.dump(node)[:60]}")


def formula_range(formula: str, names: dict[str, Interval]) -> Interval | None:
    """Range of a generated formula (``expr`` or ``expr_of_x, x = inner``), or None if it is not arithmetic."""
    outer, _, inner = formula.partition(", x = ")
    scope = dict(names)
    try:
        if inner:
            scope["x"] = _evaluate(ast.parse(inner, mode="eval"), names)
        return _evaluate(ast.parse(outer, mode="eval"), scope)
    except (SyntaxError, KeyError, ValueError):
        return None


def feature_range(feature: Feature, names: dict[str, Interval] | None = None) -> tuple[float, float] | None:
    """``(lo, hi)`` a value of ``feature`` must lie in (either may be infinite), or None when nothing is known."""
    if feature.bounds is not None:
        return feature.bounds
    names = input_ranges() if names is None else names
    found = formula_range(feature.formula, names)
    if found is not None and (math.isfinite(found.lo) or math.isfinite(found.hi)):
        return found.lo, found.hi
    return UNIT_BOUNDS.get(feature.unit)


def plausible_ranges(spec: FeatureSpec) -> dict[str, tuple[float, float]]:
    """Feature name -> ``(lo, hi)`` for every feature of ``spec`` with a known range."""
    names = input_ranges()
    ranges = {f.name: feature_range(f, names) for f in spec.features}
    return {name: bounds for name, bounds in ranges.items() if bounds is not None}
