"""Stand-ins shared by the data tests: tokenizers built in-process, a fake trainer, data functions."""

import json
from types import SimpleNamespace

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast

from arctic_like.tokenizer import CharTokenizerFactory, TrainedTokenizerConfig

ALPHABET = "0123456789+=>abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!?\n"

CHATML = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""A ChatML-style template (Qwen's layout) without generation tags."""

CHATML_GENERATION = (
    "{% for m in messages %}{% if m.role == 'assistant' %}<|im_start|>assistant\n"
    "{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}{{ '\\n' }}"
    "{% else %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
"""The same layout with ``{% generation %}`` marking what the assistant writes."""


def char_tokenizer():
    return CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=[ALPHABET]))()


def chat_tokenizer(template=CHATML, add_bos=False):
    """One token per character plus ``<s>``, ``</s>``, ``<|im_start|>``, ``<|im_end|>``; a chat template; with
    ``add_bos`` it adds ``<s>`` before a text by itself, like Llama's tokenizers."""
    specials = ["<pad>", "<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    vocab = {token: i for i, token in enumerate([*specials, *sorted(set(ALPHABET + "|<"))])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r".|\n"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    if add_bos:
        backend.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        additional_special_tokens=["<|im_start|>", "<|im_end|>"],
    )
    tokenizer.chat_template = template
    return tokenizer


def fake_trainer(tmp_path, seed=0, micro_batch_size=4, tokenizer=None, code=()):
    config = SimpleNamespace(
        seed=seed, micro_batch_size=micro_batch_size, output_dir=tmp_path / "out", code=list(code)
    )
    return SimpleNamespace(config=config, tokenizer=tokenizer or char_tokenizer())


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def chats(n, long_every=0):
    """``n`` two-turn conversations; with ``long_every=k`` every k-th has a long answer."""
    out = []
    for i in range(n):
        answer = f"answer {i}" + (" and more" * 6 if long_every and i % long_every == 0 else "")
        out.append(
            {
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": f"question {i}?"},
                    {"role": "assistant", "content": answer},
                ]
            }
        )
    return out


def make_rows(n=10, prefix="item"):
    """A data source function for the `callable` source type."""
    return [{"text": f"{prefix} {i}"} for i in range(n)]


def make_strings(n=5):
    return [f"s{i}" for i in range(n)]


def make_bad():
    return [42]


class Oracle(torch.nn.Module):
    """A 'language model' that knows the continuation of given sequences (or always says eos)."""

    def __init__(self, tokenizer, sequences, vocab_size, wrong=False):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.vocab_size = vocab_size
        self.next = {}
        for ids in sequences:
            for i in range(1, len(ids)):
                self.next[tuple(ids[:i])] = ids[i]
        self.eos = tokenizer.eos_token_id
        self.wrong = wrong
        self.calls = 0

    def forward(self, input_ids, use_cache=None):
        self.calls += 1
        logits = torch.zeros(*input_ids.shape, self.vocab_size)
        for row, ids in enumerate(input_ids.tolist()):
            token = self.eos if self.wrong else self.next.get(tuple(ids), self.eos)
            logits[row, -1, token] = 1.0
        return SimpleNamespace(logits=logits)
