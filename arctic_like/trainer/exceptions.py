"""Control-flow exceptions a callback raises to steer the training loop.

They are caught by the trainer at documented points (see ``docs/trainer.md``):

* ``SkipStep`` raised in ``pre-step``, ``pre-loss``, ``post-loss``, ``pre-backward`` or ``post-backward``
  drops the current micro-batch (its gradients are discarded if it was the first of an accumulation
  window; gradients already accumulated in the window are kept). Raised in ``pre-optimizer-step`` it
  discards the whole accumulation window: no optimizer step, the gradients are zeroed, ``global_step``
  does not advance. In ``post-optimizer-step`` it is too late: the optimizer has stepped, the step counts.
* ``StopEpoch`` ends the current epoch after the event that raised it; the loop goes on with the next epoch.
* ``StopTraining`` ends training after the event that raised it; ``post-train`` callbacks still run.

Raised in ``post-optimizer-step``, ``StopEpoch`` and ``StopTraining`` first let the step finish (scheduler
step, zeroing the gradients, ``global_step += 1``).
"""


class TrainerFlowException(Exception):
    """Base class of the exceptions the trainer loop catches to change its flow."""


class SkipStep(TrainerFlowException):
    """Skip the current micro-batch (or, from ``pre-optimizer-step``, the current optimizer step)."""


class StopEpoch(TrainerFlowException):
    """End the current epoch now and continue with the next one."""


class StopTraining(TrainerFlowException):
    """End training now; ``post-train`` callbacks still run."""


class NonFiniteLossError(FloatingPointError):
    """The loss was NaN or infinite and the recipe says ``nonfinite_loss: stop``."""
