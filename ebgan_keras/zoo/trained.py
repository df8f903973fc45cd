"""The stages that run on a trained model: pictures, re-measuring, the card again.

- `pictures`: interpolations, reconstructions and the GIF of DDLS's chains;
- `reevaluate`: a trained entry measured again with its current recipe;
- `rewrite_card`: a trained entry's card after its recipe's text changed;
- `read_config`: an entry's recipe, validated.

`ebgan_keras.zoo.stages` runs them after training (`build`) and keeps their
names importable.
"""

from __future__ import annotations

import os

import numpy as np

from ebgan_keras import files
from ebgan_keras.run.config import validate
from ebgan_keras.samplers.factory import CALIBRATED
from ebgan_keras.zoo import convergence
from ebgan_keras.zoo.card import write_card
from ebgan_keras.zoo.entries import CHAINS_FILE
from ebgan_keras.zoo.entries import CONFIG_FILE
from ebgan_keras.zoo.entries import CURVES_FILE
from ebgan_keras.zoo.entries import GOLDEN_FILE
from ebgan_keras.zoo.entries import GRID_FILE
from ebgan_keras.zoo.entries import INTERPOLATION_FILE
from ebgan_keras.zoo.entries import RECONSTRUCTIONS_FILE
from ebgan_keras.zoo.entries import entry_dir
from ebgan_keras.zoo.entries import weight_file
from ebgan_keras.zoo.evaluation import _reference_images
from ebgan_keras.zoo.evaluation import _sweep_choices
from ebgan_keras.zoo.evaluation import evaluate

RUN_SUBDIR = "run"


def read_config(name: str) -> dict:
    """The recipe (`config.json`) of an entry, by name or entry folder, validated.

    Args:
        name: str. Entry name or entry folder.

    Returns:
        The config dict, with the schema's defaults filled in.

    Example:

    >>> from ebgan_keras.zoo import stages
    >>> stages.read_config("ebgan_pt_mnist")["class"]
    'EBGANPT'
    """
    folder = entry_dir(name)
    return validate(files.read_json(folder / CONFIG_FILE), f"zoo entry {folder.name!r}")


def pictures(model, config: dict, results: dict, out_dir: str) -> None:
    """Stage 3b: interpolations, reconstructions and a GIF of DDLS's chains.

    `interpolation.png`: 8 rows of 10 images, each row a spherical path
    between two latents. `reconstructions.png`, for a model with an encoder
    (`ek.BiGAN`): the first 32 reference images, each followed by `G(E(x))`.
    `ddls_chains.gif`: 16 chains of the card's DDLS (its measured settings:
    calibrated temperature, chosen step size and steps) moving through latent
    space, about 20 frames; only for a recipe with DDLS.

    Args:
        model: the trained model.
        config: dict. The entry's config.
        results: dict. What `evaluate` measured.
        out_dir: str. Entry folder.
    """
    from ebgan_keras import plot
    from ebgan_keras.samplers import factory

    seed = config["evaluation"].get("seed", 0)
    files.atomic_write(
        os.path.join(out_dir, INTERPOLATION_FILE),
        lambda path: plot.interpolation(model, path, seed=seed),
    )
    if getattr(model, "encoder", None) is not None and hasattr(model, "reconstruct"):
        real = _reference_images(config, None, 32)
        rebuilt = np.asarray(model.reconstruct(real))
        files.atomic_write(
            os.path.join(out_dir, RECONSTRUCTIONS_FILE),
            lambda path: plot.reconstructions(real, rebuilt, path),
        )
    if "ddls" not in results:
        return
    settings = {k: v for k, v in results["ddls"]["sampler"].items() if k != "name"}
    settings["record_every"] = max(1, int(settings.get("num_steps", 20)) // 20)
    sampler = factory.make_sampler("ddls", settings, seed=seed)
    sampler.sample(model, 16)
    frames = np.stack([np.asarray(model.generate(z)) for z in sampler.latent_path])
    files.atomic_write(
        os.path.join(out_dir, CHAINS_FILE),
        lambda path: plot.animation(frames, path, nrow=8, duration=150),
    )


def reevaluate(
    name: str,
    out_dir: str | None = None,
    run_dir: str | None = None,
    **overrides,
) -> dict:
    """Re-measures a trained entry with its (current) recipe, without training.

    The entry's weights are read from its folder (checked against the sha256
    its `metadata.json` recorded), its training provenance is kept, and the
    evaluation and card stages run again with the recipe's `evaluation`
    section as it is now: how the cards moved to calibrated DDLS, precision
    and recall and the floor without retraining. Resumable from `run_dir`.
    `out_dir` may be the entry's own folder (updated in place).

    Args:
        name: str. Entry name or entry folder (trained).
        out_dir: str. Entry folder to write. Defaults to `zoo_builds/<name>`.
        run_dir: str. Run folder of the evaluation. Defaults to
            `<out_dir>/run`.
        **overrides: `num_samples`, `reference`, `num_reference`,
            `sampler_names`, `sampler_settings` (see `run_recipe`).

    Returns:
        The new metadata of the entry.

    Example:

    ```python
    ek.zoo.reevaluate("ebgan_mnist", out_dir="zoo/ebgan_mnist",
                      run_dir="zoo_builds/ebgan_mnist/eval")
    ```
    """

    from ebgan_keras.run import builder
    from ebgan_keras.zoo import entries

    keep = ("num_samples", "reference", "num_reference")
    keep += ("sampler_names", "sampler_settings", "reference_split", "features")
    keep += ("data_dir",)
    unknown = sorted(set(overrides) - set(keep))
    if unknown:
        raise TypeError(
            f"`reevaluate` does not train: it takes only {keep}. Received: {unknown}"
        )
    source, config, metadata = _trained_entry(name, "reevaluate")
    out_dir = out_dir or os.path.join("zoo_builds", source.name)
    run_dir = run_dir or os.path.join(out_dir, RUN_SUBDIR)
    files.check_writable(out_dir)
    os.makedirs(run_dir, exist_ok=True)
    # The entry's own weights, each checked against its recorded sha256.
    paths = entries._weight_paths(source, metadata, source.name, None, None, None)
    model = builder.build_model(config)
    entries.load_networks(model, paths, source.name)
    _copy_files(
        source,
        out_dir,
        (
            *(weight_file(role) for role in model.networks()),
            GOLDEN_FILE,
            GRID_FILE,
            CURVES_FILE,
            convergence.CONVERGENCE_PLOT,
        ),
    )
    files.write_json(os.path.join(out_dir, CONFIG_FILE), config)
    results = evaluate(model, config, run_dir, **overrides)
    pictures(model, config, results, out_dir)
    return write_card(
        model,
        config,
        run_dir,
        out_dir,
        results,
        training=metadata["training"],
        command=metadata.get("recipe_command"),
        previous_curve=metadata.get("convergence"),
    )


def rewrite_card(name: str, out_dir: str | None = None) -> dict:
    """Rewrites a trained entry's card after its recipe's text changed.

    For a change of `notes`, `summary`, `paper`, `dataset` or `licence`
    (`card.TEXT_FIELDS`) in an entry's `config.json`: the card and
    `metadata.json` are written again from the measured metadata in seconds,
    where `reevaluate` would measure everything again. Anything else that
    changed (networks, training, evaluation) is refused: its numbers would
    not be what the card says. An entry whose metadata records
    `recipe_sha256` is checked against it; an older one against what its
    metadata records (the model built from the recipe, the training, the
    samplers and their settings, the DDLS sweep's grid and the protocol).

    Args:
        name: str. Entry name or entry folder (trained).
        out_dir: str. Entry folder to write (may be the entry's own).
            Defaults to `zoo_builds/<name>`.

    Returns:
        The new metadata of the entry.

    Raises:
        ValueError: the entry has no training record, or its recipe changed
            beyond its text (the message names what).

    Example:

    ```python
    ek.zoo.rewrite_card("began_mnist", out_dir="zoo/began_mnist")
    ```
    """
    from ebgan_keras.run import builder
    from ebgan_keras.zoo import card

    source, config, metadata = _trained_entry(name, "rewrite_card")
    recipe = card.recipe_sha256(config)
    recorded = metadata.get("recipe_sha256")
    if recorded is not None:
        changed = [] if recipe == recorded else ["the recipe"]
    else:
        changed = _changes_since_measured(config, metadata)
    base = card._base_metadata(builder.build_model(config), config)
    changed += [
        key
        for key, value in base.items()
        if key not in card.TEXT_FIELDS and value != metadata.get(key)
    ]
    if changed:
        raise ValueError(
            f"{source.name!r}: {', '.join(changed)} changed since the entry was "
            "measured; only its text (" + ", ".join(card.TEXT_FIELDS) + ") may "
            "change for `rewrite_card`. Re-measure with `ebgan-keras zoo build "
            f"{source.name} --evaluate-only` (or retrain) instead."
        )
    out_dir = out_dir or os.path.join("zoo_builds", source.name)
    files.check_writable(out_dir)
    _copy_files(source, out_dir, metadata.get("files", {}))
    files.write_json(os.path.join(out_dir, CONFIG_FILE), config)
    metadata = metadata | base | {"recipe_sha256": recipe}
    return card.write_card_files(config, metadata, out_dir)


def _changes_since_measured(config: dict, metadata: dict) -> list[str]:
    """What of `config` differs from what `metadata` records it was measured
    with: training, samplers and settings, DDLS sweep grid, protocol."""
    changed = []
    training, recipe = metadata["training"], config["training"]
    for key, recorded in (
        ("batch_size", training.get("batch_size")),
        ("epochs", training.get("epochs")),
    ):
        if recipe.get(key) != recorded:
            changed.append(f"training.{key}")
    evaluation = config["evaluation"]
    metrics = metadata.get("metrics", {})
    if set(evaluation["samplers"]) != set(metrics):
        changed.append("evaluation.samplers")
    for name, settings in evaluation["samplers"].items():
        used = metrics.get(name, {}).get("sampler", {})
        for key, value in settings.items():
            chosen_by_sweep = name == "ddls" and key in ("step_size", "num_steps")
            if key == "temperature" and value == CALIBRATED:
                value = used.get("temperature") if used.get("calibration") else value
            if not chosen_by_sweep and used.get(key) != value:
                changed.append(f"evaluation.samplers.{name}.{key}")
    for name, result in metrics.items():
        protocol = result.get("protocol", {})
        for key, value in (
            ("num_generated", evaluation["num_samples"]),
            ("reference", evaluation["reference"]),
            ("reference_split", evaluation.get("reference_split", "test")),
            ("features", evaluation["features"]),
        ):
            if protocol.get(key) != value:
                changed.append(f"evaluation.{key} ({name})")
    sweep, swept = evaluation.get("ddls_sweep"), metadata.get("ddls_sweep")
    default_steps = evaluation["samplers"].get("ddls", {}).get("num_steps", 10)
    if bool(sweep) != bool(swept) or (
        sweep
        and (
            set(swept["fid"]) != {"prior", *_sweep_choices(sweep, default_steps)}
            or swept["seed"] != int(sweep.get("seed", 1))
        )
    ):
        changed.append("evaluation.ddls_sweep")
    return sorted(set(changed))


def _trained_entry(name: str, what: str) -> tuple:
    """`(folder, config, metadata)` of a trained entry; a ValueError naming
    `what` needs it for one declared without weights."""
    from ebgan_keras.zoo import entries

    source = entry_dir(name)
    metadata = files.read_json(source / entries.METADATA_FILE, {})
    if not metadata.get("training"):
        raise ValueError(
            f"`{what}` needs a trained entry; {source.name!r} has no "
            f"training record (declared without weights). Received: name={name!r}"
        )
    return source, read_config(source), metadata


def _copy_files(source, out_dir: str, filenames) -> None:
    """Copies the named files that `source` has into `out_dir` (not onto
    themselves when `out_dir` is `source`)."""
    import shutil

    for filename in filenames:
        path, target = source / filename, os.path.join(out_dir, filename)
        if path.is_file() and not (
            os.path.exists(target) and os.path.samefile(path, target)
        ):
            shutil.copyfile(path, target)
