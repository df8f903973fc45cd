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
import io
import json
import os
import shutil
import socket
import zipfile
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


def write_bytes(path, data: bytes) -> None:
    """Writes bytes to a file atomically (see `atomic_write`).

    Args:
        path: str or path. The file.
        data: bytes. The whole content.
    """

    def write(partial: str) -> None:
        with open(partial, "wb") as handle:
            handle.write(data)

    atomic_write(path, write, expected_bytes=len(data))


def model_bytes(model) -> bytes:
    """A model as the bytes of a `.keras` file, built in memory.

    h5py writing to a disk that fills up can crash the process (it fails in
    its destructors, then segfaults); built in memory, the file reaches the
    disk through one plain `write`, whose `ENOSPC` is an ordinary `OSError`.

    Args:
        model: a `keras.Model`.

    Returns:
        The bytes that `model.save("x.keras")` writes.
    """
    from ebgan_keras.backend.keras_internals import save_model_to_buffer

    buffer = io.BytesIO()
    save_model_to_buffer(model, buffer)
    return buffer.getvalue()


def weights_bytes(model) -> bytes:
    """A model's weights as the bytes of a `.weights.h5` file, built in memory.

    The weights file of a `.keras` archive (`model.weights.h5`, written by the
    same Keras code as `model.save_weights`), taken out of `model_bytes`; see
    there for why in memory.

    Args:
        model: a `keras.Model` (or layer) that `save_weights` accepts.

    Returns:
        The bytes of the weights file, for `model.load_weights`.
    """
    with zipfile.ZipFile(io.BytesIO(model_bytes(model))) as archive:
        return archive.read("model.weights.h5")


def save_model(model, path) -> None:
    """`model.save(path)`, atomic, and a full disk is a clean `RunFolderError`.

    Args:
        model: a `keras.Model`.
        path: str or path. The `.keras` file.
    """
    write_bytes(path, model_bytes(model))


def save_weights(model, path) -> None:
    """`model.save_weights(path)`, atomic; a full disk is a clean `RunFolderError`.

    Args:
        model: a `keras.Model` or layer.
        path: str or path. The `.weights.h5` file.
    """
    write_bytes(path, weights_bytes(model))


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


def finite_json(value):
    """`value` with every NaN or infinite float replaced by `None` (JSON `null`).

    Python's `json` writes them as the bare words `NaN` and `Infinity`, which
    strict JSON readers refuse.

    Args:
        value: a JSON-ready object (numpy scalars allowed).

    Returns:
        A new object, safe for `json.dumps(..., allow_nan=False)`.
    """
    if isinstance(value, (np.floating, np.integer)):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_json(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(item) for item in value]
    return value


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
            path = os.path.join(folder, name)
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.remove(path)
            removed.append(name)
    return removed


def remove_folder(folder) -> None:
    """Deletes a folder in one atomic step: renamed to a temporary name, then
    removed, so a kill never leaves part of it under its own name (the next
    `remove_partials` of its parent removes the rest).

    Args:
        folder: str or path. The folder; nothing happens if it is missing.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return
    parent, name = os.path.split(folder.rstrip(os.sep))
    doomed = os.path.join(parent, f".{name}{PARTIAL_MARKER}-removed")
    shutil.rmtree(doomed, ignore_errors=True)
    os.replace(folder, doomed)
    shutil.rmtree(doomed, ignore_errors=True)


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


def check_run_folder(folder, marker: str) -> None:
    """Refuses a folder that holds files and is not a run folder of ours.

    A run folder of ours holds `marker` (the run's config, written before the
    first step) or nothing but our lock and temporary files. Any other folder
    with content (a copy of a zoo entry, a folder of pictures) would have its
    files overwritten by a run: it is refused before anything is written.

    Args:
        folder: str or path. The run folder (may not exist yet).
        marker: str. The file name that every started run folder holds.

    Raises:
        RunFolderError: naming the folder and some of the files in it.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        return
    names = sorted(
        name
        for name in os.listdir(folder)
        if name != ".lock" and not (name.startswith(".") and PARTIAL_MARKER in name)
    )
    if names and marker not in names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise RunFolderError(
            errno.EEXIST,
            f"{folder!r} holds files ({shown}) and is not a run folder (it has no "
            f"{marker}); a run would overwrite them. Choose a new or empty folder. "
            f"Received: {folder!r}",
        )


def claim_run_folder(folder, marker: str) -> RunFolderLock:
    """Checks, creates and locks a run folder for the one process that writes it.

    `check_run_folder`, then `check_writable`, then an acquired, tidy
    `RunFolderLock`: a run refused before it wrote anything leaves no `.lock`
    behind, nor the folder if this call created it.

    Args:
        folder: str or path. The run folder.
        marker: str. The file name that every started run folder holds.

    Returns:
        The acquired `RunFolderLock`; call `release()` when done.

    Raises:
        RunFolderError: a foreign, unwritable or busy folder.
    """
    check_run_folder(folder, marker)
    created = not os.path.exists(folder)
    check_writable(folder)
    lock = RunFolderLock(folder, tidy=True)
    lock.created = created
    return lock.acquire()


class RunFolderLock:
    """An exclusive lock on a run folder, held by one process at a time.

    An `fcntl.flock` on `FOLDER/.lock` (the operating system releases it
    when the process ends, so a killed run never blocks a rerun); the file
    holds the process id and host of the holder, for the error message of a
    second writer. Where `fcntl` does not exist (Windows), `filelock` is used.

    Args:
        folder: str or path. The run folder (must exist).
        tidy: bool. On release, remove the lock file when it is all that the
            folder holds (a run refused before it wrote anything), so no
            `.lock`-only folder is left behind. Defaults to `False`.

    Example:

    ```python
    with RunFolderLock("runs/a"):
        ...  # train; a second process gets RunFolderError at once
    ```
    """

    def __init__(self, folder, tidy: bool = False) -> None:
        self.folder = os.fspath(folder)
        self.path = os.path.join(self.folder, ".lock")
        self.tidy = tidy
        self.created = False
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
        if self.tidy and self._descriptor is not None:
            try:
                if os.listdir(self.folder) == [".lock"]:
                    os.remove(self.path)  # still ours: we hold the flock
                    if self.created:
                        os.rmdir(self.folder)
            except OSError:
                pass
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
    "check_run_folder",
    "claim_run_folder",
    "check_writable",
    "file_sha256",
    "finite_json",
    "model_bytes",
    "read_json",
    "remove_folder",
    "remove_partials",
    "save_model",
    "save_weights",
    "state_bytes",
    "weights_bytes",
    "write_bytes",
    "write_json",
]
