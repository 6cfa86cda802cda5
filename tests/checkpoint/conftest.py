"""A small stand-in trainer (tiny model, optimizer, scheduler, state) for testing the engines in isolation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from arctic_like.checkpoint import CheckpointEngine
from arctic_like.registry import get


@dataclasses.dataclass
class StandInState:
    global_step: int = 0
    epoch: float = 0.0
    log_history: list[dict[str, Any]] = dataclasses.field(default_factory=list)

    def save_to_json(self, path: Path) -> None:
        Path(path).write_text(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def load_from_json(cls, path: Path) -> StandInState:
        return cls(**json.loads(Path(path).read_text()))


@dataclasses.dataclass
class StandInControl:
    should_save: bool = False
    should_training_stop: bool = False


class StandInConfig:
    def __init__(self, output_dir: Path) -> None:
        self.output_dir = output_dir

    def model_dump(self, mode: str = "python") -> dict[str, Any]:
        return {"output_dir": str(self.output_dir), "seed": 1}


def tiny_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {c: i for i, c in enumerate(["<pad>", "<eos>", *"0123456789+="])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")


def tiny_model(hidden: int = 32, seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=16,
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=32,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(cfg)


class StandInTrainer:
    """Holds what the checkpoint engines touch; `train_steps(n)` runs n real optimizer steps."""

    def __init__(self, output_dir: Path, hidden: int = 32, seed: int = 0) -> None:
        self.config = StandInConfig(output_dir)
        self.model = tiny_model(hidden, seed)
        self.tokenizer = tiny_tokenizer()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-2)
        self.scheduler = torch.optim.lr_scheduler.LinearLR(self.optimizer, 1.0, 0.1, total_iters=100)
        self.state = StandInState()
        self.control = StandInControl()
        self.epoch_idx = 0
        self.batches_in_epoch = 0
        self.cb_state: dict[str, Any] = {"patience": 0}
        self.global_rank, self.world_size = 0, 1

    def callback_states(self) -> dict[str, Any]:
        return dict(self.cb_state)

    def load_callback_states(self, states: dict[str, Any]) -> None:
        self.cb_state = dict(states)

    def train_steps(self, n: int) -> list[float]:
        losses = []
        for _ in range(n):
            ids = torch.randint(0, 16, (2, 8))
            loss = self.model(input_ids=ids, labels=ids).loss
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad()
            self.state.global_step += 1
            self.batches_in_epoch += 1
            self.cb_state["patience"] += 1
            losses.append(loss.item())
        return losses


@pytest.fixture
def make_engine(tmp_path):
    """`make_engine(type="torch", hidden=32, **config)` -> (engine, trainer) sharing `tmp_path/out`."""

    def make(type: str = "torch", hidden: int = 32, seed: int = 0, **config: Any):
        trainer = StandInTrainer(tmp_path / "out", hidden=hidden, seed=seed)
        cls = get(CheckpointEngine, type)
        engine = cls(trainer, cls.config(type=type, **config))
        return engine, trainer

    return make
