"""CallbackProfiler times every callback and costs nothing when it is not attached."""

import io
import json
import time

import transformers

from arctic_like.callbacks import CallbackProfiler, JsonLogger


def slow_post_step(self):
    time.sleep(0.002)


def test_profiles_runtime_class_and_hf_callbacks(make_trainer, tmp_path):
    out = io.StringIO()
    trainer = make_trainer(max_steps=3, logging_steps=1)
    trainer.callbacks.append(("post-step", slow_post_step))
    trainer.add_callback(transformers.PrinterCallback)
    trainer.add_callback(JsonLogger())
    prof = trainer.add_callback(CallbackProfiler(file=out))
    trainer.train()
    rows = prof.rows()
    slow = next(r for r in rows if r["callback"].endswith("slow_post_step"))
    assert slow["calls"] == 3 and slow["event"] == "post-step" and slow["total_ms"] >= 6
    printer = next(r for r in rows if r["callback"] == "PrinterCallback.on_log")
    assert printer["calls"] == 4 and printer["owner"] == "hf"
    assert "slow_post_step" in out.getvalue() and "total ms" in out.getvalue()
    last = json.loads((tmp_path / "out" / "log.jsonl").read_text().splitlines()[-1])
    assert last["event"] == "callback_profile" and last["rows"]


def test_off_means_untouched_and_pop_restores(make_trainer):
    trainer = make_trainer(max_steps=1)
    trainer.callbacks.append(("post-step", slow_post_step))
    trainer.add_callback(transformers.PrinterCallback)  # installs the HF bridge
    original = [e[1] for e in trainer.callbacks]
    assert "_hf_timer" not in trainer.__dict__
    prof = trainer.add_callback(CallbackProfiler())
    wrapped = [e[1] for e in trainer.callbacks]
    assert any(hasattr(fn, "__al_profiled__") for fn in wrapped)
    trainer.pop_callback(prof)
    assert [e[1] for e in trainer.callbacks] == original
    assert "_hf_timer" not in trainer.__dict__


def noted_save(self):
    time.sleep(0.001)


def test_profiles_class_callbacks_and_factories(make_trainer):
    trainer = make_trainer(max_steps=2, save_steps=2)
    trainer.checkpoint_engines[0].callbacks.append(("post-save", noted_save))
    prof = trainer.add_callback(CallbackProfiler())
    trainer.train()
    rows = prof.rows()
    save = next(r for r in rows if r["callback"].endswith("noted_save"))
    assert save["owner"] == "checkpoint_engines[0]:TorchCheckpointEngine" and save["calls"] == 1
    assert any(r["owner"] == "CausalTrainer" and r["event"] == "pre-train" for r in rows)
