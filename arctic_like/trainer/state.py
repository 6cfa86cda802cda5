"""The training state and control flags: HuggingFace's own classes, so HF callbacks get what they expect.

``TrainerControl`` *is* ``transformers.TrainerControl``. ``TrainerState`` subclasses
``transformers.TrainerState`` with the progress counters arctic_like keeps beyond HF's fields. Its JSON form
(``save_to_json``) holds HF's fields at the top level and the extra counters as one entry of
``stateful_callbacks`` (under :data:`EXTRAS_KEY`, a name no callback class can have), so HF's own
``TrainerState.load_from_json`` reads an arctic_like ``trainer_state.json`` and HF's resume ignores the entry.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import transformers
from transformers import TrainerControl

from arctic_like.checkpoint.atomic import honour_umask

__all__ = ["EXTRAS_KEY", "TrainerControl", "TrainerState"]

EXTRAS_KEY = "arctic_like.TrainerState"
"""Key of the extra counters inside ``stateful_callbacks`` in the JSON form (dotted: never a class name)."""


@dataclass
class TrainerState(transformers.TrainerState):
    """The trainer's progress, saved with every checkpoint and passed to callbacks.

    One *step* is one optimizer update: with ``gradient_accumulation_steps=n`` a step consumes up to ``n``
    micro-batches. Beyond HF's fields: ``micro_step`` counts micro-batches taken from the data over the
    run, ``skipped_micro_batches``/``skipped_optimizer_steps`` count what ``SkipStep`` (or
    ``nonfinite_loss: skip``) dropped and ``nonfinite_losses`` the non-finite losses met.
    """

    micro_step: int = 0
    skipped_micro_batches: int = 0
    skipped_optimizer_steps: int = 0
    nonfinite_losses: int = 0

    @classmethod
    def extra_fields(cls) -> tuple[str, ...]:
        """The fields this class adds to HF's."""
        hf = {f.name for f in dataclasses.fields(transformers.TrainerState)}
        return tuple(f.name for f in dataclasses.fields(cls) if f.name not in hf)

    def to_dict(self) -> dict[str, Any]:
        """Every field, flat (a JSON-serialisable copy)."""
        return dataclasses.asdict(self)

    def to_json_dict(self) -> dict[str, Any]:
        """HF's fields at the top level, the extra counters folded into ``stateful_callbacks``."""
        data = self.to_dict()
        extras = {name: data.pop(name) for name in self.extra_fields()}
        data["stateful_callbacks"] = {
            **(data.get("stateful_callbacks") or {}),
            EXTRAS_KEY: {"args": {}, "attributes": extras},
        }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        """Build a state from ``to_dict``/``to_json_dict`` output (or HF's JSON), ignoring unknown keys."""
        data = dict(data)
        callbacks = dict(data.get("stateful_callbacks") or {})
        extras = callbacks.pop(EXTRAS_KEY, None)
        if extras is not None:
            data.update(extras.get("attributes", {}))
        data["stateful_callbacks"] = callbacks
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save_to_json(self, json_path: str | os.PathLike) -> None:
        """Write the JSON form atomically (temporary file, then rename)."""
        path = Path(json_path)
        text = json.dumps(self.to_json_dict(), indent=2, sort_keys=True) + "\n"
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            honour_umask(Path(tmp))
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @classmethod
    def load_from_json(cls, json_path: str | os.PathLike) -> TrainerState:
        """Read a state written by ``save_to_json`` (or by HF's ``TrainerState.save_to_json``)."""
        with open(json_path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))
