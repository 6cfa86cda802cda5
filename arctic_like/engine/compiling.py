"""``compile:``: ``torch.compile`` of the model for training, in place.

The model is compiled with ``nn.Module.compile`` rather than wrapped in ``torch.compile(model)``: it stays
the same object, so callbacks, checkpoints and the HF export see it unchanged (its ``state_dict`` keys get
no ``_orig_mod.`` prefix), and every engine (DDP, DeepSpeed) calls the compiled forward through the model
it already holds. HF causal LMs compute their loss inside ``forward``, so the loss is compiled with the
model; the trainer's ``loss`` event and its callbacks stay in Python, around the compiled call, so a callback
that rewrites the batch or the loss still takes effect. Evaluation and generation run the same model
eagerly (``eager()``): no recompilation for ``no_grad``, eval mode or every generated length.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

import torch

from arctic_like.config import RecipeError

__all__ = ["check_compile", "compile_errors", "compile_model", "eager", "explain_compile_error"]


def _options(setting: Any) -> dict[str, Any]:
    options = {"backend": setting.backend, "fullgraph": setting.fullgraph, "dynamic": setting.dynamic}
    if setting.mode not in (None, "default"):
        options["mode"] = setting.mode
    return options


def _cpp_compiler() -> str | None:
    """The C++ compiler inductor would use on CPU: ``$CXX``, else g++ or clang++ on the PATH."""
    candidates = [os.environ["CXX"]] if os.environ.get("CXX") else ["g++", "clang++", "c++"]
    for name in candidates:
        found = shutil.which(name)
        if found:
            return found
    return None


def check_compile(setting: Any, device_type: str) -> None:
    """Refuse a ``compile:`` setting that cannot work here, before anything is built."""
    if setting is None:
        return
    if not hasattr(torch.compiler, "set_stance"):
        raise RecipeError(
            f"compile: needs torch 2.6 or later (installed: {torch.__version__}). "
            "Fix: upgrade torch, or set compile: false.",
            path="compile",
        )
    from torch._dynamo import list_backends

    backends = list_backends(exclude_tags=())
    if setting.backend not in backends:
        raise RecipeError(
            f"compile.backend: {setting.backend!r} is not a torch.compile backend; available: "
            f"{', '.join(sorted(backends))}. Fix: use one of them (inductor is the default).",
            path="compile.backend",
        )
    if setting.backend == "inductor" and device_type == "cpu" and _cpp_compiler() is None:
        raise RecipeError(
            "compile: the inductor backend compiles C++ on CPU, and no C++ compiler was found ($CXX, g++, "
            "clang++). Fix: install g++, set compile: {backend: aot_eager} (no code generation), or set "
            "compile: false.",
            path="compile",
        )


def compile_model(model: torch.nn.Module, setting: Any) -> None:
    """Compile ``model``'s forward in place with the ``compile:`` setting (nothing when it is None)."""
    if setting is not None:
        model.compile(**_options(setting))


def compile_errors(setting: Any) -> tuple[type[BaseException], ...]:
    """The exceptions by which ``torch.compile`` says it cannot compile (none without ``compile:``)."""
    if setting is None:
        return ()
    from torch._dynamo.exc import TorchDynamoException

    return (TorchDynamoException,)


def explain_compile_error(model: torch.nn.Module, setting: Any, error: BaseException) -> RecipeError:
    """The ``RecipeError`` for a model that ``torch.compile`` could not compile: which model, why, the fix."""
    detail = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
    options = ", ".join(f"{k}: {v}" for k, v in _options(setting).items())
    return RecipeError(
        f"compile: torch.compile could not compile {type(model).__name__} ({options}): "
        f"{type(error).__name__}: {detail}. Fix: set compile: false to train it eagerly"
        + (", or fullgraph: false to allow graph breaks" if setting.fullgraph else "")
        + " (--traceback shows where it failed).",
        path="compile",
    )


@contextlib.contextmanager
def eager(setting: Any) -> Iterator[None]:
    """Run a compiled model eagerly inside (evaluation, generation); nothing without ``compile:``."""
    if setting is None:
        yield
        return
    with torch.compiler.set_stance("force_eager"):
        yield
