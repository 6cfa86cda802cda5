"""The HF reference: one tiny run in the real ``transformers.Trainer`` and in arctic_like, events recorded.

Both frameworks train the same tiny Llama (the initial weights arctic_like built) on the same data in the
same order (HF's sampler is replaced by arctic_like's seeded ``DistributedSampler``), with HF's
``TrainingArguments`` taken from ``trainer.hf_args``: if those did not describe the run, the learning rates
and losses would differ. A :class:`Recorder` notes, at each HF event, the global step, the epoch, the control
flags, whether gradients exist, the learning rate and the keys of the logs or metrics.

    python -m tests.integrations.hf_reference [scenario ...]

prints both traces side by side (``!!`` marks a difference). The tests run it for every scenario.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import transformers
from pydantic import Field
from torch.utils.data import DistributedSampler

from arctic_like.config.parts import DataConfig
from arctic_like.data import CausalDataFactory
from tests.tiny import TINY_MODEL

FLAGS = ("should_training_stop", "should_epoch_stop", "should_save", "should_evaluate", "should_log")
"""Recorded as one letter each (T E S E L), '.' when off."""


class Recorder(transformers.TrainerCallback):
    """Records ``(event, global_step, epoch, flags, gradients exist, learning rate, log/metric keys)``."""

    def __init__(self) -> None:
        self.events: list[tuple] = []

    def __getattribute__(self, name: str) -> Any:
        attr = super().__getattribute__(name)
        if not name.startswith("on_"):
            return attr

        def record(args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
            model, optimizer = kwargs.get("model"), kwargs.get("optimizer")
            grads = model is not None and any(p.grad is not None for p in model.parameters())
            lr = None if optimizer is None else float(f"{optimizer.param_groups[0]['lr']:.10g}")
            flags = "".join(f[7].upper() if getattr(control, f) else "." for f in FLAGS)
            keys = tuple(sorted(kwargs.get("logs") or kwargs.get("metrics") or ()))
            self.events.append(
                (name, state.global_step, round(state.epoch or 0.0, 6), flags, grads, lr, keys)
            )
            return attr(args, state, control, **kwargs)

        return record


class StopAt(transformers.TrainerCallback):
    """Sets ``flag`` (training or epoch stop) at ``on_step_end`` of global step ``step``."""

    def __init__(self, step: int, flag: str = "should_training_stop") -> None:
        self.step, self.flag = step, flag

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step == self.step:
            setattr(control, self.flag, True)


class ScoredDataConfig(DataConfig):
    scores: list[float] = Field(default_factory=list)


class ScoredData(CausalDataFactory):
    """Causal data whose evaluation also reports ``score``: the recipe's ``scores``, one per evaluation."""

    name = "hf-reference-scored"
    config = ScoredDataConfig

    def compute_metrics(self, model: Any, tokenizer: Any) -> dict[str, float]:
        used = self.__dict__.setdefault("_used", 0)
        self._used = used + 1
        return {"score": self.config.scores[min(used, len(self.config.scores) - 1)]}


SCORES = [3.0, 2.0, 2.5, 2.4, 2.6, 2.7, 2.8, 2.9]
"""Lowest at the 2nd evaluation (step 4, evaluating every 2), then two without improvement: patience 2 stops
training at step 8."""


def base_recipe(root: Path) -> dict[str, Any]:
    """64 reversals of 5 letters (every sequence 13 tokens: no padding), 8 held out; micro-batch 4,
    accumulation 2 (8 optimizer steps per epoch); AdamW (0.8, 0.95), cosine with 3 warmup steps; logging
    every 2 steps, evaluation and saving every 4."""
    reverse = {"type": "reverse", "min_length": 5, "max_length": 5}
    return {
        "type": "causal",
        "tokenizer": {"type": "char"},
        "data": {
            "sources": [{**reverse, "num_samples": 64, "eval_samples": 0}],
            "eval_sources": [{**reverse, "num_samples": 1, "eval_samples": 8}],
            "max_length": 16,
            "packing": False,
            "cache_dir": str(root / "cache"),
            "eval_batch_size": 4,
        },
        "model": {"config": dict(TINY_MODEL)},
        "optimizer": {"type": "adamw", "lr": 1e-3, "betas": [0.8, 0.95], "weight_decay": 0.01},
        "scheduler": {"type": "cosine", "warmup_steps": 3},
        "micro_batch_size": 4,
        "gradient_accumulation_steps": 2,
        "max_steps": 8,
        "logging_steps": 2,
        "eval_steps": 4,
        "save_steps": 4,
        "device": "cpu",
        "progress": False,
    }


@dataclass(frozen=True)
class Scenario:
    """Recipe changes, and HF-style callbacks (recipe ``callbacks:`` entries) added before the recorder."""

    recipe: dict[str, Any] = field(default_factory=dict)
    callbacks: tuple[dict[str, Any], ...] = ()


def _stop_at(step: int, flag: str = "should_training_stop") -> dict[str, Any]:
    return {"path": f"{__name__}.StopAt", "kwargs": {"step": step, "flag": flag}}


SCENARIOS: dict[str, Scenario] = {
    "steps": Scenario(),
    "stop-at-3": Scenario(callbacks=(_stop_at(3),)),
    "epoch-stop": Scenario({"max_steps": None, "epochs": 2}, (_stop_at(3, "should_epoch_stop"),)),
    "incomplete-window": Scenario({"max_steps": None, "epochs": 2, "gradient_accumulation_steps": 3}),
    "best-model": Scenario(
        {
            "max_steps": None,
            "epochs": 2,
            "eval_steps": 2,
            "save_steps": 2,
            "load_best_model_at_end": True,
            "metric_for_best_model": "score",
            "greater_is_better": False,
            "data": {"type": ScoredData.name, "scores": SCORES},
            "checkpoint": [{"type": "torch", "save_total_limit": 1}],
        },
        ({"path": "transformers.EarlyStoppingCallback", "kwargs": {"early_stopping_patience": 2}},),
    ),
}
"""(a) 8 steps with logging, evaluation and saving; (b) a stop at step 3; (c) ``should_epoch_stop`` at step
3 of 2 epochs; (d) 2 epochs of 16 micro-batches with accumulation 3 (windows 3,3,3,3,3,1); (e)
``load_best_model_at_end`` with HF's ``EarlyStoppingCallback`` (crafted metric), ``save_total_limit: 1``."""


def scenario_recipe(name: str, out: Path, cache: Path) -> dict[str, Any]:
    """The arctic_like recipe of scenario ``name``, writing into ``out``."""
    recipe = base_recipe(cache.parent)
    recipe["data"]["cache_dir"] = str(cache)
    for key, value in SCENARIOS[name].recipe.items():
        recipe[key] = {**recipe[key], **value} if isinstance(value, dict) else value
    recipe["output_dir"] = str(out)
    for entry in recipe.get("checkpoint", []):
        entry["output_dir"] = str(out)  # where HF saves: checkpoint-N directly in output_dir
    return recipe


class ReferenceTrainer(transformers.Trainer):
    """HF's ``Trainer`` reading the training data in arctic_like's order (its seeded sampler)."""

    sampler_seed = 42

    def _get_train_sampler(self, train_dataset: Any = None) -> Any:
        return DistributedSampler(
            self.train_dataset, num_replicas=1, rank=0, shuffle=True, seed=self.sampler_seed, drop_last=True
        )


@dataclass
class Run:
    """One framework's run of a scenario."""

    trainer: Any
    out: Path
    recorder: Recorder
    stdout: str = ""
    stderr: str = ""

    @property
    def events(self) -> list[tuple]:
        return self.recorder.events


@dataclass
class Pair:
    """A scenario run in HF and in arctic_like from the same initial model and data."""

    hf: Run
    arctic: Run
    initial_model: torch.nn.Module


def run_pair(
    name: str,
    root: Path,
    *,
    extra: tuple[Any, ...] = (),
    harness: Callable[[], list[Any]] = list,
) -> Pair:
    """Run scenario ``name`` in HF and in arctic_like under ``root``.

    ``extra`` names HF-style callbacks (recipe ``callbacks:`` entries) added after the recorder in both;
    ``harness()`` builds harness callbacks added last as adapters (``to_hf`` / ``to_arctic``), once per
    framework.
    """
    from arctic_like.config import build_trainer, load_recipe
    from arctic_like.harness import to_arctic, to_hf
    from arctic_like.integrations.hf import resolve_callback_spec

    scenario = SCENARIOS[name]
    recipe = scenario_recipe(name, root / "arctic", root / "cache")
    specs = [*scenario.callbacks, f"{__name__}.Recorder", *extra]
    recipe["callbacks"] = specs
    trainer = build_trainer(load_recipe(recipe))
    arctic_harness = harness()
    for cb in arctic_harness:
        to_arctic(cb, trainer)
    initial = copy.deepcopy(trainer.model)

    hf_out = root / "hf"
    args = dataclasses.replace(trainer.hf_args, output_dir=str(hf_out))
    recorder = Recorder()
    hf_harness = harness()
    scores = iter(SCORES + [SCORES[-1]] * 100)
    hf = ReferenceTrainer(
        model=copy.deepcopy(initial),
        args=args,
        train_dataset=trainer.train_dataloader.dataset,
        eval_dataset=trainer.eval_dataloader.dataset,
        data_collator=trainer.train_dataloader.collate_fn,
        callbacks=[
            *(resolve_callback_spec(spec) for spec in scenario.callbacks),
            recorder,
            *(resolve_callback_spec(spec) for spec in extra),
            *(to_hf(cb) for cb in hf_harness),
        ],
        compute_metrics=(lambda _: {"score": next(scores)}) if "scores" in recipe["data"] else None,
    )
    hf.sampler_seed = trainer.data_factory.seed
    default = hf.callback_handler.callbacks[-1]  # the printer or progress bar HF adds itself
    assert isinstance(default, transformers.PrinterCallback | transformers.ProgressCallback)
    hf.remove_callback(default)
    hf.harness = hf_harness
    trainer.harness = arctic_harness
    hf_run = _captured(lambda: hf.train(), Run(hf, hf_out, recorder))
    ours = next(cb for cb in trainer.hf_callbacks if isinstance(cb, Recorder))
    arctic_run = _captured(trainer.train, Run(trainer, root / "arctic", ours))
    return Pair(hf_run, arctic_run, initial)


LOGGING_CALLBACKS = (
    "transformers.PrinterCallback",
    "transformers.ProgressCallback",
    "transformers.integrations.TensorBoardCallback",
)
"""HF's own logging callbacks, attached after the recorder in the shared runs."""


class ReferenceRuns:
    """Every scenario's pair, run at first use under ``root`` (once per test session: tests/conftest.py), with
    :data:`LOGGING_CALLBACKS` and a harness ``Trace`` (tests/harness/frameworks.py) in both frameworks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._pairs: dict[str, Pair] = {}

    def __getitem__(self, name: str) -> Pair:
        if name not in self._pairs:
            torch.set_num_threads(1)
            self._pairs[name] = run_pair(
                name, self.root / name, extra=LOGGING_CALLBACKS, harness=lambda: [_step_trace()]
            )
        return self._pairs[name]


def _step_trace() -> Any:
    """The harness ``Trace`` of tests/harness, also noting each step's learning rate (0 in the warmup)."""
    from tests.harness.frameworks import Trace

    class StepTrace(Trace):
        def __init__(self) -> None:
            super().__init__()
            self.learning_rates: list[float] = []

        def _on_train_batch_end(self, current_step: int, loss: float, learning_rate: float) -> None:
            self.losses.append(loss)
            self.learning_rates.append(learning_rate)
            self.calls.append(("batch_end", current_step))

    return StepTrace()


def _captured(train: Callable[[], Any], run: Run) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        train()
    run.stdout, run.stderr = out.getvalue(), err.getvalue()
    return run


ARCTIC_ONLY_LOGS = frozenset(
    {
        "tokens_per_second",
        "samples_per_second",
        "step_time",
        "peak_memory_gib",
        "mfu",
        "train_tokens_per_second",
        "eval_tokens_per_second",
    }
)
"""The throughput figures arctic_like adds to its log records (docs/callbacks-library.md); HF's have none.
The only accepted difference in what HF callbacks receive (docs/huggingface.md)."""


def hf_view(events: list[tuple]) -> list[tuple]:
    """Recorded events with :data:`ARCTIC_ONLY_LOGS` left out of the log keys."""
    return [(*e[:6], tuple(k for k in e[6] if k not in ARCTIC_ONLY_LOGS)) for e in events]


def history(trainer: Any) -> list[dict[str, Any]]:
    """``log_history`` without timing values (they differ from run to run) and :data:`ARCTIC_ONLY_LOGS`."""
    timing = ("_runtime", "_per_second")
    return [
        {k: v for k, v in entry.items() if not k.endswith(timing) and k not in ARCTIC_ONLY_LOGS}
        for entry in trainer.state.log_history
    ]


def main(names: list[str]) -> int:
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="hf-reference-"))
    same = True
    try:
        for name in names or list(SCENARIOS):
            pair = run_pair(name, root / name)
            print(f"== {name}: {len(pair.hf.events)} HF events, {len(pair.arctic.events)} arctic_like events")
            for i in range(max(len(pair.hf.events), len(pair.arctic.events))):
                hf = pair.hf.events[i] if i < len(pair.hf.events) else None
                al = pair.arctic.events[i] if i < len(pair.arctic.events) else None
                same &= hf == (al and hf_view([al])[0])
                print("  " if hf == al else "!!", hf, "" if hf == al else f"\n   arctic_like: {al}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
