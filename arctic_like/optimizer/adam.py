"""Which Adam runs the optimizer step: torch's ``AdamW``, DeepSpeed's ``FusedAdam`` or ``DeepSpeedCPUAdam``.

As in ArcticTraining, a DeepSpeed run uses DeepSpeed's own optimizers: ``FusedAdam`` (a CUDA kernel) on GPUs
and ``DeepSpeedCPUAdam`` (vectorised C++) when ZeRO-Offload keeps the optimizer state on the CPU. Every other
run uses ``torch.optim.AdamW``. ``optimizer.implementation`` forces one; all three compute AdamW (decoupled
weight decay) from the same parameter groups.

``DeepSpeedCPUAdam`` is a C++ extension that DeepSpeed compiles on first use with the machine's C++ compiler
and ninja (a minute or two); torch caches the result in its extensions directory, so later runs load it in
about a second. The first build is logged with its duration.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any, Literal

import torch

__all__ = [
    "ADAM_IMPLEMENTATIONS",
    "AdamImplementation",
    "build_adam",
    "choose_adam",
    "cpu_adam_build_dir",
    "load_cpu_adam_op",
    "ninja_on_path",
    "optimizer_offload_device",
]

logger = logging.getLogger("arctic_like.optimizer")

AdamImplementation = Literal["auto", "torch", "fused_adam", "cpu_adam"]
ADAM_IMPLEMENTATIONS: tuple[str, ...] = ("auto", "torch", "fused_adam", "cpu_adam")

_INSTALL = "Fix: pip install 'arctic-like[deepspeed]' (DeepSpeed, plus ninja to compile its ops)."


def optimizer_offload_device(engine: str, deepspeed: dict[str, Any]) -> str | None:
    """``cpu`` or ``nvme`` when a DeepSpeed run offloads the optimizer state (ZeRO-Offload), else None."""
    if engine != "deepspeed":
        return None
    zero = deepspeed.get("zero_optimization") or {}
    device = (zero.get("offload_optimizer") or {}).get("device", "none")
    return device if device in ("cpu", "nvme") else None


def choose_adam(requested: str, *, engine: str, deepspeed: dict[str, Any], device: torch.device) -> str:
    """The implementation a run uses: ``requested`` unless ``auto``; raises ``ValueError`` for a combination
    that cannot run (the message names ``optimizer.implementation`` and the fix)."""
    offload = optimizer_offload_device(engine, deepspeed)
    on_gpu = device.type == "cuda"
    if requested == "auto":
        if offload:
            return "cpu_adam"
        return "fused_adam" if engine == "deepspeed" and on_gpu else "torch"
    strict = deepspeed.get("zero_force_ds_cpu_optimizer", True)
    if offload and requested != "cpu_adam" and strict:
        raise ValueError(
            f"optimizer.implementation is {requested!r}, but deepspeed.zero_optimization.offload_optimizer "
            f"(device {offload}) runs the optimizer step on the CPU, where DeepSpeed requires its "
            "DeepSpeedCPUAdam. Fix: set optimizer.implementation: auto or cpu_adam, or set "
            f"deepspeed.zero_force_ds_cpu_optimizer: false to run {requested!r} on the CPU anyway."
        )
    if requested == "fused_adam" and not on_gpu:
        raise ValueError(
            f"optimizer.implementation: fused_adam is DeepSpeed's CUDA kernel, but this run's device is "
            f"{device.type}. Fix: set optimizer.implementation: auto, torch or cpu_adam."
        )
    if requested == "cpu_adam" and on_gpu and not offload:
        raise ValueError(
            "optimizer.implementation: cpu_adam steps parameters held on the CPU, but this run keeps them on "
            "the GPU. Fix: offload the optimizer state (engine: deepspeed with "
            "deepspeed.zero_optimization.offload_optimizer.device: cpu), or set optimizer.implementation: "
            "auto."
        )
    return requested


def cpu_adam_build_dir() -> Path:
    """Where torch keeps the compiled ``cpu_adam`` extension (``TORCH_EXTENSIONS_DIR`` or its default)."""
    from torch.utils.cpp_extension import _get_build_directory

    return Path(_get_build_directory("cpu_adam", verbose=False))


def ninja_on_path() -> None:
    """Put the ``ninja`` that ``pip install 'arctic-like[deepspeed]'`` brings first on ``PATH``.

    torch builds C++ ops with the first ``ninja`` on ``PATH``, and ninja versions record their builds
    differently: a run that finds another ninja than the run before (the system's one when the environment is
    not activated, the environment's own when it is) rebuilds every op, minutes each. With this, every run
    uses the same one, and a machine without a system ninja still builds.
    """
    try:
        import ninja
    except ImportError:
        return
    bin_dir = Path(ninja.BIN_DIR)
    found = shutil.which("ninja")
    if not (bin_dir / "ninja").is_file() or (found is not None and Path(found).parent == bin_dir):
        return
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def _remember_cpu_info() -> None:
    """Answer ``cpuinfo.get_cpu_info()`` from memory after its first call in this process.

    DeepSpeed asks it three times while creating a ``DeepSpeedCPUAdam`` (the op's compiler flags, twice, and
    the CPU vendor), and each call starts a Python subprocess: 1 s each on this machine. What the CPU is does
    not change while the process runs; callers get a copy, as from the original.
    """
    import cpuinfo

    if getattr(cpuinfo.get_cpu_info, "__wrapped__", None) is not None:
        return
    ask = functools.cache(cpuinfo.get_cpu_info)

    @functools.wraps(cpuinfo.get_cpu_info)
    def remembered() -> dict[str, Any]:
        return dict(ask())

    cpuinfo.get_cpu_info = remembered


def load_cpu_adam_op() -> Any:
    """Load DeepSpeed's ``cpu_adam`` op, compiling it first if this machine has no cached build (logged with
    the time it took). Loaded once per process; ``DeepSpeedCPUAdam`` reuses it."""
    try:
        from deepspeed.ops.op_builder import CPUAdamBuilder
    except ImportError:
        raise ValueError(
            f"optimizer.implementation cpu_adam needs DeepSpeed, which is not installed. {_INSTALL}"
        ) from None
    ninja_on_path()
    _remember_cpu_info()
    build_dir = cpu_adam_build_dir()
    cached = any(build_dir.glob("cpu_adam*.so"))
    if not cached:
        logger.info(
            "compiling DeepSpeed's cpu_adam op with the C++ compiler and ninja (first use on this machine; "
            "cached in %s for later runs)",
            build_dir,
        )
    start = time.perf_counter()
    op = CPUAdamBuilder().load()
    if not cached:
        logger.info("compiled DeepSpeed's cpu_adam op in %.1f s", time.perf_counter() - start)
    return op


def build_adam(
    implementation: str,
    groups: list[dict[str, Any]],
    *,
    lr: float,
    betas: tuple[float, float],
    eps: float,
) -> torch.optim.Optimizer:
    """AdamW over ``groups`` (each with its own ``weight_decay``) in the given implementation."""
    if implementation == "torch":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=eps)
    if implementation == "cpu_adam":
        load_cpu_adam_op()
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(groups, lr=lr, betas=betas, eps=eps, adamw_mode=True)
    if implementation == "fused_adam":
        try:
            from deepspeed.ops.adam import FusedAdam
        except ImportError:
            raise ValueError(
                f"optimizer.implementation fused_adam needs DeepSpeed, which is not installed. {_INSTALL}"
            ) from None
        return FusedAdam(groups, lr=lr, betas=betas, eps=eps, adam_w_mode=True)
    raise ValueError(
        f"optimizer.implementation {implementation!r} is unknown. Fix: use one of "
        f"{', '.join(ADAM_IMPLEMENTATIONS)}."
    )
