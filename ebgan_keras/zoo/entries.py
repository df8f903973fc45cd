"""Finding, describing, verifying and loading zoo entries.

Nothing here imports Keras at module level: listing and describing entries
is file reading, and `ebgan-keras zoo list` starts fast.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np

from ebgan_keras.run import config as schema
from ebgan_keras.run.config import FORMAT_VERSION  # noqa: F401 - its previous home
from ebgan_keras.zoo.entry_format import CARD_FILE
from ebgan_keras.zoo.entry_format import CHAINS_FILE
from ebgan_keras.zoo.entry_format import CONFIG_FILE
from ebgan_keras.zoo.entry_format import CURVES_FILE
from ebgan_keras.zoo.entry_format import DISCRIMINATOR_FILE
from ebgan_keras.zoo.entry_format import ENCODER_FILE
from ebgan_keras.zoo.entry_format import FID_NOISE
from ebgan_keras.zoo.entry_format import GENERATOR_FILE
from ebgan_keras.zoo.entry_format import GOLDEN_ATOL
from ebgan_keras.zoo.entry_format import GOLDEN_FILE
from ebgan_keras.zoo.entry_format import GOLDEN_SAMPLES
from ebgan_keras.zoo.entry_format import GRID_FILE
from ebgan_keras.zoo.entry_format import INTERPOLATION_FILE
from ebgan_keras.zoo.entry_format import METADATA_FILE
from ebgan_keras.zoo.entry_format import NONE_BETTER
from ebgan_keras.zoo.entry_format import RECONSTRUCTIONS_FILE
from ebgan_keras.zoo.entry_format import WEIGHTS_SUFFIX
from ebgan_keras.zoo.entry_format import EntryFormatError
from ebgan_keras.zoo.entry_format import IntegrityError
from ebgan_keras.zoo.entry_format import WeightsUnavailableError
from ebgan_keras.zoo.entry_format import best_sampler
from ebgan_keras.zoo.entry_format import fid_change
from ebgan_keras.zoo.entry_format import read_entry_json
from ebgan_keras.zoo.entry_format import read_metadata
from ebgan_keras.zoo.entry_format import weight_file
from ebgan_keras.zoo.entry_format import weights_status
from ebgan_keras.zoo.weights import verified_config
from ebgan_keras.zoo.weights import verify_file
from ebgan_keras.zoo.weights import verify_listed_files
from ebgan_keras.zoo.weights import weight_paths

#: zoo/stages' name of `weights.weight_paths`.
_weight_paths = weight_paths


# ----------------------------------------------------------------------
# Where entries are
# ----------------------------------------------------------------------
def _shipped_root() -> Path | None:
    """The folder of the shipped entries: installed, or the repo's `zoo/`."""
    package = Path(__file__).resolve().parents[1]
    installed = package / "zoo_entries"  # where the wheel puts `zoo/`
    if installed.is_dir():
        return installed
    repo = package.parent / "zoo"  # a source checkout or an editable install
    return repo if repo.is_dir() else None


def _shipped_names() -> list[str]:
    root = _shipped_root()
    if root is None:
        return []
    return sorted(
        path.name for path in root.iterdir() if (path / CONFIG_FILE).is_file()
    )


def entry_dir(name: str) -> Path:
    """The folder of an entry: a shipped entry's name, or a path to a folder.

    Args:
        name: str. A name from `list_entries()`, or the path of an entry
            folder (one holding `config.json` and `metadata.json`).

    Returns:
        A `pathlib.Path`.

    Example:

    >>> from ebgan_keras import zoo
    >>> zoo.entry_dir("ebgan_pt_mnist").name
    'ebgan_pt_mnist'
    """
    if not isinstance(name, (str, os.PathLike)) or not str(name):
        raise TypeError(
            "`name` must be the name of a zoo entry or the path of an entry "
            f"folder. Received: name={name!r}"
        )
    text = os.fspath(name)
    names = _shipped_names()
    if text in names:
        return _shipped_root() / text
    path = Path(text).expanduser()
    if path.is_dir():
        if not (path / CONFIG_FILE).is_file():
            raise FileNotFoundError(
                f"{str(path)!r} is a folder but not a zoo entry: it has no "
                f"{CONFIG_FILE}. Received: name={text!r}"
            )
        return path
    close = difflib.get_close_matches(text, names, n=3, cutoff=0.5)
    hint = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ValueError(
        f"Unknown zoo entry. {hint}Known entries: {', '.join(names) or '(none)'}; "
        f"a path to an entry folder also works. Received: name={text!r}"
    )


def find_config(name_or_path) -> dict:
    """A run config by built-in name, zoo entry name or JSON file path.

    Args:
        name_or_path: str or path. A built-in config
            (`ek.run.config.builtin_names()`), the name of a zoo entry, or
            the path of a JSON file (a zoo entry's `config.json` or any
            config of the schema).

    Returns:
        The config dict, validated, with defaults filled in.

    Raises:
        ConfigError: none of the three, or a config off the schema.

    Example:

    >>> from ebgan_keras import zoo
    >>> zoo.find_config("ebgan_pt_mnist")["name"]
    'ebgan_pt_mnist'
    """
    text = os.fspath(name_or_path)
    names = schema.builtin_names()
    is_path = os.path.isfile(text) or text.endswith(".json") or os.sep in text
    if text in names or is_path:
        return schema.load_config(text)
    try:
        folder = entry_dir(text)
    except (ValueError, FileNotFoundError, TypeError):
        raise schema.ConfigError(
            f"Unknown config: not a built-in config ({', '.join(names)}), "
            f"a zoo entry (`ebgan-keras zoo list`) or a JSON file. "
            f"Received: {text!r}"
        ) from None
    return schema.validate(
        schema.read_json(folder / CONFIG_FILE, f"{text!r} config"),
        f"zoo entry {text!r}",
    )


# ----------------------------------------------------------------------
# Listing and describing
# ----------------------------------------------------------------------
def list_entries() -> list[dict]:
    """The shipped entries: name, summary, model class, data, weights status.

    Returns:
        A list of dicts with `name`, `summary`, `class`, `image_shape`,
        `weights` (`"shipped"`, `"url"`, `"absent"`, or `"unbuilt"` for a
        recipe not built yet) and `fid` (the best sampler, see
        `best_sampler`: `"prior"` when no sampler beats plain sampling by
        more than `FID_NOISE`, and its FID; or `None`), sorted by name.

    Example:

    >>> from ebgan_keras import zoo
    >>> "ebgan_pt_mnist" in [entry["name"] for entry in zoo.list_entries()]
    True
    """
    entries = []
    for name in _shipped_names():
        folder = _shipped_root() / name
        try:
            if not (folder / METADATA_FILE).is_file():
                # A recipe whose build has not finished: listed, not loadable.
                config = read_entry_json(folder / CONFIG_FILE, CONFIG_FILE)
                metadata = {**config, "weights": {"status": "unbuilt"}}
            else:
                metadata = read_metadata(folder)
            measured = metadata.get("metrics", {})
            best = best_sampler(measured)
        except (OSError, ValueError, KeyError, TypeError) as error:
            # One broken entry does not hide the healthy ones.
            entries.append(
                {
                    "name": name,
                    "summary": "",
                    "class": None,
                    "image_shape": None,
                    "weights": "broken",
                    "error": str(error),
                    "fid": None,
                }
            )
            continue
        entries.append(
            {
                "name": name,
                "summary": metadata.get("summary", ""),
                "class": metadata.get("class"),
                "image_shape": metadata.get("image_shape"),
                "weights": weights_status(metadata),
                "fid": None
                if best is None
                else {"sampler": best, "value": measured[best]["fid"]},
            }
        )
    return entries


def describe(name: str) -> dict:
    """The model card of an entry as a dict.

    Args:
        name: str. Entry name or entry folder.

    Returns:
        The entry's metadata (class, paper, dataset, licence, image shape,
        latent size, parameter counts, sha256 of every file, training
        provenance, recipe command, metrics with protocol per sampler) with
        the recipe under `"recipe"`, the card's text under `"card"` and the
        folder under `"path"`.

    Example:

    >>> from ebgan_keras import zoo
    >>> zoo.describe("began_mnist")["class"]
    'BEGAN'
    """
    folder = entry_dir(name)
    metadata = read_metadata(folder)
    card = folder / CARD_FILE
    return {
        **metadata,
        "recipe": read_entry_json(folder / CONFIG_FILE, CONFIG_FILE),
        "card": card.read_text() if card.is_file() else "",
        "path": str(folder),
    }


# ----------------------------------------------------------------------
# Building and loading
# ----------------------------------------------------------------------
def create_model(name: str, seed: int | None = None):
    """An entry's architecture with fresh (untrained) weights.

    Args:
        name: str. Entry name or entry folder.
        seed: int. Seed of the model's latents. Defaults to the recipe's.

    Returns:
        An uncompiled model of the entry's class.

    Example:

    ```python
    model = ek.zoo.create_model("ebgan_pt_celeba")  # fine-tune or train it
    ```
    """
    from ebgan_keras.run.builder import build_model

    folder = entry_dir(name)
    config = read_entry_json(folder / CONFIG_FILE, CONFIG_FILE)
    return build_model(schema.validate(config, f"zoo entry {folder.name!r}"), seed=seed)


def load_networks(model, paths: dict, entry: str) -> None:
    """Loads verified weight files into the model's networks.

    Args:
        model: the entry's model, built from its recipe.
        paths: dict. Network role (`network_roles`: `"generator"`,
            `"discriminator"`, ...) to its `.weights.h5` path.
        entry: str. The entry's name, for error messages.

    Raises:
        EntryFormatError: a file does not fit the recipe's architecture.
    """
    for part, path in paths.items():
        network = getattr(model, part)
        try:
            network.load_weights(str(path))
        except Exception as error:  # noqa: BLE001 - re-raised with the file named
            raise EntryFormatError(
                f"Zoo entry {entry!r}: cannot load {part} weights from "
                f"{str(path)!r} into the architecture of its recipe (built for "
                f"images {model.image_shape}): {error}"
            ) from None


def load(
    name: str,
    weights: dict | None = None,
    sha256: dict | None = None,
    compile: bool = True,
    cache_dir=None,
):
    """Loads a zoo entry: its model with every network's trained weights.

    Every file read is checked against the sha256 recorded in the entry's
    `metadata.json` first; a file that does not match is refused and named.
    Weights that come from a URL are downloaded with `keras.utils.get_file`
    into a temporary folder and enter the cache only once verified, so a
    failed load never overwrites a good cached file.

    Args:
        name: str. A name from `list_entries()` or the path of an entry
            folder.
        weights: dict. Optional `{role: path_or_url}`, one per network role
            of the model (`{"generator": ..., "discriminator": ...}`; BiGAN's
            `"encoder"` too), to use instead of the entry's own weights
            (e.g. for an entry declared without weights).
        sha256: dict. The sha256 of each of `weights` (required for URLs).
        compile: bool. Compile with the recipe's optimizers, ready for `fit`
            (fine-tuning). Defaults to `True`.
        cache_dir: str. Folder of downloaded weights. Defaults to
            `$KERAS_HOME/ebgan_keras/zoo`.

    Returns:
        The model (an `ek.BaseGAN` subclass), weights loaded.

    Example:

    ```python
    import ebgan_keras as ek

    model = ek.zoo.load("ebgan_pt_mnist")
    images, z = ek.samplers.get("ddls").sample(model, 64)
    ```
    """
    folder = entry_dir(name)
    entry = folder.name
    metadata = read_metadata(folder)
    from ebgan_keras.run.builder import build_model
    from ebgan_keras.run.builder import compile_model

    config = verified_config(folder, metadata, entry)
    roles = schema.network_roles(config.get("class"))
    paths = weight_paths(folder, metadata, entry, weights, sha256, cache_dir, roles)
    verify_listed_files(folder, metadata, entry)
    config = schema.validate(config, f"zoo entry {entry!r}")
    model = build_model(config)
    expected_shape = tuple(metadata.get("image_shape") or config["image_shape"])
    if tuple(model.image_shape) != expected_shape:
        raise EntryFormatError(
            f"Zoo entry {entry!r}: its recipe builds images of shape "
            f"{model.image_shape} but the entry was built for {expected_shape}. "
            f"Received: image_shape={list(expected_shape)} in metadata.json"
        )
    load_networks(model, paths, entry)
    if compile:
        compile_model(model, config)
    # The name of a shipped entry, or the folder it was loaded from: what
    # `describe` takes back (the CLI reads the card's settings through it).
    model.zoo_entry = entry if str(name) == entry else str(folder)
    return model


def check_golden(model, name: str) -> dict:
    """Checks that `model` reproduces the entry's golden outputs.

    Args:
        model: the loaded model.
        name: str. Entry name or entry folder.

    Returns:
        A dict with the largest absolute image difference and the largest
        relative energy difference.

    Example:

    ```python
    ek.zoo.check_golden(ek.zoo.load("ebgan_pt_mnist"), "ebgan_pt_mnist")
    ```
    """
    folder = entry_dir(name)
    metadata = read_metadata(folder)
    path = folder / GOLDEN_FILE
    verify_file(path, metadata.get("files", {}).get(GOLDEN_FILE), folder.name)
    with np.load(path) as golden:
        latents, images, energies = (
            golden["latents"],
            golden["images"],
            golden["energies"],
        )
    got_images = model.generate(latents)
    got_energies = model.energy(got_images)
    tolerance = metadata.get("golden_tolerance", GOLDEN_ATOL)
    image_error = float(np.max(np.abs(got_images - images)))
    energy_error = float(
        np.max(np.abs(got_energies - energies) / np.maximum(np.abs(energies), 1e-6))
    )
    if image_error > tolerance["images"] or energy_error > tolerance["energies_rtol"]:
        raise IntegrityError(
            f"Zoo entry {folder.name!r}: the loaded model does not reproduce its "
            f"golden outputs (largest image difference {image_error:.3g}, "
            f"tolerance {tolerance['images']}; largest relative energy "
            f"difference {energy_error:.3g}, tolerance "
            f"{tolerance['energies_rtol']})."
        )
    return {"image_error": image_error, "energy_rtol": energy_error}


__all__ = [
    # An entry's format (`entry_format`), kept here.
    "CARD_FILE",
    "CHAINS_FILE",
    "CONFIG_FILE",
    "CURVES_FILE",
    "DISCRIMINATOR_FILE",
    "ENCODER_FILE",
    "FID_NOISE",
    "GENERATOR_FILE",
    "GOLDEN_ATOL",
    "GOLDEN_FILE",
    "GOLDEN_SAMPLES",
    "GRID_FILE",
    "INTERPOLATION_FILE",
    "METADATA_FILE",
    "NONE_BETTER",
    "RECONSTRUCTIONS_FILE",
    "WEIGHTS_SUFFIX",
    "EntryFormatError",
    "IntegrityError",
    "WeightsUnavailableError",
    "best_sampler",
    "fid_change",
    "weight_file",
    # The entries' own.
    "check_golden",
    "create_model",
    "describe",
    "entry_dir",
    "find_config",
    "list_entries",
    "load",
    "load_networks",
]
