"""Every user error, through the CLI: exit status 2, one clear message, no traceback, nothing written.

Each row of CASES is run in-process with `main([...])`; two rows also run as a real subprocess. The same
list is documented in docs/errors.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from arctic_like.cli import main
from tests.tiny import TINY_MODEL

ROOT = Path(__file__).resolve().parents[1]


def base_recipe(work: Path) -> dict:
    """A tiny valid recipe; its data cache lives outside output_dir so 'nothing written' is checkable."""
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


@dataclass
class Case:
    id: str
    match: str
    files: dict[str, str] = field(default_factory=dict)
    """Files written next to the recipe (name -> text); `recipe.yaml` overrides the base recipe."""
    args: list[str] = field(default_factory=list)
    """Extra arguments after `train recipe.yaml` (or the whole command line when `argv` is set)."""
    argv: list[str] | None = None
    checkpoint: str | None = None
    """Resume from a copy of the shared checkpoint, damaged this way: corrupt, version, shape."""


BAD_CALLBACK = """
from arctic_like.trainer import CausalTrainer

def hook(self):
    pass

class BadCallbackTrainer(CausalTrainer):
    name = "bad-callback"
    callbacks = [("pre-no-such-method", hook)]
"""

CASES = [
    Case(
        "unknown-recipe-key",
        r"bogus_key: Extra inputs are not permitted\. Fix: remove it",
        {"+": "bogus_key: 1"},
    ),
    Case("wrong-type", r"micro_batch_size: 'lots' is not a number", {"+": "micro_batch_size: lots"}),
    Case(
        "missing-recipe-file",
        r"recipe file 'nothere\.yaml' does not exist\. Fix: check the path",
        argv=["train", "nothere.yaml"],
    ),
    Case(
        "missing-data-file",
        r"data source '.*missing\.jsonl' does not exist\. Fix: check data\.sources",
        {"+": "data: {sources: [{type: jsonl, path: missing.jsonl}], max_length: 16, cache_dir: CACHE}"},
    ),
    Case(
        "bad-type-name",
        r"model\.type: no ModelFactory named 'nope'; available: huggingface",
        {"+": "model: {type: nope}"},
    ),
    Case(
        "bad-trainer-type", r"type: no Trainer named 'casual'.*Did you mean 'causal'", {"+": "type: casual"}
    ),
    Case(
        "code-import-fails",
        r"code: cannot import .*broken\.py': ModuleNotFoundError: No module named 'nonexistent_xyz'",
        {"+": "code: broken.py", "broken.py": "import nonexistent_xyz\n"},
    ),
    Case("code-file-missing", r"code: file .*absent\.py' does not exist", {"+": "code: absent.py"}),
    Case(
        "yaml-syntax",
        r"recipe\.yaml:\d+: YAML syntax error: .*Fix: check the indentation",
        {"recipe.yaml": "type: causal\ndata: {sources: [\n"},
    ),
    Case(
        "duplicate-key",
        r"recipe\.yaml:3: duplicate key 'epochs' \(first on line 2\)\. Fix: keep one of them",
        {"recipe.yaml": "type: causal\nepochs: 1\nepochs: 2\n"},
    ),
    Case(
        "corrupted-checkpoint",
        r"checkpoint .*checkpoint-2 is corrupted: file model\.safetensors does not match its checksum.*Fix:",
        checkpoint="corrupt",
    ),
    Case(
        "other-model-shape",
        r"checkpoint-2 is from another model shape .*saved \[\d+, 32\], current \[\d+, 64\].*Fix:",
        args=["--set", "model.config.hidden_size=64"],
        checkpoint="shape",
    ),
    Case(
        "incompatible-checkpoint-version",
        r"checkpoint .*checkpoint-2 has incompatible format version 99.*Fix:",
        checkpoint="version",
    ),
    Case(
        "incomplete-checkpoint",
        r"checkpoint .*checkpoint-2 is incomplete or corrupted: it has no manifest\.json",
        checkpoint="incomplete",
    ),
    Case(
        "checkpoint-path-missing",
        r"checkpoint .*nowhere does not exist or is not a directory",
        args=["--set", "checkpoint.0.resume_from=WORK/nowhere"],
    ),
    Case(
        "set-unknown-path",
        r"--set optimizer\.nope=1: unknown key 'nope' in 'optimizer'",
        args=["--set", "optimizer.nope=1"],
    ),
    Case("set-bad-value", r"epochs: 'abc' is not a number", args=["--set", "epochs=abc"]),
    Case("set-malformed", r"usage error: --set 'epochs' is not KEY\.PATH=VALUE", args=["--set", "epochs"]),
    Case(
        "unknown-cli-flag",
        r"usage error: unrecognized arguments: --bogus\. Fix: see `arctic-like --help`",
        args=["--bogus"],
    ),
    Case(
        "unknown-command",
        r"usage error: argument command: invalid choice: 'frobnicate'",
        argv=["frobnicate", "recipe.yaml"],
    ),
    Case(
        "bad-callback-definition",
        r"CallbackError: BadCallbackTrainer: callback .*hook on event 'pre-no-such-method' names an unknown",
        {"+": "code: badcb.py\ntype: bad-callback", "badcb.py": BAD_CALLBACK},
    ),
]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint-2 written by `arctic-like train` (2 steps) of the base recipe."""
    work = tmp_path_factory.mktemp("ckpt")
    recipe = base_recipe(work)
    recipe["max_steps"] = 2
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert main(["train", str(work / "recipe.yaml")]) == 0
    return work / "out" / "checkpoints" / "checkpoint-2"


def damaged_copy(source: Path, how: str, dest: Path) -> Path:
    path = dest / "checkpoint-2"
    shutil.copytree(source, path)
    if how == "corrupt":
        with open(path / "model.safetensors", "r+b") as f:
            f.seek(-16, os.SEEK_END)
            f.write(b"\0" * 16)
    elif how == "version":
        manifest = json.loads((path / "manifest.json").read_text())
        manifest["format_version"] = 99
        (path / "manifest.json").write_text(json.dumps(manifest))
    elif how == "incomplete":
        (path / "manifest.json").unlink()
    return path


def prepare(case: Case, work: Path, checkpoint_source: Path | None) -> list[str]:
    """Write the case's files under `work` and return its argv."""
    recipe = base_recipe(work)
    extra = yaml.safe_load(case.files.get("+", "").replace("CACHE", str(work / "cache"))) or {}
    recipe.update(extra)
    if case.checkpoint is not None:
        assert checkpoint_source is not None
        damaged = damaged_copy(checkpoint_source, case.checkpoint, work / "saved")
        recipe["checkpoint"] = [{"type": "torch", "resume_from": str(damaged)}]
    (work / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    for name, text in case.files.items():
        if name != "+":
            (work / name).write_text(text)
    if case.argv is not None:
        return list(case.argv)
    return ["train", "recipe.yaml", *(a.replace("WORK", str(work)) for a in case.args)]


def test_at_least_fifteen_cases():
    assert len(CASES) >= 15
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_user_error(case, tmp_path, monkeypatch, capsys, request):
    source = request.getfixturevalue("checkpoint") if case.checkpoint else None
    monkeypatch.chdir(tmp_path)
    argv = prepare(case, tmp_path, source)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "arctic-like: error:" in line]
    assert len(lines) == 1, err
    full = err[err.index("arctic-like: error:") :]
    assert re.search(case.match, full, re.S), full
    assert "Traceback" not in err
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


@pytest.mark.slow
@pytest.mark.parametrize("case_id", ["missing-recipe-file", "yaml-syntax"])
def test_user_error_subprocess(case_id, tmp_path):
    case = next(c for c in CASES if c.id == case_id)
    argv = prepare(case, tmp_path, None)
    proc = subprocess.run(
        [sys.executable, "-m", "arctic_like", *argv],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 2, proc.stderr
    assert re.search(case.match, proc.stderr, re.S), proc.stderr
    assert "Traceback" not in proc.stderr
    out = tmp_path / "out"
    assert not out.exists() or not any(out.iterdir())
