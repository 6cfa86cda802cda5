"""One tiny "pretrained" model, its tokenizer and small preference/SFT data sets, shared by arctic_like and
the TRL reference runs (``tests/reference/trl_runs.py``) so both train exactly the same thing.

The tokenizer is character-level with Llama-style framing (``<s>`` before every text, added by the tokenizer
itself) and a chat template; the model is a 2-layer, 32-wide Llama saved with ``save_pretrained``.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedTokenizerFast

from tests.tiny import TINY_MODEL

ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789+=?!.,:;<>|/ \n"
SPECIALS = ["<pad>", "<unk>", "<s>", "</s>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def tokenizer() -> PreTrainedTokenizerFast:
    """Characters of ``ALPHABET`` plus ``<pad> <unk> <s> </s>``; ``tokenizer(text)`` starts with ``<s>``."""
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    for char in ALPHABET:
        vocab.setdefault(char, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r".|\n"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 2)])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        chat_template=CHAT_TEMPLATE,
    )


def save_pretrained_model(directory: Path, seed: int = 0) -> Path:
    """Save a freshly initialised tiny Llama and the tokenizer to ``directory`` (a local "pretrained"
    model)."""
    tok = tokenizer()
    torch.manual_seed(seed)
    config = AutoConfig.for_model(
        **TINY_MODEL,
        vocab_size=len(tok),
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    AutoModelForCausalLM.from_config(config).save_pretrained(directory)
    tok.save_pretrained(directory)
    return directory


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(low, high)))


def preference_rows(count: int = 16, seed: int = 0) -> list[dict[str, str]]:
    """Text pairs with prompts and completions of varied lengths (so batches are padded)."""
    rng = random.Random(seed)
    return [
        {
            "prompt": f"{_word(rng, 2, 6)} {_word(rng, 1, 4)}?",
            "chosen": f" {_word(rng, 2, 7)}.",
            "rejected": f" {_word(rng, 1, 8)}!",
        }
        for _ in range(count)
    ]


def chat_preference_rows(count: int = 16, seed: int = 1) -> list[dict[str, list[dict[str, str]]]]:
    """Chat pairs: a user turn as the prompt, one assistant turn each for chosen and rejected."""
    return [
        {
            "prompt": [{"role": "user", "content": row["prompt"]}],
            "chosen": [{"role": "assistant", "content": row["chosen"].strip()}],
            "rejected": [{"role": "assistant", "content": row["rejected"].strip()}],
        }
        for row in preference_rows(count, seed)
    ]


def completion_rows(count: int = 16, seed: int = 2) -> list[dict[str, str]]:
    """Prompt/completion rows for SFT."""
    return [{"prompt": r["prompt"], "completion": r["chosen"]} for r in preference_rows(count, seed)]


def prompt_response_rows(count: int = 16, seed: int = 2) -> list[dict[str, str]]:
    """``completion_rows`` with arctic_like's column names (``prompt``/``response``)."""
    return [{"prompt": r["prompt"], "response": r["completion"]} for r in completion_rows(count, seed)]
