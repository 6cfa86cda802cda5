import pytest
import torch
from torch.utils.data import DistributedSampler

from arctic_like.config import DataConfig
from arctic_like.data import (
    IGNORE_INDEX,
    CausalDataFactory,
    DataFactory,
    SFTDataConfig,
    SFTDataFactory,
    collate,
)
from arctic_like.data.synthetic import make_task
from tests.data.helpers import Oracle, char_tokenizer, chat_tokenizer, chats, fake_trainer, write_jsonl

ADDITION = {"type": "addition", "num_samples": 64, "eval_samples": 16}


def causal(tmp_path, **config):
    trainer = fake_trainer(tmp_path, micro_batch_size=config.pop("micro_batch_size", 4))
    factory = CausalDataFactory(trainer, DataConfig(**{"sources": [ADDITION], "max_length": 16, **config}))
    trainer.data_factory = factory
    return factory


def test_causal_packing_keeps_documents_whole(tmp_path):
    factory = causal(tmp_path, max_length=16)
    train, held_out = factory()
    tok = factory.tokenizer
    problems = make_task(factory.config.sources[0], 0).train_problems()
    documents = sorted(tuple(tok(p + a)["input_ids"] + [tok.eos_token_id]) for p, a in problems)
    found = []
    for row in train.dataset:
        assert len(row["input_ids"]) <= 16 and set(row) == {"input_ids", "labels", "position_ids"}
        starts = [i for i, position in enumerate(row["position_ids"]) if position == 0]
        for start, end in zip(starts, [*starts[1:], len(row["input_ids"])], strict=True):
            assert row["position_ids"][start:end] == list(range(end - start))
            assert row["labels"][start] == IGNORE_INDEX
            assert row["labels"][start + 1 : end] == row["input_ids"][start + 1 : end]
            found.append(tuple(row["input_ids"][start:end]))
    assert sorted(found) == documents
    batch = next(iter(train))
    assert set(batch) == {"input_ids", "position_ids", "labels"}
    assert all(t.dtype == torch.int64 and t.shape[0] == 4 for t in batch.values())
    assert held_out is not None and len(held_out.dataset) >= 1


def test_padding_masks_pad_positions(tmp_path):
    factory = causal(tmp_path, packing=False, max_length=6)
    train, _ = factory()
    batch = next(iter(train))
    pad = factory.tokenizer.pad_token_id
    assert batch["input_ids"].shape[1] <= 6
    padded = batch["attention_mask"] == 0
    assert (batch["labels"][padded] == IGNORE_INDEX).all()
    assert (batch["input_ids"][padded] == pad).all()
    assert ((batch["labels"] == batch["input_ids"]) | padded).all()


def test_pad_to_max_length(tmp_path):
    train, _ = causal(tmp_path, packing=False, max_length=20, pad_to_max_length=True)()
    assert next(iter(train))["input_ids"].shape == (4, 20)


def test_sft_masks_the_prompt(tmp_path):
    trainer = fake_trainer(tmp_path)
    factory = SFTDataFactory(trainer, SFTDataConfig(sources=[ADDITION], max_length=32))
    assert factory.config.packing is False
    train, _ = factory()
    tok = trainer.tokenizer
    example = train.dataset[0]
    prompt, answer = make_task(factory.config.sources[0], 0).train_problems()[0]
    n_prompt = len(tok(prompt)["input_ids"])
    assert example["input_ids"][:n_prompt] == tok(prompt)["input_ids"]
    assert example["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert example["labels"][n_prompt:] == tok(answer, add_special_tokens=False)["input_ids"] + [
        tok.eos_token_id
    ]
    assert tok.decode(example["input_ids"], skip_special_tokens=True) == prompt + answer


def test_sft_packing_keeps_masks(tmp_path):
    trainer = fake_trainer(tmp_path)
    factory = SFTDataFactory(trainer, SFTDataConfig(sources=[ADDITION], max_length=32, packing=True))
    example = factory()[0].dataset[0]
    assert len(example["input_ids"]) <= 32 and example["position_ids"].count(0) > 1
    assert example["labels"].count(IGNORE_INDEX) > example["position_ids"].count(0)


def test_causal_uses_prompt_and_response_when_there_is_no_text(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(f'{{"prompt": "{i}+1=", "response": "{i + 1}"}}\n' for i in range(8)))
    factory = causal(tmp_path, sources=[str(path)], packing=False)
    example = factory()[0].dataset[0]
    assert example["labels"] == example["input_ids"]
    text = factory.tokenizer.decode(example["input_ids"], skip_special_tokens=True)
    assert text.endswith("+1=" + str(int(text.split("+")[0]) + 1))


def test_truncation_to_max_length(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text("".join('{"text": "%s"}\n' % ("a" * 50) for _ in range(8)))
    train, _ = causal(tmp_path, sources=[str(path)], packing=False, max_length=10)()
    assert all(len(ids) == 10 for ids in train.dataset["input_ids"])


def test_split_by_eval_fraction_is_seeded(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text("".join(f'{{"text": "row {i}"}}\n' for i in range(40)))
    factory = causal(tmp_path, sources=[str(path)], packing=False, eval_fraction="25%")
    train, held_out = factory()
    assert len(train.dataset) == 30 and len(held_out.dataset) == 10
    again = causal(tmp_path / "b", sources=[str(path)], packing=False, eval_fraction=0.25)()[1]
    assert again.dataset["input_ids"] == held_out.dataset["input_ids"]


def test_no_eval_split(tmp_path):
    source = {**ADDITION, "eval_samples": 0}
    _, held_out = causal(tmp_path, sources=[source], max_length=16)()
    assert held_out is None


def test_eval_sources_make_the_eval_split(tmp_path):
    path = tmp_path / "e.jsonl"
    path.write_text('{"text": "3+3=6"}\n{"text": "1+1=2"}\n')
    factory = causal(
        tmp_path, sources=[{**ADDITION, "eval_samples": 0}], eval_sources=[str(path)], packing=False
    )
    _, held_out = factory()
    assert len(held_out.dataset) == 2


def test_train_loader_uses_a_seeded_distributed_sampler(tmp_path):
    factory = causal(tmp_path, packing=False)
    train, held_out = factory()
    sampler = train.sampler
    assert isinstance(sampler, DistributedSampler)
    assert (sampler.num_replicas, sampler.rank, sampler.shuffle, sampler.seed, sampler.drop_last) == (
        1,
        0,
        True,
        0,
        True,
    )
    assert isinstance(held_out.sampler, DistributedSampler) and held_out.sampler.shuffle is False

    def order(loader, epoch):
        loader.sampler.set_epoch(epoch)
        return [b["input_ids"].tolist() for b in loader]

    assert order(train, 0) == order(train, 0)
    assert order(train, 0) != order(train, 1)
    other = causal(tmp_path / "other", packing=False)()[0]
    assert order(other, 1) == order(train, 1)
    assert len(train) == 64 // 4


def test_eval_batch_size(tmp_path):
    _, held_out = causal(tmp_path, eval_batch_size=16, packing=False)()
    assert held_out.batch_size == 16


def test_too_little_data_for_one_batch(tmp_path):
    with pytest.raises(
        ValueError, match=r"the training data has 2 examples, fewer than one batch \(micro_batch_size 4"
    ):
        causal(tmp_path, sources=[{**ADDITION, "num_samples": 2}], packing=False)()


def test_empty_sources_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"data\.sources is empty\. Fix: add a source"):
        causal(tmp_path, sources=[])()


def test_tokenizer_is_required(tmp_path):
    factory = causal(tmp_path)
    factory.trainer.tokenizer = None
    with pytest.raises(ValueError, match=r"the data factory needs trainer\.tokenizer"):
        factory()


def test_raw_texts_cover_train_and_eval_and_load_once(tmp_path):
    factory = causal(tmp_path)
    loads = []
    factory.callbacks.append(("post-load", lambda self: loads.append(1)))
    texts = list(factory.raw_texts())
    assert len(texts) == 64 + 16 and all("+" in t and "=" in t for t in texts)
    factory()
    assert loads == [1]


def test_every_step_is_an_event(tmp_path):
    factory = causal(tmp_path, use_cache=False)
    seen = []

    def recorder(event):
        return lambda self: seen.append(event)

    for event in [
        "pre-call",
        "post-load",
        "post-process",
        "post-split",
        "post-create-dataloader",
        "post-call",
    ]:
        factory.callbacks.append((event, recorder(event)))
    factory()
    assert seen == [
        "pre-call",
        "post-load",
        "post-process",
        "post-split",
        "post-create-dataloader",
        "post-create-dataloader",
        "post-call",
    ]


def test_callbacks_can_rewrite_loaded_data(tmp_path):
    factory = causal(tmp_path, use_cache=False, packing=False)
    factory.callbacks.append(("post-load", lambda self, ds: ds.filter(lambda r: r["prompt"].startswith("1"))))
    train, _ = factory()
    texts = [factory.tokenizer.decode(ids, skip_special_tokens=True) for ids in train.dataset["input_ids"]]
    assert texts and all(t.startswith("1") for t in texts)


class Counting(CausalDataFactory):
    name = "counting-causal"

    def post_process_callback(self, dataset):
        self.trainer.processed.append(1)
        return dataset


def test_second_run_reuses_the_cache(tmp_path):
    processed = []

    def run(**config):
        trainer = fake_trainer(tmp_path)
        trainer.processed = processed
        return Counting(trainer, DataConfig(sources=[ADDITION], **{"max_length": 16, **config}))

    first = run()
    loader1 = first()[0]
    assert processed == [1]
    cached = list(first.cache_dir().iterdir())
    assert len(cached) == 1 and cached[0].name == first.cache_key()
    loader2 = run()()[0]
    assert processed == [1]
    assert loader1.dataset["input_ids"] == loader2.dataset["input_ids"]
    run(max_length=17)()
    assert processed == [1, 1]
    run(use_cache=False)()
    assert processed == [1, 1, 1]


def test_cache_key_depends_on_tokenizer_and_files(tmp_path):
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a"}\n')
    factory = causal(tmp_path, sources=[str(path)])
    key = factory.cache_key()
    assert causal(tmp_path, sources=[str(path)]).cache_key() == key
    path.write_text('{"text": "ab"}\n')
    assert causal(tmp_path, sources=[str(path)]).cache_key() != key
    other = causal(tmp_path, sources=[str(path)])
    new_key = other.cache_key()
    other.trainer.tokenizer.add_tokens(["<extra>"])
    assert other.cache_key() != new_key


def test_cache_dir_configurable(tmp_path):
    factory = causal(tmp_path, cache_dir=tmp_path / "mycache")
    factory()
    assert (tmp_path / "mycache" / factory.cache_key() / "dataset_dict.json").exists()


def test_compute_metrics_exact_match(tmp_path):
    factory = causal(tmp_path)
    tok = factory.tokenizer
    problems = make_task(factory.config.sources[0], 0).eval_problems()
    sequences = [[*tok(p + a)["input_ids"], tok.eos_token_id] for p, a in problems]
    oracle = Oracle(tok, sequences, len(tok))
    oracle.train()
    assert factory.compute_metrics(oracle, tok) == {"accuracy": 1.0}
    assert oracle.training
    half = Oracle(tok, sequences[::2], len(tok))
    assert factory.compute_metrics(half, tok) == {"accuracy": 0.5}
    assert factory.compute_metrics(Oracle(tok, [], len(tok), wrong=True), tok) == {"accuracy": 0.0}


def test_compute_metrics_batches_by_prompt_length(tmp_path):
    factory = causal(tmp_path, sources=[{**ADDITION, "num_samples": 40, "eval_samples": 40, "digits": 1}])
    tok = factory.tokenizer
    oracle = Oracle(tok, [], len(tok), wrong=True)
    factory.compute_metrics(oracle, tok)
    assert oracle.calls == 1


def test_compute_metrics_several_tasks_and_none(tmp_path):
    factory = causal(tmp_path, sources=[ADDITION, {"type": "reverse", "num_samples": 20, "eval_samples": 4}])
    tok = factory.tokenizer
    metrics = factory.compute_metrics(Oracle(tok, [], len(tok), wrong=True), tok)
    assert metrics == {"addition_accuracy": 0.0, "reverse_accuracy": 0.0, "accuracy": 0.0}
    path = tmp_path / "t.jsonl"
    path.write_text('{"text": "a"}\n')
    assert causal(tmp_path, sources=[str(path)]).compute_metrics(None, tok) == {}


def test_compute_metrics_with_a_real_tiny_model(tmp_path):
    from transformers import AutoConfig, AutoModelForCausalLM

    factory = causal(tmp_path, sources=[{**ADDITION, "eval_samples": 8}])
    tok = factory.tokenizer
    config = AutoConfig.for_model(
        "llama",
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=len(tok),
    )
    accuracy = factory.compute_metrics(AutoModelForCausalLM.from_config(config), tok)["accuracy"]
    assert 0.0 <= accuracy <= 1.0


def test_collate_pads_right():
    batch = collate(
        [
            {"input_ids": [5, 6], "attention_mask": [1, 1], "labels": [-100, 6]},
            {"input_ids": [7], "attention_mask": [1], "labels": [7]},
        ],
        pad_token_id=0,
    )
    assert batch["input_ids"].tolist() == [[5, 6], [7, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1], [1, 0]]
    assert batch["labels"].tolist() == [[-100, 6], [7, -100]]


def test_sft_rows_need_prompt_or_text(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text('{"text": "", "prompt": "", "response": ""}\n')
    trainer = fake_trainer(tmp_path)
    with pytest.raises(ValueError, match=r"an example has no text, prompt/response or messages\. Fix: check"):
        SFTDataFactory(trainer, SFTDataConfig(sources=[str(path)]))()


def test_sft_rows_with_only_text(tmp_path):
    path = tmp_path / "text.jsonl"
    path.write_text('{"text": "hello"}\n')
    trainer = fake_trainer(tmp_path)
    with pytest.raises(
        ValueError,
        match=r"the 'sft' data factory reads chat or prompt_response examples, but an example has only "
        r"text\. Fix: map the source's columns",
    ):
        SFTDataFactory(trainer, SFTDataConfig(sources=[str(path)]))()


def test_causal_text_that_differs_from_the_pair_is_used_as_is(tmp_path):
    path = tmp_path / "mixed.jsonl"
    path.write_text('{"text": "Q 1+1= A 2", "prompt": "1+1=", "response": "2"}\n' * 8)
    factory = causal(tmp_path, sources=[str(path)], packing=False)
    example = factory()[0].dataset[0]
    assert factory.tokenizer.decode(example["input_ids"], skip_special_tokens=True) == "Q 1+1= A 2"


def test_multi_process_ranks_see_disjoint_batches(tmp_path, monkeypatch):
    import arctic_like.data.base as data_base

    batches = []
    for rank in (0, 1):
        monkeypatch.setattr(data_base, "_dist", lambda rank=rank: (2, rank))
        loader = causal(tmp_path, packing=False, micro_batch_size=2)()[0]
        assert (loader.sampler.num_replicas, loader.sampler.rank) == (2, rank)
        loader.sampler.set_epoch(3)
        batches.append({tuple(row) for batch in loader for row in batch["input_ids"].tolist()})
    assert len(batches[0]) == len(batches[1]) == 32
    assert not batches[0] & batches[1]


def test_base_class_is_usable_directly(tmp_path):
    trainer = fake_trainer(tmp_path)
    assert DataFactory(trainer, DataConfig(sources=[ADDITION], packing=False))()[0] is not None
    assert char_tokenizer() is not None


def test_chat_data_through_the_sft_and_causal_factories(tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", chats(8))
    tok = chat_tokenizer()
    sft = SFTDataFactory(
        fake_trainer(tmp_path, tokenizer=tok), SFTDataConfig(sources=[str(path)], max_length=128)
    )
    row = sft()[0].dataset[0]
    targets = tok.decode([t for t in row["labels"] if t != IGNORE_INDEX])
    assert targets.startswith("answer ") and targets.endswith("<|im_end|>\n") and "question" not in targets
    causal_factory = CausalDataFactory(
        fake_trainer(tmp_path / "c", tokenizer=tok),
        DataConfig(sources=[str(path)], max_length=128, packing=False),
    )
    row = causal_factory()[0].dataset[0]
    assert row["labels"] == row["input_ids"]
    masked = CausalDataFactory(
        fake_trainer(tmp_path / "m", tokenizer=tok),
        DataConfig(sources=[str(path)], max_length=128, packing=False, mask_prompt=True),
    )
    assert masked.mask_prompt is True and IGNORE_INDEX in masked()[0].dataset[0]["labels"]


def test_raw_texts_of_chat_rows_are_their_roles_and_contents(tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", chats(2))
    factory = SFTDataFactory(fake_trainer(tmp_path), SFTDataConfig(sources=[str(path)]))
    assert list(factory.raw_texts()) == [
        text
        for i in range(2)
        for text in ("system", "be brief", "user", f"question {i}?", "assistant", f"answer {i}")
    ]


def test_chat_data_with_a_tokenizer_without_template(tmp_path):
    path = write_jsonl(tmp_path / "chat.jsonl", chats(4))
    factory = SFTDataFactory(fake_trainer(tmp_path), SFTDataConfig(sources=[str(path)], use_cache=False))
    with pytest.raises(
        ValueError, match=r"chat data \(a `messages` column\) needs a tokenizer with a chat template"
    ):
        factory()


def test_two_worker_processes_give_the_same_data_as_one(tmp_path):
    qa = write_jsonl(tmp_path / "qa.jsonl", [{"q": f"q{i}", "a": f"a{i}" * (i % 9)} for i in range(400)])
    sources = [{"path": str(qa), "role_mapping": {"user": "q", "assistant": "a"}}]

    def processed(num_proc):
        config = SFTDataConfig(
            sources=sources, max_length=96, packing=True, num_proc=num_proc, use_cache=False
        )
        train, _ = SFTDataFactory(fake_trainer(tmp_path, tokenizer=chat_tokenizer()), config)()
        return train.dataset.to_dict()

    one = processed(1)
    assert len(one["input_ids"]) > 50 and max(p.count(0) for p in one["position_ids"]) > 1
    assert processed(2) == one
