"""Locate and read the declarative TOML configs (feature sets, model specs, experiments).

A name like ``quickstart`` is looked up as ``./experiments/quickstart.toml`` in the working directory first
(so users can add their own), then among the defaults: inside the installed wheel (``_configs/``) or, in a
source checkout, at the repository root.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError

KINDS = ("features", "models", "experiments")
_PACKAGED = Path(__file__).resolve().parent / "_configs"
_REPO_ROOT = Path(__file__).resolve().parents[2]


def default_config_dir(kind: str) -> Path:
    """Directory holding the default configs of one kind (``features``, ``models`` or ``experiments``)."""
    if kind not in KINDS:
        raise ConfigError(f"unknown config kind {kind!r}; expected one of {', '.join(KINDS)}")
    packaged = _PACKAGED / kind
    return packaged if packaged.is_dir() else _REPO_ROOT / kind


def resolve_config(kind: str, name_or_path: str | Path) -> Path:
    """Turn a config name or path into an existing file path, or raise a ConfigError listing the choices."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" and candidate.is_file():
        return candidate.resolve()
    stem = candidate.stem if candidate.suffix == ".toml" else str(name_or_path)
    for directory in (Path.cwd() / kind, default_config_dir(kind)):
        path = directory / f"{stem}.toml"
        if path.is_file():
            return path.resolve()
    raise ConfigError(
        f"no {kind} config named {str(name_or_path)!r}; available: {', '.join(available_configs(kind)) or 'none'}"
    )


def available_configs(kind: str) -> list[str]:
    names = {p.stem for p in default_config_dir(kind).glob("*.toml")}
    names |= {p.stem for p in (Path.cwd() / kind).glob("*.toml")}
    return sorted(names)


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file; a syntax error names the file and line."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML ({exc})") from None


def load_config(kind: str, name_or_path: str | Path) -> tuple[dict[str, Any], Path]:
    """Resolve and read a config; returns the parsed dict and the file it came from."""
    path = resolve_config(kind, name_or_path)
    return load_toml(path), path
