"""The fine-tuning walk-through (examples/fine-tuning, docs/fine-tuning.md), end to end, for two families.

Exactly what a user runs: save the pretrained-style stand-in, `arctic-like train recipe.yaml` from another
working directory (the recipe's paths are relative to it), then `check.py` on the export, which uses plain
`transformers` only. The stand-in does not know the answers; the fine-tuned export must give all of them.
"""

import json
import re
import shutil
from pathlib import Path

import pytest

from arctic_like.cli import main
from arctic_like.config.trainer import import_code_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "fine-tuning"
make_pretrained = import_code_file(EXAMPLE / "make_pretrained.py")
check = import_code_file(EXAMPLE / "check.py")


def score(output: str) -> tuple[int, int]:
    found = re.search(r"exact answers: (\d+)/(\d+)", output)
    assert found, output
    return int(found[1]), int(found[2])


@pytest.mark.slow
@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_walk_through(family, tmp_path, monkeypatch, capsys):
    example = tmp_path / "example"
    example.mkdir()
    for name in ("recipe.yaml", "chat.jsonl"):
        shutil.copy(EXAMPLE / name, example / name)
    assert make_pretrained.main([str(example / "pretrained"), "--family", family]) == 0
    capsys.readouterr()
    assert check.main([str(example / "pretrained")]) == 0
    correct, total = score(capsys.readouterr().out)
    assert total == 21 and correct <= 2, "the stand-in should not know the answers yet"

    monkeypatch.chdir(tmp_path)  # not the recipe's folder
    assert main(["train", str(example / "recipe.yaml"), "--set", f"output_dir={tmp_path / 'run'}"]) == 0
    export = tmp_path / "run" / "huggingface" / "checkpoint-150"
    settings = json.loads((export / "tokenizer_config.json").read_text())
    assert settings["tokenizer_class"] == "PreTrainedTokenizerFast" and "chat_template" in settings
    assert settings["add_bos_token"] is (family == "llama")

    capsys.readouterr()
    assert check.main([str(tmp_path / "run" / "huggingface"), "--min-accuracy", "1.0"]) == 0
    output = capsys.readouterr().out
    assert output.startswith(f"asking {export} (21 questions)")
    assert score(output) == (21, 21)
