"""Feature catalogue (name, formula, sources, publication lag, unit, proxy notes) and data coverage.

Publication lags are copied from the live lag table ``data/series.toml`` (the same table the panel uses), so the
catalogue states when each input is known in live use; market data (returns, factors, daily variances) are known
at their own month end.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..data.catalog import fred_specs, load_catalog
from ..data.schema import BOOK_TO_MARKET_COLUMNS, panel_columns
from .build import FeatureSpec
from .families import DERIVED, FAMILIES, Feature
from .labels import plain_name

MARKET_COLUMNS = ("small_ret", "large_ret", "rf", "mkt_excess_ret", "smb", "hml", "small_rvar", "large_rvar",
                  "n_days")
SHORT_INTEREST_COLUMNS = ("si_iwm_days_to_cover", "si_spy_days_to_cover", "si_iwm_short_shares",
                          "si_spy_short_shares")
CALENDAR_LAG = "none (calendar, known in advance)"


def input_lags() -> dict[str, str]:
    """Panel column -> publication lag text from the live lag table, fallbacks included.

    E.g. ``yield_10y`` -> ``"1d (DGS10) or 1m (GS10, fallback)"``; returns -> ``"0d, market prices"``.
    """
    table = load_catalog()
    lags = {name: f"{table['french']['lag']}, market prices" for name in MARKET_COLUMNS}
    lags |= {name: f"{table['finra']['lag']} (FINRA, after the settlement date)" for name in SHORT_INTEREST_COLUMNS}
    lags |= {name: f"{table['french']['lag']}, market prices; book equity of fiscal year t-1 from the June t "
                   "formation (public by then)" for name in BOOK_TO_MARKET_COLUMNS}
    by_name: dict[str, list[tuple[int, str, str]]] = {}
    for spec in fred_specs():
        by_name.setdefault(spec.name, []).append((spec.priority, spec.series_id, spec.lag))
    for name, entries in by_name.items():
        lags[name] = " or ".join(
            f"{lag} ({series_id}{'' if prio == 1 else ', fallback'})" for prio, series_id, lag in sorted(entries)
        )
    return lags


def source_series(feature: Feature) -> list[str]:
    """Panel columns a feature reads (derived inputs resolved to their panel columns)."""
    sources: list[str] = []
    for name in feature.inputs:
        for column in DERIVED[name].inputs if name in DERIVED else (name,):
            if column not in sources:
                sources.append(column)
    return sources


def _lag_text(sources: list[str], lags: dict[str, str]) -> str:
    """One lag if all sources share it, else ``source: lag`` per source."""
    if not sources:
        return CALENDAR_LAG
    texts = [lags.get(s, "unknown") for s in sources]
    if len(set(texts)) == 1:
        return texts[0]
    return "; ".join(f"{s}: {text}" for s, text in zip(sources, texts, strict=True))


def _notes(feature: Feature, spec: FeatureSpec) -> tuple[list[str], list[str]]:
    """(proxied inputs of the feature, other notes: derived-input definitions and the feature's caveat)."""
    proxied = [name for name in feature.inputs if name in spec.proxies]
    derived = [f"{name} = {DERIVED[name].description}" for name in feature.inputs if name in DERIVED]
    return proxied, [*derived, *filter(None, [feature.note])]


def feature_catalogue(spec: FeatureSpec) -> list[dict[str, Any]]:
    """One dict per feature, in column order.

    Keys: ``name``, ``plain_name`` (how the card words it, :func:`.labels.plain_name`), ``family``, ``formula``,
    ``source_series`` (panel columns), ``publication_lag``, ``unit``,
    ``note`` (``PROXY`` explanations from the spec's [proxies], derived inputs, caveats), ``proxy`` (bool),
    ``categorical`` (bool).
    """
    lags = input_lags()
    rows = []
    for feature in spec.features:
        proxied, others = _notes(feature, spec)
        sources = source_series(feature)
        rows.append(
            {
                "name": feature.name,
                "plain_name": plain_name(feature.name)[0],
                "family": feature.family,
                "formula": feature.formula,
                "source_series": sources,
                "publication_lag": _lag_text(sources, lags),
                "unit": feature.unit,
                "note": "; ".join([*(f"PROXY {name}: {spec.proxies[name]}" for name in proxied), *others]),
                "proxy": bool(proxied),
                "categorical": feature.categorical,
            }
        )
    return rows


def coverage(features: pd.DataFrame, spec: FeatureSpec | None = None) -> pd.DataFrame:
    """Per-feature data coverage.

    Returns
    -------
    DataFrame
        Indexed by feature: ``first_valid``, ``last_valid`` (NaT if never valid), ``share_missing`` (fraction of
        rows that are NaN, 0..1); plus ``family`` when ``spec`` is given.
    """
    dates = features.index.dtype
    out = pd.DataFrame(
        {
            "first_valid": pd.Series({c: features[c].first_valid_index() for c in features}, dtype=dates),
            "last_valid": pd.Series({c: features[c].last_valid_index() for c in features}, dtype=dates),
            "share_missing": features.isna().mean(),
        },
        index=pd.Index(features.columns, name="feature"),
    )
    if spec is not None:
        out.insert(0, "family", pd.Series(spec.family_of()).reindex(out.index))
    return out


def family_coverage(features: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Per-family coverage: ``n_features``, earliest ``first_valid``, ``all_started`` (latest first-valid date,
    from which every feature of the family has data), latest ``last_valid``, mean ``share_missing``."""
    per_feature = coverage(features, spec)
    grouped = per_feature.groupby("family", sort=False)
    return pd.DataFrame(
        {
            "n_features": grouped.size(),
            "first_valid": grouped["first_valid"].min(),
            "all_started": grouped["first_valid"].max(),
            "last_valid": grouped["last_valid"].max(),
            "share_missing": grouped["share_missing"].mean(),
        }
    )


def _cell(value: Any) -> str:
    """Markdown table cell: lists joined, dates as YYYY-MM ('never' if missing), floats (shares) in percent."""
    if isinstance(value, list):
        value = ", ".join(value)
    if value is pd.NaT:
        return "never"
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m")
    if isinstance(value, float):
        return f"{100 * value:.1f} %"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return lines


def catalogue_markdown(spec: FeatureSpec, features: pd.DataFrame | None = None) -> str:
    """The catalogue as markdown: families (with unavailable ones and why), inputs, proxies, one row per feature.

    With ``features`` (the output of ``build_features``), coverage columns are added: first month with data and
    the share of missing rows.
    """
    lines = [f"# Feature catalogue: {spec.name}", "", spec.description, "",
             f"{len(spec.features)} features. A feature at month end t uses only data published by t.", ""]
    cov = coverage(features, spec) if features is not None else None
    fam_cov = family_coverage(features, spec) if features is not None else None

    lines += ["## Families", ""]
    header = ["family", "features", "status", "note"]
    if fam_cov is not None:
        header += ["first valid", "all started", "missing"]
    rows = []
    for family in (f for f in FAMILIES if f in spec.families or f in spec.disabled):
        n = sum(f.family == family for f in spec.features)
        status = "off (held back)" if family in spec.held else "unavailable" if family in spec.disabled else "built"
        row: list[Any] = [family, str(n), status, spec.notes.get(family, "")]
        if fam_cov is not None:
            row += (list(fam_cov.loc[family, ["first_valid", "all_started", "share_missing"]])
                    if family in fam_cov.index else ["", "", ""])
        rows.append(row)
    lines += [*_table(header, rows), ""]

    lags = input_lags()
    used = list(dict.fromkeys(column for feature in spec.features for column in source_series(feature)))
    lines += ["## Inputs", "", "Panel columns read by this spec and when the live data publish them:", ""]
    lines += [*_table(["column", "description", "publication lag"],
                      [[f"`{c}`", panel_columns()[c], lags.get(c, "unknown")] for c in used]), ""]

    if spec.proxies:
        lines += ["## Proxies", "", "Inputs standing in for the live series (features using them are marked "
                  "PROXY in their note):", ""]
        lines += [f"- `{name}`: {text}" for name, text in spec.proxies.items()]
        lines.append("")

    lines += ["## Features", ""]
    header = ["name", "plain name", "family", "unit", "formula", "sources", "publication lag", "note"]
    if cov is not None:
        header += ["first valid", "missing"]
    rows = []
    for feature, entry in zip(spec.features, feature_catalogue(spec), strict=True):
        proxied, others = _notes(feature, spec)  # proxies are explained once, in the section above
        note = "; ".join([*([f"PROXY ({', '.join(proxied)}, see Proxies)"] if proxied else []), *others])
        row = [f"`{entry['name']}`", entry["plain_name"], entry["family"], entry["unit"], entry["formula"],
               entry["source_series"], entry["publication_lag"], note]
        if cov is not None:
            row += [cov.loc[entry["name"], "first_valid"], cov.loc[entry["name"], "share_missing"]]
        rows.append(row)
    lines += _table(header, rows)
    return "\n".join(lines) + "\n"
