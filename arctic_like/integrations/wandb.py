"""Weights & Biases logging without a server: HF's ``WandbCallback``, offline by default.

Needs the ``wandb`` extra (``pip install 'arctic-like[wandb]'``). The run is written under
``<output_dir>/wandb`` (``wandb sync`` uploads it later if wanted).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers.integrations import WandbCallback as _HFWandbCallback


class WandbCallback(_HFWandbCallback):
    """HF's ``WandbCallback`` that starts its own run: ``mode="offline"``, files in ``dir``.

    ``dir`` defaults to the run's output directory; ``project`` and ``name`` name the run. The run is finished
    at the end of training so offline files are complete.
    """

    def __init__(
        self,
        project: str = "arctic-like",
        name: str | None = None,
        mode: str = "offline",
        dir: str | None = None,
    ) -> None:
        super().__init__()
        self.project = project
        self.name = name
        self.mode = mode
        self.dir = dir
        self.run: Any = None

    def setup(self, args: Any, state: Any, model: Any, **kwargs: Any) -> None:
        """Start the run ourselves (offline, local directory), then let HF's setup fill its config."""
        if state.is_world_process_zero and self._wandb.run is None:
            directory = Path(self.dir or args.output_dir)
            directory.mkdir(parents=True, exist_ok=True)
            self.run = self._wandb.init(
                project=self.project, name=self.name, mode=self.mode, dir=str(directory)
            )
        super().setup(args, state, model, **kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        super().on_train_end(args, state, control, **kwargs)
        if self.run is not None:
            self.run.finish()
            self.run = None
