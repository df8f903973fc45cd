"""Finding, describing, verifying and loading zoo entries.

Nothing here imports Keras at module level: listing and describing entries
is file reading, and `ebgan-keras zoo list` starts fast.
"""

from __future__ import annotations

import difflib
import json
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from ebgan_keras.files import file_sha256 as sha256
from ebgan_keras.run import config as schema
from ebgan_keras.run.config import FORMAT_VERSION

#: Fixed file names of an entry folder.
CONFIG_FILE = "config.json"
METADATA_FILE = "metadata.json"
#: A network's weights in an entry: `{role}.weights.h5` (see `weight_file`).
WEIGHTS_SUFFIX = ".weights.h5"
GENERATOR_FILE = "generator" + WEIGHTS_SUFFIX
DISCRIMINATOR_FILE = "discriminator" + WEIGHTS_SUFFIX
GOLDEN_FILE = "golden.npz"
CARD_FILE = "README.md"
GRID_FILE = "samples.png"
CURVES_FILE = "curves.png"
INTERPOLATION_FILE = "interpolation.png"
CHAINS_FILE = "ddls_chains.gif"
RECONSTRUCTIONS_FILE = "reconstructions.png"
#: The file of BiGAN's encoder (`weight_file("encoder")`), for file lists.
ENCODER_FILE = "encoder" + WEIGHTS_SUFFIX
#: Golden outputs must be reproduced within these tolerances on every backend.
GOLDEN_ATOL = {"images": 1e-3, "energies_rtol": 1e-3}
GOLDEN_SAMPLES = 8
#: Relative FID change below which a sampler's effect is noise (a card calls
#: it "no measurable change", and no sampler within it is named the best).
FID_NOISE = 0.01
#: The best-sampler cell of an entry where no sampler beats plain sampling.
NONE_BETTER = "none better than prior"


class IntegrityError(ValueError):
    """A zoo file does not match its sha256 (tampered, truncated or corrupt)."""


class EntryFormatError(ValueError):
    """An entry folder that this version cannot read (newer format, bad shape)."""


class WeightsUnavailableError(FileNotFoundError):
    """A declared entry whose weights are neither shipped nor downloadable."""


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


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"The zoo entry lacks {what}: {str(path)!r}")
    try:
        with open(path) as handle:
            value = json.load(handle)
    except ValueError as error:
        raise EntryFormatError(f"{str(path)!r} is not valid JSON: {error}") from None
    if not isinstance(value, dict):
        raise EntryFormatError(f"{str(path)!r} must hold a JSON object.")
    version = value.get("format_version")
    if not isinstance(version, int) or version < 1:
        raise EntryFormatError(
            f"{str(path)!r} has no valid `format_version`. Received: "
            f"format_version={version!r}"
        )
    if version > FORMAT_VERSION:
        raise EntryFormatError(
            f"{str(path)!r} has format_version {version}, newer than this "
            f"ebgan-keras reads ({FORMAT_VERSION}): upgrade ebgan-keras to load it. "
            f"Received: format_version={version}"
        )
    return value


def _metadata(folder: Path) -> dict:
    return _read_json(folder / METADATA_FILE, METADATA_FILE)


def weight_file(role: str) -> str:
    """The file name of a network's weights in an entry folder.

    Args:
        role: str. A network role of the model (`network_roles`).

    Returns:
        str. `"{role}.weights.h5"`.

    Example:

    >>> weight_file("encoder")
    'encoder.weights.h5'
    """
    return role + WEIGHTS_SUFFIX


def _weights_status(metadata: dict) -> str:
    return metadata.get("weights", {}).get("status", "absent")


# ----------------------------------------------------------------------
# Listing and describing
# ----------------------------------------------------------------------
def fid_change(fid: float, prior: float) -> float:
    """The relative change of a sampler's FID against plain sampling's.

    Args:
        fid: float. The sampler's FID.
        prior: float. Plain sampling's FID (the `"prior"` sampler), `> 0`.

    Returns:
        float. `(fid - prior) / prior`: negative when the sampler helps.

    Example:

    >>> fid_change(9.0, 10.0)
    -0.1
    """
    return (float(fid) - float(prior)) / float(prior)


def best_sampler(metrics: dict) -> str | None:
    """The sampler an entry's card names the best, within the noise band.

    A sampler is named only when its FID beats plain sampling's (`"prior"`)
    by more than `FID_NOISE` (relative); of those, the lowest FID wins.
    Otherwise plain sampling is the best: a lower FID within the noise band
    is no measurable change.

    Args:
        metrics: dict. Sampler name to a dict with `"fid"` (an entry's
            `metadata["metrics"]`).

    Returns:
        str or None. The sampler's name; `"prior"` when none beats plain
        sampling by more than the noise; the lowest FID when plain sampling
        was not measured; `None` when nothing was.

    Example:

    >>> best_sampler({"prior": {"fid": 10.0}, "ddls": {"fid": 9.95}})
    'prior'
    >>> best_sampler({"prior": {"fid": 10.0}, "ddls": {"fid": 9.0}})
    'ddls'
    """
    if not metrics:
        return None
    if "prior" not in metrics:
        return min(metrics, key=lambda name: metrics[name]["fid"])
    prior = metrics["prior"]["fid"]
    better = [
        name
        for name, result in metrics.items()
        if name != "prior" and fid_change(result["fid"], prior) < -FID_NOISE
    ]
    return min(better, key=lambda name: metrics[name]["fid"], default="prior")


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
                config = _read_json(folder / CONFIG_FILE, CONFIG_FILE)
                metadata = {**config, "weights": {"status": "unbuilt"}}
            else:
                metadata = _metadata(folder)
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
                "weights": _weights_status(metadata),
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
    metadata = _metadata(folder)
    card = folder / CARD_FILE
    return {
        **metadata,
        "recipe": _read_json(folder / CONFIG_FILE, CONFIG_FILE),
        "card": card.read_text() if card.is_file() else "",
        "path": str(folder),
    }


# ----------------------------------------------------------------------
# Integrity
# ----------------------------------------------------------------------
def _verify(path: Path, expected: str | None, entry: str) -> None:
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
        _verify(Path(downloaded), expected, entry)
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
            _verify(paths[part], hashes.get(part), entry)
    return paths


def _weight_paths(folder, metadata, entry, weights, hashes, cache_dir, roles=None):
    """The verified weight file of each network role of an entry (`roles`;
    by default those of its recipe's class)."""
    if roles is None:
        config = _read_json(folder / CONFIG_FILE, CONFIG_FILE)
        roles = schema.network_roles(config.get("class"))
    if weights is not None:
        return _given_weight_paths(weights, hashes, entry, roles, cache_dir)
    files = metadata.get("files", {})
    status = _weights_status(metadata)
    if status == "shipped":
        paths = {role: folder / weight_file(role) for role in roles}
        for path in paths.values():
            expected = files.get(path.name)
            if expected is None:
                raise IntegrityError(
                    f"Zoo entry {entry!r}: metadata.json records no sha256 for "
                    f"{path.name}; refusing to load unverified weights."
                )
            _verify(path, expected, entry)
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


# ----------------------------------------------------------------------
# Building and loading
# ----------------------------------------------------------------------
def _verify_listed_files(folder: Path, metadata: dict, entry: str) -> None:
    """Every file that `metadata.json` lists (golden file, card, pictures)
    must be there with its sha256; weights and config are checked where
    they are read."""
    for name, expected in sorted(metadata.get("files", {}).items()):
        if name != CONFIG_FILE and not name.endswith(WEIGHTS_SUFFIX):
            _verify(folder / name, expected, entry)


def _config(folder: Path, metadata: dict, entry: str) -> dict:
    path = folder / CONFIG_FILE
    _verify(path, metadata.get("files", {}).get(CONFIG_FILE), entry)
    return _read_json(path, CONFIG_FILE)


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
    config = _read_json(folder / CONFIG_FILE, CONFIG_FILE)
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
    metadata = _metadata(folder)
    from ebgan_keras.run.builder import build_model
    from ebgan_keras.run.builder import compile_model

    config = _config(folder, metadata, entry)
    roles = schema.network_roles(config.get("class"))
    paths = _weight_paths(folder, metadata, entry, weights, sha256, cache_dir, roles)
    _verify_listed_files(folder, metadata, entry)
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
    metadata = _metadata(folder)
    path = folder / GOLDEN_FILE
    _verify(path, metadata.get("files", {}).get(GOLDEN_FILE), folder.name)
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


def baseline_of(name: str) -> str | None:
    """The like-for-like `GAN` baseline of a shipped entry, if the zoo has one.

    The baseline is the shipped `GAN` entry trained on the same data with the
    same generator (builder and arguments), the same batch size and the same
    number of steps; its discriminator is the entry's trunk with a logit
    head (see its card).

    Args:
        name: str. A shipped entry's name.

    Returns:
        str or None. The baseline's name; None for a `GAN` entry itself or
        when the zoo has none.

    Example:

    >>> from ebgan_keras import zoo
    >>> zoo.baseline_of("ebgan_mnist")
    'gan_mnist'
    """
    configs = {
        entry: _read_json(_shipped_root() / entry / CONFIG_FILE, CONFIG_FILE)
        for entry in _shipped_names()
    }
    config = configs[name]
    if config.get("class") == "GAN":
        return None

    def signature(c: dict) -> tuple:
        training = c.get("training", {})
        return (
            training.get("data"),
            training.get("image_size"),
            training.get("batch_size"),
            json.dumps(c.get("generator"), sort_keys=True),
        )

    for entry, other in configs.items():
        if other.get("class") == "GAN" and signature(other) == signature(config):
            return entry
    return None


def _fid_cells(measured: dict) -> tuple[str, str, float | None, float | None]:
    """`(FID prior, "best (FID)", prior value, best value)` of an entry's metrics."""
    prior = measured.get("prior")
    best = best_sampler(measured)
    if not best:
        return "-", "-", None, None
    label = NONE_BETTER if best == "prior" else best
    return (
        f"{prior['fid']:.2f}" if prior else "-",
        f"{measured[best]['fid']:.2f} ({label})",
        prior["fid"] if prior else None,
        measured[best]["fid"],
    )


def markdown_table() -> str:
    """The table of all shipped entries, each beside its baseline, as Markdown.

    Returns:
        str. One row per entry: class, data, images, parameters, training
        steps and time, FID and KID of plain sampling, precision and recall,
        the best sampler (`best_sampler`: "none better than prior" when no
        sampler beats plain sampling by more than `FID_NOISE`) with its FID
        and cost, the floor (real training images under the entry's own
        protocol), and the like-for-like `GAN` baseline (`baseline_of`) with
        its FIDs and whether the entry beats it, plain and best.

    Example:

    >>> from ebgan_keras import zoo
    >>> zoo.markdown_table().splitlines()[0].startswith("| entry |")
    True
    """
    lines = [
        "| entry | class | data | images | parameters (G + D) | training "
        "| FID prior | KID prior | precision / recall | FID best (sampler) "
        "| s / 1000 (best) | floor FID | baseline | baseline FID prior / best "
        "| beats baseline (prior / best) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in _shipped_names():
        if not (_shipped_root() / name / METADATA_FILE).is_file():
            continue
        metadata = _metadata(_shipped_root() / name)
        measured = metadata.get("metrics", {})
        params = metadata.get("parameters", {})
        size = sum(params.values()) if params else 0
        shape = "x".join(str(d) for d in metadata.get("image_shape", []))
        data = metadata.get("dataset", "").split(" (")[0].split(":")[0]
        training = metadata.get("training")
        trained = (
            f"{training['steps']:,} steps, {training['wall_time_s'] / 60:.0f} min "
            f"({training['backend']})"
            if training
            else "no weights"
        )
        prior = measured.get("prior")
        fid_prior, fid_best, prior_value, best_value = _fid_cells(measured)
        best = best_sampler(measured)
        floor = metadata.get("floor")
        baseline = baseline_of(name) if training else None
        baseline_cells = ["-", "-", "-"]
        if baseline:
            other = _metadata(_shipped_root() / baseline).get("metrics", {})
            _, _, other_prior, other_best = _fid_cells(other)
            if other_prior is not None:
                beats = [
                    "yes" if mine < theirs else "no"
                    for mine, theirs in (
                        (prior_value, other_prior),
                        (best_value, other_best),
                    )
                ]
                baseline_cells = [
                    f"[{baseline}]({baseline}/README.md)",
                    f"{other_prior:.2f} / {other_best:.2f}",
                    " / ".join(beats),
                ]
            else:
                baseline_cells[0] = f"[{baseline}]({baseline}/README.md)"
        precision = (
            f"{prior['precision']:.2f} / {prior['recall']:.2f}"
            if prior and "precision" in prior
            else "-"
        )
        cells = [
            f"[{name}]({name}/README.md)",
            metadata.get("class", "?"),
            data,
            shape,
            f"{size / 1e6:.2f} M",
            trained,
            fid_prior,
            f"{prior['kid']:.3f}" if prior else "-",
            precision,
            fid_best,
            f"{measured[best]['seconds_per_1000']:.2f}" if best else "-",
            f"{floor['fid']:.2f}" if floor else "-",
            *baseline_cells,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


INDEX_HEADER = """# The ebgan-keras model zoo

Every entry is a folder of data: its recipe (`config.json`), the generator's
and the discriminator's weights (`.weights.h5`), `metadata.json` (sha256 of
every file, what trained it, metrics with their protocol), `golden.npz` (fixed
latents and the outputs they must give on every backend) and a model card
(`README.md`, with `samples.png` and `curves.png`). Load one with
`ek.zoo.load("NAME")`; rebuild one from its recipe with
`ebgan-keras zoo build NAME` (resumable). This file is generated from the
entries' metadata by `ek.zoo.write_index()`.

FID and KID: 10,000 samples against the 10,000 test images, on the features of
the offline domain classifiers shipped with `ek.metrics` (`mnist_classifier`,
`fashion_mnist_classifier`; 32x32 images are resized to 28x28 on both sides);
KID is the unscaled polynomial-kernel MMD on those features. They compare
entries of one data set, not with published Inception-feature numbers. "Best
sampler" is the latent sampler with the lowest FID among those that beat plain
sampling by more than 1% (the noise band); where none does, it reads "none
better than prior" and "FID best" is plain sampling's (each card lists all of
them: truncation, DDLS, rejection, Metropolis-Hastings). Precision and
recall (k-NN manifolds, k = 3) are plain sampling's; recall shows mode
coverage. "Floor FID" is what 10,000 real training images score under the
entry's own protocol (for a 32x32 entry they take the same resize path as its
samples): what a perfect generator would score. "Baseline" is the plain
non-saturating `GAN` with the same generator, the entry's discriminator trunk
with a logit head, the same data, batch size and steps (`ek.zoo.baseline_of`);
"beats baseline" compares FID, plain sampling and best sampler.

Entries re-evaluated with the current protocol (their cards list precision,
recall and the floor, and print under their table the `ebgan-keras eval`
command that re-measures each row, same numbers on the same backend) run DDLS
at the temperature of the energy's calibration (`T = 1 / slope` of the
logistic fit on the first 2,000 training images, as rejection sampling and
Metropolis-Hastings use) with step size and number of steps chosen on
held-out training images, never on the test split. Cards without those
columns were measured before, with DDLS at temperature 1 and its step size
chosen against the test split (`ebgan-keras zoo build NAME --evaluate-only`
re-measures one).

Representations (`bigan_mnist` and `bigbigan_mnist` carry an encoder `E(x)`;
the autoencoder entries a discriminator code; any entry a latent regressor
from `ek.inversion.fit_encoder`): 1-NN and linear-probe accuracy on MNIST are
compared in `benchmarks/results/representation.md`
(`benchmarks/representation.py`).
"""


def _declared_section() -> str:
    """How to build each declared entry, from its metadata (empty if none)."""
    lines = []
    for name in _shipped_names():
        folder = _shipped_root() / name
        if not (folder / METADATA_FILE).is_file():
            continue
        metadata = _metadata(folder)
        if _weights_status(metadata) != "absent":
            continue
        estimate = metadata.get("estimate") or {}
        cost = ""
        if estimate.get("steps"):
            hours = estimate["hours"]
            time = f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"
            cost = (
                f" Estimated from FLOPs: {time} of training arithmetic at "
                f"{estimate['flops_per_second'] / 1e12:.0f} TFLOP/s, about "
                f"{estimate['memory_gib']:.1f} GiB of GPU memory."
            )
        lines.append(
            f"- [{name}]({name}/README.md): `{metadata['recipe_command']}`.{cost}"
        )
    if not lines:
        return ""
    return (
        "\nDeclared entries ship their recipe without weights; each builds on a "
        "machine with a GPU and the data (its card gives the commands, for an "
        "image folder and for TFDS data, and what the estimates assume):\n\n"
        + "\n".join(lines)
        + "\n"
    )


def write_index(path=None) -> str:
    """Writes `zoo/README.md`: the header and `markdown_table()`.

    Args:
        path: str. Where to write. Defaults to the shipped zoo folder's
            `README.md`.

    Returns:
        The text written.
    """
    text = INDEX_HEADER + "\n" + markdown_table() + "\n" + _declared_section()
    path = path or (_shipped_root() / "README.md")
    with open(path, "w") as handle:
        handle.write(text)
    return text
