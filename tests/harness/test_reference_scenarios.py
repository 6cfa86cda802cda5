"""The HF reference scenarios through the harness: identical in HF and arctic_like, Lightning where it can be.

HF and arctic_like run each scenario of tests/integrations/hf_reference.py once per session with a harness
``Trace``; Lightning runs the same model and data with the same harness callback here. What Lightning cannot
do the same way is listed in docs/harness.md and checked below, difference by difference.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from arctic_like.harness import EarlyStopping, HarnessCallback, HarnessControl, to_lightning
from tests.integrations.hf_reference import SCENARIOS, SCORES

pytestmark = pytest.mark.slow

LIGHTNING = {
    # eval/save every N optimizer steps = every N * accumulation batches (windows are all full here)
    "steps": {"max_steps": 8, "accumulate": 2, "val_every": 4, "save_every": 4},
    "stop-at-3": {"max_steps": 8, "accumulate": 2, "val_every": 4, "save_every": 4, "stop_at": 3},
    # Lightning validates every N *batches*: with an epoch cut short or an incomplete window, that is no
    # longer every N optimizer steps, so these two run without validation and checkpoints.
    "epoch-stop": {"epochs": 2, "accumulate": 2, "cut_epoch_at": 3},
    "incomplete-window": {"epochs": 2, "accumulate": 3},
    "best-model": {"epochs": 2, "accumulate": 2, "val_every": 2, "save_every": 2, "patience": 2},
}


class StopAt(HarnessCallback):
    def __init__(self, step: int) -> None:
        self.step = step

    def _on_train_batch_end(self, current_step: int) -> HarnessControl | None:
        return HarnessControl.stop("scenario stop") if current_step == self.step else None


def lightning_trace(pair: Any, name: str, root: Any) -> Any:
    """Run scenario ``name`` in Lightning from the pair's initial model and data; returns its ``Trace``."""
    import lightning.pytorch as pl

    from tests.integrations.hf_reference import _step_trace

    settings = LIGHTNING[name]
    trainer = pair.arctic.trainer
    train_data, eval_data = trainer.train_dataloader.dataset, trainer.eval_dataloader.dataset
    collate, seed = trainer.train_dataloader.collate_fn, trainer.data_factory.seed
    scores = iter([*SCORES, *[SCORES[-1]] * 100])

    class LitLM(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = pair.initial_model

        def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
            return self.model(**batch).loss

        def validation_step(self, batch: dict, batch_idx: int) -> None:
            self.log("val_loss", self.model(**batch).loss)

        def on_validation_epoch_end(self) -> None:
            self.log("val_score", next(scores))

        def on_train_batch_start(self, batch: Any, batch_idx: int) -> int | None:
            cut = settings.get("cut_epoch_at")
            return -1 if self.current_epoch == 0 and self.global_step == cut else None

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.AdamW(self.parameters(), lr=1e-3, betas=(0.8, 0.95))

        def train_dataloader(self) -> DataLoader:
            sampler = DistributedSampler(train_data, num_replicas=1, rank=0, seed=seed, drop_last=True)
            return DataLoader(train_data, batch_size=4, sampler=sampler, collate_fn=collate)

        def val_dataloader(self) -> DataLoader:
            return DataLoader(eval_data, batch_size=4, collate_fn=collate)

    trace = _step_trace()
    callbacks: list[Any] = [to_lightning(trace)]
    if "stop_at" in settings:
        callbacks.append(to_lightning(StopAt(settings["stop_at"])))
    if "patience" in settings:
        callbacks.append(to_lightning(EarlyStopping(monitor="score", patience=settings["patience"])))
    validate = "val_every" in settings
    if "save_every" in settings:
        callbacks.append(
            pl.callbacks.ModelCheckpoint(
                dirpath=str(root / "ckpt"), every_n_train_steps=settings["save_every"], save_top_k=-1
            )
        )
    accumulate = settings["accumulate"]
    lightning = pl.Trainer(
        max_steps=settings.get("max_steps", -1),
        max_epochs=settings.get("epochs", 1),
        accumulate_grad_batches=accumulate,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing="save_every" in settings,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        val_check_interval=settings["val_every"] * accumulate if validate else 1.0,
        check_val_every_n_epoch=None if validate else 1,
        limit_val_batches=1.0 if validate else 0,
        default_root_dir=str(root),
        callbacks=callbacks,
    )
    lightning.fit(LitLM())
    return trace


@pytest.fixture(scope="module")
def lightning_traces(hf_reference, tmp_path_factory) -> dict[str, Any]:
    cache: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in cache:
            cache[name] = lightning_trace(hf_reference[name], name, tmp_path_factory.mktemp(f"pl-{name}"))
        return cache[name]

    return get


def _trace(run: Any) -> Any:
    return run.trainer.harness[0]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_hf_and_arctic_harness_traces_are_identical(hf_reference, name):
    pair = hf_reference[name]
    hf, ours = _trace(pair.hf), _trace(pair.arctic)
    assert ours.calls == hf.calls  # logs included
    assert ours.learning_rates == pytest.approx(hf.learning_rates)
    assert ours.losses == pytest.approx(hf.losses, rel=1e-5)
    assert ours.max_steps == hf.max_steps


def _without(calls: list[tuple], *kinds: str) -> list[tuple]:
    return [c for c in calls if c[0] not in kinds]


def _save_before_validation(calls: list[tuple]) -> list[tuple]:
    """Lightning's ModelCheckpoint saves at the end of the step, before that step's validation."""
    out = list(calls)
    for i in range(len(out) - 1):
        if out[i][0] == "validation_end" and out[i + 1] == ("save", out[i][1]):
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


@pytest.mark.parametrize("name", ["steps", "best-model"])
def test_lightning_trace_is_hf_trace_with_save_before_validation(hf_reference, lightning_traces, name):
    hf = _trace(hf_reference[name].hf)
    lightning = lightning_traces(name)
    assert lightning.calls == _save_before_validation(_without(hf.calls, "log"))  # Lightning has no _on_log
    assert lightning.max_steps == hf.max_steps or "epochs" in LIGHTNING[name]


def test_lightning_validates_once_more_when_a_callback_stops_it(hf_reference, lightning_traces):
    hf = _without(_trace(hf_reference["stop-at-3"].hf).calls, "log")
    cut = hf.index(("epoch_end", 0, 3))
    assert lightning_traces("stop-at-3").calls == [*hf[:cut], ("validation_end", 3), *hf[cut:]]


def test_lightning_incomplete_window_steps_like_hf(hf_reference, lightning_traces):
    hf = _trace(hf_reference["incomplete-window"].hf)
    lightning = lightning_traces("incomplete-window")
    assert lightning.calls == _without(hf.calls, "log", "validation_end", "save")
    assert [c[1] for c in lightning.calls if c[0] == "batch_end"] == list(range(1, 13))


def test_lightning_cuts_an_epoch_after_its_next_batch_started(hf_reference, lightning_traces):
    """An epoch is cut from the module's ``on_train_batch_start`` (returning -1), which runs after the
    callbacks': the next step's ``_on_train_batch_start`` fires in the cut epoch, not in the next one."""
    hf = _without(_trace(hf_reference["epoch-stop"].hf).calls, "log", "validation_end", "save")
    cut = hf.index(("epoch_end", 0, 3))
    moved = [*hf[:cut], ("batch_start", 3), *hf[cut : cut + 2], *hf[cut + 3 :]]
    assert hf[cut + 2] == ("batch_start", 3)
    assert lightning_traces("epoch-stop").calls == moved
