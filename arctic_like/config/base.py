"""Base config model and human-friendly number types shared by every part of a recipe."""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

__all__ = [
    "BaseConfig",
    "HumanFloat",
    "HumanFraction",
    "HumanInt",
    "parse_human_fraction",
    "parse_human_int",
    "parse_human_value",
]

_SUFFIXES = {
    "k": 10**3,
    "m": 10**6,
    "b": 10**9,
    "g": 10**9,
    "t": 10**12,
    "ki": 2**10,
    "mi": 2**20,
    "gi": 2**30,
    "ti": 2**40,
}
_NUMBER = re.compile(
    r"^\s*([+-]?(?:\d[\d_]*)?(?:\.\d+)?(?:e[+-]?\d+)?)\s*([kmgt]i|[kmbgt])?\s*$", re.IGNORECASE
)
_POWER = re.compile(r"^\s*([+-]?\d[\d_]*(?:\.\d+)?)\s*\^\s*([+-]?\d+(?:\.\d+)?)\s*$")


class BaseConfig(BaseModel):
    """Base of every recipe config: unknown keys are errors, assignments are validated, a float field
    refuses ``.inf`` and ``.nan`` (no setting of a run can work with them)."""

    model_config = ConfigDict(
        extra="forbid", validate_assignment=True, arbitrary_types_allowed=True, allow_inf_nan=False
    )


def _scaled(value: str) -> float | None:
    """``2k``, ``1.5M``, ``1e5``, ``10_000``, ``1Ki`` (1024) or ``2^10`` (ArcticTraining's) as a number."""
    power = _POWER.match(value)
    if power:
        base, exponent = (float(part.replace("_", "")) for part in power.groups())
        try:
            return math.copysign(abs(base) ** exponent, base)
        except OverflowError:
            return None
    match = _NUMBER.match(value)
    if not match or not match.group(1) or match.group(1) in "+-":
        return None
    number = float(match.group(1).replace("_", ""))
    return number * _SUFFIXES[match.group(2).lower()] if match.group(2) else number


def parse_human_value(text: str) -> int | float:
    """A number written in any of the human forms (``5e8``, ``1Gi``, ``2^10``, ``10%``): an int when whole."""
    stripped = text.strip()
    percent = stripped.endswith("%")
    number = _scaled(stripped[:-1] if percent else stripped)
    if number is None:
        raise ValueError(f"{text!r} is not a number")
    number = number / 100 if percent else number
    return int(number) if math.isfinite(number) and number == int(number) else number


def parse_human_int(value: Any) -> Any:
    """``2k`` → 2000, ``1.5M`` → 1500000, ``1e5`` → 100000, ``10_000`` → 10000, ``1Ki`` → 1024, ``2^10`` →
    1024; other values pass through.

    A number that is not whole (``1.5``) is an error rather than silently rounded.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        number = _scaled(value)
        if number is None:
            raise ValueError(f"{value!r} is not a number; write e.g. 2000, 2k, 1.5M, 1e5, 1Ki or 2^10")
        value = number
    if isinstance(value, float):
        if not math.isfinite(value) or value != int(value):
            raise ValueError(f"{value!r} is not a whole number; write e.g. 2000, 2k, 1.5M, 1e5, 1Ki or 2^10")
        return int(value)
    return value


def parse_human_fraction(value: Any) -> Any:
    """``10%`` → 0.1, ``"0.25"`` → 0.25, ``1e-1`` → 0.1; the result must lie in [0, 1]."""
    if isinstance(value, str):
        text = value.strip()
        if text.endswith("%"):
            number = _scaled(text[:-1])
            if number is None:
                raise ValueError(f"{value!r} is not a percentage; write e.g. 10% or 0.1")
            value = number / 100
        else:
            number = _scaled(text)
            if number is None:
                raise ValueError(f"{value!r} is not a fraction; write e.g. 0.1 or 10%")
            value = number
    if isinstance(value, int | float) and not isinstance(value, bool) and not 0 <= value <= 1:
        raise ValueError(f"{value!r} is not a fraction between 0 and 1; write e.g. 0.1 or 10%")
    return value


def _parse_human_float(value: Any) -> Any:
    if isinstance(value, str):
        number = _scaled(value)
        if number is None:
            raise ValueError(f"{value!r} is not a number; write e.g. 0.001, 1e-3 or 3k")
        value = number
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value!r} is not a finite number; write e.g. 0.001, 1e-3 or 3k")
    return value


HumanInt = Annotated[int, BeforeValidator(parse_human_int)]
"""An int that also accepts ``2k``, ``1.5M``, ``1e5`` and ``10_000``."""

HumanFraction = Annotated[float, BeforeValidator(parse_human_fraction)]
"""A float in [0, 1] that also accepts ``10%``."""

HumanFloat = Annotated[float, BeforeValidator(_parse_human_float)]
"""A float that also accepts ``1e-3`` written as a YAML string and ``2k``-style suffixes."""
