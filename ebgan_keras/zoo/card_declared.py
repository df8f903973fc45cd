"""The card and metadata of an entry declared without weights: how to build
it, what it costs (estimated), how it computes on a GPU."""

from __future__ import annotations

import os
import shlex

from ebgan_keras import files
from ebgan_keras.zoo.card_sections import base_metadata
from ebgan_keras.zoo.card_sections import model_lines
from ebgan_keras.zoo.entry_format import CARD_FILE
from ebgan_keras.zoo.entry_format import CONFIG_FILE
from ebgan_keras.zoo.entry_format import METADATA_FILE


def write_declared_card(
    config: dict,
    out_dir: str,
    reason: str,
    train_images: int | None = None,
    data_folder: str | None = None,
) -> dict:
    """Writes the card and metadata of an entry declared without weights.

    The card says how to build the entry (the commands for its data as an
    image folder and as TFDS data), what it costs (`cost.estimate`: FLOPs,
    GPU memory and time, estimated) and how it computes on a GPU (mixed
    precision, XLA).

    Args:
        config: dict. The entry's config (its full recipe).
        out_dir: str. The entry folder.
        reason: str. Why no weights are shipped.
        train_images: int. Images of the training split, for the steps of an
            epoch when the recipe's `steps_per_epoch` is `null`; without
            either, the card gives no time estimate.
        data_folder: str. The image folder named in the build command, e.g.
            `"img_align_celeba"`. Defaults to none (only the TFDS command).

    Returns:
        The metadata dict (`weights.status == "absent"`, and `estimate`).
    """
    from ebgan_keras.run.builder import build_model
    from ebgan_keras.run.config import validate
    from ebgan_keras.zoo import cost

    config = validate(config)
    model = build_model(config)
    training = config["training"]
    name = config["name"]
    steps = training["steps_per_epoch"]
    if steps is None and train_images:
        steps = train_images // training["batch_size"]
    mixed = training["mixed_precision"] is not None
    estimate = cost.estimate(
        model, training["batch_size"], training["epochs"] * (steps or 0), mixed
    )
    commands = []
    if data_folder:
        commands.append(
            build_command(name, data=f"/path/to/{data_folder}")
            + f" --out my_zoo/{name}"
        )
    commands.append(
        build_command(name, data_dir="/path/to/tensorflow_datasets")
        + f" --out my_zoo/{name}"
    )
    metadata = {
        **base_metadata(model, config),
        "weights": {"status": "absent", "reason": reason},
        "recipe_command": commands[0],
        "estimate": estimate,
        "metrics": {},
    }
    lines = _card_lines(config, metadata, commands, steps, data_folder)
    with open(os.path.join(out_dir, CARD_FILE), "w") as handle:
        handle.write("\n".join(lines))
    metadata["files"] = {
        name: files.file_sha256(os.path.join(out_dir, name))
        for name in (CONFIG_FILE, CARD_FILE)
    }
    files.write_json(os.path.join(out_dir, METADATA_FILE), metadata)
    return metadata


def _card_lines(config, metadata, commands, steps, data_folder) -> list[str]:
    """The declared card's text: build it, load it, its cost, its model."""
    name = config["name"]
    training = config["training"]
    reason = metadata["weights"]["reason"]
    roles = list(metadata["parameters"])
    urls = ", ".join(f'"{role}": URL_{role[0].upper()}' for role in roles)
    hashes = ", ".join(f'"{role}": HEX_{role[0].upper()}' for role in roles)
    lines = [
        f"# {name}",
        "",
        config["summary"],
        "",
        "**No weights are shipped:** " + reason + ".",
        "",
        "## Build it",
        "",
        "On a machine with a GPU and the data, one command trains, exports, "
        "evaluates and writes the entry's card (rerun it to resume):",
        "",
        "```bash",
        *commands,
        "```",
        "",
        *_data_lines(config, data_folder),
        f'Then `ek.zoo.load("my_zoo/{name}")`. Trained weights published '
        "elsewhere load with their sha256:",
        "",
        "```python",
        f'model = ek.zoo.load("{name}", weights={{{urls}}}, sha256={{{hashes}}})',
        "```",
        "",
        "## Cost (estimated from FLOPs, not measured)",
        "",
        *_estimate_lines(config, metadata["estimate"], steps),
        "",
        "## Model",
        "",
        *model_lines(config, metadata),
        f"- Training: {training['epochs']} epochs of batch {training['batch_size']} "
        f"on {training['data']} (crop {training.get('crop')}, size "
        f"{training.get('image_size')})",
        f"- Evaluation: FID/KID with {config['evaluation']['features']} "
        f"features, {config['evaluation']['num_samples']} samples vs the "
        f"{config['evaluation']['reference_split']} split",
        "",
        "## Licence",
        "",
        config["licence"],
        "",
    ]
    return lines


def _data_lines(config: dict, data_folder: str | None) -> list[str]:
    training, evaluation = config["training"], config["evaluation"]
    lines = []
    if data_folder:
        lines.append(
            f"`--data` takes the folder of images (`{data_folder}/000001.jpg`, "
            "...; searched recursively); the training images are the "
            f"`{training['split']}` split and the FID reference the "
            f"`{evaluation['reference_split']}` split of the official partition "
            "(`list_eval_partition.txt` or Kaggle's `.csv`, found beside the "
            "folder, one or two levels up, or in an `Eval/` folder there; "
            f"without it: `--reference-split 'train[-{evaluation['num_samples']}:]'`"
            " for the last images of the folder, which are also trained on). "
        )
    lines.append(
        f"`--data-dir` takes a TFDS data folder where `{training['data']}` is "
        f"prepared (`tfds.builder({training['data']!r}, data_dir=...)"
        ".download_and_prepare()` on a machine that reaches the data's "
        "download site)."
    )
    return ["".join(lines), ""]


def _estimate_lines(config: dict, estimate: dict, steps_per_epoch) -> list[str]:
    from ebgan_keras.zoo import cost

    training = config["training"]
    gflops = estimate["step_flops"] / 1e9
    per_role = " and ".join(
        f"{key[: -len('_flops')]} {value / 1e9:.2f}"
        for key, value in estimate.items()
        if key.endswith("_flops") and key not in ("step_flops", "total_flops")
    )
    lines = [
        f"- Arithmetic: {per_role} GFLOPs forward per image (convolution and "
        "dense layers); a training step "
        f"costs `{cost.GENERATOR_PASSES} G + {cost.DISCRIMINATOR_PASSES} D` "
        f"per image (backward = 2 forward), {gflops:,.0f} GFLOPs at batch "
        f"{training['batch_size']}.",
    ]
    if steps_per_epoch:
        tflops = estimate["flops_per_second"] / 1e12
        lines.append(
            f"- Time: {training['epochs']} epochs x {steps_per_epoch:,} steps = "
            f"{estimate['steps']:,} steps, {estimate['total_flops']:.2g} FLOPs: "
            f"about {_duration(estimate['hours'])} at an assumed {tflops:.0f} "
            "TFLOP/s sustained (an eighth of an A100's float16 tensor-core "
            "peak; scale by your GPU's speed). That is the arithmetic alone, "
            "a lower bound: the first epoch also decodes the JPEGs (later ones "
            "read them from memory), and small convolutions are often "
            "memory-bound. Evaluation adds InceptionV3 features of "
            f"{config['evaluation']['num_samples']:,} images per sampler."
        )
    lines += [
        f"- GPU memory: about {estimate['memory_gib']:.1f} GiB (weights, "
        "gradients and Adam states in float32, the activations a step keeps "
        "for its backward pass and their gradients, 1.5 GiB of CUDA context "
        "and workspaces); TensorFlow and JAX reserve most of the GPU up front "
        "unless told otherwise (`TF_FORCE_GPU_ALLOW_GROWTH=true`, "
        "`XLA_PYTHON_CLIENT_PREALLOCATE=false`).",
        _precision_line(training),
    ]
    return lines


def _precision_line(training: dict) -> str:
    mixed = training["mixed_precision"]
    if mixed == "auto":
        precision = (
            'mixed precision on a GPU (`training.mixed_precision: "auto"`: '
            "`mixed_float16` when a GPU is present, float32 on a CPU)"
        )
    elif mixed:
        precision = f"mixed precision (`{mixed}`)"
    else:
        precision = "float32 (`training.mixed_precision: null`)"
    return (
        f"- Precision and compilation: trains in {precision}, with float32 "
        "weights, losses and energies; the entry's golden outputs and "
        "metrics are computed in float32, as `ek.zoo.load` runs it. "
        "The training step is compiled with XLA on JAX (always) and on "
        'TensorFlow when a GPU is present (Keras\'s `jit_compile="auto"`, '
        "which keeps XLA off on a CPU-only TensorFlow); PyTorch runs it "
        "without XLA."
    )


def _duration(hours: float) -> str:
    if hours < 1:
        return f"{max(1, round(hours * 60))} min"
    return f"{hours:.1f} h"


def build_command(name: str, data: str | None = None, data_dir: str | None = None):
    """The `ebgan-keras zoo build` command of an entry and its data.

    Args:
        name: str. The entry's name.
        data: str. The training data given with `--data` (a data set name or
            an image folder), if not the recipe's.
        data_dir: str. The TFDS data folder given with `--data-dir`.

    Returns:
        str. The command line, its arguments quoted for a POSIX shell.

    Example:

    >>> build_command("began_celeba", data="/data/img_align_celeba")
    'ebgan-keras zoo build began_celeba --data /data/img_align_celeba'
    """
    words = ["ebgan-keras", "zoo", "build", name]
    if data:
        words += ["--data", os.fspath(data)]
    if data_dir:
        words += ["--data-dir", os.fspath(data_dir)]
    return shlex.join(words)


__all__ = ["build_command", "write_declared_card"]
