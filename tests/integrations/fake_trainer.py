"""A small stand-in trainer with the real trainer's events, for testing the bridge in isolation.

It follows HF's loop order (step begin, micro-batches, optimizer step, step end, then log / evaluate /
save) so the bridge can be checked without the full arctic_like trainer.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from arctic_like.callback import CallbackMixin
from arctic_like.integrations.hf import HFCallbackSupport
from arctic_like.trainer.state import TrainerControl, TrainerState


@dataclasses.dataclass
class FakeConfig:
    output_dir: Path = Path("output")
    epochs: int = 1
    max_steps: int | None = None
    micro_batch_size: int = 2
    gradient_accumulation_steps: int = 1
    logging_steps: int = 2
    eval_steps: int | None = None
    save_steps: int | None = None
    seed: int = 0
    max_grad_norm: float | None = 1.0
    device: str = "cpu"
    progress: bool = False
    callbacks: list = dataclasses.field(default_factory=list)
    n_train: int = 16
    n_eval: int = 8
    lr: float = 0.1


def tiny_llama(seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    return LlamaForCausalLM(cfg)


def batches(n: int, size: int, seed: int) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n // size):
        ids = torch.randint(0, 64, (size, 8), generator=g)
        out.append({"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": ids.clone()})
    return out


class FakeTrainer(HFCallbackSupport, CallbackMixin):
    def __init__(self, config: FakeConfig) -> None:
        self.config = config
        self.model = tiny_llama(config.seed)
        self.tokenizer = char_tokenizer()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda s: 1.0)
        self.train_dataloader = batches(config.n_train, config.micro_batch_size, 1)
        self.eval_dataloader = batches(config.n_eval, config.micro_batch_size, 1)
        ga = config.gradient_accumulation_steps
        per_epoch = len(self.train_dataloader) // ga
        self.state = TrainerState(
            max_steps=config.max_steps or per_epoch * config.epochs,
            logging_steps=config.logging_steps,
            eval_steps=config.eval_steps,
            save_steps=config.save_steps,
            train_batch_size=config.micro_batch_size,
            num_train_epochs=config.epochs,
        )
        self.control = TrainerControl()
        self._tr_loss = 0.0
        self._micro = 0

    def train(self) -> None:
        self.control._new_training()
        for _ in range(self.config.epochs):
            self.epoch()
            if self.control.should_training_stop:
                break
        self.log({"train_loss": 0.0})

    def epoch(self) -> None:
        self.control._new_epoch()
        ga = self.config.gradient_accumulation_steps
        for i, batch in enumerate(self.train_dataloader):
            self.accumulation_start = i % ga == 0
            self.accumulation_boundary = (i + 1) % ga == 0
            if self.accumulation_start:
                self.control._new_step()
            self.step(batch)
            if self.accumulation_boundary:
                self._maybe_log_save_evaluate()
            if self.control.should_epoch_stop or self.control.should_training_stop:
                break
        self.state.epoch = round(self.state.epoch)

    def step(self, batch: dict[str, torch.Tensor]) -> None:
        loss = self.loss(batch)
        self.backward(loss / self.config.gradient_accumulation_steps)
        self._tr_loss += float(loss.detach()) / self.config.gradient_accumulation_steps
        if self.accumulation_boundary:
            self.optimizer_step()

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.model(**batch).loss

    def backward(self, loss: torch.Tensor) -> None:
        loss.backward()

    def optimizer_step(self) -> None:
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad()
        self.state.global_step += 1
        per_epoch = len(self.train_dataloader) // self.config.gradient_accumulation_steps
        self.state.epoch += 1 / per_epoch
        c, s = self.control, self.state
        c.should_log = s.global_step % s.logging_steps == 0
        c.should_evaluate = bool(s.eval_steps) and s.global_step % s.eval_steps == 0
        c.should_save = bool(s.save_steps) and s.global_step % s.save_steps == 0
        if s.global_step >= s.max_steps:
            c.should_training_stop = True

    def _maybe_log_save_evaluate(self) -> None:
        if self.control.should_log:
            self.log({"loss": self._tr_loss / self.state.logging_steps, "learning_rate": 0.1})
            self._tr_loss = 0.0
        if self.control.should_evaluate:
            self.evaluate()
        if self.control.should_save:
            self.checkpoint()

    def evaluate(self) -> dict[str, float]:
        losses = []
        for batch in self.eval_dataloader:
            losses.append(self.prediction_step(batch))
        metrics = {"eval_loss": sum(losses) / len(losses)}
        self.log(metrics)
        return metrics

    def prediction_step(self, batch: dict[str, torch.Tensor]) -> float:
        with torch.no_grad():
            return float(self.model(**batch).loss)

    def log(self, logs: dict[str, Any]) -> dict[str, Any]:
        self.state.log_history.append({**logs, "step": self.state.global_step})
        return logs

    def checkpoint(self) -> Path:
        path = Path(self.config.output_dir) / f"checkpoint-{self.state.global_step}"
        path.mkdir(parents=True, exist_ok=True)
        (path / "callbacks.json").write_text(json.dumps(self.callback_states()))
        return path


def char_tokenizer() -> Any:
    """A character-level fast tokenizer with fewer than 64 tokens (fits tiny_llama's vocabulary)."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = "abcdefghijklmnopqrstuvwxyz0123456789 +="
    vocab = {"<pad>": 0, "<eos>": 1, **{c: i + 2 for i, c in enumerate(chars)}}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<pad>"))
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>")
