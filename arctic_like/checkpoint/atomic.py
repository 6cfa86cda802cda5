"""Durable, atomic file-system primitives used by the checkpoint engines.

A checkpoint is written into a hidden temporary directory, every file and directory in it is fsynced, and
only then is it renamed to its final name; small pointer files are replaced with `os.replace`. A crash at
any point leaves either the old state or the new one, never a half-written checkpoint under a final name.

Temporary files and directories are created private (0600/0700) by `tempfile`, and some writers
(safetensors) do the same; `honour_umask` gives everything the modes a plain `open`/`mkdir` would have
given under the process's umask before it is renamed into place, so a group can read checkpoints on a
shared cluster when the umask allows it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import uuid
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Flush a directory entry (so a rename inside it survives a power loss)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # some file systems do not support fsync on directories
        pass
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """Fsync every file below `root`, then every directory bottom-up."""
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


def current_umask() -> int:
    """The process's umask (read from /proc where possible; setting it to read it is not thread-safe)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            match = re.search(r"^Umask:\s*([0-7]+)", f.read(), re.MULTILINE)
        if match:
            return int(match.group(1), 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def honour_umask(path: Path, umask: int | None = None) -> None:
    """Give `path` (a file, or a directory and everything below it) the modes `open`/`mkdir` give under
    the umask: directories and executables 0777 & ~umask, other files 0666 & ~umask."""
    mask = current_umask() if umask is None else umask
    path = Path(path)
    entries = [path]
    if path.is_dir() and not path.is_symlink():
        for dirpath, dirnames, filenames in os.walk(path):
            entries += [Path(dirpath, name) for name in dirnames + filenames]
    for entry in entries:
        mode = entry.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        full = 0o777 if stat.S_ISDIR(mode) or mode & 0o111 else 0o666
        os.chmod(entry, full & ~mask)


def write_text_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so a reader sees either the old or the new content."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    fsync_dir(path.parent)


def remove_tree(path: Path) -> None:
    """Delete a directory by first renaming it to a hidden temporary name, so a crash mid-delete never
    leaves something that still looks like a complete checkpoint."""
    doomed = path.with_name(f".tmp-delete-{path.name}-{uuid.uuid4().hex[:8]}")
    os.rename(path, doomed)
    fsync_dir(path.parent)
    shutil.rmtree(doomed, ignore_errors=True)
