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
import shlex

from ebgan_keras import files
from ebgan_keras.run.config import DEFAULT_NETWORK_ROLES
from ebgan_keras.run.config import FORMAT_VERSION
from ebgan_keras.run.run_folder import INFO_FILE
from ebgan_keras.run.run_folder import RUN_CONFIG_FILE
from ebgan_keras.run.run_folder import machine
from ebgan_keras.run.run_folder import versions
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
from ebgan_keras.zoo.entry_format import fid_change
from ebgan_keras.zoo.entry_format import weight_file


def _base_metadata(model, config: dict) -> dict:
    """What every entry's metadata holds, trained or declared."""
    return {
        "format_version": FORMAT_VERSION,
        "name": config["name"],
        "summary": config["summary"],
        "class": config["class"],
        "paper": config["paper"],
        "dataset": config["dataset"],
        "licence": config["licence"],
        "image_shape": list(model.image_shape),
        "latent_dim": int(model.latent_dim),
        "latent_distribution": model.latent_distribution,
        "parameters": {
            role: int(network.count_params())
            for role, network in model.networks().items()
        },
    }


def _model_lines(config: dict, metadata: dict) -> list[str]:
    """The card's model section: one line per network role (the
    parameters line names the two every model has; a further role, such as
    BiGAN's encoder, carries its count on its own line)."""
    parameters = metadata["parameters"]
    networks = []
    for role, count in parameters.items():
        own = "" if role in DEFAULT_NETWORK_ROLES else f" ({count:,} parameters)"
        networks.append(
            f"- {role.capitalize()}{own}: `{config[role]['builder']}"
            f"({_kwargs(config[role])})`"
        )
    counts = ", ".join(f"{role} {parameters[role]:,}" for role in DEFAULT_NETWORK_ROLES)
    return [
        f"- Class: `ek.{config['class']}` ({config['paper']})",
        f"- Images {tuple(metadata['image_shape'])}, latent "
        f"{metadata['latent_dim']} ({metadata['latent_distribution']})",
        f"- Parameters: {counts}",
        f"- Settings: `{json.dumps(config.get('model', {}))}`",
        *networks,
    ]


def write_card(
    model,
    config: dict,
    run_dir: str,
    out_dir: str,
    results: dict,
    training: dict | None = None,
    command: str | None = None,
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

    Returns:
        The metadata dict written.
    """
    info = files.read_json(os.path.join(run_dir, INFO_FILE), {})
    history = files.read_json(os.path.join(run_dir, "history.json"), {})
    run_config = files.read_json(os.path.join(run_dir, RUN_CONFIG_FILE), {})
    recipe = config["training"]
    metadata = {
        **_base_metadata(model, config),
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
    metadata["recipe_sha256"] = recipe_sha256(config)
    return write_card_files(config, metadata, out_dir)


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
        )
        if os.path.isfile(os.path.join(out_dir, n))
    ]
    metadata["files"] = {
        name: files.file_sha256(os.path.join(out_dir, name)) for name in names
    }
    files.write_json(os.path.join(out_dir, METADATA_FILE), metadata)
    return metadata


def _protocol(result: dict) -> dict:
    return result.get("report", {}).get("fid", {}).get("protocol", {})


#: The CLI's `--sampler` name of each sampler of a card.
CLI_SAMPLERS = {
    "prior": "none",
    "truncation": "truncation",
    "ddls": "ddls",
    "rejection": "rejection",
    "metropolis_hastings": "mh",
}


def eval_command(entry: str, sampler: str, result: dict) -> str:
    """The `ebgan-keras eval` command that re-measures one row of a card.

    Args:
        entry: str. The entry's name.
        sampler: str. The sampler's name in the card (`"prior"`, `"ddls"`...).
        result: dict. The card's metrics of that sampler.

    Returns:
        str. The command line.

    Example:

    >>> eval_command("gan_mnist", "prior", {"num_samples": 10000}).split()[3:6]
    ['--sampler', 'none', '--num']
    """
    command = (
        f"ebgan-keras eval {entry} --sampler {CLI_SAMPLERS.get(sampler, sampler)} "
        f"--num {result.get('num_samples', 10000)} --metrics fid,kid,precision_recall"
    )
    if sampler in ("rejection", "metropolis_hastings"):
        command += " --calibration-split train"
    return command


def _cell(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _quality_lines(metadata: dict) -> list[str]:
    measured = metadata["metrics"]
    if not measured:
        return ["No metrics: this entry has no weights."]
    prior = measured.get("prior", {}).get("fid")
    rows, commands = [], []
    for name, result in measured.items():
        settings = {
            key: (round(value, 4) if isinstance(value, float) else value)
            for key, value in result["sampler"].items()
            if key not in ("name", "seed", "batch_size", "jit_compile", "calibration")
            and value not in (None, False)
        }
        change = ""
        if prior is not None and name != "prior":
            change = f" ({100 * (result['fid'] - prior) / prior:+.0f}%)"
        rows.append(
            f"| {name} | {result['fid']:.2f}{change} | {result['kid']:.3f} "
            f"| {_cell(result.get('precision'))} | {_cell(result.get('recall'))} "
            f"| {result['seconds_per_1000']:.2f} | `{json.dumps(settings)}` |"
        )
        commands.append(f"    {eval_command(metadata['name'], name, result)}")
    protocol = measured.get("prior", next(iter(measured.values())))["protocol"]
    floor = metadata.get("floor")
    floor_lines = []
    if floor:
        rows.append(
            f"| *floor: {floor['num_images']:,} real {floor['split']} images* "
            f"| {floor['fid']:.2f} | {floor['kid']:.3f} "
            f"| {_cell(floor.get('precision'))} | {_cell(floor.get('recall'))} "
            "| - | - |"
        )
        floor_lines = [
            "",
            "The floor is what a perfect generator would score: real training "
            "images, through the same path as the samples (size, resize), "
            "against the same reference.",
        ]
    lines = [
        "FID and KID (polynomial kernel on the classifier's features, not "
        "rescaled) against the reference split, each from "
        f"{protocol.get('num_generated')} samples; precision and recall "
        "(k-NN manifolds, k = 3; recall shows mode coverage); seconds per "
        "1,000 samples on the evaluating machine. In brackets: the change of "
        "FID against plain sampling (`prior`).",
        "",
        "| sampler | FID | KID | precision | recall | s / 1000 samples | settings |",
        "|---|---|---|---|---|---|---|",
        *rows,
        *floor_lines,
        "",
        "Protocol: `" + json.dumps(protocol, sort_keys=True) + "`. Rejection "
        "sampling, Metropolis-Hastings and a calibrated DDLS temperature fit "
        "the energy's calibration on the first 2,000 training images (DDLS's "
        "is stored in its settings: `sample`/`eval --sampler ddls` use it).",
    ]
    size = list(protocol.get("image_size", [])[:2])
    if size and size != list(metadata["image_shape"][:2]):
        lines[-1] += (
            f" Generated and reference images ({metadata['image_shape'][0]}x"
            f"{metadata['image_shape'][1]}) are resized bilinearly with "
            f"antialiasing to {size[0]}x{size[1]} for the classifier."
        )
    lines += [
        "",
        "Reproduce each row (same seed, same numbers up to the backend's last digits):",
        "",
        *commands,
    ]
    sweep = metadata.get("ddls_sweep")
    if sweep:
        cells = ", ".join(f"{k}: {v:.2f}" for k, v in sweep["fid"].items())
        best = sweep.get("best", {"step_size": sweep["best_step_size"]})
        chosen = ", ".join(f"{k} {v:g}" for k, v in best.items())
        against = sweep.get("reference", "the reference split")
        temperature = sweep.get("temperature")
        axes = " / temperature scale" if "temperature_scale" in best else ""
        # A recipe's "calibrated" temperature (the sweep records one) falls
        # back to T = 1 when the energy's calibration gives none; the DDLS
        # that was measured then carries no calibration.
        ddls = metadata["metrics"].get("ddls", {}).get("sampler", {})
        calibrated = bool(ddls.get("calibration"))
        source = ""
        if temperature and calibrated:
            source = f", temperature {temperature:.4g} from the energy's calibration"
        elif temperature:
            source = (
                f", temperature {temperature:.4g}: the energy's calibration gives "
                "no temperature (its slope is not positive: generated images do "
                "not score higher energy than real ones), so DDLS runs at the "
                "fallback T = 1"
            )
        lines += [
            "",
            f"DDLS settings chosen on {sweep['num_samples']} samples with seed "
            f"{sweep['seed']}, scored against {against}"
            + source
            + f" (FID by step size / steps{axes}: {cells}); chosen: {chosen}.",
        ]
    if prior is not None:
        verdicts = {"helped": [], "hurt": [], "noise": []}
        for name, result in measured.items():
            if name != "prior":
                change = fid_change(result["fid"], prior)
                if abs(change) <= FID_NOISE:
                    verdicts["noise"].append(name)
                else:
                    verdicts["helped" if change < 0 else "hurt"].append(name)
        lines += [
            "",
            f"Improve FID over plain sampling by more than {FID_NOISE:.0%} here: "
            f"{', '.join(verdicts['helped']) or 'none'}; make it worse: "
            f"{', '.join(verdicts['hurt']) or 'none'}; within {FID_NOISE:.0%} "
            f"(no measurable change): {', '.join(verdicts['noise']) or 'none'}.",
        ]
    return lines


def _picture_lines(out_dir: str) -> list[str]:
    """Interpolations, reconstructions and DDLS's chains, where the entry has them."""
    lines = []
    if os.path.isfile(os.path.join(out_dir, INTERPOLATION_FILE)):
        lines += [
            "Latent interpolations (each row a spherical path between two latents):",
            "",
            f"![interpolation]({INTERPOLATION_FILE})",
            "",
        ]
    if os.path.isfile(os.path.join(out_dir, RECONSTRUCTIONS_FILE)):
        lines += [
            "Reconstructions: test images (odd columns), each followed by "
            "`G(E(x))` (even columns), `model.reconstruct(x)`:",
            "",
            f"![reconstructions]({RECONSTRUCTIONS_FILE})",
            "",
        ]
    if os.path.isfile(os.path.join(out_dir, CHAINS_FILE)):
        lines += [
            "DDLS chains moving through latent space with the card's settings "
            "(16 chains, one frame every few steps; `ebgan-keras sample NAME "
            "--sampler ddls --animate chains.gif` makes one):",
            "",
            f"![DDLS chains]({CHAINS_FILE})",
            "",
        ]
    return lines


def _card_text(config: dict, metadata: dict, out_dir: str = ".") -> str:
    training = metadata["training"]
    lines = [
        f"# {config['name']}",
        "",
        config["summary"],
        "",
        "![samples](samples.png)",
        "",
        *_picture_lines(out_dir),
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
        *_quality_lines(metadata),
        "",
        "## Model",
        "",
        *_model_lines(config, metadata),
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


def _kwargs(spec: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in spec.get("kwargs", {}).items())


# ----------------------------------------------------------------------
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
        **_base_metadata(model, config),
        "weights": {"status": "absent", "reason": reason},
        "recipe_command": commands[0],
        "estimate": estimate,
        "metrics": {},
    }
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
        f'model = ek.zoo.load("{config["name"]}", weights={{"generator": URL_G, '
        '"discriminator": URL_D}, sha256={"generator": HEX_G, "discriminator": '
        "HEX_D})",
        "```",
        "",
        "## Cost (estimated from FLOPs, not measured)",
        "",
        *_estimate_lines(config, estimate, steps),
        "",
        "## Model",
        "",
        *_model_lines(config, metadata),
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
    with open(os.path.join(out_dir, CARD_FILE), "w") as handle:
        handle.write("\n".join(lines))
    metadata["files"] = {
        name: files.file_sha256(os.path.join(out_dir, name))
        for name in (CONFIG_FILE, CARD_FILE)
    }
    files.write_json(os.path.join(out_dir, METADATA_FILE), metadata)
    return metadata


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


def _backend() -> str:
    import keras

    return keras.backend.backend()
