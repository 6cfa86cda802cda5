"""Examples are tokenized as the model sees them at inference: framing, prompt masking, chat turns."""

import logging

import pytest

from arctic_like.data import IGNORE_INDEX, ChatTemplateError, Encoder, Framing, tokenizer_framing
from tests.data.helpers import CHATML, CHATML_GENERATION, char_tokenizer, chat_tokenizer

CONVERSATION = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "yo"},
    {"role": "user", "content": "ok"},
    {"role": "assistant", "content": "go"},
]


def expected(tokenizer, pieces):
    """Hand-written ``(token, is_target)`` pieces → ``(input_ids, labels)``; a string piece is one token per
    character, unless it is a special token."""
    ids, labels = [], []
    for text, target in pieces:
        tokens = [text] if text in tokenizer.all_special_tokens else list(text)
        for token in tokens:
            token_id = tokenizer.convert_tokens_to_ids(token)
            ids.append(token_id)
            labels.append(token_id if target else IGNORE_INDEX)
    return ids, labels


def turn(role, content):
    return [("<|im_start|>", False), (f"{role}\n{content}", False), ("<|im_end|>", False), ("\n", False)]


def test_framing_follows_the_tokenizer():
    plain = chat_tokenizer()
    with_bos = chat_tokenizer(add_bos=True)
    assert tokenizer_framing(plain) == Framing((), ())
    assert tokenizer_framing(with_bos) == Framing((with_bos.bos_token_id,), ())


def test_unknown_framing_is_assumed_empty_with_a_warning(caplog):
    def odd_tokenizer(text, add_special_tokens=True):
        return {"input_ids": [7, 8] if add_special_tokens else [9]}

    with caplog.at_level(logging.WARNING, logger="arctic_like.data"):
        assert tokenizer_framing(odd_tokenizer) == Framing((), ())
    assert "cannot tell what function adds around a text" in caplog.text


@pytest.mark.parametrize("add_bos", [False, True])
def test_sequences_start_as_plain_tokenizer_calls_and_end_with_eos(add_bos):
    tok = chat_tokenizer(add_bos=add_bos)
    encoder = Encoder(tok, mask_prompt=True)
    [(ids, labels)] = encoder.prompt_response(["12+7="], ["19"])
    prompt_ids = tok("12+7=")["input_ids"]
    assert ids[: len(prompt_ids)] == prompt_ids
    assert ids[len(prompt_ids) :] == tok("19", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert labels == [IGNORE_INDEX] * len(prompt_ids) + ids[len(prompt_ids) :]
    [(text_ids, text_labels)] = Encoder(tok, mask_prompt=False).text(["ab"])
    assert text_ids == tok("ab")["input_ids"] + [tok.eos_token_id] == text_labels


def test_chat_labels_only_the_assistant_turns():
    tok = chat_tokenizer(CHATML)
    ids, labels = Encoder(tok, mask_prompt=True).chat(CONVERSATION)
    want = expected(
        tok,
        [
            *turn("system", "S"),
            *turn("user", "hi"),
            ("<|im_start|>", False),
            ("assistant\n", False),
            ("yo", True),
            ("<|im_end|>", True),
            ("\n", True),
            *turn("user", "ok"),
            ("<|im_start|>", False),
            ("assistant\n", False),
            ("go", True),
            ("<|im_end|>", True),
            ("\n", True),
        ],
    )
    assert (ids, labels) == want
    assert ids == tok.apply_chat_template(CONVERSATION, tokenize=True)["input_ids"]


def test_chat_without_masking_trains_on_every_token():
    tok = chat_tokenizer(CHATML)
    ids, labels = Encoder(tok, mask_prompt=False).chat(CONVERSATION)
    assert ids == labels == tok.apply_chat_template(CONVERSATION, tokenize=True)["input_ids"]


def test_chat_with_generation_tags_uses_the_templates_marks():
    tok = chat_tokenizer(CHATML_GENERATION)
    ids, labels = Encoder(tok, mask_prompt=True).chat(CONVERSATION[:3])
    want = expected(
        tok,
        [
            *turn("system", "S"),
            *turn("user", "hi"),
            ("<|im_start|>", False),
            ("assistant\n", False),
            ("yo", True),
            ("<|im_end|>", True),
            ("\n", False),
        ],
    )
    assert (ids, labels) == want


def test_chat_spans_without_offsets_match_the_fast_path():
    class SlowView:
        """The fast tokenizer seen as a tokenizer without offset mappings."""

        is_fast = False

        def __init__(self, tokenizer):
            self._tokenizer = tokenizer

        def __getattr__(self, name):
            return getattr(self._tokenizer, name)

        def __call__(self, *args, **kwargs):
            return self._tokenizer(*args, **kwargs)

    tok = chat_tokenizer(CHATML)
    assert Encoder(SlowView(tok), mask_prompt=True).chat(CONVERSATION) == Encoder(tok, True).chat(
        CONVERSATION
    )


def test_chat_needs_a_chat_template():
    with pytest.raises(
        ChatTemplateError, match=r"chat data \(a `messages` column\) needs a tokenizer with a chat"
    ):
        Encoder(char_tokenizer(), mask_prompt=True).chat(CONVERSATION)


def test_templates_that_rewrite_earlier_turns_are_refused():
    rewriting = (
        "{% for m in messages %}{{ m.role }}:{% if loop.last %}{{ m.content }}{% else %}x{% endif %}\n"
        "{% endfor %}"
    )
    with pytest.raises(ChatTemplateError, match=r"cannot locate assistant turn 2 .*\{% generation %\}"):
        Encoder(chat_tokenizer(rewriting), mask_prompt=True).chat(CONVERSATION)
