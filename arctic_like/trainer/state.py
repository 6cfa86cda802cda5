"""HuggingFace-compatible training state and control flags.

``TrainerState`` mirrors ``transformers.TrainerState`` field by field so HF callbacks read what they
expect; ``TrainerControl`` mirrors ``transformers.TrainerControl`` and is reset by the trainer at the same
loop points as HF's ``CallbackHandler`` resets it (``_new_training`` before ``pre-train`` callbacks of a run,
``_new_epoch`` before each ``epoch``, ``_new_step`` before the first micro-batch of each accumulation window;
``should_log``/``should_evaluate``/``should_save`` are also cleared right after the log, evaluation and save
they triggered).
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arctic_like.checkpoint.atomic import honour_umask


@dataclass
class TrainerState:
    """The trainer's progress, saved with every checkpoint and passed to callbacks.

    One *step* is one optimizer update: with ``gradient_accumulation_steps=n`` a step consumes ``n``
    micro-batches. Beyond HF's fields: ``micro_step`` counts micro-batches taken from the data over the
    run, ``skipped_micro_batches``/``skipped_optimizer_steps`` count what ``SkipStep`` (or
    ``nonfinite_loss: skip``) dropped and ``nonfinite_losses`` the non-finite losses met.
    """

    epoch: float = 0.0
    global_step: int = 0
    max_steps: int = 0
    logging_steps: int = 500
    eval_steps: int | None = 500
    save_steps: int | None = 500
    train_batch_size: int | None = None
    num_train_epochs: int = 0
    num_input_tokens_seen: int = 0
    total_flos: float = 0.0
    log_history: list[dict[str, Any]] = field(default_factory=list)
    best_metric: float | None = None
    best_global_step: int | None = None
    best_model_checkpoint: str | None = None
    is_local_process_zero: bool = True
    is_world_process_zero: bool = True
    is_hyper_param_search: bool = False
    trial_name: str | None = None
    trial_params: dict[str, Any] | None = None
    stateful_callbacks: dict[str, Any] = field(default_factory=dict)
    micro_step: int = 0
    skipped_micro_batches: int = 0
    skipped_optimizer_steps: int = 0
    nonfinite_losses: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy of every field."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainerState:
        """Build a state from ``to_dict`` output, ignoring keys this version does not know."""
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def save_to_json(self, json_path: str | os.PathLike) -> None:
        """Write the state as JSON, atomically (temporary file, then rename)."""
        path = Path(json_path)
        text = json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"
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


@dataclass
class TrainerControl:
    """Flags callbacks set to steer the loop, with HF's semantics.

    ``should_training_stop`` stays set until the next ``train()``; ``should_epoch_stop`` is cleared at the
    start of the next epoch; ``should_log``, ``should_evaluate`` and ``should_save`` are cleared at the start
    of the next optimizer step (and right after the action they requested).
    """

    should_training_stop: bool = False
    should_epoch_stop: bool = False
    should_save: bool = False
    should_evaluate: bool = False
    should_log: bool = False

    def _new_training(self) -> None:
        """Reset for a new ``train()`` call."""
        self.should_training_stop = False

    def _new_epoch(self) -> None:
        """Reset for a new epoch."""
        self.should_epoch_stop = False

    def _new_step(self) -> None:
        """Reset for a new optimizer step."""
        self.should_save = False
        self.should_evaluate = False
        self.should_log = False

    def state(self) -> dict[str, Any]:
        """HF ``ExportableState`` form: constructor args and attributes."""
        return {"args": dataclasses.asdict(self), "attributes": {}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TrainerControl:
        """Rebuild from ``state()`` output."""
        control = cls(**state["args"])
        for key, value in state.get("attributes", {}).items():
            setattr(control, key, value)
        return control
