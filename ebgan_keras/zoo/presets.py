"""Presets in the KerasHub manner: `from_preset`, `presets`, `save_to_preset`.

A preset is a zoo entry folder; there is no second layout. Beside
KerasHub's (`keras_hub/src/utils/preset_utils.py`):

- `config.json`: the run config (`ebgan_keras.run.config`) that builds the
  model. KerasHub's `registered_name` is its key `registered_name`
  (`"ebgan_keras>EBGANPT"`, the name Keras registers the class under), written
  by `save_to_preset`; the shipped entries, older than presets, leave it out
  and their `class` gives the same name.
- `{role}.weights.h5`: KerasHub's `model.weights.h5`, one file per network
  (`generator`, `discriminator`, BiGAN's `encoder`), as the zoo ships them:
  each is checked against its sha256 and loaded into its network.
- `metadata.json`: the sha256 of every file (KerasHub's has none), the
  parameter counts, the versions and date that saved it.
- `golden.npz` (fixed latents and the outputs they give) and the card
  `README.md`.

A preset is named by a shipped entry's name (`ek.zoo.list_entries()`), the
path of such a folder, or the `http(s)://` URL of one followed by
`#sha256=` and the sha256 of its `metadata.json` (`preset_sha256`): the
files are downloaded with `keras.utils.get_file` into
`$KERAS_HOME/ebgan_keras/presets/`, each checked (metadata.json against the
URL's sha256, the others against metadata.json's), and come from the cache
the next time.

`ek.EBGANPT.from_preset(preset)` loads a preset of `EBGANPT` or of a subclass,
as KerasHub's `Backbone.from_preset` does: `ek.BaseGAN.from_preset` loads any
preset, `ek.EBGAN.from_preset` those of EBGAN, EBGANPT and MAGAN; a preset of
another class is refused, naming the class to call.

Example:

```python
import ebgan_keras as ek

ek.EBGANPT.presets  # {"ebgan_pt_mnist": {...}, ...}
model = ek.EBGANPT.from_preset("ebgan_pt_mnist")
model.fit(images, epochs=1)  # fine-tune
model.save_to_preset("my_ebgan_pt")
model = ek.EBGANPT.from_preset("my_ebgan_pt")  # or ek.zoo.load("my_ebgan_pt")
```
"""

from __future__ import annotations

import difflib
import json
import os
import re
import urllib.parse
from pathlib import Path

from ebgan_keras import files
from ebgan_keras.models.base import register_preset_functions
from ebgan_keras.zoo import entries
from ebgan_keras.zoo import preset_files
from ebgan_keras.zoo.entries import CONFIG_FILE
from ebgan_keras.zoo.entries import METADATA_FILE
from ebgan_keras.zoo.entries import IntegrityError
from ebgan_keras.zoo.preset_files import registered_name

#: The package Keras registers the library's classes under.
PACKAGE = "ebgan_keras"
#: URL schemes a preset may be downloaded from (a sha256 is always required).
URL_SCHEMES = ("https", "http")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def network_roles(model) -> tuple[str, ...]:
    """The roles of a model's networks, each saved as `{role}.weights.h5`.

    Args:
        model: a model of the library.

    Returns:
        The model's declared `network_roles` (`("generator",
        "discriminator")`, and `"encoder"` for a BiGAN).
    """
    return tuple(model.networks())


def _model_class(name):
    from ebgan_keras.run.builder import model_classes

    return model_classes().get(name)


def _cls_name(cls) -> str:
    return getattr(cls, "__name__", str(cls))


def class_presets(cls) -> dict:
    """The shipped presets of a model class and its subclasses, by name.

    Args:
        cls: a model class of the library, e.g. `ek.EBGANPT`.

    Returns:
        dict. Entry name to its row of `ek.zoo.list_entries()` (summary,
        class, image shape, weights status, FID), for every shipped entry
        whose class is `cls` or a subclass of it; entries whose build has not
        finished (no `metadata.json`) or that cannot be read are left out.

    Example:

    >>> import ebgan_keras as ek
    >>> sorted(class_presets(ek.BiGAN))
    ['bigan_mnist', 'bigbigan_mnist']
    """
    presets = {}
    for entry in entries.list_entries():
        found = _model_class(entry["class"])
        if entry["weights"] in ("broken", "unbuilt") or found is None:
            continue
        if issubclass(found, cls):
            presets[entry["name"]] = entry
    return presets


# ----------------------------------------------------------------------
# Where a preset is: a name, a folder, a URL
# ----------------------------------------------------------------------
def preset_sha256(preset_dir) -> str:
    """The sha256 of a preset folder's `metadata.json`: what its URL ends with.

    `metadata.json` holds the sha256 of every other file, so this one hash
    checks the whole preset: serve the folder at `URL` and load it with
    `from_preset(URL + "#sha256=" + preset_sha256(folder))`.

    Args:
        preset_dir: str or path. A preset folder.

    Returns:
        str. 64 hex digits.
    """
    path = Path(preset_dir) / METADATA_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"`preset_dir` must be a preset folder (one holding {METADATA_FILE}). "
            f"Received: preset_dir={os.fspath(preset_dir)!r}"
        )
    return files.file_sha256(path)


def _cache_root() -> Path:
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    return Path(home) / PACKAGE / "presets"


class _Remote:
    """A preset at a URL, mirrored file by file into the cache."""

    def __init__(self, url: str):
        parts = urllib.parse.urlsplit(url)
        digest = parts.fragment.removeprefix("sha256=").lower()
        if not parts.fragment.startswith("sha256=") or not _SHA256.fullmatch(digest):
            raise ValueError(
                "A preset URL must end with '#sha256=' and the sha256 of its "
                "metadata.json (64 hex digits; `ek.zoo.presets.preset_sha256(folder)` "
                f"gives it). Received: preset={url!r}"
            )
        path = parts.path.rstrip("/")
        self.name = path.rsplit("/", 1)[-1]
        if not self.name or not parts.netloc:
            raise ValueError(
                "A preset URL must name a preset folder, as in "
                f"'https://host/presets/NAME#sha256=HEX'. Received: preset={url!r}"
            )
        self.url = url
        self.base = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc, path, parts.query, "")
        )
        self.folder = _cache_root() / digest[:16] / self.name
        self.get(METADATA_FILE, digest)
        from ebgan_keras.run.config import read_json

        self.metadata = read_json(self.folder / METADATA_FILE, f"preset {url!r}")

    def get(self, filename: str, digest: str | None) -> None:
        """Downloads one file of the preset (or takes it from the cache)."""
        import keras

        if filename != Path(filename).name or filename.startswith("."):
            raise entries.EntryFormatError(
                f"Preset {self.url!r}: metadata.json lists a file outside the "
                f"preset folder. Received: {filename!r}"
            )
        if not digest:
            raise IntegrityError(
                f"Preset {self.url!r}: metadata.json records no sha256 for "
                f"{filename}; refusing to download an unverified file."
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        origin = f"{self.base}/{urllib.parse.quote(filename)}"
        try:
            keras.utils.get_file(
                filename,
                origin=origin,
                file_hash=digest,
                hash_algorithm="sha256",
                cache_dir=str(self.folder),
                cache_subdir=".",
            )
        except Exception as error:  # noqa: BLE001 - re-raised naming the file
            target = self.folder / filename
            if target.is_file():  # downloaded, but not the file the hash names
                target.unlink()
                raise IntegrityError(
                    f"Preset {self.url!r}: {filename} does not match its sha256 "
                    f"(tampered, truncated or another version); refusing it. "
                    f"Expected {digest}."
                ) from None
            raise OSError(
                f"Preset {self.url!r}: cannot download {filename} from "
                f"{origin!r}: {error}"
            ) from None

    def get_all(self) -> None:
        """Downloads every file that metadata.json lists."""
        for filename, digest in sorted(self.metadata.get("files", {}).items()):
            self.get(filename, digest)


def _resolve(cls, preset):
    """`(folder, name for zoo.load, remote or None)` of a preset."""
    if not isinstance(preset, (str, os.PathLike)) or not os.fspath(preset):
        raise TypeError(
            "`preset` must be a preset name, the path of a preset folder or an "
            f"https:// URL with '#sha256='. Received: preset={preset!r}"
        )
    text = os.fspath(preset)
    scheme = text.split("://", 1)[0].lower() if "://" in text else None
    if scheme is not None:
        if scheme not in URL_SCHEMES:
            raise ValueError(
                f"A preset URL must start with {' or '.join(URL_SCHEMES)}://. "
                f"Received: preset={text!r}"
            )
        remote = _Remote(text)
        return remote.folder, str(remote.folder), remote
    shipped = [entry["name"] for entry in entries.list_entries()]
    if text in shipped:
        return entries.entry_dir(text), text, None
    if Path(text).expanduser().is_dir():
        folder = entries.entry_dir(text)  # checks it holds a config.json
        return folder, text, None
    own = sorted(class_presets(cls))
    close = difflib.get_close_matches(text, own or shipped, n=3, cutoff=0.5)
    hint = f"Did you mean {', '.join(repr(c) for c in close)}? " if close else ""
    raise ValueError(
        f"Unknown preset for {_cls_name(cls)}. {hint}Its presets: "
        f"{', '.join(own) or '(none)'}; the path of a preset folder or an "
        f"https:// URL with '#sha256=' also works. Received: preset={text!r}"
    )


def _checked_config(folder: Path, where: str) -> tuple[dict, dict]:
    """The preset's validated run config and its metadata, config verified."""
    from ebgan_keras.run.config import read_json
    from ebgan_keras.run.config import validate

    if not (folder / METADATA_FILE).is_file():
        raise FileNotFoundError(
            f"Preset {where!r} lacks {METADATA_FILE} (a preset folder holds "
            f"{CONFIG_FILE}, {METADATA_FILE} and the weights): "
            f"{str(folder / METADATA_FILE)!r}"
        )
    # The config's sha256 first: nothing of it is read before it is checked.
    metadata = read_json(folder / METADATA_FILE, f"preset {where!r} {METADATA_FILE}")
    files_listed = metadata.get("files")
    expected = files_listed.get(CONFIG_FILE) if isinstance(files_listed, dict) else None
    if expected is None:
        raise IntegrityError(
            f"Preset {where!r}: metadata.json records no sha256 for "
            f"{CONFIG_FILE}; refusing an unverified preset."
        )
    actual = files.file_sha256(folder / CONFIG_FILE)
    if actual != expected:
        raise IntegrityError(
            f"Preset {where!r}: {CONFIG_FILE} does not match its sha256 (tampered, "
            f"truncated or corrupt); refusing to load it. Expected {expected}, "
            f"received {actual}"
        )
    card = entries.describe(folder)
    return validate(card["recipe"], f"preset {where!r}"), card


def _check_class(cls, config: dict, text: str) -> None:
    found = _model_class(config["class"])
    if found is None:
        raise ValueError(
            f"Preset {text!r} is of the class {config['class']!r}, which is not "
            "a model class registered by ebgan_keras. Received: "
            f"class={config['class']!r}"
        )
    if not issubclass(found, cls):
        own = sorted(class_presets(cls))
        raise ValueError(
            f"Preset {text!r} is of class {found.__name__}, not {_cls_name(cls)} "
            f"or a subclass: load it with ek.{found.__name__}.from_preset"
            f"({text!r}) (or ek.BaseGAN.from_preset). {_cls_name(cls)}'s presets: "
            f"{', '.join(own) or '(none)'}. Received: preset={text!r}"
        )


def _plain(config) -> dict:
    """A plain JSON copy (Keras wraps a model's dict attributes)."""
    return json.loads(json.dumps(config))


# ----------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------
def from_preset(cls, preset, load_weights: bool = True, **kwargs):
    """A model of `cls` (or a subclass) from a preset, every file sha256-checked.

    The backend of `cls.from_preset`; see the module docstring for what a
    preset is.

    Args:
        cls: the model class asked for, e.g. `ek.EBGANPT`.
        preset: str or path. A shipped entry's name (`cls.presets`), the path
            of a preset folder, or `https://.../NAME#sha256=HEX` (the sha256
            of the preset's `metadata.json`).
        load_weights: bool. Load the trained weights; `False` gives the
            preset's architecture with fresh weights. Defaults to `True`.
        **kwargs: keyword arguments of the model's constructor that replace
            the preset's `model` settings (e.g. `margin=5.0`,
            `latent_distribution="uniform"`); `seed` seeds its latents.

    Returns:
        The model, compiled with the preset's optimizers (ready for `fit`),
        carrying its run config (`run_config`) for `save_to_preset`.

    Raises:
        ValueError: an unknown preset, or one of a class that is not `cls`
            or a subclass of it (naming the class to call).
        IntegrityError: a file that does not match its sha256.
    """
    from ebgan_keras.run.builder import build_model
    from ebgan_keras.run.builder import compile_model
    from ebgan_keras.run.config import ConfigError
    from ebgan_keras.run.config import merge
    from ebgan_keras.run.config import validate

    folder, name, remote = _resolve(cls, preset)
    where = os.fspath(preset)
    if remote is not None:
        remote.get(CONFIG_FILE, remote.metadata.get("files", {}).get(CONFIG_FILE))
    config, _ = _checked_config(folder, where)
    _check_class(cls, config, where)
    seed = kwargs.pop("seed", None)
    if kwargs:
        config = validate(merge(config, {"model": kwargs}), f"preset {where!r}")
    changed = bool(kwargs) or seed is not None
    # The model asked for first: settings that do not build fail before any
    # weights are read.
    model = build_model(config, seed=seed) if changed or not load_weights else None
    if load_weights:
        if remote is not None:
            remote.get_all()
        trained = entries.load(name, compile=False)  # every file's sha256 checked
        if model is None:
            model = trained
        for role in network_roles(model) if model is not trained else ():
            # The same weights in the model with the settings given.
            try:
                getattr(model, role).set_weights(getattr(trained, role).get_weights())
            except ValueError as error:
                raise ConfigError(
                    f"Preset {where!r}: the settings given change the {role}'s "
                    f"architecture, so its trained weights do not fit: {error}. "
                    f"Received: {kwargs}"
                ) from None
        model.zoo_entry = trained.zoo_entry
    compile_model(model, config)
    return model


# ----------------------------------------------------------------------
# Saving
# ----------------------------------------------------------------------
# `ek.EBGANPT.from_preset`, `.presets` and `model.save_to_preset` call these.
def save_to_preset(model, preset_dir) -> None:
    """Writes a model as a preset folder (`ebgan_keras.zoo.preset_files`).

    Args:
        model: a model built from a run config.
        preset_dir: str or path. The folder; its name is the preset's.
    """
    preset_files.save_to_preset(model, preset_dir)


register_preset_functions(
    class_presets=class_presets,
    from_preset=from_preset,
    save_to_preset=save_to_preset,
)


__all__ = [
    "class_presets",
    "from_preset",
    "network_roles",
    "preset_sha256",
    "registered_name",
    "save_to_preset",
]
