"""Assertions shared by the 2-process tests."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import torch

from tests.distributed.launch import events, losses, read_jsonl

LOSS_RTOL = 1e-5
"""2 processes x 1 sample vs 1 process x 2 samples: same samples per step, only the reduction order differs
(measured differences are ~1e-7 relative over 6 steps)."""

_PER_RANK_FILES = re.compile(
    r"^checkpoints/\.tmp-checkpoint-\d+-[^/]+/(state|state/zero_pp_rank_{rank}_.*|rng_state_rank{rank}\.pt)$"
)


def assert_ranks_agree(probe: Path, world_size: int = 2, per_node: int | None = None) -> None:
    """Every rank: the right rank flags (``per_node`` processes on each node; default: one node), the same
    logged losses, bit-identical parameters at the end."""
    per_node = per_node or world_size
    ends = []
    for rank in range(world_size):
        (init,) = events(probe, "init", rank)
        assert init["rank"] == rank and init["world_size"] == world_size
        assert init["local_rank"] == rank % per_node
        assert init["is_world_process_zero"] is (rank == 0)
        assert init["is_local_process_zero"] is (rank % per_node == 0)
        (end,) = events(probe, "train-end", rank)
        ends.append(end)
    assert len({end["params"] for end in ends}) == 1, f"parameters differ across ranks: {ends}"
    reference = losses(probe, 0)
    for rank in range(1, world_size):
        assert losses(probe, rank) == reference


def assert_matches_single_process(probe: Path, single_probe: Path, steps: int = 6) -> dict[int, float]:
    """Per-step losses within ``LOSS_RTOL`` of the single-process run; returns the relative differences."""
    ours, theirs = losses(probe), losses(single_probe)
    assert sorted(ours) == sorted(theirs) == list(range(1, steps + 1))
    diffs = {step: abs(ours[step] - theirs[step]) / abs(theirs[step]) for step in ours}
    assert max(diffs.values()) < LOSS_RTOL, diffs
    return diffs


def assert_rank_zero_writes_only(probe: Path, world_size: int = 2) -> list[str]:
    """Ranks > 0 create or write nothing under the output directory but their own checkpoint shards
    (ZeRO optimizer partitions, RNG state); returns what rank 0 wrote."""
    for rank in range(1, world_size):
        allowed = re.compile(_PER_RANK_FILES.pattern.format(rank=rank))
        stray = [w["path"] for w in read_jsonl(probe, "writes", rank) if not allowed.match(w["path"])]
        assert not stray, f"rank {rank} wrote {stray}"
    return [w["path"] for w in read_jsonl(probe, "writes", 0)]


def parameter_hash(model: torch.nn.Module) -> str:
    """The probe trainer's parameter digest (same algorithm; the probe is loaded by path in its runs)."""
    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        digest.update(name.encode())
        digest.update(p.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
