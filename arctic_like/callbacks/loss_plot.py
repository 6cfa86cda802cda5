"""A ``loss.png`` kept up to date during training, so a run can be inspected without TensorBoard."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from arctic_like.callbacks.base import Callback
from arctic_like.checkpoint.atomic import honour_umask


class LossPlot(Callback):
    """Plot training and eval loss against the optimizer step into ``<output_dir>/loss.png`` (or ``path``).

    The image is rewritten atomically at each log that carries a loss and at the end of training (rank 0).
    """

    def __init__(self, path: str | Path | None = None, every_n_logs: int = 1) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else None
        self.every_n_logs = max(1, every_n_logs)
        self.train: list[tuple[int, float]] = []
        self.eval: list[tuple[int, float]] = []
        self._logs = 0

    def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
        logs = logs or {}
        new = False
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
            new = True
        if "eval_loss" in logs:
            self.eval.append((state.global_step, float(logs["eval_loss"])))
            new = True
        if new:
            self._logs += 1
            if self._logs % self.every_n_logs == 0:
                self.plot(args, state)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.plot(args, state)

    def plot(self, args: Any, state: Any) -> Path | None:
        """Write the figure now; returns its path (None on non-zero ranks or with nothing to plot)."""
        if not state.is_world_process_zero or not (self.train or self.eval):
            return None
        import matplotlib

        matplotlib.use("Agg", force=False)
        from matplotlib.figure import Figure

        if self.path is None:
            self.path = self.output_dir(args) / "loss.png"
        fig = Figure(figsize=(6, 4), dpi=100)
        ax = fig.add_subplot()
        if self.train:
            ax.plot(*zip(*self.train, strict=True), label="train loss")
        if self.eval:
            ax.plot(*zip(*self.eval, strict=True), marker="o", label="eval loss")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.grid(alpha=0.3)
        ax.legend()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".loss.", suffix=".png")
        os.close(fd)
        try:
            fig.savefig(tmp, format="png")
            honour_umask(Path(tmp))
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return self.path
