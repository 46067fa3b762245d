"""The one atomic writer of the project: a file appears whole or not at all.

Every file the project writes for a user or for resuming (run configs, checkpoints, metrics,
network files, dataset caches, reports) goes through :func:`write_atomic`: the content is written
to a temporary file in the destination's folder, flushed to disk, and renamed over the
destination (``os.replace`` is atomic within one file system). An interruption at any moment
leaves the old file or the new one, and no temporary file behind. :func:`write_folder` does the
same for a folder of files (a report): a reader sees the old folder or the new one, never a mix.

This module uses the standard library only, so both sides of the project share it: ``deploy``
(numpy and Lava) and ``rc_snn`` (torch), which may import ``deploy`` but never the reverse.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Union

PathLike = Union[str, "os.PathLike[str]"]


def write_atomic(path: PathLike, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``; returns ``path``.

    ``write`` receives the path of an empty temporary file in ``path``'s folder (created first
    if missing) and fills it by any means (``torch.save``, ``np.savez``, ``figure.savefig``). On
    any exception, ``KeyboardInterrupt`` included, the temporary file is removed and the
    exception propagates; ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temp = Path(temp_name)
    try:
        write(temp)
        with open(temp, "rb+") as stream:  # the bytes reach the disk before the name does
            os.fsync(stream.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def write_text(path: PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return write_atomic(path, lambda temp: temp.write_text(text, encoding="utf-8"))


def write_json(path: PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON atomically."""
    return write_text(path, json.dumps(data, indent=2) + "\n")


def check_writable(folder: PathLike) -> Path:
    """Create ``folder`` if needed and prove a file can be written there; raises OSError if not.

    For work that ends in a write: check first, so minutes of computation are not lost to a
    read-only or missing destination.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(f"expected a folder at {folder}; found a file")
    folder.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
    os.close(handle)
    os.unlink(temp_name)
    return folder


def write_folder(path: PathLike, fill: Callable[[Path], Any], *, replaceable: Callable[[Path], bool]) -> Any:
    """Fill a new folder with ``fill(temporary_folder)``, then put it at ``path`` in place of the old.

    The folder is built beside ``path`` under a hidden name and renamed into place: an interruption
    leaves the old folder whole (the next call removes the half-built one). The old folder is moved
    aside and deleted only after the new one is complete, and only if ``replaceable(old)`` says it
    holds nothing but what this kind of folder holds (never a user's other files). Returns what
    ``fill`` returned.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and not (path.is_dir() and replaceable(path)):
        raise FileExistsError(f"{path} exists and is not a folder this command wrote; pick another folder")
    for stale in path.parent.glob(f".{path.name}.*.partial"):  # left by an interrupted call
        shutil.rmtree(stale, ignore_errors=True)
    temp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
    try:
        result = fill(temp)
        if path.exists():
            old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial"))
            os.replace(path, old / path.name)
            os.replace(temp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temp, path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return result
