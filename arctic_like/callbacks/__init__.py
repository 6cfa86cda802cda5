"""Ready-made trainer callbacks: progress, logging, early stopping, monitoring, plots, profiling.

Each is an HF-style callback (a ``transformers.TrainerCallback``) that also knows its arctic_like trainer;
attach one with ``trainer.add_callback(...)`` or list it under ``callbacks:`` in a recipe.
"""

from arctic_like.callbacks.base import Callback
from arctic_like.callbacks.best_checkpoint import BestCheckpoint
from arctic_like.callbacks.early_stopping import EarlyStopping
from arctic_like.callbacks.grad_norm import GradNormMonitor
from arctic_like.callbacks.loggers import JsonLogger, TensorBoardLogger
from arctic_like.callbacks.loss_plot import LossPlot
from arctic_like.callbacks.profiler import CallbackProfiler
from arctic_like.callbacks.progress import InfoCallback, PrinterCallback, ProgressCallback
from arctic_like.callbacks.text_samples import TextSamples

__all__ = [
    "BestCheckpoint",
    "Callback",
    "CallbackProfiler",
    "EarlyStopping",
    "GradNormMonitor",
    "InfoCallback",
    "JsonLogger",
    "LossPlot",
    "PrinterCallback",
    "ProgressCallback",
    "TensorBoardLogger",
    "TextSamples",
]
