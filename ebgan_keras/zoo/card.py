"""Zoo model cards: `metadata.json` and the `README.md` of an entry.

An entry's metadata (provenance, parameter counts, sha256 of every file,
metrics with their protocol) and its card are written from the recipe, the
run folder and the measured results; `write_declared_card` writes those of an
entry declared without weights.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os

from ebgan_keras import files
from ebgan_keras.run.run_folder import INFO_FILE
from ebgan_keras.run.run_folder import RUN_CONFIG_FILE
from ebgan_keras.run.run_folder import machine
from ebgan_keras.run.run_folder import versions
from ebgan_keras.zoo import convergence
from ebgan_keras.zoo.card_declared import build_command
from ebgan_keras.zoo.card_declared import write_declared_card
from ebgan_keras.zoo.card_sections import CLI_SAMPLERS
from ebgan_keras.zoo.card_sections import base_metadata
from ebgan_keras.zoo.card_sections import eval_command
from ebgan_keras.zoo.card_sections import model_lines
from ebgan_keras.zoo.card_sections import picture_lines
from ebgan_keras.zoo.card_sections import quality_lines
from ebgan_keras.zoo.entry_format import CARD_FILE
from ebgan_keras.zoo.entry_format import CHAINS_FILE
from ebgan_keras.zoo.entry_format import CONFIG_FILE
from ebgan_keras.zoo.entry_format import CURVES_FILE
from ebgan_keras.zoo.entry_format import FID_NOISE
from ebgan_keras.zoo.entry_format import GOLDEN_ATOL
from ebgan_keras.zoo.entry_format import GOLDEN_FILE
from ebgan_keras.zoo.entry_format import GRID_FILE
from ebgan_keras.zoo.entry_format import INTERPOLATION_FILE
from ebgan_keras.zoo.entry_format import METADATA_FILE
from ebgan_keras.zoo.entry_format import RECONSTRUCTIONS_FILE
from ebgan_keras.zoo.entry_format import weight_file

# The sections' previous names (zoo/stages and the tests use them).
_base_metadata = base_metadata
_quality_lines = quality_lines
_picture_lines = picture_lines


def write_card(
    model,
    config: dict,
    run_dir: str,
    out_dir: str,
    results: dict,
    training: dict | None = None,
    command: str | None = None,
    previous_curve: dict | None = None,
) -> dict:
    """Stage 4: writes `README.md` and `metadata.json`; returns the metadata.

    Args:
        model: the trained model.
        config: dict. The entry's config.
        run_dir: str. The run folder (training provenance and history).
        out_dir: str. The entry folder.
        results: dict. The measured metrics (`stages.evaluate`).
        training: dict. The metadata's `training` record, when the entry was
            trained before (re-evaluated); defaults to the run folder's.
        command: str. The command that builds the entry (with its data).
            Defaults to `ebgan-keras zoo build NAME`.
        previous_curve: dict. The metadata's `convergence` record, when the
            entry was trained before and `run_dir` holds no curve.

    Returns:
        The metadata dict written.
    """
    info = files.read_json(os.path.join(run_dir, INFO_FILE), {})
    history = files.read_json(os.path.join(run_dir, "history.json"), {})
    run_config = files.read_json(os.path.join(run_dir, RUN_CONFIG_FILE), {})
    recipe = config["training"]
    metadata = {
        **base_metadata(model, config),
        "training": training
        or {
            "backend": info.get("backend", _backend()),
            "versions": info.get("versions", versions()),
            "date": info.get("date", datetime.date.today().isoformat()),
            "epochs": info.get("epochs_done"),
            "steps": info.get("steps_done"),
            "batch_size": recipe["batch_size"],
            "data": run_config.get("training", {}).get("data", recipe["data"]),
            "mixed_precision": info.get("mixed_precision"),
            "wall_time_s": round(float(info.get("wall_time_s", 0.0)), 1),
            "segments": info.get("segments"),
            "machine": info.get("machine", machine()),
            "final_logs": {
                name: values[-1]
                for name, values in history.items()
                if values and values[-1] is not None
            },
        },
        "weights": {"status": "shipped"},
        "recipe_command": command or f"ebgan-keras zoo build {config['name']}",
        "metrics": {
            name: {key: value for key, value in result.items() if key != "report"}
            | {"protocol": _protocol(result)}
            for name, result in results.items()
            if not name.startswith("_")
        },
        "ddls_sweep": results.get("_ddls_sweep"),
        "floor": results.get("_floor"),
        "golden_tolerance": GOLDEN_ATOL,
        "evaluation": {
            "backend": _backend(),
            "versions": versions(),
            "date": datetime.date.today().isoformat(),
        },
    }
    # The held-out FID curve of this training run (none for an entry
    # re-evaluated from an earlier run that recorded none).
    curve = convergence.card_record(run_dir, out_dir, config["name"])
    metadata["convergence"] = curve if curve is not None else previous_curve
    metadata["recipe_sha256"] = recipe_sha256(config)
    return write_card_files(config, metadata, out_dir)


def _backend() -> str:
    import keras

    return keras.backend.backend()


def _protocol(result: dict) -> dict:
    return result.get("report", {}).get("fid", {}).get("protocol", {})


#: Config fields that only describe an entry; `ek.zoo.rewrite_card` rewrites a
#: card after they change, without measuring again.
TEXT_FIELDS = ("name", "summary", "paper", "dataset", "licence", "notes")


def recipe_sha256(config: dict) -> str:
    """The sha256 of what a recipe trains and measures: its config without
    `TEXT_FIELDS`, as canonical JSON."""
    recipe = {k: v for k, v in config.items() if k not in TEXT_FIELDS}
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def write_card_files(config: dict, metadata: dict, out_dir: str) -> dict:
    """Writes `README.md` from `metadata`, then `metadata.json` with the
    sha256 of every file of the entry; returns the metadata written."""
    card = _card_text(config, metadata, out_dir)
    with open(os.path.join(out_dir, CARD_FILE), "w") as handle:
        handle.write(card)
    weights = [weight_file(role) for role in metadata["parameters"]]
    names = [CONFIG_FILE, *weights, GOLDEN_FILE, CARD_FILE]
    names += [
        n
        for n in (
            GRID_FILE,
            CURVES_FILE,
            INTERPOLATION_FILE,
            RECONSTRUCTIONS_FILE,
            CHAINS_FILE,
            convergence.CONVERGENCE_PLOT,
        )
        if os.path.isfile(os.path.join(out_dir, n))
    ]
    metadata["files"] = {
        name: files.file_sha256(os.path.join(out_dir, name)) for name in names
    }
    files.write_json(os.path.join(out_dir, METADATA_FILE), metadata)
    return metadata


def _card_text(config: dict, metadata: dict, out_dir: str = ".") -> str:
    training = metadata["training"]
    lines = [
        f"# {config['name']}",
        "",
        config["summary"],
        "",
        "![samples](samples.png)",
        "",
        *picture_lines(out_dir),
        "## Use",
        "",
        "```python",
        "import ebgan_keras as ek",
        "",
        f'model = ek.zoo.load("{config["name"]}")',
        "images = model.generate(64, seed=0)",
        'images, z = ek.samplers.get("ddls").sample(model, 64)',
        "```",
        "",
        "## Quality",
        "",
        *quality_lines(metadata),
        "",
        "## Model",
        "",
        *model_lines(config, metadata),
        "",
        "## Training",
        "",
        f"- Data: {config['dataset']}",
        f"- {training['epochs']} epochs, {training['steps']} steps of batch "
        f"{training['batch_size']}, {training['wall_time_s'] / 60:.1f} min on "
        f"{training['machine']} ({training['backend']} backend, "
        f"{training['date']})",
        f"- Rebuild: `{metadata['recipe_command']}` (resumable; see "
        "`ebgan-keras zoo build --help`)",
        "",
        "![curves](curves.png)",
        "",
        "## Convergence",
        "",
        *convergence.card_lines(metadata.get("convergence")),
        "",
        *(
            ["## Notes", ""] + [line for note in config["notes"] for line in (note, "")]
            if config.get("notes")
            else []
        ),
        "## Licence",
        "",
        config["licence"],
        "",
    ]
    return "\n".join(lines)


__all__ = [
    "CLI_SAMPLERS",
    "FID_NOISE",
    "TEXT_FIELDS",
    "build_command",
    "eval_command",
    "recipe_sha256",
    "write_card",
    "write_card_files",
    "write_declared_card",
]
