"""Locate and read the declarative TOML configs (feature sets, model specs, experiments).

A name like ``quickstart`` is looked up as ``./experiments/quickstart.toml`` in the working directory first
(so users can add their own), then among the defaults: inside the installed wheel (``_configs/``) or, in a
source checkout, at the repository root.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic_core import ErrorDetails

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
    except UnicodeDecodeError as exc:  # TOML is UTF-8; a binary or Latin-1 file is one line, not a traceback
        raise ConfigError(f"{path}: not a UTF-8 text file (byte 0x{exc.object[exc.start]:02x} at offset "
                          f"{exc.start}); TOML files are UTF-8") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a TOML file") from None


def load_config(kind: str, name_or_path: str | Path) -> tuple[dict[str, Any], Path]:
    """Resolve and read a config; returns the parsed dict and the file it came from."""
    path = resolve_config(kind, name_or_path)
    return load_toml(path), path


class Section(BaseModel):
    """Base of every config schema: unknown keys are errors, TOML types are taken as they are (no coercion)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


SchemaT = TypeVar("SchemaT", bound=Section)


def _fields_at(schema: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) table at ``loc``."""
    model: Any = schema
    for part in loc:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)):
            return []
        model = field.annotation
    return list(model.model_fields)


def _describe(error: ErrorDetails, schema: type[BaseModel], where: str) -> str:
    loc = tuple(error["loc"])
    table, key = loc[:-1], loc[-1] if loc else ""
    prefix = f"{where} [{'.'.join(map(str, table))}]" if table else where
    if error["type"] == "extra_forbidden":
        return f"{prefix}: unknown key {key!r}; expected one of: {', '.join(_fields_at(schema, table))}"
    if error["type"] == "missing":
        return f"{prefix}: missing section [{key}]" if _fields_at(schema, loc) else f"{prefix}: missing key {key!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{prefix}: {key} = {error['input']!r}: {message}"


def validate(schema: type[SchemaT], raw: dict[str, Any], path: Path) -> SchemaT:
    """Validate a parsed config against its schema; every problem is named by file, table and key.

    Raises
    ------
    ConfigError
        One line per problem, e.g. ``experiments/x.toml [validation]: unknown key 'refit_every_month'; expected
        one of: oos_start, refit_every_months, ...``.
    """
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(_describe(e, schema, str(path)) for e in exc.errors())) from None
