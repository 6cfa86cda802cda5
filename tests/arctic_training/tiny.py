"""A tiny "pretrained" model and data sets on disk, as an ArcticTraining recipe names them: a 1-layer Llama of
width 16 saved with ``save_pretrained`` next to a character-level tokenizer with a chat template, and chat,
text and preference rows (chat pairs in ArcticTraining's DPO shape) saved with ``save_to_disk``."""

from __future__ import annotations

import string
from pathlib import Path

import datasets
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}</s>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

QUESTIONS = [(f"what is {a} plus {b}?", f"{a + b}") for a in range(6) for b in range(6)]


def save_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate(["<pad>", "<unk>", "<s>", "</s>"])}
    for char in string.printable:
        vocab.setdefault(char, len(vocab))
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r".|\n"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", bos_token="<s>", eos_token="</s>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(path)
    return tokenizer


def save_model(path: Path, vocab_size: int, max_positions: int = 256) -> None:
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    LlamaForCausalLM(config).save_pretrained(path)


def save_pretrained(path: Path) -> Path:
    """The model and its tokenizer in one folder, as a Hub checkpoint is laid out."""
    tokenizer = save_tokenizer(path)
    save_model(path, len(tokenizer))
    return path


def save_chat(path: Path) -> Path:
    """Instruction rows in ArcticTraining's ``question``/``answer`` shape (mapped with role_mapping)."""
    rows = [{"question": q, "answer": a} for q, a in QUESTIONS]
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def save_messages(path: Path) -> Path:
    """Chat rows with a ``messages`` list, split into ``train_sft``/``test_sft`` like ultrachat_200k."""
    turns = [[{"role": "user", "content": q}, {"role": "assistant", "content": a}] for q, a in QUESTIONS]
    rows = [{"messages": messages} for messages in turns]
    data = datasets.Dataset.from_list(rows)
    datasets.DatasetDict({"train_sft": data, "test_sft": data.select(range(4))}).save_to_disk(str(path))
    return path


def save_text(path: Path) -> Path:
    rows = [{"content": f"{q} It is {a}."} for q, a in QUESTIONS]
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path


def save_chat_pairs(path: Path) -> Path:
    """Preference rows as ArcticTraining's DPO data factory reads them: ``prompt`` turns, then one assistant
    turn each for ``chosen`` and ``rejected``."""
    rows = [
        {
            "prompt": [{"role": "user", "content": q}],
            "chosen": [{"role": "assistant", "content": a}],
            "rejected": [{"role": "assistant", "content": f"{a}0"}],
        }
        for q, a in QUESTIONS
    ]
    datasets.Dataset.from_list(rows).save_to_disk(str(path))
    return path
