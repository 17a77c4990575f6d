"""Feature specs (``features/<name>.toml``) and the feature matrix built from the monthly panel.

A spec is declarative: a top-level ``description``, an optional ``[proxies]`` table (input -> why it stands in
for the live series) and one table per family (see :data:`~smallcap_regime.features.families.FAMILIES` for the
keys). A family can be switched off with ``enabled = false`` and a ``note`` saying why; any family may carry a
``note`` that the catalogue prints. Families not mentioned are not built. A switched-off family that keeps its
parameters is *held*: validated and listed as "off" (not model input), and :meth:`FeatureSpec.with_families`
turns it on, so an option can try it without a second spec file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..configs import load_config
from ..errors import ConfigError
from .families import FAMILIES, Feature, Key, known_inputs
from .ops import check_monthly_index

TOP_LEVEL_KEYS = ("description", "proxies")
#: Features are rounded to this many significant digits. Arithmetic leaves noise in the last bits
#: (``100 * (aaa[t] - aaa[t-1])`` gives 3.000000000000025 for 3 bp); LightGBM puts split thresholds at such values,
#: so noise that differs between two ways of building a row could send it down another branch. No input is known
#: to 10 digits, so rounding loses nothing.
SIGNIFICANT_DIGITS = 10


@dataclass(frozen=True)
class FeatureSpec:
    """A validated feature spec with its planned features.

    Attributes
    ----------
    name : str
        File stem (``default``, ``sample``).
    path : Path
        File it was read from.
    description : str
        Top-level ``description``.
    features : tuple of Feature
        Planned features, sorted by family (registry order) then name: the column order of
        :func:`build_features`.
    families : dict
        Enabled family -> validated parameters.
    notes : dict
        Family -> its ``note`` (for disabled families: why the family is unavailable).
    disabled : tuple of str
        Families switched off with ``enabled = false``.
    proxies : dict
        Input series -> explanation of what it stands in for.
    held : dict
        Switched-off families that keep validated parameters (a subset of ``disabled``): defined, not built.
    """

    name: str
    path: Path
    description: str
    features: tuple[Feature, ...]
    families: dict[str, dict[str, Any]]
    notes: dict[str, str]
    disabled: tuple[str, ...]
    proxies: dict[str, str]
    held: dict[str, dict[str, Any]] = field(default_factory=dict)

    def with_families(self, *names: str) -> FeatureSpec:
        """This spec with the held families ``names`` switched on (their features join in registry order).

        The result is named ``<spec>+<family>...`` (``default+valuation``) so runs and catalogues say which it is.

        Raises
        ------
        ConfigError
            A name is not a held family of this spec.
        """
        unknown = [n for n in names if n not in self.held]
        if unknown:
            held = ", ".join(self.held) or "none"
            raise ConfigError(f"{self.path}: [{unknown[0]}] is not a held (switched-off, configured) family; "
                              f"held: {held}")
        families = {**self.families, **{n: self.held[n] for n in names}}
        ordered = {f: families[f] for f in FAMILIES if f in families}
        return replace(self, name="+".join([self.name, *names]), features=_plan(ordered, str(self.path)),
                       families=ordered,
                       disabled=tuple(f for f in self.disabled if f not in names),
                       held={f: p for f, p in self.held.items() if f not in names})

    @property
    def names(self) -> list[str]:
        """Feature names in column order."""
        return [f.name for f in self.features]

    @property
    def categorical(self) -> list[str]:
        """Features holding integer category codes (month, presidential-cycle year).

        They reach LightGBM as ordinary numbers (split as ordered values); the same calendar facts also enter as
        sin/cos and 0/1 flag features, which carry their cyclic and categorical views.
        """
        return [f.name for f in self.features if f.categorical]

    def family_of(self) -> dict[str, str]:
        """Feature name -> family."""
        return {f.name: f.family for f in self.features}


def _check_value(value: Any, key: Key, label: str) -> Any:
    """Validate one TOML value against its :class:`Key`; return it normalised (lists become tuples)."""

    def integer(x: Any) -> bool:
        return isinstance(x, int) and not isinstance(x, bool) and x >= key.min_value

    def known(x: Any) -> bool:
        return isinstance(x, str) and x in known_inputs()

    if key.kind == "column":
        if not known(value):
            raise ConfigError(f"{label}: unknown panel column {value!r}; known: {', '.join(sorted(known_inputs()))}")
    elif key.kind == "columns":
        if not isinstance(value, list) or not value or len(set(map(str, value))) != len(value):
            raise ConfigError(f"{label}: must be a non-empty list of distinct panel columns, got {value!r}")
        for item in value:
            _check_value(item, Key("column"), label)
    elif key.kind == "months":
        ok = isinstance(value, list) and value and all(map(integer, value)) and len(set(value)) == len(value)
        if not ok:
            raise ConfigError(
                f"{label}: must be a non-empty list of distinct integers >= {key.min_value} (months), got {value!r}"
            )
    elif key.kind == "month":
        if not integer(value):
            raise ConfigError(f"{label}: must be an integer >= {key.min_value} (months), got {value!r}")
    elif key.kind == "positive":
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{label}: must be a number > 0, got {value!r}")
    elif key.kind == "choice":
        if value not in key.choices:
            raise ConfigError(f"{label}: must be one of {', '.join(map(repr, key.choices))}, got {value!r}")
    return tuple(value) if isinstance(value, list) else value


def _family_section(section: Any, family: str, where: str) -> tuple[dict[str, Any] | None, str, bool]:
    """Validate one family table; return (parameters or None if it has none, note, enabled).

    A disabled family with parameters (held back) has them validated like an enabled one.
    """
    prefix = f"{where} [{family}]:"
    if not isinstance(section, dict):
        raise ConfigError(f"{prefix} must be a table, got {section!r}")
    keys = FAMILIES[family].keys
    allowed = (*keys, "enabled", "note")
    for name in section:
        if name not in allowed:
            raise ConfigError(f"{prefix} unknown key {name!r}; expected one of: {', '.join(allowed)}")
    enabled, note = section.get("enabled", True), section.get("note", "")
    if not isinstance(enabled, bool):
        raise ConfigError(f"{prefix} enabled: must be true or false, got {enabled!r}")
    if not isinstance(note, str):
        raise ConfigError(f"{prefix} note: must be a string, got {note!r}")
    if not enabled:
        if not note.strip():
            raise ConfigError(f"{prefix} enabled = false needs a 'note' saying why the family is unavailable")
        if not set(section) - {"enabled", "note"}:
            return None, note, False
    params: dict[str, Any] = {}
    for name, key in keys.items():
        if name in section:
            params[name] = _check_value(section[name], key, f"{prefix} {name}")
        elif key.required:
            raise ConfigError(f"{prefix} missing required key {name!r}")
    try:
        FAMILIES[family].rules(params)
    except ConfigError as exc:
        raise ConfigError(f"{prefix} {exc}") from None
    return params, note, enabled


def _proxies(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} [proxies]: must be a table of input = \"explanation\", got {raw!r}")
    for name, text in raw.items():
        if name not in known_inputs():
            known = ", ".join(sorted(known_inputs()))
            raise ConfigError(f"{where} [proxies]: unknown panel column {name!r}; known: {known}")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(f"{where} [proxies]: {name}: must be a non-empty explanation string, got {text!r}")
    return dict(raw)


def parse_feature_spec(raw: Mapping[str, Any], path: Path) -> FeatureSpec:
    """Validate a parsed TOML dict and plan its features; errors name ``path`` and the offending key."""
    where = str(path)
    for name, value in raw.items():
        if name in TOP_LEVEL_KEYS or name in FAMILIES:
            continue
        if isinstance(value, dict):
            raise ConfigError(f"{where}: unknown family [{name}]; expected one of: {', '.join(FAMILIES)}")
        raise ConfigError(f"{where}: unknown top-level key {name!r}; expected 'description', [proxies] or a family")
    description = raw.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ConfigError(f"{where}: missing required key 'description' (a non-empty string)")

    families: dict[str, dict[str, Any]] = {}
    held: dict[str, dict[str, Any]] = {}
    notes: dict[str, str] = {}
    disabled: list[str] = []
    for family in FAMILIES:  # registry order = column order
        if family not in raw:
            continue
        params, note, enabled = _family_section(raw[family], family, where)
        if note:
            notes[family] = note
        if not enabled:
            disabled.append(family)
            if params is not None:
                held[family] = params
            continue
        assert params is not None  # an enabled family always has its validated parameters
        families[family] = params
    features = _plan(families, where)
    return FeatureSpec(
        name=path.stem,
        path=path,
        description=description.strip(),
        features=features,
        families=families,
        notes=notes,
        disabled=tuple(disabled),
        proxies=_proxies(raw.get("proxies", {}), where),
        held=held,
    )


def _plan(families: Mapping[str, Mapping[str, Any]], where: str) -> tuple[Feature, ...]:
    """Features of the enabled families in column order (registry order, then name); names must be unique."""
    features: list[Feature] = []
    for family, params in families.items():
        features += sorted((replace(f, family=family) for f in FAMILIES[family].plan(params)), key=lambda f: f.name)
    if not features:
        raise ConfigError(f"{where}: no enabled family; configure at least one of: {', '.join(FAMILIES)}")
    seen: dict[str, str] = {}
    for feature in features:
        if feature.name in seen:
            raise ConfigError(
                f"{where}: feature {feature.name!r} is produced by both [{seen[feature.name]}] and [{feature.family}]"
            )
        seen[feature.name] = feature.family
    return tuple(features)


def load_feature_spec(name_or_path: str | Path) -> FeatureSpec:
    """Load ``features/<name>.toml`` (or a path) as a validated :class:`FeatureSpec`.

    Raises
    ------
    ConfigError
        File missing or invalid TOML; unknown family or key; missing required key; bad window or column.
    """
    raw, path = load_config("features", name_or_path)
    return parse_feature_spec(raw, path)


def build_features(panel: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Feature matrix from the monthly point-in-time panel.

    Parameters
    ----------
    panel : DataFrame
        Index = consecutive month ends; row t holds only what was published by t. Missing columns are allowed.
    spec : FeatureSpec
        Features to build.

    Returns
    -------
    DataFrame
        float64, the panel's index, one column per feature in ``spec.names`` order; a feature at t depends on
        panel rows <= t only. Features from missing inputs are NaN, never 0. Category codes stay numeric
        (``spec.categorical``). Values are rounded to :data:`SIGNIFICANT_DIGITS` significant digits.
    """
    check_monthly_index(panel, "build_features")
    frame = pd.DataFrame({f.name: f.compute(panel) for f in spec.features}, index=panel.index)
    return round_significant(frame.astype("float64"))


def round_significant(frame: pd.DataFrame, digits: int = SIGNIFICANT_DIGITS) -> pd.DataFrame:
    """``frame`` with every finite non-zero value rounded to ``digits`` significant digits (NaN, inf, 0 kept)."""
    values = frame.to_numpy(dtype="float64")
    finite = np.isfinite(values) & (values != 0)
    # round each value at the decimal place its own magnitude calls for (vectorised per distinct place)
    exponent = np.floor(np.log10(np.abs(values, where=finite, out=np.ones_like(values))))
    decimals = (digits - 1 - exponent).astype(int)
    rounded = values.copy()
    for d in np.unique(decimals[finite]):
        mask = finite & (decimals == d)
        rounded[mask] = np.round(values[mask], d)
    return pd.DataFrame(rounded, index=frame.index, columns=frame.columns)
