"""The one atomic writer of the project: a file appears whole or not at all.

Every file the project writes for a user or for resuming (run configs, checkpoints, metrics,
network files, dataset caches, reports) goes through :func:`write_atomic`: the content is written
to a temporary file in the destination's folder, flushed to disk, and renamed over the
destination (``os.replace`` is atomic within one file system). An interruption at any moment
leaves the old file or the new one, and no temporary file behind. :func:`write_folder` does the
same for a folder of files (a report): a reader sees the old folder or the new one, never a mix.

Folders are owned and locked here too. A folder is rc-snn's when it holds the marker file
:data:`MARKER_FILE`, written by :func:`claim_folder` before anything else goes in; commands delete
or replace only folders that hold it (:func:`owned_folder`). :class:`FolderLock` lets one process
at a time write a folder; the lock is an ``fcntl.flock`` on a small file, which the kernel
releases when its process ends, so a killed process never leaves a lock that blocks the next run
(its stale lock file is taken over and removed by the next holder).
(Hand-written rather than the ``filelock`` package because the refusal names the holder: its
process id and command line are written into the lock file.)

This module uses the standard library only, so both sides of the project share it: ``deploy``
(numpy and Lava) and ``rc_snn`` (torch), which may import ``deploy`` but never the reverse.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional, Union

PathLike = Union[str, "os.PathLike[str]"]

#: The ownership marker: a small JSON file ``{"owner": "rc-snn", "kind": ...}`` in every folder rc-snn creates.
MARKER_FILE = ".rc-snn"
#: The lock file of a folder (inside it; beside it for a folder replaced whole, see :func:`lock_path`).
LOCK_FILE = ".rc-snn.lock"
#: Characters a temporary name adds to a file's name (``.NAME.XXXXXXXX.tmp`` or ``.partial``).
_TEMP_NAME_EXTRA = 24


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


def check_output_file(path: PathLike) -> Path:
    """Check, before the work, that ``path`` can be written as a file: its name fits the file
    system with the temporary name's extra characters, it is not a folder, and its folder is
    writable. Raises ValueError or OSError naming the path; returns it."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"expected a file name for the output; {path} is a folder")
    check_name_length(path)
    check_writable(path.parent)
    return path


def check_name_length(path: PathLike) -> None:
    """Refuse a name too long for the file system once the temporary name's characters are added."""
    path = Path(path)
    folder = next((p for p in [path.parent, *path.parent.parents] if p.exists()), Path("."))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    if len(os.fsencode(path.name)) + _TEMP_NAME_EXTRA > limit:
        raise ValueError(f"the name {path.name[:40]}... ({len(path.name)} characters) is too long: names here take at "
                         f"most {limit - _TEMP_NAME_EXTRA} characters (the file system's {limit}, less room for the "
                         "temporary name it is written under)")


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


def check_folder_destination(path: PathLike, *, replaceable: Callable[[Path], bool]) -> Path:
    """Check, before the work, that :func:`write_folder` may put a folder at ``path``: it is not
    the working folder or one above it, an existing one holds only what ``replaceable`` accepts,
    its name fits the file system and its parent is writable. Raises ValueError or OSError."""
    path = Path(path)
    resolved, here = path.resolve(), Path.cwd().resolve()
    if resolved == here or resolved in here.parents:
        raise ValueError(f"{path} is the working folder or holds it; pick a new folder for the output")
    if path.exists() and not (path.is_dir() and replaceable(path)):
        raise ValueError(f"{path} exists and is not a folder this command wrote; pick another folder")
    check_name_length(path)
    check_writable(path.parent)
    return path


def write_folder(path: PathLike, fill: Callable[[Path], Any], *, replaceable: Callable[[Path], bool]) -> Any:
    """Fill a new folder with ``fill(temporary_folder)``, then put it at ``path`` in place of the old.

    The folder is built beside ``path`` under a hidden name and renamed into place: an interruption
    leaves the old folder whole (the next call removes the half-built one). The old folder is moved
    aside and deleted only after the new one is complete, and only if ``replaceable(old)`` says it
    holds nothing but what this kind of folder holds (never a user's other files). The whole is done
    under the folder's lock (:class:`FolderLock`, beside it), so two writers never mix. Returns what
    ``fill`` returned.
    """
    path = Path(path)
    check_folder_destination(path, replaceable=replaceable)
    with FolderLock(path, beside=True):
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


# ------------------------------------------------------------------------------------------------
# Ownership and locks


class FolderInUse(OSError):
    """Another process holds the lock of a folder (the message names it)."""


def owned_folder(path: PathLike, kind: Optional[str] = None) -> bool:
    """True when ``path`` is a folder holding rc-snn's marker (of ``kind``, if given)."""
    marker = Path(path) / MARKER_FILE
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("owner") == "rc-snn" and kind in (None, data.get("kind"))


def claim_folder(path: PathLike, kind: str, *, also_ours: Callable[[Path], bool] = lambda folder: False) -> Path:
    """Make ``path`` an rc-snn folder of ``kind``: create it (or take an empty one) and write the
    marker first. A folder that already holds the marker of this kind, or that ``also_ours`` accepts,
    is taken as it is. Anything else is refused: a folder holding files rc-snn did not write, or
    another kind of rc-snn folder. Raises ValueError naming the folder; returns it."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"expected a folder at {path}; found a file")
    if path.is_dir():
        if owned_folder(path, kind):
            return path
        if owned_folder(path):
            raise ValueError(f"{path} is another kind of rc-snn folder (not a {kind} folder); pick another folder")
        entries = sorted(entry.name for entry in path.iterdir() if entry.name != LOCK_FILE)
        if entries and not also_ours(path):
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise ValueError(f"{path} holds files that rc-snn did not write ({shown}); pick a new or empty folder "
                             f"for the {kind}")
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / MARKER_FILE, {"owner": "rc-snn", "kind": kind})
    return path


def lock_path(folder: PathLike, *, beside: bool = False) -> Path:
    """The lock file of ``folder``: inside it, or (``beside``, for a folder replaced whole) next to it."""
    folder = Path(folder)
    return folder.parent / f".{folder.name}.lock" if beside else folder / LOCK_FILE


class FolderLock:
    """``with FolderLock(folder):`` -- this process alone writes ``folder`` within the block.

    A second process gets :class:`FolderInUse` at once, naming the holder's process id, command and
    start time. The lock is released on leaving the block and by the kernel when the process ends.
    ``beside``: the lock file lives next to the folder (for a folder replaced whole).
    """

    _held: dict = {}  # lock file -> how many blocks of this process hold it (the lock is reentrant)

    def __init__(self, folder: PathLike, *, beside: bool = False) -> None:
        self.folder, self.path, self._stream = Path(folder), lock_path(folder, beside=beside), None

    def __enter__(self) -> "FolderLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = str(self.path.resolve())
        if key in FolderLock._held:  # this process holds it already (an outer block)
            FolderLock._held[key] += 1
            return self
        while True:
            stream = open(self.path, "a+", encoding="utf-8")
            try:
                fcntl.flock(stream.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                stream.seek(0)
                holder = stream.read().strip() or "another process"
                stream.close()
                raise FolderInUse(f"{self.folder} is in use by {holder}; wait for it to finish or pick another "
                                  "folder") from None
            try:  # the holder before us may have removed the file as it let go: lock the file now there
                same = os.stat(self.path).st_ino == os.fstat(stream.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            stream.close()
        stream.seek(0)
        stream.truncate()
        command = " ".join(Path(sys.argv[0]).name if i == 0 else arg for i, arg in enumerate(sys.argv))[:200]
        stream.write(f"process {os.getpid()} ({command}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n")
        stream.flush()
        self._stream = stream
        FolderLock._held[key] = 1
        return self

    def __exit__(self, *exc_info) -> None:
        key = str(self.path.resolve())
        FolderLock._held[key] = FolderLock._held.get(key, 1) - 1
        if FolderLock._held[key] > 0:
            return
        del FolderLock._held[key]
        if self._stream is not None:
            self.path.unlink(missing_ok=True)  # removed while still locked (see __enter__), so no litter is left
            fcntl.flock(self._stream.fileno(), fcntl.LOCK_UN)
            self._stream.close()
            self._stream = None
