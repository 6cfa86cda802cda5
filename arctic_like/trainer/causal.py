"""``causal``: causal language modelling on (packed) text, the default trainer."""

from __future__ import annotations

from arctic_like.trainer.trainer import Trainer


class CausalTrainer(Trainer):
    """Next-token prediction on every non-padding token of the training text."""

    name = "causal"
