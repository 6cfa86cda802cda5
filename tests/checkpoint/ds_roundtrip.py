"""Run by test_deepspeed_engine.py in a fresh process (DeepSpeed initialises torch.distributed).

Trains a stand-in trainer through the real DeepSpeed engine at ZeRO `argv[2]`, saves, continues two steps,
then a fresh trainer loads the checkpoint and must produce the same two losses; also writes the `hf/` export
and a `huggingface` engine export (gathered under ZeRO-3) for the test to compare.
"""

import json
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from arctic_like.checkpoint import DeepSpeedCheckpointEngine, HuggingFaceCheckpointEngine
from arctic_like.engine.deepspeed_engine import DeepSpeedEngine
from tests.checkpoint.conftest import StandInTrainer


def make(out: Path, stage: int, seed: int) -> tuple[StandInTrainer, DeepSpeedCheckpointEngine]:
    trainer = StandInTrainer(out, seed=seed)
    cfg = SimpleNamespace(
        output_dir=out,
        micro_batch_size=2,
        gradient_accumulation_steps=1,
        max_grad_norm=1.0,
        precision="fp32",
        deepspeed={"zero_optimization": {"stage": stage}},
        model_dump=lambda mode="python": {"engine": "deepspeed"},
    )
    trainer.config = cfg
    trainer.device = torch.device("cpu")
    DeepSpeedEngine.init_distributed(cfg)
    trainer.engine = DeepSpeedEngine(trainer)
    trainer.engine.prepare(trainer.model, trainer.optimizer, trainer.scheduler)
    wrapped = trainer.engine.wrapped

    def train_steps(n: int) -> list[float]:
        losses = []
        for _ in range(n):
            ids = torch.randint(0, 16, (2, 8))
            loss = wrapped(input_ids=ids, labels=ids).loss
            wrapped.backward(loss)
            wrapped.step()
            trainer.state.global_step += 1
            trainer.batches_in_epoch += 1
            losses.append(loss.item())
        return losses

    trainer.train_steps = train_steps
    config = DeepSpeedCheckpointEngine.config(type="deepspeed", export_hf=True)
    return trainer, DeepSpeedCheckpointEngine(trainer, config)


def main() -> None:
    out, stage = Path(sys.argv[1]), int(sys.argv[2])
    torch.manual_seed(0)
    trainer, engine = make(out, stage, seed=0)
    trainer.train_steps(2)
    path = engine.save()
    hf = HuggingFaceCheckpointEngine(trainer, HuggingFaceCheckpointEngine.config(type="huggingface"))
    hf.save()
    rng = torch.get_rng_state()
    expected = trainer.train_steps(2)
    fresh, engine2 = make(out, stage, seed=7)
    assert engine2.latest() == path
    engine2.load(path)
    assert torch.equal(torch.get_rng_state(), rng)
    got = fresh.train_steps(2)
    result = {"expected": expected, "got": got, "step": fresh.state.global_step, "path": str(path)}
    (out / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main()
