"""Stand-ins shared by the data tests."""

from types import SimpleNamespace

import torch

from arctic_like.tokenizer import CharTokenizerFactory, TrainedTokenizerConfig

ALPHABET = "0123456789+=>abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.,!?\n"


def char_tokenizer():
    return CharTokenizerFactory(SimpleNamespace(), TrainedTokenizerConfig(texts=[ALPHABET]))()


def fake_trainer(tmp_path, seed=0, micro_batch_size=4, tokenizer=None):
    config = SimpleNamespace(seed=seed, micro_batch_size=micro_batch_size, output_dir=tmp_path / "out")
    return SimpleNamespace(config=config, tokenizer=tokenizer or char_tokenizer())


def rows(n):
    return [{"text": f"row {i}", "prompt": f"q{i}", "response": f"a{i}"} for i in range(n)]


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
