"""Numbers read from environment variables, validated with messages that name the variable."""

from __future__ import annotations

import math
import os

from .errors import ConfigError


def env_number(name: str, default: float, *, integer: bool = False) -> float:
    """The finite number in ``$name``, or ``default`` when the variable is unset or empty.

    Raises
    ------
    ConfigError
        If the value is not a number (an integer when ``integer``), or is NaN or infinite.
    """
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    kind = "an integer" if integer else "a finite number"
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not {kind}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{name}={text!r} is not {kind}")
    return value
