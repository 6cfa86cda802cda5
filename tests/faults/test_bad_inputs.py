"""Every bad input ends with a clear outcome: the documented exit status (2 for a user error), one
`arctic-like: error:` line that names the thing and the fix, no traceback, and the output directory (and the
data cache) left exactly as they were.

Each row of CASES runs in-process through `arctic_like.cli.main`; docs/errors.md lists the same groups. The
few behaviours that need a real process (a `code:` file calling `sys.exit`) are at the end.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from arctic_like.checkpoint import manifest as manifest_module
from arctic_like.cli import main
from tests.tiny import TINY_MODEL

ROOT = Path(__file__).resolve().parents[2]


def base_recipe(work: Path) -> dict:
    """A tiny valid recipe; the data cache is kept apart from output_dir so both are checked."""
    return {
        "type": "causal",
        "tokenizer": {"type": "char"},
        "data": {
            "sources": [{"type": "addition", "digits": 1, "num_samples": 16, "eval_samples": 8}],
            "max_length": 16,
            "packing": False,
            "cache_dir": str(work / "cache"),
        },
        "model": {"config": dict(TINY_MODEL)},
        "micro_batch_size": 4,
        "output_dir": str(work / "out"),
        "device": "cpu",
        "progress": False,
        "checkpoint": [{"type": "torch"}],
    }


def model(**changes: object) -> str:
    """A `model:` recipe line: the tiny model with `changes` (None removes a key)."""
    config = {k: v for k, v in {**TINY_MODEL, **changes}.items() if v is not None}
    return yaml.safe_dump({"model": {"config": config}}, default_flow_style=True)


def data(source: str, **extra: object) -> str:
    """A `data:` recipe line reading `source` (YAML), with the cache outside output_dir."""
    fields = ", ".join(f"{k}: {v}" for k, v in extra.items())
    return f"data: {{sources: [{source}], max_length: 16, cache_dir: CACHE{', ' + fields if fields else ''}}}"


@dataclass
class Case:
    id: str
    match: str
    recipe: str = ""
    """YAML whose top-level keys replace the base recipe's (`CACHE` and `WORK` are filled in)."""
    files: dict[str, str | bytes] = field(default_factory=dict)
    """Files written next to the recipe; `recipe.yaml` replaces the recipe itself."""
    args: list[str] = field(default_factory=list)
    """Arguments after `train recipe.yaml` (or the whole command line when `argv` is given)."""
    argv: list[str] | None = None
    checkpoint: str | None = None
    """Resume from a copy of a real checkpoint damaged this way (see `damage`)."""
    patch: Callable[[pytest.MonkeyPatch, Path], None] | None = None
    code: int = 2
    started: bool = False
    """The failure comes after training started: only the checkpoints are compared."""


# ---- code files the cases import ---------------------------------------------------------------------------

TRAINER_WITH = """
from arctic_like.trainer import CausalTrainer
{body}

class Custom(CausalTrainer):
    name = "custom"
    callbacks = [{entries}]
"""


def trainer_with(entries: str, body: str) -> dict[str, str]:
    """A code file defining the trainer `custom` with these class-level callbacks (recipe: CUSTOM)."""
    return {"custom.py": TRAINER_WITH.format(body=body, entries=entries)}


CUSTOM = "code: custom.py\ntype: custom"

RAISING_CALLBACK = """
class Exploding:
    def __init__(self, power):
        raise RuntimeError(f"cannot handle power {power}")
"""

# ---- the table ---------------------------------------------------------------------------------------------

RECIPE_VALUES = [
    Case("unknown-key", r"bogus_key: Extra inputs are not permitted\. Fix: remove it", "bogus_key: 1"),
    Case("misspelt-key", r"epochz: .*Fix: did you mean 'epochs'", "epochz: 2"),
    Case("not-a-number", r"micro_batch_size: 'lots' is not a number.*Fix", "micro_batch_size: lots"),
    Case("not-whole", r"epochs: 1\.5 is not a whole number", "epochs: 1.5"),
    Case("zero-epochs", r"epochs: Input should be greater than or equal to 1\. Fix", "epochs: 0"),
    Case("lr-inf", r"optimizer\.lr: inf is not a finite number.*Fix", "optimizer: {lr: .inf}"),
    Case("lr-nan", r"optimizer\.lr: nan is not a finite number", "optimizer: {lr: .nan}"),
    Case("lr-huge-string", r"optimizer\.lr: inf is not a finite number", "optimizer: {lr: '1e999'}"),
    Case(
        "weight-decay-inf",
        r"optimizer\.weight_decay: inf is not a finite number",
        "optimizer: {weight_decay: .inf}",
    ),
    Case("lr-negative", r"optimizer\.lr: Input should be greater than 0", "optimizer: {lr: -0.1}"),
    Case("grad-norm-inf", r"max_grad_norm: Input should be a finite number\. Fix", "max_grad_norm: .inf"),
    Case(
        "seed-huge",
        r"seed: Input should be less than 9223372036854775808\. Fix",
        "seed: 100000000000000000000000",
    ),
    Case("seed-negative", r"seed: Input should be greater than or equal to 0", "seed: -3"),
    Case(
        "deepspeed-under-torch",
        r"deepspeed: settings for DeepSpeed \(zero_optimization\) but engine is 'torch'.*Fix: set engine:"
        r" deepspeed",
        "deepspeed: {zero_optimization: {stage: 1}}",
    ),
    Case(
        "two-warmups",
        r"give either warmup_steps or warmup_ratio, not both",
        "scheduler: {warmup_steps: 1, warmup_ratio: 0.1}",
    ),
    Case(
        "warmup-over-100%",
        r"scheduler\.warmup_ratio: 1\.5 is not a fraction between 0 and 1",
        "scheduler: {warmup_ratio: 150%}",
    ),
    Case(
        "save-steps-missing",
        r"save_strategy is 'steps' but save_steps is not set; set save_steps",
        "save_strategy: steps",
    ),
    Case(
        "bad-literal",
        r"logging_strategy: Input should be 'steps', 'epoch' or 'no'\. Fix: use one of",
        "logging_strategy: often",
    ),
    Case("bad-device", r"device: Input should be 'auto', 'cpu' or 'cuda'", "device: tpu"),
    Case(
        "fp16-on-cpu",
        r"precision: fp16 needs a CUDA device.*Fix: use precision: bf16 or fp32",
        "precision: fp16",
    ),
    Case(
        "cuda-without-gpu", r"device: cuda was requested but no CUDA GPU is available\. Fix", "device: cuda"
    ),
    Case(
        "deepspeed-not-installed",
        r"engine: deepspeed needs the deepspeed package.*Fix: pip install 'arctic-like\[deepspeed\]'",
        "engine: deepspeed",
        patch=lambda mp, work: mp.setattr(
            "importlib.util.find_spec", lambda name, *a: None if name == "deepspeed" else _find_spec(name, *a)
        ),
    ),
    Case(
        "deepspeed-contradicts-recipe",
        r"deepspeed\.train_micro_batch_size_per_gpu is 3 but the recipe's micro_batch_size gives 4\. Fix",
        "engine: deepspeed\ndeepspeed: {train_micro_batch_size_per_gpu: 3}",
    ),
    Case(
        "offload-param-below-stage-3",
        r"deepspeed\.zero_optimization\.offload_param \(device cpu\) needs ZeRO stage 3.*"
        r"Fix: set deepspeed\.zero_optimization\.stage: 3",
        "engine: deepspeed\ndeepspeed: {zero_optimization: {stage: 2, offload_param: {device: cpu}}}",
    ),
    Case(
        "activation-checkpointing-without-gradient-checkpointing",
        r"deepspeed\.activation_checkpointing is set, but model\.gradient_checkpointing is false.*Fix",
        "engine: deepspeed\ndeepspeed: {activation_checkpointing: {partition_activations: true}}",
    ),
    Case(
        "fused-adam-on-cpu",
        r"optimizer\.implementation: fused_adam is DeepSpeed's CUDA kernel, but this run's device is cpu\. "
        r"Fix",
        "optimizer: {implementation: fused_adam}",
    ),
    Case(
        "bad-part-type",
        r"model\.type: no ModelFactory named 'nope'; available: huggingface",
        "model: {type: nope}",
    ),
    Case("bad-trainer-type", r"type: no Trainer named 'casual'.*Did you mean 'causal'", "type: casual"),
    Case(
        "bad-tokenizer-type",
        r"tokenizer\.type: no TokenizerFactory named 'words'",
        "tokenizer: {type: words}",
    ),
    Case(
        "max-length-1",
        r"data\.max_length: Input should be greater than or equal to 2",
        data("addition", max_length=1),
    ),
    Case(
        "exit-iteration-negative",
        r"exit_iteration: Input should be greater than or equal to 0",
        "exit_iteration: -1",
    ),
]

RECIPE_MODEL = [
    Case(
        "model-two-sources",
        r"model: give exactly one of name_or_path",
        "model: {name_or_path: x, config: {model_type: llama}}",
    ),
    Case("model-type-missing", r"model: model\.config needs model_type", model(model_type=None)),
    Case(
        "model-type-unknown",
        r"model\.config: model_type 'lama' is not a model type transformers knows\. Did you mean 'llama'"
        r".*Fix",
        model(model_type="lama"),
    ),
    Case(
        "model-config-typo",
        r"model\.config: unknown key 'hidden_sise' for model_type 'llama' \(LlamaConfig\)\. Did you mean "
        r"'hidden_size'\? Fix: correct or remove the key",
        model(hidden_sise=16),
    ),
    Case(
        "model-rejected-by-transformers",
        r"model\.config: .*not a multiple of the number of attention heads \(3\)\. Fix: correct "
        r"model\.config",
        model(num_attention_heads=3, num_key_value_heads=3),
    ),
    Case(
        "model-bad-activation",
        r"model: transformers cannot build a llama model from model\.config \(KeyError: 'nope'\)\. Fix",
        model(hidden_act="nope"),
    ),
    Case(
        "model-bad-activation-unchecked",
        r"model: HFModelFactory cannot build a model .*KeyError: 'nope'.*Fix",
        "model: {check_memory: false, config: {model_type: llama, hidden_size: 32, hidden_act: nope}}",
    ),
    Case(
        "model-local-dir-missing",
        r"model\.name_or_path: directory '.*no-such-model' does not exist\. Fix: correct model\.name_or_path "
        r"\(it is read relative to the recipe's folder",
        "model: {name_or_path: ./no-such-model}",
    ),
    Case(
        "tokenizer-local-dir-missing",
        r"tokenizer\.name_or_path: directory '.*no-such-tokenizer' does not exist\. Fix: correct "
        r"tokenizer\.name_or_path",
        "tokenizer: {type: huggingface, name_or_path: ../no-such-tokenizer}",
    ),
    Case(
        "model-too-big-for-memory",
        r"model: model\.config describes a 30\.58B-parameter llama model; training it needs about 455\.6 GiB "
        r".*more than the .* Fix: .*model\.check_memory: false",
        "model: {config: {model_type: llama, hidden_size: 16384, intermediate_size: 53248, "
        "num_hidden_layers: 8, num_attention_heads: 128}}",
    ),
    Case(
        "model-too-large",
        r"memory",
        model(hidden_size=4_000_000, num_attention_heads=1, num_key_value_heads=1),
    ),
]

RECIPE_FILE = [
    Case(
        "recipe-missing",
        r"recipe file 'nothere\.yaml' does not exist\. Fix: check the path",
        argv=["train", "nothere.yaml"],
    ),
    Case(
        "recipe-is-a-directory",
        r"recipe 'sub' is a directory, not a file\. Fix",
        files={"sub/x.txt": ""},
        argv=["train", "sub"],
    ),
    Case(
        "recipe-not-utf8",
        r"recipe\.yaml:2: the recipe is not UTF-8 text.*Fix: save it as UTF-8",
        files={"recipe.yaml": b"type: causal\nseed: \xff\xfe\n"},
    ),
    Case(
        "recipe-unreadable",
        r"recipe file 'recipe\.yaml' cannot be read \(Permission denied\)\. Fix: check its permissions",
        patch=lambda mp, work: _deny_reading(mp, "recipe.yaml"),
    ),
    Case(
        "yaml-syntax",
        r"recipe\.yaml:\d+: YAML syntax error: .*Fix: check the indentation",
        files={"recipe.yaml": "type: causal\ndata: {sources: [\n"},
    ),
    Case(
        "duplicate-key",
        r"recipe\.yaml:3: duplicate key 'epochs' \(first on line 2\)\. Fix: keep one",
        files={"recipe.yaml": "type: causal\nepochs: 1\nepochs: 2\n"},
    ),
    Case(
        "recipe-is-a-list",
        r"recipe\.yaml: the recipe must be a mapping of keys to values, got list",
        files={"recipe.yaml": "- a\n- b\n"},
    ),
    Case("recipe-empty", r"model: give exactly one of name_or_path .*Fix", files={"recipe.yaml": ""}),
    Case(
        "code-missing",
        r"code: file .*absent\.py' does not exist\. Fix: give a path relative",
        "code: absent.py",
    ),
    Case(
        "code-is-a-directory",
        r"code: '.*lib' is a directory; code: takes Python files\. Fix",
        "code: lib",
        files={"lib/x.py": ""},
    ),
    Case(
        "code-import-fails",
        r"code: cannot import .*broken\.py': ModuleNotFoundError: No module named 'nonexistent_xyz'.*Fix:"
        r" run",
        "code: broken.py",
        files={"broken.py": "import nonexistent_xyz\n"},
    ),
    Case(
        "code-syntax-error",
        r"code: cannot import .*bad_syntax\.py': SyntaxError",
        "code: bad_syntax.py",
        files={"bad_syntax.py": "def f(:\n"},
    ),
    Case(
        "code-calls-sys-exit",
        r"code: '.*exits\.py' called sys\.exit\(3\) while being imported\. Fix: .*if __name__ =="
        r" \"__main__\"",
        "code: exits.py",
        files={"exits.py": "import sys\nsys.exit(3)\n"},
    ),
    Case(
        "output-dir-is-a-file",
        r"output_dir: .*out is a file, not a directory\. Fix",
        files={"out": "not a directory"},
    ),
    Case(
        "output-dir-under-a-file",
        r"output_dir: .*blocker/out cannot be created because .*blocker is a file",
        "output_dir: WORK/blocker/out",
        files={"blocker": "x"},
    ),
    Case(
        "output-dir-not-writable",
        r"output_dir: .*out cannot be created: .* is not writable\. Fix: choose a directory you can write to",
        patch=lambda mp, work: mp.setattr("os.access", lambda path, mode: Path(path) != work),
    ),
    Case(
        "checkpoint-dir-is-a-file",
        r"checkpoint\[0\]\.output_dir: .*ckpt is a file",
        "checkpoint: [{type: torch, output_dir: WORK/ckpt}]",
        files={"ckpt": "x"},
    ),
    Case(
        "cache-dir-is-a-file",
        r"data\.cache_dir: .*cachefile is a file",
        data("addition", cache_dir="WORK/cachefile").replace("cache_dir: CACHE, ", ""),
        files={"cachefile": "x"},
    ),
]

COMMAND_LINE = [
    Case(
        "set-unknown-path",
        r"--set optimizer\.nope=1: unknown key 'nope' in 'optimizer'",
        args=["--set", "optimizer.nope=1"],
    ),
    Case("set-bad-value", r"epochs: 'abc' is not a number", args=["--set", "epochs=abc"]),
    Case(
        "set-malformed",
        r"usage error: --set 'epochs' is not KEY\.PATH=VALUE\. Fix: write it like",
        args=["--set", "epochs"],
    ),
    Case(
        "set-index-out-of-range",
        r"--set checkpoint\.5\.resume_from=x: index 5 is out of range",
        args=["--set", "checkpoint.5.resume_from=x"],
    ),
    Case(
        "unknown-flag",
        r"usage error: unrecognized arguments: --bogus\. Fix: see `arctic-like --help`",
        args=["--bogus"],
    ),
    Case(
        "unknown-command",
        r"usage error: argument command: invalid choice: 'frobnicate'.*Fix",
        argv=["frobnicate", "recipe.yaml"],
    ),
    Case("no-command", r"usage error: the following arguments are required: command", argv=[]),
    Case("no-recipe", r"usage error: the following arguments are required: recipe", argv=["train"]),
    Case(
        "bad-log-level",
        r"usage error: argument --log-level: invalid choice: 'LOUD'",
        args=["--log-level", "LOUD"],
    ),
    Case(
        "dry-run-of-a-bad-recipe",
        r"optimizer\.lr: inf is not a finite number",
        "optimizer: {lr: .inf}",
        args=["--dry-run"],
    ),
    Case(
        "callbacks-of-a-bad-recipe",
        r"bogus_key: Extra inputs are not permitted",
        "bogus_key: 1",
        argv=["callbacks", "recipe.yaml"],
    ),
    Case(
        "process-data-of-a-missing-file",
        r"data source '.*gone\.jsonl' does not exist",
        data("{type: jsonl, path: gone.jsonl}"),
        argv=["process-data", "recipe.yaml"],
    ),
]

CHECKPOINTS = [
    Case(
        "checkpoint-corrupted",
        r"checkpoint .*checkpoint-2 is corrupted: file model\.safetensors does not match its checksum.*Fix",
        checkpoint="corrupt",
    ),
    Case(
        "checkpoint-other-shape",
        r"checkpoint-2 is from another model shape .*saved \[\d+, 32\], current \[\d+, 64\].*Fix",
        args=["--set", "model.config.hidden_size=64"],
        checkpoint="shape",
    ),
    Case(
        "checkpoint-version",
        r"checkpoint .*checkpoint-2 has incompatible format version 99.*Fix",
        checkpoint="version",
    ),
    Case(
        "checkpoint-incomplete",
        r"checkpoint .*checkpoint-2 is incomplete or corrupted: it has no manifest\.json.*Fix",
        checkpoint="incomplete",
    ),
    Case(
        "checkpoint-manifest-not-json",
        r"checkpoint .*checkpoint-2 is corrupted: manifest\.json is not valid JSON.*Fix",
        checkpoint="manifest-json",
    ),
    Case(
        "checkpoint-file-missing",
        r"checkpoint .*checkpoint-2 is corrupted: file optimizer\.pt listed in manifest\.json is missing",
        checkpoint="file-missing",
    ),
    Case(
        "checkpoint-state-not-json",
        r"checkpoint .*checkpoint-2 cannot be loaded into this run: JSONDecodeError.*Fix: resume from"
        r" another",
        checkpoint="state-json",
    ),
    Case(
        "checkpoint-file-unreadable",
        r"checkpoint .*checkpoint-2: file model\.safetensors cannot be read \(Permission denied\)\. Fix",
        checkpoint="plain",
        patch=lambda mp, work: _deny_reading(mp, "model.safetensors"),
    ),
    Case(
        "checkpoint-path-missing",
        r"checkpoint .*nowhere does not exist or is not a directory\. Fix",
        args=["--set", "checkpoint.0.resume_from=WORK/nowhere"],
    ),
    Case(
        "checkpoint-is-a-temporary-dir",
        r"is a temporary directory of an interrupted save.*Fix",
        checkpoint="tmpdir",
    ),
    Case(
        "checkpoint-other-engine",
        r"written by the 'torch' checkpoint engine, not 'huggingface'\. Fix: load it with `type: torch`",
        args=["--set", "checkpoint.0.type=huggingface"],
        checkpoint="plain",
    ),
    Case(
        "auto-resume-all-corrupted",
        r"auto_resume: every checkpoint in .* is corrupted \(checkpoint-2;.*Fix",
        checkpoint="in-output-dir",
    ),
]

DATA_FILES = [
    Case(
        "data-missing",
        r"data source '.*missing\.jsonl' does not exist\. Fix: check data\.sources",
        data("{type: jsonl, path: missing.jsonl}"),
    ),
    Case(
        "jsonl-malformed",
        r"data source '.*bad\.jsonl', line 2: not valid JSON \(.*\)\. Fix: write one JSON object per line",
        data("bad.jsonl"),
        files={"bad.jsonl": '{"text": "1+1=2"}\n{"text": "2+2=4"\n{"text": "3+3=6"}\n'},
    ),
    Case(
        "jsonl-empty",
        r"data source '.*empty\.jsonl' is empty\. Fix: add examples",
        data("empty.jsonl"),
        files={"empty.jsonl": ""},
    ),
    Case(
        "jsonl-blank",
        r"data source '.*blank\.jsonl', has only blank lines\. Fix",
        data("blank.jsonl"),
        files={"blank.jsonl": "\n\n  \n"},
    ),
    Case(
        "jsonl-not-utf8",
        r"data source '.*latin\.jsonl' is not UTF-8 text.*Fix: save it as UTF-8",
        data("latin.jsonl"),
        files={"latin.jsonl": b'{"text": "caf\xe9"}\n'},
    ),
    Case(
        "jsonl-without-text",
        r"data source '.*other\.jsonl' has columns \['body'\] but none of the row columns .*Fix: map them"
        r" with column_mapping",
        data("other.jsonl"),
        files={"other.jsonl": '{"body": "1+1=2"}\n'},
    ),
    Case(
        "data-unknown-extension",
        r"cannot tell the format of 'notes\.txt' from its extension",
        data("notes.txt"),
    ),
    Case(
        "data-no-sources",
        r"data\.sources is empty\. Fix: add a source",
        "data: {sources: [], cache_dir: CACHE}",
    ),
    Case(
        "data-less-than-a-batch",
        r"the training data has 16 examples, fewer than one batch.*Fix",
        "micro_batch_size: 64",
    ),
    Case(
        "data-function-missing",
        r"cannot import data source function 'no_such_module:rows'",
        data("{type: callable, function: 'no_such_module:rows'}"),
    ),
]

CALLBACKS = [
    Case(
        "callback-module-missing",
        r"recipe callbacks\[0\]: callback path 'no_such_pkg\.Logger': cannot import module.*Fix",
        "callbacks: [no_such_pkg.Logger]",
    ),
    Case(
        "callback-class-missing",
        r"recipe callbacks\[0\]: callback path 'arctic_like\.callbacks\.Nope': .*has no attribute 'Nope'\."
        r" Fix",
        "callbacks: [arctic_like.callbacks.Nope]",
    ),
    Case(
        "callback-bad-path",
        r"callbacks\[0\]\.path: 'not a path' is not an import path",
        "callbacks: ['not a path']",
    ),
    Case(
        "callback-bad-kwargs",
        r"recipe callbacks\[0\]: callback 'arctic_like\.callbacks\.JsonLogger' rejected kwargs"
        r" \['bogus'\].*Fix",
        "callbacks: [{path: arctic_like.callbacks.JsonLogger, kwargs: {bogus: 1}}]",
    ),
    Case(
        "callback-init-raises",
        r"recipe callbacks\[0\]: callback 'exploding\.Exploding' raised RuntimeError while being created:"
        r" cannot handle "
        r"power 9\. Fix",
        "code: exploding.py\ncallbacks: [{path: exploding.Exploding, kwargs: {power: 9}}]",
        files={"exploding.py": RAISING_CALLBACK},
    ),
    Case(
        "callback-state-key-taken",
        r"cannot add .*EarlyStopping: its state_key 'EarlyStopping' is already used by .*Fix: give one of"
        r" them",
        "callbacks: [arctic_like.callbacks.EarlyStopping, arctic_like.callbacks.EarlyStopping]",
    ),
    Case(
        "callback-unknown-event",
        r"CallbackError: Custom: callback \S*custom\S*\.hook on event 'pre-no-such-method' names an unknown"
        r" event.*Fix",
        CUSTOM,
        files=trainer_with("('pre-no-such-method', hook)", "def hook(self):\n    pass"),
    ),
    Case(
        "callback-misspelt-event",
        r"callback \S*custom\S*\.hook on event 'post-lose' names an unknown event.*did you mean 'post-loss'",
        CUSTOM,
        files=trainer_with("('post-lose', hook)", "def hook(self, loss):\n    return loss"),
    ),
    Case(
        "callback-star-args",
        r"callback \S*custom\S*\.hook on event 'pre-step' takes \*args.*Fix: name the parameters",
        CUSTOM,
        files=trainer_with("('pre-step', hook)", "def hook(self, *args):\n    pass"),
    ),
    Case(
        "callback-not-a-pair",
        r"callback entry 'pre-step' is not an \(event, callable\) pair\. Fix",
        CUSTOM,
        files=trainer_with("'pre-step'", ""),
    ),
    Case(
        "callback-unknown-parameter",
        r"callback \S*custom\S*\.hook on event 'pre-loss' takes 'bacth', which is not a parameter.*may take"
        r" any of: batch",
        CUSTOM,
        files=trainer_with("('pre-loss', hook)", "def hook(self, bacth):\n    return bacth"),
    ),
    Case(
        "callback-returns-a-tuple",
        r"callback \S*custom\S*\.hook on event 'pre-loss' takes one parameter \('batch', a dict\) and must"
        r" return its "
        r"new value, but a tuple of 2 .*Fix: `return batch`",
        CUSTOM,
        files=trainer_with("('pre-loss', hook)", "def hook(self, batch):\n    return batch, 1"),
        started=True,
    ),
    Case(
        "callback-forgets-return",
        r"callback \S*custom\S*\.hook on event 'post-loss' returned None for 'the return value'.*did you"
        r" forget `return`",
        CUSTOM,
        files=trainer_with("('post-loss', hook)", "def hook(self, loss):\n    loss * 2"),
        started=True,
    ),
    Case(
        "loss-not-finite",
        r"training failed: non-finite loss \(nan\) at optimizer step 1 .*Fix: lower the learning rate",
        CUSTOM,
        files=trainer_with("('post-loss', hook)", "def hook(self, loss):\n    return loss * float('nan')"),
        code=3,
        started=True,
    ),
]

ARCTIC_TRAINING = [
    Case(
        "at-refused-key",
        r"recipe\.yaml:\d+: sequence_parallel_size: 2 is not supported: Ulysses sequence parallelism is not "
        r"available\. Fix: remove it",
        "sequence_parallel_size: 2",
    ),
    Case(
        "at-key-and-ours-disagree",
        r"optimizer\.lr and optimizer\.learning_rate both set optimizer\.lr \(0\.2 and 0\.1\)\. Fix: keep",
        "optimizer: {lr: 0.2, learning_rate: 0.1}",
    ),
    Case(
        "at-snowflake-source",
        r"data\.sources\[0\]: Snowflake sources need a Snowflake account .*Fix: export the table",
        "data: {sources: [{type: snowflake, sql: select 1}], max_length: 16, cache_dir: CACHE}",
    ),
    Case("at-bad-style", r"style: 'at' is not one of auto, arctic_training, arctic_like", "style: at"),
    Case(
        "launch-gpus-and-procs",
        r"usage error: --num-gpus and --num-procs both given\. Fix: give one",
        args=["--num-gpus", "2", "--num-procs", "2"],
    ),
    Case(
        "launch-nodes-without-rank",
        r"usage error: a run on several machines without a hostfile is started on each machine\. Fix: give "
        r"--node-rank",
        args=["--num-procs", "2", "--num-nodes", "2"],
    ),
]

CASES = (
    RECIPE_VALUES
    + RECIPE_MODEL
    + RECIPE_FILE
    + COMMAND_LINE
    + CHECKPOINTS
    + DATA_FILES
    + CALLBACKS
    + ARCTIC_TRAINING
)

# ---- helpers -----------------------------------------------------------------------------------------------

_find_spec = importlib.util.find_spec


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _deny_reading(mp: pytest.MonkeyPatch, name: str) -> None:
    """Reading a file called `name` raises PermissionError (as root, a chmod would not stop it)."""
    read_bytes, file_sha256 = Path.read_bytes, manifest_module.file_sha256

    def denied(original: Callable) -> Callable:
        def read(path: Path, *args: object) -> object:
            if Path(path).name == name:
                raise PermissionError(13, "Permission denied", str(path))
            return original(path, *args)

        return read

    mp.setattr(Path, "read_bytes", denied(read_bytes))
    mp.setattr(manifest_module, "file_sha256", denied(file_sha256))


def snapshot(*roots: Path) -> dict[str, str]:
    """Relative path -> content hash (or 'dir') of everything under `roots`."""
    seen = {}
    for root in roots:
        for path in sorted(root.rglob("*")) if root.exists() else []:
            key = str(path.relative_to(root.parent))
            seen[key] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        if root.is_file():
            seen[root.name] = hashlib.sha256(root.read_bytes()).hexdigest()
    return seen


def damage(source: Path, how: str, work: Path) -> Path:
    """A copy of checkpoint-2 under `work`, damaged as `how` says; returns its path."""
    parent = work / "out" / "checkpoints" if how == "in-output-dir" else work / "saved"
    path = parent / ("checkpoint-2" if how != "tmpdir" else ".tmp-checkpoint-2-abc")
    shutil.copytree(source, path)
    manifest = json.loads((path / "manifest.json").read_text())
    if how in ("corrupt", "in-output-dir"):
        with open(path / "model.safetensors", "r+b") as f:
            f.seek(-16, os.SEEK_END)
            f.write(b"\0" * 16)
    elif how == "version":
        manifest["format_version"] = 99
        (path / "manifest.json").write_text(json.dumps(manifest))
    elif how == "incomplete":
        (path / "manifest.json").unlink()
    elif how == "manifest-json":
        (path / "manifest.json").write_text("{not json")
    elif how == "file-missing":
        (path / "optimizer.pt").unlink()
    elif how == "state-json":  # damaged, with checksums that match: the file was written that way
        state = path / "trainer_state.json"
        state.write_text("{truncated")
        manifest["files"]["trainer_state.json"] = {"size": state.stat().st_size, "sha256": _sha(state)}
        (path / "manifest.json").write_text(json.dumps(manifest))
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real checkpoint-2 written by `arctic-like train` (2 steps) of the base recipe."""
    work = tmp_path_factory.mktemp("ckpt")
    recipe = base_recipe(work)
    recipe["max_steps"] = 2
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(work / "recipe.yaml")]) == 0
    return work / "out" / "checkpoints" / "checkpoint-2"


def prepare(case: Case, work: Path, source: Path | None) -> list[str]:
    """Write the case's files under `work`; returns its command line."""
    recipe = base_recipe(work)
    text = case.recipe.replace("CACHE", str(work / "cache")).replace("WORK", str(work))
    recipe.update(yaml.safe_load(text) or {})
    if case.checkpoint is not None:
        assert source is not None
        damaged = damage(source, case.checkpoint, work)
        entry = {"type": "torch", "auto_resume": True} if case.checkpoint == "in-output-dir" else None
        recipe["checkpoint"] = [entry or {"type": "torch", "resume_from": str(damaged)}]
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    for name, content in case.files.items():
        (work / name).parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            (work / name).write_bytes(content)
        else:
            (work / name).write_text(content)
    if case.argv is not None:
        return list(case.argv)
    return ["train", "recipe.yaml", *(a.replace("WORK", str(work)) for a in case.args)]


# ---- the tests ---------------------------------------------------------------------------------------------


def test_the_table_covers_every_kind_of_input():
    assert len(CASES) >= 60
    assert len({c.id for c in CASES}) == len(CASES)
    groups = (RECIPE_VALUES, RECIPE_MODEL, RECIPE_FILE, COMMAND_LINE, CHECKPOINTS, DATA_FILES, CALLBACKS)
    assert all(len(group) >= 5 for group in groups)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys, request) -> None:
    source = request.getfixturevalue("checkpoint") if case.checkpoint else None
    monkeypatch.chdir(tmp_path)
    argv = prepare(case, tmp_path, source)
    if case.patch is not None:
        case.patch(monkeypatch, tmp_path)
    watched = (tmp_path / "out",) if case.started else (tmp_path / "out", tmp_path / "cache")
    before = snapshot(*watched)
    capsys.readouterr()
    assert main(argv) == case.code, capsys.readouterr().err[-3000:]
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "arctic-like: error:" in line]
    assert len(lines) == 1, err
    message = err[err.index("arctic-like: error:") :]
    assert re.search(case.match, message, re.S), message
    assert "Fix" in message, message
    assert "Traceback" not in err
    assert snapshot(*watched) == before


@pytest.mark.slow
def test_a_code_file_calling_sys_exit_in_a_real_process(tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == "code-calls-sys-exit")
    argv = prepare(case, tmp_path, None)
    proc = subprocess.run(
        [sys.executable, "-m", "arctic_like", *argv],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert re.search(case.match, proc.stderr, re.S) and "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "cache").exists()
