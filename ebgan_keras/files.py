"""Files that survive kills and full disks: atomic writes, sha256, run-folder locks.

Every file the library writes for a run (checkpoints, `model.keras`, JSON
logs, zoo entry files) goes through `atomic_write`: the content is written to
a temporary name in the same folder, flushed and fsynced, then renamed over
the target (atomic on POSIX and Windows). A kill or a full disk during the
write leaves the previous file as it was and, at worst, a temporary file that
the next run removes. Before a large write, the free space is compared with
the size of the file it replaces, so a full disk is reported before h5py
starts writing (h5py can crash the process on `ENOSPC`).
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import socket
from collections.abc import Callable

import numpy as np

#: Temporary files carry this marker; `remove_partials` deletes leftovers.
PARTIAL_MARKER = ".partial"


class RunFolderError(OSError):
    """A run folder that cannot be used: unwritable, full, or locked."""


def file_sha256(path, algorithm: str = "sha256") -> str:
    """The hex sha256 of a file, read in 1 MiB blocks: the library's one file hash.

    Args:
        path: str or path. The file.
        algorithm: str. A `hashlib` algorithm, for a file published with
            another hash (Keras' Inception weights: `"md5"`). Defaults to
            `"sha256"`.

    Returns:
        The hex digest (64 hex digits for sha256).
    """
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def partial_path(path) -> str:
    """The temporary name of `path`: same folder and suffixes, so that writers
    which insist on a suffix (`.weights.h5`, `.keras`) accept it."""
    folder, name = os.path.split(os.fspath(path))
    stem, dot, suffixes = name.partition(".")
    return os.path.join(folder, f".{stem}{PARTIAL_MARKER}{dot}{suffixes}")


def _fsync_path(path: str, directory: bool = False) -> None:
    flags = os.O_RDONLY
    try:
        descriptor = os.open(path, flags)
    except OSError:
        if directory:  # some platforms cannot open folders
            return
        raise
    try:
        os.fsync(descriptor)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(descriptor)


def check_free_space(path, needed_bytes: int) -> None:
    """Raises `RunFolderError(ENOSPC)` if the disk of `path` has too little room.

    Args:
        path: str. A file or folder on the disk to check (its folder is used
            if it does not exist).
        needed_bytes: int. The bytes about to be written.
    """
    folder = os.fspath(path)
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    free = shutil.disk_usage(folder or ".").free
    if free < needed_bytes:
        raise RunFolderError(
            errno.ENOSPC,
            f"not enough free disk space to write {os.fspath(path)!r}: "
            f"{needed_bytes / 1e6:.1f} MB needed, {free / 1e6:.1f} MB free "
            "(nothing was overwritten; free some space and rerun)",
        )


def state_bytes(model) -> int:
    """Bytes of a model's variables and its optimizer's: a checkpoint's size.

    Args:
        model: a `keras.Model` (compiled or not).

    Returns:
        The sum of the sizes of all variables, in bytes.
    """
    variables = list(model.variables)
    if getattr(model, "optimizer", None) is not None:
        variables += list(model.optimizer.variables)
    return int(
        sum(
            np.prod(variable.shape, dtype=np.int64)
            * np.dtype(str(variable.dtype)).itemsize
            for variable in variables
        )
    )


def atomic_write(path, write: Callable[[str], None], expected_bytes: int = 0) -> None:
    """Writes a file atomically: `write(temporary_path)`, fsync, rename.

    Args:
        path: str or path. The file to (over)write.
        write: callable. Writes the whole content to the path it is given.
        expected_bytes: int. Approximate size of the content; checked against
            the free space first, together with the size of the file being
            replaced. Defaults to `0`.

    Raises:
        RunFolderError: the folder is unwritable or the disk is full. The
            previous file is left as it was and the temporary file removed.
    """
    path = os.fspath(path)
    partial = partial_path(path)
    previous = os.path.getsize(path) if os.path.isfile(path) else 0
    needed = int(1.05 * max(expected_bytes, previous)) + (1 << 20)
    try:
        check_free_space(path, needed)
        write(partial)
        _fsync_path(partial)
        os.replace(partial, path)
        _fsync_path(os.path.dirname(path) or ".", directory=True)
    except OSError as error:
        try:
            os.remove(partial)
        except OSError:
            pass
        if isinstance(error, RunFolderError):
            raise
        raise RunFolderError(
            error.errno, f"cannot write {path!r}: {error.strerror or error}"
        ) from None


def write_json(path, value) -> None:
    """Writes a JSON file atomically (numpy scalars and arrays allowed).

    Args:
        path: str or path. The file.
        value: a JSON-ready object.
    """

    def write(partial: str) -> None:
        with open(partial, "w") as handle:
            json.dump(value, handle, indent=1, default=_json_default)
            handle.write("\n")

    atomic_write(path, write)


def read_json(path, default=None):
    """Reads a JSON file, or returns `default` when it does not exist.

    Args:
        path: str or path. The file.
        default: what to return for a missing file. Defaults to `None`.

    Returns:
        The decoded value.
    """
    if not os.path.isfile(path):
        return default
    with open(path) as handle:
        return json.load(handle)


def _json_default(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def remove_partials(folder) -> list[str]:
    """Deletes the temporary files that a killed write left in `folder`.

    Args:
        folder: str or path.

    Returns:
        The names removed.
    """
    removed = []
    if not os.path.isdir(folder):
        return removed
    for name in os.listdir(folder):
        if name.startswith(".") and PARTIAL_MARKER in name:
            os.remove(os.path.join(folder, name))
            removed.append(name)
    return removed


def check_writable(folder) -> None:
    """Creates `folder` if needed and checks that a file can be written there.

    Args:
        folder: str or path.

    Raises:
        RunFolderError: naming the folder and the operating system's error.
    """
    folder = os.fspath(folder)
    probe = os.path.join(folder, f".write-check{PARTIAL_MARKER}")
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, "w") as handle:
            handle.write("ok")
        os.remove(probe)
    except OSError as error:
        raise RunFolderError(
            error.errno,
            f"cannot write to {folder!r}: {error.strerror or error}",
        ) from None


class RunFolderLock:
    """An exclusive lock on a run folder, held by one process at a time.

    An `fcntl.flock` on `FOLDER/.lock` (the operating system releases it
    when the process ends, so a killed run never blocks a rerun); the file
    holds the process id and host of the holder, for the error message of a
    second writer. Where `fcntl` does not exist (Windows), `filelock` is used.

    Args:
        folder: str or path. The run folder (must exist).

    Example:

    ```python
    with RunFolderLock("runs/a"):
        ...  # train; a second process gets RunFolderError at once
    ```
    """

    def __init__(self, folder) -> None:
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, ".lock")
        self._descriptor = None
        self._fallback = None

    def acquire(self) -> RunFolderLock:
        """Takes the lock or raises `RunFolderError` naming the holder."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            import filelock

            self._fallback = filelock.FileLock(self.path)
            try:
                self._fallback.acquire(timeout=0)
            except filelock.Timeout:
                raise self._busy("another process") from None
            return self
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(descriptor, 200).decode(errors="replace").strip()
            os.close(descriptor)
            raise self._busy(holder or "another process") from None
        os.ftruncate(descriptor, 0)
        os.write(
            descriptor, f"process {os.getpid()} on {socket.gethostname()}".encode()
        )
        self._descriptor = descriptor
        return self

    def _busy(self, holder: str) -> RunFolderError:
        return RunFolderError(
            errno.EBUSY,
            f"the run folder {self.folder!r} is in use by {holder}; wait for "
            "that run to end or choose another folder",
        )

    def release(self) -> None:
        """Releases the lock (also released when the process ends)."""
        if self._descriptor is not None:
            os.close(self._descriptor)  # closing drops the flock
            self._descriptor = None
        if self._fallback is not None:  # pragma: no cover - Windows
            self._fallback.release()
            self._fallback = None

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(self, *exc_info) -> None:
        self.release()


__all__ = [
    "RunFolderError",
    "RunFolderLock",
    "atomic_write",
    "check_free_space",
    "check_writable",
    "file_sha256",
    "read_json",
    "remove_partials",
    "state_bytes",
    "write_json",
]
