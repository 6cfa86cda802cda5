"""Tokenizing one example the way the model will see it at inference.

A training sequence starts exactly as plain ``tokenizer(prompt)`` does (whatever special tokens *this*
tokenizer adds around a text by itself: :func:`tokenizer_framing`), and its target ends with eos, so a model
exported with its tokenizer generates what it learned through plain ``transformers``. Chat ``messages`` are
rendered with the tokenizer's chat template, as ``apply_chat_template`` does at inference (the template writes
its own special tokens), and only the assistant turns are targets when the prompt is masked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["IGNORE_INDEX", "ChatTemplateError", "Encoded", "Encoder", "Framing", "tokenizer_framing"]

IGNORE_INDEX = -100
"""Label of a token the loss ignores (prompt, padding, the first token of a packed document)."""

Encoded = tuple[list[int], list[int]]
"""``(input_ids, labels)`` of one example."""

logger = logging.getLogger("arctic_like.data")

_PROBE = "Hello"


@dataclass(frozen=True)
class Framing:
    """The ids a tokenizer adds before (``prefix``) and after (``suffix``) a single text by itself."""

    prefix: tuple[int, ...]
    suffix: tuple[int, ...]


def tokenizer_framing(tokenizer: Any) -> Framing:
    """Ask ``tokenizer`` what it adds around one text: ``tokenizer(text)`` compared with
    ``tokenizer(text, add_special_tokens=False)`` (``<s>`` for Llama-style tokenizers, nothing for GPT-2)."""
    plain = list(tokenizer(_PROBE, add_special_tokens=False)["input_ids"])
    full = list(tokenizer(_PROBE)["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return Framing(tuple(full[:start]), tuple(full[start + len(plain) :]))
    logger.warning(
        "cannot tell what %s adds around a text (%r gives %s, and %s without special tokens); "
        "assuming nothing",
        type(tokenizer).__name__,
        _PROBE,
        full,
        plain,
    )
    return Framing((), ())


class ChatTemplateError(ValueError):
    """Chat data that the tokenizer cannot render, or whose assistant turns cannot be located."""


class Encoder:
    """Tokenizes examples into ``(input_ids, labels)``; picklable, so ``datasets.map`` can run it in workers.

    ``mask_prompt``: the prompt (and every non-assistant chat token) gets label ``IGNORE_INDEX``.
    """

    def __init__(self, tokenizer: Any, mask_prompt: bool) -> None:
        self.tokenizer = tokenizer
        self.mask_prompt = mask_prompt
        self.framing = tokenizer_framing(tokenizer)
        self.eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []

    def ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens."""
        if not texts:
            return []
        return [list(ids) for ids in self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]]

    def text(self, texts: Sequence[str]) -> list[Encoded]:
        """Plain text: ``prefix + text + eos``, every token a target."""
        prefix = list(self.framing.prefix)
        out = []
        for ids in self.ids(texts):
            tokens = prefix + ids + self.eos
            out.append((tokens, list(tokens)))
        return out

    def prompt_response(self, prompts: Sequence[str], responses: Sequence[str]) -> list[Encoded]:
        """``prefix + prompt`` (as ``tokenizer(prompt)`` gives it at inference) ``+ response + eos``."""
        prefix = list(self.framing.prefix)
        out = []
        for prompt_ids, response_ids in zip(self.ids(prompts), self.ids(responses), strict=True):
            head = prefix + prompt_ids
            tail = response_ids + self.eos
            out.append((head + tail, ([IGNORE_INDEX] * len(head) if self.mask_prompt else head) + tail))
        return out

    # ---- chat ----------------------------------------------------------------------------------------------
    def chat(self, messages: list[dict[str, str]]) -> Encoded:
        """The conversation as ``apply_chat_template`` renders it; with ``mask_prompt`` only the assistant
        turns (their content and the end-of-turn the template writes after it) are targets."""
        tokenizer = self.tokenizer
        if not getattr(tokenizer, "chat_template", None):
            raise ChatTemplateError(
                f"chat data (a `messages` column) needs a tokenizer with a chat template, but this "
                f"{type(tokenizer).__name__} has none. Fix: use the tokenizer of a chat model, give it a "
                f"template (tokenizer.chat_template = '...', e.g. in a post-create-tokenizer callback), or "
                f"write the data as prompt/response pairs."
            )
        if not self.mask_prompt:
            ids = self.ids([self._render(messages)])[0]
            return ids, list(ids)
        if "{% generation %}" in tokenizer.chat_template or "{%- generation %}" in tokenizer.chat_template:
            out = tokenizer.apply_chat_template(
                messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
            )
            ids = list(out["input_ids"])
            return ids, [t if m else IGNORE_INDEX for t, m in zip(ids, out["assistant_masks"], strict=True)]
        text = self._render(messages)
        return self._label_spans(text, self._assistant_spans(messages, text))

    def _render(self, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=add_generation_prompt
        )

    def _assistant_spans(self, messages: list[dict[str, str]], text: str) -> list[tuple[int, int]]:
        """Character spans of the assistant turns in ``text``, found by rendering growing prefixes of the
        conversation: turn ``i`` runs from the end of ``messages[:i]`` + generation prompt to the end of
        ``messages[:i + 1]``. Works for any template that renders a conversation's start the same whatever
        follows (``{% generation %}`` templates are handled by ``transformers`` instead)."""
        spans = []
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            try:
                head = self._render(messages[:index], add_generation_prompt=True) if index else ""
            except Exception:  # some templates cannot render an empty conversation
                head = ""
            body = text if index == len(messages) - 1 else self._render(messages[: index + 1])
            if not (text.startswith(body) and body.startswith(head)):
                raise ChatTemplateError(
                    f"cannot locate assistant turn {index} in the rendered chat: the template renders the "
                    f"start of a conversation differently depending on what follows (e.g. it drops earlier "
                    f"turns' reasoning). Fix: mark the assistant turns with {{% generation %}} ... "
                    f"{{% endgeneration %}} in the chat template, or set data.mask_prompt: false."
                )
            spans.append((len(head), len(body)))
        return spans

    def _label_spans(self, text: str, spans: list[tuple[int, int]]) -> Encoded:
        """Tokenize ``text``; tokens that start inside a span are targets."""
        tokenizer = self.tokenizer
        if getattr(tokenizer, "is_fast", False):
            encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            ids = list(encoded["input_ids"])
            labels = [
                token if any(s <= start < e for s, e in spans) else IGNORE_INDEX
                for token, (start, _) in zip(ids, encoded["offset_mapping"], strict=True)
            ]
            return ids, labels
        ids, labels, position = [], [], 0  # no offsets: tokenize the pieces between span borders
        for start, end in spans:
            for piece, target in ((text[position:start], False), (text[start:end], True)):
                piece_ids = self.ids([piece])[0] if piece else []
                ids += piece_ids
                labels += piece_ids if target else [IGNORE_INDEX] * len(piece_ids)
            position = end
        rest = self.ids([text[position:]])[0] if text[position:] else []
        return ids + rest, labels + [IGNORE_INDEX] * len(rest)
