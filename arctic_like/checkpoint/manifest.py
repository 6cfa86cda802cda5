"""The manifest that marks a checkpoint complete and lets a later run check it before loading anything.

`manifest.json` is the last file written into a checkpoint. It records the format version, the arctic_like
version, the engine, the model class and parameter shapes, the step, a checksum of every file, and
`"complete": true`. A directory without a readable complete manifest is not a checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from arctic_like.checkpoint.errors import CheckpointError, CorruptCheckpointError

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"


def arctic_like_version() -> str:
    """The installed arctic_like version (read lazily so this module does not import the package root)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("arctic-like")
    except PackageNotFoundError:
        return "unknown"


def parameter_shapes(model: torch.nn.Module) -> dict[str, list[int]]:
    """Name → shape of every parameter (tied ones under each name; the full shape of ZeRO-3 partitioned
    ones), sorted by name."""
    named = model.named_parameters(remove_duplicate=False)
    return {k: list(getattr(p, "ds_shape", p.shape)) for k, p in sorted(named, key=lambda kv: kv[0])}


def shapes_hash(shapes: dict[str, list[int]]) -> str:
    """A short, order-independent fingerprint of a model's parameter names and shapes."""
    blob = json.dumps(sorted(shapes.items()), separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()


def file_sha256(path: Path) -> str:
    """Checksum of one file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_files(root: Path) -> dict[str, dict[str, Any]]:
    """Relative path → {size, sha256} for every file below `root` except the manifest itself."""
    out: dict[str, dict[str, Any]] = {}
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            p = Path(dirpath) / name
            rel = p.relative_to(root).as_posix()
            if rel == MANIFEST_NAME:
                continue
            out[rel] = {"size": p.stat().st_size, "sha256": file_sha256(p)}
    return dict(sorted(out.items()))


def build_manifest(root: Path, *, engine: str, step: int, model: torch.nn.Module | None) -> dict[str, Any]:
    """The manifest for the files now in `root` (call it after every other file is written)."""
    shapes = parameter_shapes(model) if model is not None else {}
    return {
        "format_version": FORMAT_VERSION,
        "arctic_like_version": arctic_like_version(),
        "engine": engine,
        "step": step,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}" if model is not None else None,
        "parameter_shapes_sha256": shapes_hash(shapes),
        "parameter_shapes": shapes,
        "files": list_files(root),
        "complete": True,
    }


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest of checkpoint `path`, or None if the directory has no complete manifest."""
    try:
        data = json.loads((path / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("complete") is not True:
        return None
    return data


def check_exists(path: Path) -> None:
    """Raise `CheckpointError` unless `path` is a directory (the first, cheap check of `verify`)."""
    if not path.is_dir():
        raise CheckpointError(
            f"checkpoint {path} does not exist or is not a directory. "
            "Fix: point to a checkpoint-<step> directory written by arctic_like, or remove the setting."
        )


def verify(path: Path, *, engine: str, model: torch.nn.Module | None) -> dict[str, Any]:
    """Check checkpoint `path` before loading it: complete, right format version and engine, files intact,
    same parameter shapes as `model`. Returns the manifest; raises `CheckpointError` otherwise."""
    check_exists(path)
    mpath = path / MANIFEST_NAME
    if not mpath.is_file():
        raise CorruptCheckpointError(
            f"checkpoint {path} is incomplete or corrupted: it has no {MANIFEST_NAME} (the file written "
            "last, so the save was interrupted or this is not an arctic_like checkpoint). "
            "Fix: resume from an earlier complete checkpoint, or delete this directory."
        )
    try:
        data = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CorruptCheckpointError(
            f"checkpoint {path} is corrupted: {MANIFEST_NAME} is not valid JSON ({e}). "
            "Fix: resume from an earlier complete checkpoint, or delete this directory."
        ) from None
    if not isinstance(data, dict) or data.get("complete") is not True:
        raise CorruptCheckpointError(
            f"checkpoint {path} is incomplete or corrupted: {MANIFEST_NAME} is not marked complete. "
            "Fix: resume from an earlier complete checkpoint, or delete this directory."
        )
    version = data.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has incompatible format version {version!r} (written by arctic_like "
            f"{data.get('arctic_like_version', 'unknown')}); this arctic_like ({arctic_like_version()}) "
            f"reads format version {FORMAT_VERSION}. Fix: load it with the arctic_like version that "
            "wrote it, or start from a fresh output_dir."
        )
    if data.get("engine") != engine:
        raise CheckpointError(
            f"checkpoint {path} was written by the {data.get('engine')!r} checkpoint engine, not {engine!r}. "
            f"Fix: load it with `type: {data.get('engine')}` in the recipe's checkpoint section."
        )
    for rel, info in (data.get("files") or {}).items():
        f = path / rel
        if not f.is_file():
            raise CorruptCheckpointError(
                f"checkpoint {path} is corrupted: file {rel} listed in {MANIFEST_NAME} is missing. "
                "Fix: resume from an earlier complete checkpoint, or delete this directory."
            )
        try:
            intact = f.stat().st_size == info.get("size") and file_sha256(f) == info.get("sha256")
        except OSError as e:
            raise CorruptCheckpointError(
                f"checkpoint {path}: file {rel} cannot be read ({e.strerror or e}). "
                "Fix: check the file's permissions, or resume from an earlier checkpoint."
            ) from None
        if not intact:
            raise CorruptCheckpointError(
                f"checkpoint {path} is corrupted: file {rel} does not match its checksum in {MANIFEST_NAME}. "
                "Fix: resume from an earlier complete checkpoint, or delete this directory."
            )
    if model is not None:
        check_shapes(path, data, model)
    return data


def check_shapes(path: Path, manifest: dict[str, Any], model: torch.nn.Module) -> None:
    """Raise `CheckpointError` naming the differing tensors if `model` is not shaped like the checkpoint."""
    current = parameter_shapes(model)
    if shapes_hash(current) == manifest.get("parameter_shapes_sha256"):
        return
    saved: dict[str, list[int]] = manifest.get("parameter_shapes") or {}
    diffs = [
        f"{k}: saved {saved[k]}, current {current[k]}"
        for k in saved
        if k in current and saved[k] != current[k]
    ]
    diffs += [f"{k}: only in the checkpoint" for k in saved if k not in current]
    diffs += [f"{k}: only in the current model" for k in current if k not in saved]
    shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
    raise CheckpointError(
        f"checkpoint {path} is from another model shape ({manifest.get('model_class')}): {shown}. "
        "Fix: use the model settings of the run that wrote it, or a fresh output_dir for this model."
    )
