"""Everything a run writes has the modes the umask gives (0755/0644 under 022), and stays atomic."""

import os
import stat
from pathlib import Path

import pytest

from arctic_like.callbacks import JsonLogger, LossPlot
from arctic_like.checkpoint.atomic import current_umask, honour_umask
from tests.integrations.recipe import build


@pytest.fixture
def umask():
    """Set the process umask for one test, then put the old one back."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


def modes(root: Path) -> dict[str, set[str]]:
    """The distinct permission bits of the directories and of the files below ``root``."""
    found: dict[str, set[str]] = {"dirs": set(), "files": set()}
    for dirpath, dirnames, filenames in os.walk(root):
        found["dirs"] |= {oct(stat.S_IMODE(os.stat(Path(dirpath, d)).st_mode)) for d in dirnames}
        found["files"] |= {oct(stat.S_IMODE(os.stat(Path(dirpath, f)).st_mode)) for f in filenames}
    return found


@pytest.mark.parametrize(("mask", "dirs", "files"), [(0o022, "0o755", "0o644"), (0o077, "0o700", "0o600")])
def test_a_run_writes_with_the_umask(tmp_path, umask, mask, dirs, files):
    umask(mask)
    assert current_umask() == mask
    trainer = build(tmp_path, max_steps=2, logging_steps=1, save_steps=2)
    trainer.add_callback(JsonLogger())
    trainer.add_callback(LossPlot())
    trainer.train()
    out = tmp_path / "out"
    checkpoint = out / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "model.safetensors").is_file() and (out / "loss.png").is_file()
    assert (out / "log.jsonl").is_file()
    assert modes(out) == {"dirs": {dirs}, "files": {files}}
    assert modes(tmp_path / "cache") == {"dirs": {dirs}, "files": {files}}  # the data cache
    assert not [p for p in checkpoint.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_honour_umask_keeps_executables_executable_and_skips_links(tmp_path):
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "data.bin").write_bytes(b"x")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    os.chmod(tree / "data.bin", 0o600)
    os.chmod(tree / "run.sh", 0o700)
    os.chmod(tree / "sub", 0o700)
    (tree / "link").symlink_to(tmp_path)
    honour_umask(tree, umask=0o027)
    assert oct(stat.S_IMODE(os.stat(tree).st_mode)) == "0o750"
    assert oct(stat.S_IMODE(os.stat(tree / "sub").st_mode)) == "0o750"
    assert oct(stat.S_IMODE(os.stat(tree / "data.bin").st_mode)) == "0o640"
    assert oct(stat.S_IMODE(os.stat(tree / "run.sh").st_mode)) == "0o750"
    assert (tree / "link").is_symlink()
