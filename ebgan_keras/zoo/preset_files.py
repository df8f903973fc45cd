"""Writing a preset folder: a zoo entry of the run config that built a model.

`model.save_to_preset(folder)` (through `ebgan_keras.zoo.presets`) writes the
folder that `Class.from_preset(folder)` and `ek.zoo.load(folder)` read.
"""

from __future__ import annotations

import datetime
import json
import os
from pathlib import Path

from ebgan_keras import files
from ebgan_keras.zoo import entries
from ebgan_keras.zoo.entries import CARD_FILE
from ebgan_keras.zoo.entries import CONFIG_FILE
from ebgan_keras.zoo.entries import GOLDEN_ATOL
from ebgan_keras.zoo.entries import GOLDEN_FILE
from ebgan_keras.zoo.entries import METADATA_FILE
from ebgan_keras.zoo.entries import weight_file
from ebgan_keras.zoo.weights import write_networks_and_golden

#: The package name Keras registers the model classes under.
PACKAGE = "ebgan_keras"


def registered_name(class_name: str) -> str:
    """The name Keras registers a model class of the library under.

    Args:
        class_name: str. A config's `class`, e.g. `"EBGANPT"`.

    Returns:
        str. E.g. `"ebgan_keras>EBGANPT"`.

    Example:

    >>> registered_name("BEGAN")
    'ebgan_keras>BEGAN'
    """
    return f"{PACKAGE}>{class_name}"


def _card(config: dict, metadata: dict) -> str:
    cls = config["class"]
    name = metadata["name"]
    lines = [
        f"# {name}",
        "",
        config.get("summary") or f"A preset of `ek.{cls}`.",
        "",
        f"Saved by `model.save_to_preset` on {metadata['saved']['date']} "
        f"({metadata['saved']['backend']}, ebgan-keras "
        f"{metadata['saved']['versions']['ebgan_keras']}); not evaluated.",
        "",
        f"- Class: `ek.{cls}`",
        f"- Images {tuple(metadata['image_shape'])}, latent "
        f"{metadata['latent_dim']} ({metadata['latent_distribution']})",
        "- Parameters: "
        + ", ".join(f"{role} {n:,}" for role, n in metadata["parameters"].items()),
        "",
        "```python",
        "import ebgan_keras as ek",
        "",
        f'model = ek.{cls}.from_preset("{name}")  # or ek.zoo.load("{name}")',
        "```",
        "",
    ]
    return "\n".join(lines)


def save_to_preset(model, preset_dir) -> None:
    """Writes a model as a preset folder: a zoo entry of its run config.

    The backend of `model.save_to_preset`. Writes `config.json` (the run
    config that built the model, with `registered_name`), one
    `{role}.weights.h5` per network, `golden.npz` (8 fixed latents, the
    images they give and their energies), the card `README.md`, and last
    `metadata.json` with the sha256 of every file. `from_preset(preset_dir)`
    and `ek.zoo.load(preset_dir)` load it; `ek.zoo.check_golden(model,
    preset_dir)` checks a loaded copy.

    Args:
        model: a model built from a run config (by `from_preset`,
            `ek.zoo.load`, `ek.zoo.create_model`, the training driver or
            `ek.run.builder.build_model`): its `run_config`.
        preset_dir: str or path. The folder; created if needed, its files
            of these names replaced. Its name is the preset's name.

    Raises:
        ValueError: a model without a run config, a shipped entry's folder,
            or model settings that are not JSON.
    """
    config = _preset_config(model, Path(os.fspath(preset_dir)).expanduser())
    folder = Path(os.fspath(preset_dir)).expanduser()
    files.check_writable(folder)
    roles = tuple(model.networks())
    write_networks_and_golden(model, folder, config["golden_seed"])
    files.write_json(folder / CONFIG_FILE, config)
    metadata = _preset_metadata(model, config, folder.name)
    with open(folder / CARD_FILE, "w") as handle:
        handle.write(_card(config, metadata))
    names = [CONFIG_FILE, *(weight_file(role) for role in roles)]
    names += [GOLDEN_FILE, CARD_FILE]
    metadata["files"] = {name: files.file_sha256(folder / name) for name in names}
    files.write_json(folder / METADATA_FILE, metadata)


def _preset_config(model, folder: Path) -> dict:
    """The validated run config a preset folder gets (its name, shape, class)."""
    from ebgan_keras.run.config import ConfigError
    from ebgan_keras.run.config import validate

    recipe = getattr(model, "run_config", None)
    if recipe is None:
        raise ValueError(
            f"`save_to_preset` writes the run config that built the model, and "
            f"this {type(model).__name__} has none: build it from a run config "
            "(`Class.from_preset`, `ek.zoo.load`, `ek.zoo.create_model`, "
            "`ek.run.builder.build_model`), not from networks directly. "
            "Received: a model without `run_config`"
        )
    shipped = {entry["name"] for entry in entries.list_entries()}
    if folder.name in shipped and (
        folder.resolve() == entries.entry_dir(folder.name).resolve()
    ):
        raise ValueError(
            "`preset_dir` must not be a folder of the shipped zoo (its files are "
            f"checked against their sha256). Received: preset_dir={str(folder)!r}"
        )
    try:
        config = json.loads(json.dumps(recipe))
    except (TypeError, ValueError) as error:
        raise ConfigError(
            "`save_to_preset` writes the model's run config as JSON, and it holds "
            f"a value that is not JSON ({error}). Received: model="
            f"{recipe.get('model')!r}"
        ) from None
    config.update(
        name=folder.name,
        image_shape=list(model.image_shape),
        registered_name=registered_name(config["class"]),
    )
    return validate(config, f"the run config of {type(model).__name__}")


def _preset_metadata(model, config: dict, name: str) -> dict:
    """A preset's `metadata.json` before its files' sha256."""
    import keras

    from ebgan_keras.run.config import FORMAT_VERSION
    from ebgan_keras.run.training import versions

    return {
        "format_version": FORMAT_VERSION,
        "name": name,
        "summary": config.get("summary") or "",
        "class": config["class"],
        "paper": config.get("paper"),
        "dataset": config.get("dataset"),
        "licence": config.get("licence"),
        "image_shape": list(model.image_shape),
        "latent_dim": int(model.latent_dim),
        "latent_distribution": model.latent_distribution,
        "parameters": {
            role: int(network.count_params())
            for role, network in model.networks().items()
        },
        "weights": {"status": "shipped"},
        "golden_tolerance": GOLDEN_ATOL,
        "saved": {
            "backend": keras.backend.backend(),
            "versions": versions(),
            "date": datetime.datetime.now(datetime.timezone.utc).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        },
    }
