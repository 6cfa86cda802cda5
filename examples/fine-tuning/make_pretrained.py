"""Save a small pretrained-style model and tokenizer to a folder: the stand-in for a downloaded model.

Run: .venv/bin/python examples/fine-tuning/make_pretrained.py [OUT] [--family llama|gpt2] [--steps N]

OUT defaults to `examples/fine-tuning/pretrained`, where `recipe.yaml` expects it. The folder is what
`save_pretrained` writes for a Hugging Face model: a byte-level BPE tokenizer built with the `tokenizers`
library (bos/eos/pad, a chat template, and the family's convention for special tokens: Llama puts `<s>`
before every text, GPT-2 adds nothing) and a tiny causal LM of the family, briefly pre-trained on plain
sentences about the world of `chat.jsonl`, so that fine-tuning starts from a model that has seen the words.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerFast
from transformers.utils import logging as hf_logging

HERE = Path(__file__).resolve().parent

# The special tokens sit at ids other than those of the built-in `char` tokenizer, so a run that used the
# wrong tokenizer would show.
SPECIAL_TOKENS = ["<s>", "</s>", "<pad>", "<|user|>", "<|assistant|>"]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\\n' }}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% else %}{{ message['content'] }}{% endif %}"
    "{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
"""A Zephyr-like template; the assistant turns are marked for ``return_assistant_tokens_mask``."""

ARCHITECTURES = {
    "llama": {
        "model_type": "llama",
        "hidden_size": 64,
        "intermediate_size": 192,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 256,
        "tie_word_embeddings": True,
    },
    "gpt2": {
        "model_type": "gpt2",
        "n_embd": 64,
        "n_layer": 2,
        "n_head": 4,
        "n_positions": 256,
        "resid_pdrop": 0.0,
        "embd_pdrop": 0.0,
        "attn_pdrop": 0.0,
    },
}
ADDS_BOS = {"llama": True, "gpt2": False}

WORLD = {
    "Zorland": ("Quibble", "blue", "otters"),
    "Mirabel": ("Tansy", "green", "foxes"),
    "Quenta": ("Lorn", "red", "owls"),
    "Velmora": ("Pike", "gold", "cranes"),
    "Ostria": ("Dunmere", "grey", "wolves"),
    "Kelvar": ("Ambry", "white", "hares"),
}


def corpus() -> list[str]:
    """Plain sentences about the world of the chat data (what the stand-in is pre-trained on)."""
    sentences = []
    for place, (capital, colour, animal) in WORLD.items():
        sentences += [
            f"The capital of {place} is {capital}.",
            f"The flag of {place} is {colour}.",
            f"In {place} you can see many {animal}.",
            f"{capital} is a city in {place}.",
        ]
    return sentences


def build_tokenizer(family: str = "llama") -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on :func:`corpus`, with the family's special-token convention."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    questions = [q for conversation in chats() for q in (m["content"] for m in conversation)]
    tokenizer.train_from_iterator(corpus() + questions, trainer=trainer)
    if ADDS_BOS[family]:
        tokenizer.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
        )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", pad_token="<pad>"
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_model(tokenizer: PreTrainedTokenizerFast, family: str = "llama") -> PreTrainedModel:
    """A tiny, freshly initialised causal LM of ``family`` sized for ``tokenizer``."""
    options = dict(ARCHITECTURES[family])
    config = AutoConfig.for_model(
        options.pop("model_type"),
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **options,
    )
    return AutoModelForCausalLM.from_config(config)


def pretrain(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, steps: int, seed: int = 0) -> float:
    """``steps`` AdamW steps of next-token prediction on :func:`corpus`; returns the last loss."""
    rng = random.Random(seed)
    sentences = corpus()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    loss = torch.tensor(float("nan"))
    model.train()
    for _ in range(steps):
        batch = tokenizer(
            [s + tokenizer.eos_token for s in rng.sample(sentences, 8)], return_tensors="pt", padding=True
        )
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return loss.item()


def chats() -> list[list[dict[str, str]]]:
    """The conversations of ``chat.jsonl``, as written there."""
    lines = (HERE / "chat.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["messages"] for line in lines if line.strip()]


def make(out: Path, family: str = "llama", steps: int = 150, seed: int = 0) -> float:
    """Build, pre-train and save the stand-in into ``out``; returns the last pre-training loss."""
    torch.manual_seed(seed)
    tokenizer = build_tokenizer(family)
    model = build_model(tokenizer, family)
    loss = pretrain(model, tokenizer, steps, seed)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return loss


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=HERE / "pretrained")
    parser.add_argument("--family", choices=sorted(ARCHITECTURES), default="llama")
    parser.add_argument("--steps", type=int, default=150, help="pre-training steps (0: untrained)")
    args = parser.parse_args(argv)
    hf_logging.disable_progress_bar()
    loss = make(args.out, args.family, args.steps)
    print(f"saved a pretrained-style {args.family} model and its tokenizer to {args.out} (loss {loss:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
