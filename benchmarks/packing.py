"""Packing vs padding, and parallel data preparation, measured side by side in one run.

    python benchmarks/packing.py            # the full run quoted in docs/performance.md
    python benchmarks/packing.py --quick    # the smallest case (the smoke test)

1. Training throughput on length-skewed chat data (most answers short, a few long): the same conversations
   through the ``sft`` data factory padded (one conversation per row, batches padded to their longest) and
   packed (whole conversations packed into ``max_length`` rows, kept apart by restarting ``position_ids``),
   on a tiny Llama built from a config, with a character tokenizer built in-process with a ChatML template.
   Reported: real (non-padding) tokens per second of forward + backward + optimizer step, the padding
   fraction, and the loss per target token at the same weights (which must be equal: packing must not change
   what the model learns). Target: packed >= 1.5x padded tokens/s.
2. Data preparation of short chat rows (read, map roles, render the template, tokenize, pack) with
   ``num_proc: 1`` and ``num_proc: 2``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import datasets
import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from arctic_like.data import IGNORE_INDEX, SFTDataConfig, SFTDataFactory, collate

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WORDS = [
    "the",
    "a",
    "model",
    "data",
    "token",
    "pack",
    "row",
    "batch",
    "short",
    "long",
    "answer",
    "question",
    "loss",
    "train",
]


def chat_tokenizer() -> PreTrainedTokenizerFast:
    """One token per character, ChatML special tokens and template; built in-process."""
    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    alphabet = sorted(set("abcdefghijklmnopqrstuvwxyz0123456789 .,?!\n"))
    vocab = {token: i for i, token in enumerate(specials + alphabet)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r".|\n"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=specials[4:],
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def sentence(rng: random.Random, chars: int) -> str:
    words = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:chars]


def skewed_chats(count: int, seed: int = 0) -> list[dict]:
    """85% short answers (10-60 characters), 15% long ones (250-440): a typical SFT length skew."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        length = rng.randint(250, 440) if rng.random() < 0.15 else rng.randint(10, 60)
        rows.append({"question": f"question {i}?", "answer": sentence(rng, length)})
    return rows


def prepare(rows: list[dict], folder: Path, packing: bool, max_length: int, num_proc: int = 1):
    """Rows through the ``sft`` data factory (roles mapped from the question/answer columns)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = SFTDataConfig(
        sources=[{"path": str(path), "role_mapping": {"user": "question", "assistant": "answer"}}],
        max_length=max_length,
        packing=packing,
        num_proc=num_proc,
        use_cache=False,
    )
    trainer = SimpleNamespace(
        config=SimpleNamespace(seed=0, micro_batch_size=1, output_dir=folder), tokenizer=chat_tokenizer()
    )
    return SFTDataFactory(trainer, config)


def batches(factory: SFTDataFactory, batch_size: int) -> list[dict[str, torch.Tensor]]:
    """Every processed row, in order, collated into batches (the last one may be smaller)."""
    rows = factory.process(factory.load())["train"].to_list()
    pad = factory.tokenizer.pad_token_id
    return [collate(rows[i : i + batch_size], pad) for i in range(0, len(rows), batch_size)]


def tiny_llama(vocab_size: int, max_length: int) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=max_length,
        use_cache=False,
    )
    return LlamaForCausalLM(config)


def targets(batch: dict[str, torch.Tensor]) -> int:
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def real_tokens(batch: dict[str, torch.Tensor], pad_token_id: int) -> int:
    """Tokens that are not padding (the character tokenizer never produces ``<pad>`` from text)."""
    return int((batch["input_ids"] != pad_token_id).sum())


@torch.no_grad()
def loss_per_token(model: LlamaForCausalLM, data: list[dict[str, torch.Tensor]]) -> float:
    model.eval()
    total = sum(float(model(**b).loss) * targets(b) for b in data)
    return total / sum(targets(b) for b in data)


def train_seconds(model: LlamaForCausalLM, data: list[dict[str, torch.Tensor]]) -> float:
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    start = time.perf_counter()
    for batch in data:
        model(**batch).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - start


def throughput(chats: int, batch_size: int, max_length: int, repeats: int, folder: Path) -> list[str]:
    rows = skewed_chats(chats)
    data = {
        "padded": batches(prepare(rows, folder / "padded", False, max_length), batch_size),
        "packed": batches(prepare(rows, folder / "packed", True, max_length), batch_size),
    }
    vocab, pad = len(chat_tokenizer()), chat_tokenizer().pad_token_id
    best = {name: float("inf") for name in data}
    train_seconds(tiny_llama(vocab, max_length), data["padded"][:1])  # warm-up: torch's first-step setup
    for _ in range(repeats):  # interleaved, best of each
        for name, batch_list in data.items():
            best[name] = min(best[name], train_seconds(tiny_llama(vocab, max_length), batch_list))
    lines = [f"{'case':<28}{'rows':>7}{'batches':>9}{'padding':>9}{'tokens/s':>11}{'loss/token':>12}"]
    speed, losses = {}, {}
    for name, batch_list in data.items():
        positions = sum(b["input_ids"].numel() for b in batch_list)
        tokens = sum(real_tokens(b, pad) for b in batch_list)
        rows_count = sum(b["input_ids"].shape[0] for b in batch_list)
        speed[name] = tokens / best[name]
        losses[name] = loss_per_token(tiny_llama(vocab, max_length), batch_list)
        label = f"{name} (batch {batch_size})"
        lines.append(
            f"{label:<28}{rows_count:>7}{len(batch_list):>9}{1 - tokens / positions:>9.1%}"
            f"{speed[name]:>11.0f}{losses[name]:>12.6f}"
        )
    ratio = speed["packed"] / speed["padded"]
    lines.append(
        f"packed / padded tokens/s: {ratio:.2f}x (target >= 1.5x: {'met' if ratio >= 1.5 else 'NOT met'}); "
        f"loss per token differs by {abs(losses['packed'] - losses['padded']):.2e}"
    )
    return lines


def preparation(count: int, folder: Path) -> list[str]:
    rows = [{"question": f"q {i}?", "answer": f"a {i % 97}."} for i in range(count)]
    best = {}
    for num_proc in (1, 2):
        factory = prepare(rows, folder / f"prep-{num_proc}", True, 256, num_proc)
        start = time.perf_counter()
        factory.process(factory.load())
        best[num_proc] = time.perf_counter() - start
    lines = [f"{'data preparation':<28}{'rows':>7}{'seconds':>9}{'rows/s':>11}"]
    for num_proc, seconds in best.items():
        lines.append(f"{f'num_proc: {num_proc}':<28}{count:>7}{seconds:>9.2f}{count / seconds:>11.0f}")
    lines.append(f"num_proc 2 / 1 speed-up: {best[1] / best[2]:.2f}x")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the smallest case (seconds)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    datasets.disable_progress_bars()
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    chats, prep_rows = (16, 400) if args.quick else (768, 100_000)
    repeats = 1 if args.quick else args.repeats
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        print("\n".join(throughput(chats, 8, 512, repeats, folder)))
        print()
        print("\n".join(preparation(prep_rows, folder)))
    torch.set_num_threads(threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
