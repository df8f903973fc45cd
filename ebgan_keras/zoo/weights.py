"""Where an entry's weights come from (its folder, a URL, the caller's files),
every file checked against its sha256 before it is read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ebgan_keras import files
from ebgan_keras.files import file_sha256 as sha256
from ebgan_keras.run import config as schema
from ebgan_keras.utils import prior_latents
from ebgan_keras.zoo.entry_format import CONFIG_FILE
from ebgan_keras.zoo.entry_format import GOLDEN_FILE
from ebgan_keras.zoo.entry_format import GOLDEN_SAMPLES
from ebgan_keras.zoo.entry_format import WEIGHTS_SUFFIX
from ebgan_keras.zoo.entry_format import IntegrityError
from ebgan_keras.zoo.entry_format import WeightsUnavailableError
from ebgan_keras.zoo.entry_format import read_entry_json
from ebgan_keras.zoo.entry_format import weight_file
from ebgan_keras.zoo.entry_format import weights_status


def golden_outputs(model, latents: np.ndarray) -> dict:
    """The golden arrays of a model: images and energies of fixed latents."""
    images = model.generate(latents)
    energies = model.energy(images)
    return {"latents": latents, "images": images, "energies": energies}


def write_networks_and_golden(model, folder, golden_seed: int) -> None:
    """Writes an entry's `{role}.weights.h5` (one per network) and `golden.npz`.

    Args:
        model: the trained model.
        folder: str or path. The entry folder.
        golden_seed: int. Seed of the `GOLDEN_SAMPLES` fixed latents.
    """
    for role, network in model.networks().items():
        files.save_weights(network, os.path.join(folder, weight_file(role)))
    latents = prior_latents(
        model.latent_distribution, GOLDEN_SAMPLES, model.latent_dim, golden_seed
    )
    golden = golden_outputs(model, latents)
    files.atomic_write(
        os.path.join(folder, GOLDEN_FILE), lambda path: np.savez(path, **golden)
    )


def verify_file(path: Path, expected: str | None, entry: str) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"Zoo entry {entry!r}: the file {path.name} is missing "
            f"(expected at {str(path)!r})."
        )
    if expected is None:
        return
    actual = sha256(path)
    if actual != expected:
        raise IntegrityError(
            f"Zoo entry {entry!r}: {path.name} does not match its sha256 (tampered, "
            f"truncated or corrupt); refusing to load it. Expected {expected}, "
            f"received {actual} for {str(path)!r}"
        )


def _cache_root(cache_dir) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return Path(home) / "ebgan_keras" / "zoo"


def _fetch(url: str, expected: str, entry: str, filename: str, cache_dir) -> Path:
    """Downloads `url` into the cache; only a verified file ever enters it."""
    import keras

    folder = _cache_root(cache_dir) / entry
    folder.mkdir(parents=True, exist_ok=True)
    final = folder / filename
    if final.is_file() and sha256(final) == expected:
        return final
    staging = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        try:
            downloaded = keras.utils.get_file(
                filename, origin=url, cache_dir=str(staging), cache_subdir="."
            )
        except Exception as error:  # noqa: BLE001 - any download failure
            raise OSError(
                f"Zoo entry {entry!r}: cannot download {filename} from {url!r}: {error}"
            ) from None
        verify_file(Path(downloaded), expected, entry)
        os.replace(downloaded, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _absent_message(entry: str, metadata: dict, roles: tuple) -> str:
    reason = metadata.get("weights", {}).get("reason", "no weights were published")
    command = metadata.get("recipe_command") or f"ebgan-keras zoo build {entry}"
    if " --out " not in command:
        command += " --out ENTRY_DIR"
    out = command.split(" --out ", 1)[1].split()[0]
    weights = ", ".join(f"{role!r}: PATH_OR_URL" for role in roles)
    hashes = ", ".join(f"{role!r}: HEX" for role in roles)
    return (
        f"Zoo entry {entry!r} exists (its recipe and architecture are declared) "
        f"but has no weights: {reason}. Two ways forward: (1) build it from its "
        f"recipe on a machine with a GPU and the data: `{command}` (its card "
        f"gives the other ways to pass the data), then `ek.zoo.load({out!r})`; "
        "(2) point to "
        f"trained weights: `ek.zoo.load({entry!r}, weights={{{weights}}}, "
        f"sha256={{{hashes}}})`."
    )


def _given_weight_paths(weights, hashes, entry, roles, cache_dir) -> dict:
    """The paths of weights passed to `load` (`weights=`), verified."""
    if not isinstance(weights, dict) or set(weights) != set(roles):
        keys = " and ".join(repr(role) for role in roles)
        raise ValueError(
            f"`weights` must be a dict with the keys {keys} (paths or URLs). "
            f"Received: weights={weights!r}"
        )
    hashes = dict(hashes or {})
    paths = {}
    for part, source in weights.items():
        source = os.fspath(source)
        if "://" in source:
            if not hashes.get(part):
                raise ValueError(
                    f"A weights URL needs its sha256: pass sha256={{{part!r}: "
                    f"HEX, ...}}. Received: sha256={hashes or None!r}"
                )
            paths[part] = _fetch(
                source, hashes[part], entry, weight_file(part), cache_dir
            )
        else:
            paths[part] = Path(source).expanduser()
            verify_file(paths[part], hashes.get(part), entry)
    return paths


def weight_paths(folder, metadata, entry, weights, hashes, cache_dir, roles=None):
    """The verified weight file of each network role of an entry (`roles`;
    by default those of its recipe's class)."""
    if roles is None:
        config = read_entry_json(folder / CONFIG_FILE, CONFIG_FILE)
        roles = schema.network_roles(config.get("class"))
    if weights is not None:
        return _given_weight_paths(weights, hashes, entry, roles, cache_dir)
    files = metadata.get("files", {})
    status = weights_status(metadata)
    if status == "shipped":
        paths = {role: folder / weight_file(role) for role in roles}
        for path in paths.values():
            expected = files.get(path.name)
            if expected is None:
                raise IntegrityError(
                    f"Zoo entry {entry!r}: metadata.json records no sha256 for "
                    f"{path.name}; refusing to load unverified weights."
                )
            verify_file(path, expected, entry)
        return paths
    if status == "url":
        sources = metadata["weights"]
        return {
            role: _fetch(
                sources[role]["url"],
                sources[role]["sha256"],
                entry,
                weight_file(role),
                cache_dir,
            )
            for role in roles
        }
    raise WeightsUnavailableError(_absent_message(entry, metadata, roles))


def verify_listed_files(folder: Path, metadata: dict, entry: str) -> None:
    """Every file that `metadata.json` lists (golden file, card, pictures)
    must be there with its sha256; weights and config are checked where
    they are read."""
    for name, expected in sorted(metadata.get("files", {}).items()):
        if name != CONFIG_FILE and not name.endswith(WEIGHTS_SUFFIX):
            verify_file(folder / name, expected, entry)


def verified_config(folder: Path, metadata: dict, entry: str) -> dict:
    """An entry's `config.json`, checked against its sha256, as read."""
    path = folder / CONFIG_FILE
    verify_file(path, metadata.get("files", {}).get(CONFIG_FILE), entry)
    return read_entry_json(path, CONFIG_FILE)


__all__ = [
    "golden_outputs",
    "verified_config",
    "verify_file",
    "verify_listed_files",
    "weight_paths",
    "write_networks_and_golden",
]
