"""Event names: how methods map to events and how user-written event strings are read.

A method `create_model` is the source of `pre-create-model`, `post-create-model` and
`error-create-model`. In event strings `_` and `-` are the same, so `pre-create_model` is accepted.
"""

from __future__ import annotations

import re

PHASES = ("pre", "post", "error")
SPECIAL_METHODS = {"__init__": "init", "__call__": "call"}
CALLBACK_METHOD = re.compile(r"^(pre|post|error)_(.+)_callback$")


def normalize(base: str) -> str:
    """The canonical spelling of an event base: dashes, never underscores."""
    return base.replace("_", "-")


def method_event(method_name: str) -> str:
    """The event base a method is the source of, by the naming rule."""
    return SPECIAL_METHODS.get(method_name) or normalize(method_name)


def parse_event(event: str) -> tuple[str, str] | None:
    """Split `pre-create_model` into (`pre`, `create-model`); None when it has no valid phase."""
    phase, sep, base = event.partition("-")
    if not sep or phase not in PHASES or not base:
        return None
    return phase, normalize(base)


def callback_method_event(attr: str) -> str | None:
    """The event a `pre_<name>_callback`-style method name attaches to, or None for other names."""
    match = CALLBACK_METHOD.match(attr)
    if match is None:
        return None
    return f"{match.group(1)}-{normalize(match.group(2))}"


def is_callback_method_name(attr: str) -> bool:
    """True for names like `post_step_callback`, which are callbacks, never event sources."""
    return CALLBACK_METHOD.match(attr) is not None
