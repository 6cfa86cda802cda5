"""Packing keeps documents whole and apart: a packed batch gives the same per-token losses as its documents
one by one, on a tiny Llama built from a config."""

from types import SimpleNamespace

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from arctic_like.data import IGNORE_INDEX, SFTDataConfig, SFTDataFactory, collate, pack_documents
from arctic_like.model import HFModelConfig, HFModelFactory
from tests.data.helpers import chat_tokenizer, chats, fake_trainer, write_jsonl
from tests.tiny import TINY_MODEL


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 16), max_size=60), st.integers(16, 24))
def test_pack_documents_places_each_document_once_within_capacity(lengths, capacity):
    rows = pack_documents(lengths, capacity)
    assert sorted(i for row in rows for i in row) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in row) <= capacity for row in rows)
    assert len(rows) <= max(1, 2 * -(-sum(lengths) // capacity)) or not lengths  # never worse than half full
    assert pack_documents(lengths, capacity) == rows


def test_best_fit_beats_packing_in_order():
    # In order, [6, 5, 5, 4] into rows of 10 needs 3 rows (6 | 5 5 | 4...); best fit needs 2.
    assert pack_documents([6, 5, 5, 4], 10) == [[0, 3], [1, 2]]


def test_collate_pads_packed_rows_as_a_document_of_their_own():
    batch = collate(
        [
            {"input_ids": [5, 6, 7], "labels": [-100, 6, 7], "position_ids": [0, 0, 1]},
            {"input_ids": [8], "labels": [-100], "position_ids": [0]},
        ],
        pad_token_id=0,
    )
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert batch["position_ids"].tolist() == [[0, 0, 1], [0, 0, 1]]
    assert batch["labels"].tolist() == [[-100, 6, 7], [-100, -100, -100]]
    assert collate([{"input_ids": [1], "labels": [1], "attention_mask": [1]}], 0, pad_to=3)[
        "attention_mask"
    ].tolist() == [[1, 0, 0]]


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


def sft_batches(tmp_path, packing):
    """Length-skewed chats through the SFT factory, as one batch with every row."""
    tmp_path.mkdir()
    path = write_jsonl(tmp_path / "chats.jsonl", chats(12, long_every=4))
    trainer = fake_trainer(tmp_path, tokenizer=chat_tokenizer(), micro_batch_size=1)
    config = SFTDataConfig(sources=[str(path)], max_length=160, packing=packing, use_cache=False)
    train, _ = SFTDataFactory(trainer, config)()
    rows = [train.dataset[i] for i in range(len(train.dataset))]
    return trainer, collate(rows, trainer.tokenizer.pad_token_id)


def per_document_losses(model, batch):
    """{document ids: per-token losses of its targets}, from one forward pass over ``batch``."""
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    losses = torch.nn.functional.cross_entropy(
        logits[:, :-1].transpose(1, 2), batch["labels"][:, 1:], reduction="none", ignore_index=IGNORE_INDEX
    )
    out = {}
    for row in range(batch["input_ids"].shape[0]):
        ids, labels = batch["input_ids"][row].tolist(), batch["labels"][row].tolist()
        if "position_ids" in batch:
            starts = [i for i, p in enumerate(batch["position_ids"][row].tolist()) if p == 0]
        else:
            starts = [0]
        length = int(batch["attention_mask"][row].sum()) if "attention_mask" in batch else len(ids)
        for start, end in zip(starts, [*starts[1:], length], strict=True):
            if all(label == IGNORE_INDEX for label in labels[start + 1 : end]):
                continue  # padding
            targets = [t for t in range(start + 1, end) if labels[t] != IGNORE_INDEX]
            out[tuple(ids[start:end])] = losses[row, [t - 1 for t in targets]]
    return out


@pytest.fixture(scope="module")
def batches(tmp_path_factory):
    """The same length-skewed chats, packed and padded."""
    folder = tmp_path_factory.mktemp("packing")
    trainer, packed = sft_batches(folder / "packed", packing=True)
    _, padded = sft_batches(folder / "padded", packing=False)
    return trainer, packed, padded


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_batch_gives_the_same_per_token_loss_as_unpacked(batches, attention):
    trainer, packed, padded = batches
    assert packed["input_ids"].shape[0] < padded["input_ids"].shape[0]  # documents do share rows
    torch.manual_seed(0)
    config = HFModelConfig(
        config={**TINY_MODEL, "max_position_embeddings": 256}, attn_implementation=attention
    )
    model = HFModelFactory(SimpleNamespace(tokenizer=trainer.tokenizer), config)().eval()
    packed_losses = per_document_losses(model, packed)
    padded_losses = per_document_losses(model, padded)
    assert packed_losses.keys() == padded_losses.keys() and len(packed_losses) == 12
    for document, losses in padded_losses.items():
        torch.testing.assert_close(packed_losses[document], losses, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        packed_mean = model(**packed).loss
        padded_tokens = torch.cat(list(padded_losses.values()))
    torch.testing.assert_close(packed_mean, padded_tokens.mean(), atol=1e-5, rtol=1e-5)


def test_packing_needs_a_transformers_that_keeps_documents_apart(tmp_path, monkeypatch):
    import arctic_like.data.base as data_base
    from arctic_like.data.packing import packing_supported

    assert packing_supported()
    monkeypatch.setattr(data_base, "packing_supported", lambda: False)
    trainer = fake_trainer(tmp_path)
    factory = SFTDataFactory(trainer, SFTDataConfig(sources=["addition"], packing=True, use_cache=False))
    with pytest.raises(
        ValueError, match=r"data\.packing needs a transformers whose masking_utils keep packed"
    ):
        factory()
