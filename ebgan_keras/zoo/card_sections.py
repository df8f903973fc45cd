"""The sections of a model card: the model, its quality, its pictures.

`card` (a trained entry's card) and `card_declared` (an entry declared
without weights) are written from these.
"""

from __future__ import annotations

import json
import os

from ebgan_keras.run.config import DEFAULT_NETWORK_ROLES
from ebgan_keras.run.config import FORMAT_VERSION
from ebgan_keras.zoo.entry_format import CHAINS_FILE
from ebgan_keras.zoo.entry_format import FID_NOISE
from ebgan_keras.zoo.entry_format import INTERPOLATION_FILE
from ebgan_keras.zoo.entry_format import RECONSTRUCTIONS_FILE
from ebgan_keras.zoo.entry_format import fid_change


def base_metadata(model, config: dict) -> dict:
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


def model_lines(config: dict, metadata: dict) -> list[str]:
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


def _kwargs(spec: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in spec.get("kwargs", {}).items())


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


def _sampler_rows(metadata: dict, prior) -> tuple[list, list]:
    """A table row and an `eval` command per measured sampler."""
    rows, commands = [], []
    for name, result in metadata["metrics"].items():
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
    return rows, commands


def _floor(floor) -> tuple[list, list]:
    """The floor's table row and the line that says what it is."""
    if not floor:
        return [], []
    row = (
        f"| *floor: {floor['num_images']:,} real {floor['split']} images* "
        f"| {floor['fid']:.2f} | {floor['kid']:.3f} "
        f"| {_cell(floor.get('precision'))} | {_cell(floor.get('recall'))} "
        "| - | - |"
    )
    return [row], [
        "",
        "The floor is what a perfect generator would score: real training "
        "images, through the same path as the samples (size, resize), "
        "against the same reference.",
    ]


def _sweep_lines(metadata: dict) -> list[str]:
    """How the card's DDLS settings were chosen (its sweep), if recorded."""
    sweep = metadata.get("ddls_sweep")
    if not sweep:
        return []
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
    return [
        "",
        f"DDLS settings chosen on {sweep['num_samples']} samples with seed "
        f"{sweep['seed']}, scored against {against}"
        + source
        + f" (FID by step size / steps{axes}: {cells}); chosen: {chosen}.",
    ]


def _verdict_lines(measured: dict, prior: float) -> list[str]:
    """Which samplers help, hurt or change FID within the noise band."""
    verdicts = {"helped": [], "hurt": [], "noise": []}
    for name, result in measured.items():
        if name != "prior":
            change = fid_change(result["fid"], prior)
            if abs(change) <= FID_NOISE:
                verdicts["noise"].append(name)
            else:
                verdicts["helped" if change < 0 else "hurt"].append(name)
    return [
        "",
        f"Improve FID over plain sampling by more than {FID_NOISE:.0%} here: "
        f"{', '.join(verdicts['helped']) or 'none'}; make it worse: "
        f"{', '.join(verdicts['hurt']) or 'none'}; within {FID_NOISE:.0%} "
        f"(no measurable change): {', '.join(verdicts['noise']) or 'none'}.",
    ]


def quality_lines(metadata: dict) -> list[str]:
    """The card's Quality section: a row per sampler, the floor, the commands."""
    measured = metadata["metrics"]
    if not measured:
        return ["No metrics: this entry has no weights."]
    prior = measured.get("prior", {}).get("fid")
    rows, commands = _sampler_rows(metadata, prior)
    protocol = measured.get("prior", next(iter(measured.values())))["protocol"]
    floor_rows, floor_lines = _floor(metadata.get("floor"))
    rows += floor_rows
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
    lines += _sweep_lines(metadata)
    if prior is not None:
        lines += _verdict_lines(measured, prior)
    return lines


def picture_lines(out_dir: str) -> list[str]:
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


__all__ = [
    "CLI_SAMPLERS",
    "base_metadata",
    "eval_command",
    "model_lines",
    "picture_lines",
    "quality_lines",
]
