"""MLflow logging without a server: HF's ``MLflowCallback`` with a local file store.

Needs the ``mlflow`` extra (``pip install 'arctic-like[mlflow]'``). Runs go to ``<output_dir>/mlruns``
unless ``tracking_uri`` is given; ``mlflow ui --backend-store-uri <that>`` shows them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from transformers.integrations import MLflowCallback as _HFMLflowCallback


class MLflowCallback(_HFMLflowCallback):
    """HF's ``MLflowCallback`` pointed at a local file store and an experiment of our choosing.

    With a ``file:`` store it sets ``MLFLOW_ALLOW_FILE_STORE=true`` (unless set), which MLflow 3 requires.
    """

    def __init__(self, experiment: str = "arctic-like", tracking_uri: str | None = None) -> None:
        super().__init__()
        self.experiment = experiment
        self.tracking_uri = tracking_uri

    def setup(self, args: Any, state: Any, model: Any) -> None:
        """Set the tracking URI (default ``file:<output_dir>/mlruns``) and experiment, then HF's setup."""
        if state.is_world_process_zero:
            uri = self.tracking_uri or (Path(args.output_dir).resolve() / "mlruns").as_uri()
            if uri.startswith("file:"):
                # MLflow 3 refuses its file store unless asked; a local store is the point of this callback.
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            self._ml_flow.set_tracking_uri(uri)
            self._ml_flow.set_experiment(self.experiment)
        super().setup(args, state, model)
