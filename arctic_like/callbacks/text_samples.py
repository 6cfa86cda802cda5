"""Generate text from fixed prompts during training, to watch what the model learns."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import torch

from arctic_like.callbacks.base import Callback
from arctic_like.callbacks.loggers import JsonLogger, TensorBoardLogger
from arctic_like.data.tokenize import tokenizer_framing

logger = logging.getLogger("arctic_like.callbacks.text_samples")


class TextSamples(Callback):
    """Every ``every_n_steps`` optimizer steps (and at the end), complete each prompt with ``model.generate``.

    ``generation_config`` is passed to ``generate`` (default: greedy, 20 new tokens). Samples are kept in
    ``self.samples`` and written to the attached :class:`JsonLogger` (event ``text_samples``) and
    :class:`TensorBoardLogger` (text ``samples``), when those are attached to the same trainer.
    """

    def __init__(
        self,
        prompts: Sequence[str],
        every_n_steps: int = 100,
        generation_config: dict[str, Any] | None = None,
        at_end: bool = True,
    ) -> None:
        super().__init__()
        if not prompts:
            raise ValueError("TextSamples needs at least one prompt. Fix: pass prompts=['...'].")
        self.prompts = list(prompts)
        self.every_n_steps = max(1, every_n_steps)
        self.generation_config = {"max_new_tokens": 20, "do_sample": False, **(generation_config or {})}
        self.at_end = at_end
        self.samples: list[dict[str, Any]] = []
        self._last_step = -1

    @torch.no_grad()
    def generate(self, model: Any, tokenizer: Any) -> list[str]:
        """The completion (prompt excluded) of every prompt, framed as training framed a text (a BOS token the
        tokenizer adds comes first; an EOS it would append does not, so the model continues the prompt)."""
        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        config = dict(self.generation_config)
        if tokenizer.pad_token_id is not None:
            config.setdefault("pad_token_id", tokenizer.pad_token_id)
        prefix = list(tokenizer_framing(tokenizer).prefix)  # e.g. <s>: what training put before each text
        outputs = []
        try:
            for prompt in self.prompts:
                ids = prefix + list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
                input_ids = torch.tensor([ids], device=device)
                out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **config)
                outputs.append(tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True))
        finally:
            model.train(was_training)
        return outputs

    def _sample(self, state: Any, kwargs: dict[str, Any]) -> None:
        model = kwargs.get("model")
        tokenizer = kwargs.get("processing_class") or kwargs.get("tokenizer")
        if model is None or tokenizer is None or state.global_step == self._last_step:
            return
        self._last_step = state.global_step
        completions = self.generate(model, tokenizer)
        record = {
            "step": state.global_step,
            "samples": [
                {"prompt": p, "completion": c} for p, c in zip(self.prompts, completions, strict=True)
            ],
        }
        self.samples.append(record)
        if not state.is_world_process_zero:
            return
        for item in record["samples"]:
            logger.info("sample @%d: %r -> %r", state.global_step, item["prompt"], item["completion"])
        json_logger = self.attached(JsonLogger)
        if json_logger is not None:
            json_logger.write("text_samples", samples=record["samples"])
        tb = self.attached(TensorBoardLogger)
        if tb is not None:
            text = "\n\n".join(f"**{s['prompt']}** {s['completion']}" for s in record["samples"])
            tb.add_text("samples", text, state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.global_step % self.every_n_steps == 0:
            self._sample(state, kwargs)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if self.at_end:
            self._sample(state, kwargs)
