"""Preference pairs: tokenization (text and chat), truncation, batching, the ``dpo`` data factory's errors."""

from __future__ import annotations

import pytest
import torch

from arctic_like.data.preference import PairCollator, PreferenceEncoder, split_prompt
from tests.reference import tiny


@pytest.fixture(scope="module")
def tokenizer():
    return tiny.tokenizer()


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_text_pair_is_framed_like_the_tokenizer_and_ends_with_eos(tokenizer):
    encoded = PreferenceEncoder(tokenizer, max_length=None).text("ab c?", " yes.", " no!")
    assert (
        encoded["prompt_ids"]
        == tokenizer("ab c?")["input_ids"]
        == [tokenizer.bos_token_id, *ids(tokenizer, "ab c?")]
    )
    assert encoded["chosen_ids"] == [*ids(tokenizer, " yes."), tokenizer.eos_token_id]
    assert encoded["rejected_ids"] == [*ids(tokenizer, " no!"), tokenizer.eos_token_id]
    already = PreferenceEncoder(tokenizer, max_length=None).text("a", "b</s>", "c")
    assert already["chosen_ids"] == [*ids(tokenizer, "b"), tokenizer.eos_token_id]


def test_max_prompt_length_keeps_the_framing_and_the_end_of_the_prompt(tokenizer):
    encoded = PreferenceEncoder(tokenizer, max_length=None, max_prompt_length=4).text("abcdefg", "x", "y")
    assert encoded["prompt_ids"] == [tokenizer.bos_token_id, *ids(tokenizer, "efg")]


def test_max_length_keeps_the_start_and_drops_pairs_whose_prompt_fills_it(tokenizer):
    encoder = PreferenceEncoder(tokenizer, max_length=6)
    encoded = encoder.text("abc", "defgh", "i")
    assert len(encoded["prompt_ids"]) + len(encoded["chosen_ids"]) == 6
    assert encoded["chosen_ids"] == ids(tokenizer, "de") and encoded["rejected_ids"] == [
        *ids(tokenizer, "i"),
        3,
    ]
    assert encoder.text("abcde", "x", "y") is None


def test_chat_pairs_use_the_template_and_an_implicit_prompt(tokenizer):
    user = [{"role": "user", "content": "hi"}]
    chosen, rejected = [{"role": "assistant", "content": "yo"}], [{"role": "assistant", "content": "no"}]
    encoder = PreferenceEncoder(tokenizer, max_length=None)
    explicit = encoder.chat(user, chosen, rejected)
    prompt = tokenizer.apply_chat_template(user, tokenize=True, add_generation_prompt=True, return_dict=True)
    assert explicit["prompt_ids"] == prompt["input_ids"]
    assert tokenizer.decode(explicit["chosen_ids"]) == "yo</s>"
    assert encoder.row({"chosen": user + chosen, "rejected": user + rejected}) == explicit
    assert split_prompt(user + chosen, user + rejected) == (user, chosen, rejected)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"prompt": "a", "chosen": "b"}, r"needs `chosen` and `rejected`.*Fix: give the source"),
        (
            {"chosen": [{"role": "user", "content": "a"}], "rejected": [{"role": "user", "content": "a"}]},
            r"differing",
        ),
    ],
)
def test_bad_rows_are_explained(tokenizer, row, message):
    with pytest.raises(ValueError, match=message):
        PreferenceEncoder(tokenizer, max_length=None).row(row)


def test_chat_needs_a_chat_template(tokenizer):
    plain = tiny.tokenizer()
    plain.chat_template = None
    turns = [{"role": "user", "content": "a"}]
    with pytest.raises(ValueError, match=r"need a tokenizer with a chat template.*Fix"):
        PreferenceEncoder(plain, max_length=None).chat(turns, [{"role": "assistant", "content": "b"}], turns)


def test_collator_stacks_chosen_then_rejected_with_labels_on_completions():
    batch = PairCollator(pad_token_id=0)(
        [
            {
                "prompt_ids": [5, 6],
                "chosen_ids": [7],
                "rejected_ids": [8, 9],
                "ref_chosen_logps": -1.0,
                "ref_rejected_logps": -2.0,
            },
            {
                "prompt_ids": [5],
                "chosen_ids": [7, 7, 7],
                "rejected_ids": [9],
                "ref_chosen_logps": -3.0,
                "ref_rejected_logps": -4.0,
            },
        ]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [5, 7, 7, 7], [5, 6, 8, 9], [5, 9, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [
        [-100, -100, 7, -100],
        [-100, 7, 7, 7],
        [-100, -100, 8, 9],
        [-100, 9, -100, -100],
    ]
    torch.testing.assert_close(batch["ref_rejected_logps"], torch.tensor([-2.0, -4.0]))


def test_dpo_data_needs_preference_columns(tmp_path):
    from arctic_like.config import build_trainer, load_recipe
    from tests.reference import arctic_runs

    model_dir = tiny.save_pretrained_model(tmp_path / "model")
    rows = "tests.reference.tiny:prompt_response_rows"
    with pytest.raises(
        ValueError, match=r"has columns \['prompt', 'response'\], without chosen and rejected"
    ):
        build_trainer(load_recipe(arctic_runs.recipe(model_dir, tmp_path, rows)))
    addition = {"data": {"sources": ["addition"]}}
    with pytest.raises(
        ValueError, match=r"synthetic 'addition' task gives prompt/response pairs, not preference"
    ):
        build_trainer(load_recipe(arctic_runs.recipe(model_dir, tmp_path, rows, **addition)))
