"""The neutral core: validation when adapters are built, lazy extraction, control values, ready callbacks."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import pytest

from arctic_like.harness import (
    EVENTS,
    VOCABULARY,
    EarlyStopping,
    GradNormMonitor,
    HarnessCallback,
    HarnessControl,
    HarnessError,
    LossLogger,
    NaNGuard,
    StepTimer,
    to_arctic,
    to_hf,
    to_lightning,
)
from arctic_like.harness.callbacks import lookup_metric
from arctic_like.harness.core import Dispatcher, StepLosses, build_plan

ADAPTERS = [to_arctic, to_hf, to_lightning]


def test_vocabulary_and_events_are_closed_and_documented() -> None:
    assert list(EVENTS) == [
        "_on_train_start",
        "_on_train_end",
        "_on_epoch_start",
        "_on_epoch_end",
        "_on_train_batch_start",
        "_on_train_batch_end",
        "_on_before_optimizer_step",
        "_on_validation_end",
        "_on_log",
        "_on_save",
        "_on_exception",
    ]
    for name in ("current_step", "max_steps", "epoch", "loss", "learning_rate", "metrics", "logs", "model"):
        assert name in VOCABULARY
    for name in ("optimizer", "batch", "is_main_process", "checkpoint_dir"):
        assert name in VOCABULARY


@pytest.mark.parametrize("adapt", ADAPTERS)
def test_unknown_parameter_is_rejected_naming_class_method_and_framework(adapt: Any) -> None:
    class Typo(HarnessCallback):
        def _on_train_batch_end(self, step: int) -> None:
            pass

    with pytest.raises(
        HarnessError, match=r"Typo\._on_train_batch_end asks for 'step', which is not in the harness"
    ):
        adapt(Typo())
    with pytest.raises(HarnessError, match=r"Vocabulary: current_step, max_steps"):
        adapt(Typo())


def test_unsupplied_parameter_names_framework_and_what_is_available() -> None:
    class WantsBatchEarly(HarnessCallback):
        def _on_train_batch_start(self, batch: Any) -> None:
            pass

    with pytest.raises(
        HarnessError,
        match=r"WantsBatchEarly\._on_train_batch_start asks for 'batch', which HuggingFace Trainer cannot "
        r"supply at _on_train_batch_start\. Available there: current_step, max_steps, epoch",
    ):
        to_hf(WantsBatchEarly())
    to_lightning(WantsBatchEarly())
    to_arctic(WantsBatchEarly())


def test_lightning_cannot_supply_checkpoint_dir_or_loss_at_validation() -> None:
    class SaveDir(HarnessCallback):
        def _on_save(self, checkpoint_dir: str) -> None:
            pass

    class LossAtEval(HarnessCallback):
        def _on_validation_end(self, loss: float) -> None:
            pass

    with pytest.raises(
        HarnessError, match=r"SaveDir\._on_save asks for 'checkpoint_dir', which Lightning cannot"
    ):
        to_lightning(SaveDir())
    for adapt in ADAPTERS:
        with pytest.raises(
            HarnessError, match=r"LossAtEval\._on_validation_end asks for 'loss'.*Available there"
        ):
            adapt(LossAtEval())


def test_parameter_with_default_is_optional() -> None:
    seen = []

    class SaveDir(HarnessCallback):
        def _on_save(self, current_step: int, checkpoint_dir: str | None = None) -> None:
            seen.append(checkpoint_dir)

    assert to_lightning(SaveDir()).plan == {"_on_save": ("current_step",)}
    assert to_hf(SaveDir()).plan == {"_on_save": ("current_step", "checkpoint_dir")}


def test_event_a_framework_never_fires_is_an_error_unless_optional() -> None:
    class LogWatcher(HarnessCallback):
        def _on_log(self, logs: dict) -> None:
            pass

    class CrashWatcher(HarnessCallback):
        def _on_exception(self, exception: BaseException) -> None:
            pass

    with pytest.raises(
        HarnessError, match=r"LogWatcher\._on_log: Lightning never fires _on_log\. Events Lightning fires: "
    ):
        to_lightning(LogWatcher())
    with pytest.raises(HarnessError, match=r"add '_on_exception' to CrashWatcher\.optional_events"):
        to_hf(CrashWatcher())

    class Tolerant(LogWatcher):
        optional_events = frozenset({"_on_log"})

    assert to_lightning(Tolerant()).plan == {}
    assert to_hf(Tolerant()).plan == {"_on_log": ("logs",)}


def test_var_arguments_and_non_callbacks_are_rejected() -> None:
    class Greedy(HarnessCallback):
        def _on_log(self, **everything: Any) -> None:
            pass

    with pytest.raises(
        HarnessError, match=r"Greedy\._on_log declares '\*\*everything'.*named parameters only"
    ):
        to_arctic(Greedy())
    with pytest.raises(
        HarnessError, match=r"HuggingFace Trainer adapter got dict, which is not a HarnessCallback"
    ):
        to_hf({})
    with pytest.raises(HarnessError, match=r"Lightning adapter got int, which is not a HarnessCallback"):
        to_lightning(3)


def test_state_key_names_the_class_and_can_be_set() -> None:
    first, second = EarlyStopping(), EarlyStopping()
    second.state_key = "Harness[EarlyStopping]-2"
    assert first.state_key == "Harness[EarlyStopping]"
    assert to_lightning(second).state_key == "Harness[EarlyStopping]-2"
    assert type(to_hf(second)).__name__ == "Harness[EarlyStopping]-2"
    assert to_arctic(second).state_key == "Harness[EarlyStopping]-2"


def test_hf_adapter_class_is_not_built_by_hand() -> None:
    from arctic_like.harness.hf import HFHarnessCallback

    with pytest.raises(HarnessError, match=r"HFHarnessCallback is built by to_hf\(callback\)"):
        HFHarnessCallback()


def test_missing_lightning_gives_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "arctic_like.harness.lightning", None)
    with pytest.raises(
        HarnessError, match=r"to_lightning needs the 'lightning' package.*arctic-like\[lightning\]"
    ):
        to_lightning(NaNGuard())


class _Probe(HarnessCallback):
    def _on_train_batch_end(self, current_step: int) -> Any:
        return self.result


def _dispatcher(cb: HarnessCallback) -> Dispatcher:
    class Fake(Dispatcher):
        framework = "Fake"
        supplies = {"_on_train_batch_end": frozenset({"current_step", "loss"})}

    return Fake(cb)


def test_only_declared_values_are_computed() -> None:
    computed = []
    probe = _Probe()
    probe.result = None

    def getter(name: str) -> Any:
        def get() -> Any:
            computed.append(name)
            return 1

        return get

    _dispatcher(probe).fire("_on_train_batch_end", {"current_step": getter("step"), "loss": getter("loss")})
    assert computed == ["step"]


def test_step_losses_sync_only_on_demand() -> None:
    class Loss:
        items = 0

        def detach(self) -> Loss:
            return self

        def item(self) -> float:
            Loss.items += 1
            return 2.0

    losses = StepLosses()
    losses.add(Loss())
    losses.add(Loss())
    assert Loss.items == 0
    assert losses.mean() == 2.0
    assert Loss.items == 2
    losses.reset()
    assert math.isnan(losses.mean())


def test_event_must_return_none_or_control() -> None:
    probe = _Probe()
    probe.result = 3
    with pytest.raises(
        HarnessError, match=r"_Probe\._on_train_batch_end returned int; harness events return None"
    ):
        _dispatcher(probe).fire("_on_train_batch_end", {"current_step": lambda: 1})
    probe.result = HarnessControl.stop("enough")
    control = _dispatcher(probe).fire("_on_train_batch_end", {"current_step": lambda: 1})
    assert control == HarnessControl(stop_training=True, reason="enough")


def test_build_plan_lists_declared_names_in_order() -> None:
    plan = build_plan(
        LossLogger("x.jsonl"),
        "Fake",
        {"_on_train_batch_end": frozenset(VOCABULARY)},
    )
    assert plan == {
        "_on_train_batch_end": ("current_step", "epoch", "loss", "learning_rate", "is_main_process")
    }


# ----------------------------------------------------------------------------------------- ready callbacks
def test_ready_callbacks_reject_bad_arguments() -> None:
    with pytest.raises(HarnessError, match=r"EarlyStopping mode='up' is not supported\. Fix: use mode='min'"):
        EarlyStopping(mode="up")
    with pytest.raises(HarnessError, match=r"EarlyStopping patience=0 must be at least 1"):
        EarlyStopping(patience=0)
    with pytest.raises(HarnessError, match=r"LossLogger every=0 must be at least 1"):
        LossLogger(every=0)


def test_early_stopping_logic_and_state_round_trip() -> None:
    es = EarlyStopping(monitor="score", mode="max", patience=2, min_delta=0.1)
    results = [
        es._on_validation_end({"eval_score": v}, step) for step, v in enumerate([1.0, 2.0, 2.05, 1.5], 1)
    ]
    assert results[:3] == [None, None, None]
    assert results[3].stop_training and "stopping at step 4" in results[3].reason
    assert (es.best, es.best_step, es.stopped_step) == (2.0, 2, 4)
    fresh = EarlyStopping(monitor="score", mode="max", patience=2)
    fresh.load_state_dict(json.loads(json.dumps(es.state_dict())))
    assert fresh.state_dict() == es.state_dict()


def test_early_stopping_names_missing_metric() -> None:
    with pytest.raises(
        HarnessError, match=r"monitors 'accuracy', but the evaluation at step 3 reported only: "
    ):
        EarlyStopping(monitor="accuracy")._on_validation_end({"eval_loss": 1.0}, 3)


def test_metric_lookup_accepts_framework_prefixes() -> None:
    assert lookup_metric({"eval_loss": 1.0}, "loss") == 1.0
    assert lookup_metric({"val_loss": 2.0}, "eval_loss") == 2.0
    assert lookup_metric({"val/acc": 3.0}, "acc") == 3.0
    assert lookup_metric({"loss": 4.0}, "val_loss") == 4.0
    assert lookup_metric({"loss": 4.0}, "accuracy") is None


def test_nan_guard_names_the_step() -> None:
    guard = NaNGuard()
    assert guard._on_train_batch_end(3, 1.5) is None
    control = guard._on_train_batch_end(4, math.inf)
    assert control.stop_training and control.reason == "non-finite loss (inf) at step 4; stopping training"
    assert guard.tripped_step == 4


def test_step_timer_rates_and_loss_logger_lines(tmp_path: Any) -> None:
    timer = StepTimer(gradient_accumulation_steps=2)
    timer._on_train_batch_start()
    control = timer._on_train_batch_end(1, {"input_ids": __import__("torch").zeros(4, 3)})
    assert set(control.log) == {"steps_per_second", "samples_per_second"}
    assert control.log["samples_per_second"] == pytest.approx(8 * control.log["steps_per_second"])
    assert timer.summary()["steps_per_second"] > 0
    log = LossLogger(tmp_path / "sub" / "loss.jsonl", every=2)
    for step in (1, 2, 3, 4):
        log._on_train_batch_end(step, 0, 1.0 / step, 1e-3, True)
    log._on_train_batch_end(6, 0, 1.0, 1e-3, False)
    lines = [json.loads(line) for line in (tmp_path / "sub" / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines] == [2, 4]
    assert lines[0] == {"step": 2, "epoch": 0, "loss": 0.5, "learning_rate": 1e-3}


def test_grad_norm_monitor_computes_total_norm() -> None:
    import torch

    model = torch.nn.Linear(2, 1, bias=False)
    model.weight.grad = torch.tensor([[3.0, 4.0]])
    mon = GradNormMonitor()
    control = mon._on_before_optimizer_step(model, 0)
    assert control.log == {"harness/grad_norm": pytest.approx(5.0)}
    assert mon.history == [(1, pytest.approx(5.0))]


# ---------------------------------------------------------- control through each framework's own mechanism
class _Asks(HarnessCallback):
    def __init__(self, control: HarnessControl) -> None:
        self.control = control

    def _on_train_batch_end(self) -> HarnessControl:
        return self.control

    def _on_validation_end(self) -> HarnessControl:
        return self.control


ASK_ALL = HarnessControl(stop_training=True, save=True, evaluate=True, log={"x": 1.0})


def test_hf_adapter_sets_trainer_control_flags() -> None:
    from transformers import TrainerControl, TrainerState, TrainingArguments

    adapter = to_hf(_Asks(ASK_ALL))
    control = TrainerControl()
    state = TrainerState(global_step=2)
    state.log_history.append({"loss": 1.0, "step": 2})
    args = TrainingArguments(output_dir="unused", report_to=[])
    assert adapter.on_step_end(args, state, control) is control
    assert (control.should_training_stop, control.should_save, control.should_evaluate) == (True, True, True)
    logs = {"loss": 1.0, "x": 5.0}
    adapter.on_log(args, state, control, logs=logs)
    assert logs == {"loss": 1.0, "x": 5.0}  # the framework's own key wins
    adapter.on_step_end(args, state, control)
    logs = {"loss": 1.0}
    adapter.on_log(args, state, control, logs=logs)
    assert logs == {"loss": 1.0, "x": 1.0} and state.log_history[-1] == {"loss": 1.0, "step": 2, "x": 1.0}


def test_lightning_adapter_uses_should_stop_save_checkpoint_and_log(
    tmp_path: Any, caplog: pytest.LogCaptureFixture
) -> None:
    from types import SimpleNamespace

    saved, module_logs, logger_logs = [], [], []
    lg = SimpleNamespace(log_metrics=lambda values, step: logger_logs.append((values, step)))
    trainer = SimpleNamespace(
        should_stop=False,
        global_step=5,
        sanity_checking=False,
        checkpoint_callback=None,
        default_root_dir=str(tmp_path),
        save_checkpoint=saved.append,
        loggers=[lg],
        callback_metrics={},
    )
    module = SimpleNamespace(log=lambda key, value, **kw: module_logs.append((key, value)))
    adapter = to_lightning(_Asks(ASK_ALL))
    adapter._step_at_start = 4
    with caplog.at_level("WARNING", logger="arctic_like.harness"):
        adapter.on_train_batch_end(trainer, module, {"loss": 1.0}, None, 0)
        adapter.on_validation_end(trainer, module)
    assert trainer.should_stop is True
    assert saved == [str(tmp_path / "checkpoints" / "harness-step=5.ckpt")] * 2
    assert module_logs == [("x", 1.0)]  # inside on_train_batch_end Lightning allows pl_module.log
    assert logger_logs == [({"x": 1.0}, 5)]  # on_validation_end it does not: straight to the loggers
    assert caplog.text.count("Lightning has no public way to start validation") == 1


def test_arctic_adapter_sets_trainer_control_and_merges_logs() -> None:
    from types import SimpleNamespace

    from arctic_like.trainer.state import TrainerControl

    trainer = SimpleNamespace(control=TrainerControl(), state=SimpleNamespace(global_step=3), callbacks=[])
    adapter = to_arctic(_Asks(ASK_ALL))
    adapter.setup(trainer)
    assert trainer.callbacks == adapter.callbacks
    adapter._step_at_start = 2
    adapter._post_step(trainer)
    control = trainer.control
    assert (control.should_training_stop, control.should_save, control.should_evaluate) == (True, True, True)
    assert adapter._pre_log(trainer, {"loss": 2.0, "x": 9.0}) == {"x": 9.0, "loss": 2.0}
    adapter._post_step(trainer)  # no new optimizer step: nothing fires
    adapter.teardown(trainer)
    assert trainer.callbacks == []
