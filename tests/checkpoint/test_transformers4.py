"""Exported tokenizers load with transformers 4.x and give the same ids as ours.

The check runs in a separate small virtual environment with `transformers<5`, the `tokenizers` it pins and
`jinja2` for chat templates (no torch: loading a tokenizer does not need it), created from PyPI on first use
and cached under `.venv/transformers4`. It is skipped only when PyPI cannot be reached.
"""

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from arctic_like.checkpoint.huggingface import save_tokenizer
from arctic_like.config.trainer import import_code_file
from arctic_like.tokenizer import (
    BPETokenizerConfig,
    BPETokenizerFactory,
    CharTokenizerFactory,
    HFTokenizerConfig,
    HFTokenizerFactory,
    TrainedTokenizerConfig,
)

pretrained = import_code_file(
    Path(__file__).resolve().parents[2] / "examples" / "fine-tuning" / "make_pretrained.py"
)

VENV = Path(__file__).resolve().parents[2] / ".venv" / "transformers4"
STAMP = VENV / ".installed"
TEXTS = ["12+7=19", "the quick brown fox", "hello world\nsecond line"]
MESSAGES = [{"role": "user", "content": "12+7="}, {"role": "assistant", "content": "19"}]
TEMPLATE = (
    "{% for m in messages %}{{ bos_token }}{{ m['role'] }}: {{ m['content'] }}{{ eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}{{ bos_token }}assistant: {% endif %}"
)

LOAD = """
import json, sys
from transformers import AutoTokenizer
out = {}
for path in sys.argv[1:]:
    tok = AutoTokenizer.from_pretrained(path)
    texts = json.loads(open(path + "/texts.json").read())
    out[path] = {
        "class": type(tok).__name__,
        "single": [tok(t)["input_ids"] for t in texts],
        "plain": [tok(t, add_special_tokens=False)["input_ids"] for t in texts],
        "pair": tok(texts[0], texts[1])["input_ids"],
        "special": [tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token],
        "decoded": [tok.decode(tok(t)["input_ids"], skip_special_tokens=True) for t in texts],
        "chat": tok.apply_chat_template(json.loads(open(path + "/messages.json").read()))
        if tok.chat_template else None,
    }
print(json.dumps(out))
"""


def _pypi_reachable() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/simple/transformers/", timeout=15):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def transformers4_python() -> Path:
    """Python of a venv with transformers 4.x (created once; a half-made one is made again)."""
    python = VENV / "bin" / "python"
    if STAMP.is_file():
        return python
    shutil.rmtree(VENV, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "transformers>=4.46,<5", "jinja2"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        shutil.rmtree(VENV, ignore_errors=True)
        if not _pypi_reachable():
            pytest.skip("PyPI is unreachable, so transformers 4.x cannot be installed to load the export")
        pytest.fail(f"installing transformers<5 failed:\n{done.stderr[-3000:]}")
    STAMP.touch()
    return python


def exported_tokenizers(root: Path) -> dict[str, object]:
    """The built-in tokenizers (one with a chat template) and the walk-through's pretrained-style tokenizer
    as a fine-tuning run loads it, exported as the huggingface engine does."""
    char_config = TrainedTokenizerConfig(texts=[*TEXTS, "userassistant: "], chat_template=TEMPLATE)
    pretrained.build_tokenizer().save_pretrained(root / "downloaded")
    tokenizers = {
        "char": CharTokenizerFactory(SimpleNamespace(), char_config)(),
        "bpe": BPETokenizerFactory(SimpleNamespace(), BPETokenizerConfig(texts=TEXTS * 20, vocab_size=300))(),
        "loaded": HFTokenizerFactory(
            SimpleNamespace(), HFTokenizerConfig(name_or_path=str(root / "downloaded"))
        )(),
    }
    out = {}
    for name, tokenizer in tokenizers.items():
        directory = root / name
        directory.mkdir()
        save_tokenizer(tokenizer, directory)
        (directory / "texts.json").write_text(json.dumps(TEXTS))
        (directory / "messages.json").write_text(json.dumps(MESSAGES))
        out[str(directory)] = tokenizer
    return out


@pytest.mark.slow
def test_exported_tokenizers_load_in_transformers_4(tmp_path, transformers4_python):
    ours = exported_tokenizers(tmp_path)
    done = subprocess.run(
        [str(transformers4_python), "-c", LOAD, *ours],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = json.loads(done.stdout.strip().splitlines()[-1])
    for path, tok in ours.items():
        loaded = theirs[path]
        assert loaded["class"] == "PreTrainedTokenizerFast"
        assert loaded["single"] == [tok(t)["input_ids"] for t in TEXTS]
        assert all(ids[0] == tok.bos_token_id for ids in loaded["single"])
        assert loaded["plain"] == [tok(t, add_special_tokens=False)["input_ids"] for t in TEXTS]
        assert loaded["pair"] == tok(TEXTS[0], TEXTS[1])["input_ids"]
        assert loaded["special"] == [tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token]
        assert loaded["decoded"] == TEXTS
        expected_chat = tok.apply_chat_template(MESSAGES, return_dict=False) if tok.chat_template else None
        assert loaded["chat"] == expected_chat
    assert theirs[str(tmp_path / "char")]["chat"] is not None
    assert theirs[str(tmp_path / "loaded")]["chat"] is not None
    exported = json.loads((tmp_path / "loaded" / "tokenizer_config.json").read_text())
    assert not {"is_local", "local_files_only"} & set(exported)
