"""Write a callback once, run it in arctic_like, the HuggingFace ``Trainer`` and Lightning.

A :class:`HarnessCallback` overrides events from :data:`EVENTS`, each declaring the values it wants from
:data:`VOCABULARY`; :func:`to_arctic`, :func:`to_hf` and :func:`to_lightning` validate it against
the framework and drive it. See ``docs/harness.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arctic_like.harness.arctic import ArcticHarnessCallback, to_arctic
from arctic_like.harness.callbacks import EarlyStopping, GradNormMonitor, LossLogger, NaNGuard, StepTimer
from arctic_like.harness.core import EVENTS, VOCABULARY, HarnessCallback, HarnessControl, HarnessError

if TYPE_CHECKING:
    from arctic_like.harness.hf import HFHarnessCallback
    from arctic_like.harness.lightning import LightningHarnessCallback


def to_hf(callback: HarnessCallback) -> HFHarnessCallback:
    """Wrap ``callback`` as a ``transformers.TrainerCallback`` (validated now; raises ``HarnessError``)."""
    from arctic_like.harness.hf import to_hf as build

    return build(callback)


def to_lightning(callback: HarnessCallback) -> LightningHarnessCallback:
    """Wrap ``callback`` as a ``lightning.pytorch.Callback`` (validated now; raises ``HarnessError``)."""
    try:
        from arctic_like.harness.lightning import to_lightning as build
    except ImportError as exc:
        raise HarnessError(
            f"to_lightning needs the 'lightning' package ({exc}). Fix: pip install 'arctic-like[lightning]'."
        ) from exc
    return build(callback)


__all__ = [
    "EVENTS",
    "VOCABULARY",
    "ArcticHarnessCallback",
    "EarlyStopping",
    "GradNormMonitor",
    "HarnessCallback",
    "HarnessControl",
    "HarnessError",
    "LossLogger",
    "NaNGuard",
    "StepTimer",
    "to_arctic",
    "to_hf",
    "to_lightning",
]
