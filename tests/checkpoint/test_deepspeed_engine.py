import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from arctic_like.checkpoint import CheckpointError
from tests.distributed.launch import TORCH_EXTENSIONS_DIR

ROOT = Path(__file__).resolve().parents[2]


def test_needs_deepspeed_training_engine(make_engine):
    with pytest.raises(
        CheckpointError, match=r"needs the DeepSpeed training engine.*Fix: set `engine: deepspeed`"
    ):
        make_engine(type="deepspeed")


@pytest.mark.slow
@pytest.mark.parametrize("stage", [3])
def test_deepspeed_roundtrip_and_export(tmp_path, stage):
    env = {
        k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")
    }
    env.setdefault("TORCH_EXTENSIONS_DIR", str(TORCH_EXTENSIONS_DIR))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.checkpoint.ds_roundtrip", str(tmp_path), str(stage)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["step"] == 2
    assert result["got"] == result["expected"]
    path = Path(result["path"])
    assert (path / "state").is_dir() and (path / "manifest.json").is_file()
    model = AutoModelForCausalLM.from_pretrained(path / "hf")
    assert model.model.embed_tokens.weight.dtype == torch.float32
    exported = AutoModelForCausalLM.from_pretrained(tmp_path / "huggingface" / "checkpoint-2")
    for (name, a), b in zip(model.state_dict().items(), exported.state_dict().values(), strict=True):
        assert a.shape == b.shape and torch.equal(a, b), name
