"""The one atomic writer of the project: a file appears whole or not at all.

Every file the project writes for a user or for resuming (run configs, checkpoints, metrics,
network files, dataset caches, reports) goes through :func:`write_atomic`: the content is written
to a temporary file in the destination's folder, flushed to disk, and renamed over the
destination (``os.replace`` is atomic within one file system). An interruption at any moment
leaves the old file or the new one, and no temporary file behind.

This module uses the standard library only, so both sides of the project share it: ``deploy``
(numpy and Lava) and ``rc_snn`` (torch), which may import ``deploy`` but never the reverse.
"""

from __future__ import annotations

import json
import os
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
