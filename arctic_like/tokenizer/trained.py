"""`char` and `bpe` tokenizer factories: trained in-process on the run's training text.

The text comes from ``tokenizer.texts`` in the recipe when given, else from the trainer's data factory
(``trainer.data_factory.raw_texts()``). The result is a ``PreTrainedTokenizerFast`` with ``<pad>``, ``<unk>``,
``<s>`` (bos) and ``</s>`` (eos). Like Llama's, it puts ``<s>`` before a text by itself (a ``tokenizers``
post-processor, so the behaviour travels in ``tokenizer.json``): plain ``tokenizer(prompt)`` on an exported
copy gives the ids training saw. It is saved with checkpoints by ``save_pretrained``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

from pydantic import Field
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

from arctic_like.config.base import HumanInt
from arctic_like.config.parts import TokenizerConfig
from arctic_like.tokenizer.base import TokenizerFactory

__all__ = [
    "BPETokenizerConfig",
    "BPETokenizerFactory",
    "CharTokenizerFactory",
    "TrainedTokenizerConfig",
    "TrainedTokenizerFactory",
]


class TrainedTokenizerConfig(TokenizerConfig):
    """Special tokens, and where the training text comes from."""

    texts: list[str] | None = None
    """Train on these strings instead of the data factory's raw texts."""
    max_texts: HumanInt | None = Field(default=None, ge=1)
    """Use at most this many texts (the first ones) for training."""
    pad_token: str = "<pad>"
    unk_token: str = "<unk>"
    bos_token: str = "<s>"
    eos_token: str = "</s>"
    add_bos_token: bool = True
    """Put ``bos_token`` before every text the tokenizer encodes by itself (as Llama's tokenizer does)."""
    chat_template: str | None = None
    """A Jinja chat template (for chat ``messages`` data), saved with the tokenizer."""

    def special_tokens(self) -> list[str]:
        return list(dict.fromkeys([self.pad_token, self.unk_token, self.bos_token, self.eos_token]))


class BPETokenizerConfig(TrainedTokenizerConfig):
    """Byte-level BPE: ``vocab_size`` includes the 256 byte tokens and the special tokens."""

    vocab_size: HumanInt = Field(default=512, ge=16)
    min_frequency: int = Field(default=2, ge=1)


class TrainedTokenizerFactory(TokenizerFactory):
    """Common part of the in-process tokenizers: gathering text and wrapping the result."""

    config = TrainedTokenizerConfig

    def training_texts(self) -> Iterator[str]:
        """The texts to train on: ``config.texts`` or ``trainer.data_factory.raw_texts()``."""
        texts: Iterable[str]
        if self.config.texts is not None:
            texts = self.config.texts
        else:
            data_factory = getattr(self.trainer, "data_factory", None)
            if data_factory is None or not hasattr(data_factory, "raw_texts"):
                raise ValueError(
                    f"the {self.name!r} tokenizer trains on the training text, but the trainer has no "
                    f"data factory yet. Fix: create trainer.data_factory before the tokenizer, or set "
                    f"tokenizer.texts."
                )
            texts = data_factory.raw_texts()
        return iter(itertools.islice(texts, self.config.max_texts))

    def wrap(self, tokenizer: Tokenizer) -> PreTrainedTokenizerFast:
        """Wrap a trained ``tokenizers.Tokenizer`` with the configured special tokens, bos post-processor and
        chat template."""
        cfg = self.config
        bos = cfg.bos_token
        if cfg.add_bos_token:
            tokenizer.post_processor = processors.TemplateProcessing(
                single=f"{bos} $A",
                pair=f"{bos} $A {bos}:1 $B:1",
                special_tokens=[(bos, tokenizer.token_to_id(bos))],
            )
        wrapped = PreTrainedTokenizerFast(
            tokenizer_object=tokenizer,
            pad_token=cfg.pad_token,
            unk_token=cfg.unk_token,
            bos_token=bos,
            eos_token=cfg.eos_token,
            add_bos_token=cfg.add_bos_token,
            add_eos_token=False,
        )
        if cfg.chat_template is not None:
            wrapped.chat_template = cfg.chat_template
        return wrapped


class CharTokenizerFactory(TrainedTokenizerFactory):
    """One token per character seen in the training text (good for the synthetic tasks)."""

    name = "char"
    config = TrainedTokenizerConfig

    def create_tokenizer(self) -> PreTrainedTokenizerFast:
        chars: set[str] = set()
        for text in self.training_texts():
            chars.update(text)
        if not chars:
            raise ValueError(
                "the char tokenizer got no training text. Fix: check data.sources or tokenizer.texts."
            )
        vocab = {token: i for i, token in enumerate(self.config.special_tokens())}
        for char in sorted(chars):
            vocab.setdefault(char, len(vocab))
        tokenizer = Tokenizer(models.WordLevel(vocab, unk_token=self.config.unk_token))
        tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(r".|\n"), behavior="isolated")
        tokenizer.decoder = decoders.Fuse()
        return self.wrap(tokenizer)


class BPETokenizerFactory(TrainedTokenizerFactory):
    """Byte-level BPE trained with the ``tokenizers`` library."""

    name = "bpe"
    config = BPETokenizerConfig

    def create_tokenizer(self) -> PreTrainedTokenizerFast:
        tokenizer = Tokenizer(models.BPE(unk_token=self.config.unk_token))
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=self.config.vocab_size,
            min_frequency=self.config.min_frequency,
            special_tokens=self.config.special_tokens(),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(self.training_texts(), trainer=trainer)
        return self.wrap(tokenizer)
