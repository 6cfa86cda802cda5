"""The `huggingface` export generates what the run learned, through plain `transformers`.

A short run of the demo's addition task (1-digit sums, which a tiny model learns in a few hundred steps) is
exported; `AutoTokenizer` + `AutoModelForCausalLM` loaded from the export, with plain `tokenizer(prompt)` and
greedy `generate`, must score within 1 point of the framework's own greedy accuracy on the same problems.
"""

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from arctic_like import build_trainer, load_recipe
from arctic_like.data import greedy_accuracy
from arctic_like.data.synthetic import make_task

RECIPE = {
    "type": "sft",
    "seed": 0,
    "tokenizer": "char",
    "data": {
        "sources": [{"type": "addition", "digits": 1, "num_samples": 80, "eval_samples": 20}],
        "max_length": 16,
        "eval_batch_size": 20,
        "use_cache": False,
    },
    "model": {
        "config": {
            "model_type": "llama",
            "hidden_size": 64,
            "intermediate_size": 256,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 4,
            "max_position_embeddings": 32,
        }
    },
    "optimizer": {"lr": 3e-3, "weight_decay": 0.01},
    "scheduler": {"type": "cosine", "warmup_ratio": "5%"},
    "micro_batch_size": 32,
    "max_steps": 300,
    "logging_steps": 100,
    "eval_steps": 300,
    "device": "cpu",
    "progress": False,
    "checkpoint": [{"type": "huggingface"}],
}


def generate_answers(path, problems):
    """What a user of the export does: plain tokenizer call, greedy generate, decode the new tokens."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    inputs = tokenizer([prompt for prompt, _ in problems], return_tensors="pt", padding=True)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    return tokenizer.batch_decode(out[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model trains fastest on one thread
    yield
    torch.set_num_threads(threads)


@pytest.mark.slow
def test_exported_model_generates_with_the_framework_accuracy(tmp_path, one_thread):
    trainer = build_trainer(load_recipe({**RECIPE, "output_dir": str(tmp_path / "run")}))
    trainer.train()
    export = trainer.checkpoint_engines[0].latest()
    assert export == tmp_path / "run" / "huggingface" / "checkpoint-300"
    task = make_task(trainer.config.data.sources[0], trainer.config.seed)
    problems = task.train_problems() + task.eval_problems()
    assert len(problems) == 100  # every 1-digit sum: 1 problem is 1 point

    framework = greedy_accuracy(trainer.model, trainer.tokenizer, problems)
    answers = generate_answers(export, problems)
    exported = sum(a.strip() == answer for a, (_, answer) in zip(answers, problems, strict=True)) / 100

    assert framework >= 0.9, f"the short run should learn the task (accuracy {framework})"
    assert abs(exported - framework) <= 0.01, (exported, framework)
    eval_accuracy = [r["eval_accuracy"] for r in trainer.state.log_history if "eval_accuracy" in r]
    assert eval_accuracy[-1] == greedy_accuracy(trainer.model, trainer.tokenizer, task.eval_problems())
