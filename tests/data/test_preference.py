"""Preference pairs: the ``preference`` and ``chat_preference`` formats, truncation, batching, and the ``dpo``
data factory with every source type, column mapping, limits, TRL's chat columns and the cache."""

from __future__ import annotations

import json

import pytest
import torch

from arctic_like.config import build_trainer, load_recipe
from arctic_like.data import Encoder
from arctic_like.data.preference import (
    ChatPreferenceFormat,
    PairCollator,
    PreferenceFormat,
    TruncatePairs,
    split_prompt,
)
from tests.reference import arctic_runs, tiny

USER = [{"role": "user", "content": "hi"}]
YES, NO = [{"role": "assistant", "content": "yo"}], [{"role": "assistant", "content": "no"}]


@pytest.fixture(scope="module")
def tokenizer():
    return tiny.tokenizer()


@pytest.fixture(scope="module")
def encoder(tokenizer):
    return Encoder(tokenizer, mask_prompt=True)


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return tiny.save_pretrained_model(tmp_path_factory.mktemp("tiny") / "model")


def ids(tokenizer, text):
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def test_text_pair_is_framed_like_the_tokenizer_and_ends_with_eos(tokenizer, encoder):
    rows = [
        {"prompt": "ab c?", "chosen": " yes.", "rejected": " no!"},
        {"prompt": "a", "chosen": "b</s>", "rejected": "c"},
    ]
    first, second = PreferenceFormat().encode(rows, encoder)
    eos = tokenizer.eos_token_id
    assert (
        first["prompt_ids"]
        == tokenizer("ab c?")["input_ids"]
        == [tokenizer.bos_token_id, *ids(tokenizer, "ab c?")]
    )
    assert first["chosen_ids"] == [*ids(tokenizer, " yes."), eos]
    assert first["rejected_ids"] == [*ids(tokenizer, " no!"), eos]
    assert second["chosen_ids"] == [*ids(tokenizer, "b"), eos]  # no second eos


def test_chat_pairs_use_the_template_and_an_implicit_prompt(tokenizer, encoder):
    chat = ChatPreferenceFormat()
    (explicit,) = chat.encode([{"messages": USER, "chosen_messages": YES, "rejected_messages": NO}], encoder)
    prompt = tokenizer.apply_chat_template(USER, tokenize=True, add_generation_prompt=True, return_dict=True)
    assert explicit["prompt_ids"] == prompt["input_ids"]
    assert tokenizer.decode(explicit["chosen_ids"]) == "yo</s>"
    (implicit,) = chat.encode(
        [{"messages": [], "chosen_messages": USER + YES, "rejected_messages": USER + NO}], encoder
    )
    assert implicit == explicit
    assert split_prompt(USER + YES, USER + NO) == (USER, YES, NO)
    with pytest.raises(ValueError, match=r"differing chosen and rejected.*Fix"):
        chat.encode([{"messages": [], "chosen_messages": USER, "rejected_messages": USER}], encoder)


def test_chat_needs_a_chat_template():
    plain = tiny.tokenizer()
    plain.chat_template = None
    with pytest.raises(ValueError, match=r"need a tokenizer with a chat template.*Fix"):
        ChatPreferenceFormat().encode(
            [{"messages": USER, "chosen_messages": YES, "rejected_messages": NO}], Encoder(plain, True)
        )


def test_truncation_keeps_the_framing_and_the_prompts_end_then_the_start(tokenizer):
    """``max_prompt_length`` keeps a prompt's end after its framing (or, ``keep_start``, its start); then
    ``max_length`` keeps the start of prompt + completion."""
    bos = tokenizer.bos_token_id
    prompt = [bos, *ids(tokenizer, "abcdefg")]
    short = TruncatePairs(None, 4, set(tokenizer.all_special_ids)).truncate(prompt, [1], [2])
    assert short["prompt_ids"] == [bos, *ids(tokenizer, "efg")]
    keep_start = TruncatePairs(None, 4, set(tokenizer.all_special_ids), "keep_start")
    assert keep_start.truncate(prompt, [1], [2])["prompt_ids"] == [bos, *ids(tokenizer, "abc")]
    limited = TruncatePairs(6, None, set()).truncate([bos, 5, 6], [7, 8, 9, 10], [11])
    assert limited == {"prompt_ids": [bos, 5, 6], "chosen_ids": [7, 8, 9], "rejected_ids": [11]}
    assert TruncatePairs(3, None, set()).truncate([bos, 5, 6], [7], [8]) is None
    batch = TruncatePairs(3, None, set())(
        {"prompt_ids": [[1, 2], [1, 2, 3]], "chosen_ids": [[4, 5], [4]], "rejected_ids": [[6], [6]]}
    )
    assert batch == {"prompt_ids": [[1, 2]], "chosen_ids": [[4]], "rejected_ids": [[6]]}


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


# ---- the data factory ----------------------------------------------------------------------------------


def _data(model_dir, tmp_path, data, **overrides):
    recipe = arctic_runs.recipe(model_dir, tmp_path, "tests.reference.tiny:preference_rows", **overrides)
    recipe["data"] = {"type": "dpo", "max_length": 64, "cache_dir": str(tmp_path / "cache"), **data}
    return build_trainer(load_recipe(recipe))


def test_pairs_from_a_file_with_column_mapping_and_limit(model_dir, tmp_path):
    rows = [
        {"question": r["prompt"], "good": r["chosen"], "bad": r["rejected"]} for r in tiny.preference_rows()
    ]
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    source = {
        "path": str(path),
        "column_mapping": {"question": "prompt", "good": "chosen", "bad": "rejected"},
        "limit": 12,
    }
    trainer = _data(model_dir, tmp_path, {"sources": [source]})
    dataset = trainer.train_dataloader.dataset
    assert len(dataset) == 12 and dataset.column_names == ["prompt_ids", "chosen_ids", "rejected_ids"]
    first = rows[0]
    tokenizer = trainer.tokenizer
    assert sorted(dataset["prompt_ids"], key=len)  # tokenized
    assert [tokenizer.bos_token_id, *ids(tokenizer, first["question"])] in dataset["prompt_ids"]


def test_trl_conversational_columns_are_recognised_and_cached(model_dir, tmp_path, monkeypatch):
    source = {"type": "callable", "function": "tests.reference.tiny:chat_preference_rows"}
    first = _data(model_dir, tmp_path, {"sources": [source]})
    assert len(first.train_dataloader.dataset) == 16
    first.train()  # writes the cache

    from arctic_like.data import DPODataFactory

    def no_processing(self, dataset):
        raise AssertionError("the processed pairs should come from the cache")

    monkeypatch.setattr(DPODataFactory, "process", no_processing)
    again = _data(model_dir, tmp_path, {"sources": [source]})
    assert again.train_dataloader.dataset["chosen_ids"] == first.train_dataloader.dataset["chosen_ids"]


def test_whole_conversations_with_a_messages_column_read_as_trl_reads_them(model_dir, tmp_path):
    """ultrafeedback_binarized's shape: a text ``prompt``, ``chosen``/``rejected`` whole conversations and a
    ``messages`` column (the chosen conversation): the prompt is the conversations' shared first turns, and
    ``messages`` is not read as a prompt."""
    pairs = tiny.chat_preference_rows(count=8)
    whole = [
        {
            "prompt": r["prompt"][0]["content"],
            "chosen": r["prompt"] + r["chosen"],
            "rejected": r["prompt"] + r["rejected"],
            "messages": r["prompt"] + r["chosen"],
        }
        for r in pairs
    ]
    datasets = {}
    for name, rows in (("ultrafeedback", whole), ("trl", pairs)):
        path = tmp_path / f"{name}.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        trainer = _data(model_dir, tmp_path / name, {"sources": [str(path)]})
        datasets[name] = trainer.train_dataloader.dataset
    assert len(datasets["trl"]) == 8
    for column in ("prompt_ids", "chosen_ids", "rejected_ids"):
        assert datasets["ultrafeedback"][column] == datasets["trl"][column]


def test_rows_that_are_not_pairs_are_explained(model_dir, tmp_path):
    rows = {"type": "callable", "function": "tests.reference.tiny:prompt_response_rows"}
    with pytest.raises(ValueError, match=r"'dpo' data factory reads chat_preference or preference examples"):
        _data(model_dir, tmp_path, {"sources": [rows]})
    with pytest.raises(ValueError, match=r"preference pairs are not packed\. Fix"):
        _data(model_dir, tmp_path, {"sources": [rows], "packing": True})


def test_process_data_prepares_and_counts_the_pairs(model_dir, tmp_path, capsys):
    import yaml

    from arctic_like.cli import main

    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in tiny.preference_rows()))
    recipe = {
        "type": "dpo",
        "tokenizer": {"type": "huggingface", "name_or_path": str(model_dir)},
        "model": {"name_or_path": str(model_dir)},
        "data": {"sources": ["pairs.jsonl"], "max_length": 64},
        "output_dir": str(tmp_path / "out"),
    }
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["process-data", str(tmp_path / "recipe.yaml")]) == 0
    tokens = sum(
        len(tiny.tokenizer()(r["prompt"] + r["chosen"] + r["rejected"])["input_ids"])
        for r in tiny.preference_rows()
    )
    # each pair: <s> + prompt, chosen + </s>, rejected + </s>: the characters, one bos and two eos
    assert f"train: 16 examples, {tokens + 16 * 2} tokens" in capsys.readouterr().out
