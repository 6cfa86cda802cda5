"""The public API of design.md imports exactly so, and the callback core stays free of heavy imports."""

import subprocess
import sys

import pytest

import arctic_like

DESIGN_NAMES = [
    "CallbackMixin",
    "CallbackMeta",
    "CallbackError",
    "callback_wrapper",
    "load_recipe",
    "build_trainer",
    "Trainer",
    "CausalTrainer",
    "SFTTrainer",
    "TrainerState",
    "TrainerControl",
    "SkipStep",
    "StopEpoch",
    "StopTraining",
    "DataFactory",
    "ModelFactory",
    "TokenizerFactory",
    "OptimizerFactory",
    "SchedulerFactory",
    "CheckpointEngine",
]


@pytest.mark.parametrize("name", DESIGN_NAMES)
def test_design_names_are_exported(name):
    assert getattr(arctic_like, name) is not None
    assert name in arctic_like.__all__


def test_callback_layer_exports():
    from arctic_like.callback import CallbackError, CallbackMeta, CallbackMixin, callback_wrapper

    assert issubclass(CallbackError, ValueError)
    assert isinstance(CallbackMixin, CallbackMeta)
    assert callable(callback_wrapper)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        arctic_like.Nope  # noqa: B018


def test_importing_the_core_does_not_import_torch():
    code = "import sys, arctic_like; from arctic_like import CallbackMixin; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "False"
