import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from arctic_like.checkpoint import CheckpointError


def test_export_loads_with_from_pretrained(make_engine, tmp_path):
    engine, trainer = make_engine(type="huggingface")
    trainer.train_steps(2)
    path = engine.save()
    assert path == tmp_path / "out" / "huggingface" / "checkpoint-2"
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    ids = torch.tensor([tokenizer("12+3=")["input_ids"]])
    trainer.model.eval()
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, trainer.model(ids).logits)


def test_load_restores_weights_only(make_engine):
    engine, trainer = make_engine(type="huggingface")
    trainer.train_steps(1)
    path = engine.save()
    other, fresh = make_engine(type="huggingface", seed=5)
    other.load(path)
    for (k, a), b in zip(trainer.model.state_dict().items(), fresh.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), k
    assert fresh.model.lm_head.weight.data_ptr() == fresh.model.model.embed_tokens.weight.data_ptr()
    assert fresh.state.global_step == 0


def test_torch_checkpoint_is_not_loaded_by_hf_engine(make_engine, tmp_path):
    torch_engine, trainer = make_engine(output_dir=tmp_path / "c")
    trainer.train_steps(1)
    path = torch_engine.save()
    hf, _ = make_engine(type="huggingface", output_dir=tmp_path / "c")
    assert hf.latest() is None
    with pytest.raises(
        CheckpointError, match=r"written by the 'torch' checkpoint engine.*Fix: .*type: torch"
    ):
        hf.load(path)
