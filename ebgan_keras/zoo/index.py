"""The zoo's index: `zoo/README.md`, every shipped entry beside its baseline."""

from __future__ import annotations

import json

from ebgan_keras.zoo import entries
from ebgan_keras.zoo.entry_format import CONFIG_FILE
from ebgan_keras.zoo.entry_format import METADATA_FILE
from ebgan_keras.zoo.entry_format import NONE_BETTER
from ebgan_keras.zoo.entry_format import best_sampler
from ebgan_keras.zoo.entry_format import read_entry_json
from ebgan_keras.zoo.entry_format import read_metadata
from ebgan_keras.zoo.entry_format import weights_status


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
        entry: read_entry_json(
            entries._shipped_root() / entry / CONFIG_FILE, CONFIG_FILE
        )
        for entry in entries._shipped_names()
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
    for name in entries._shipped_names():
        if not (entries._shipped_root() / name / METADATA_FILE).is_file():
            continue
        metadata = read_metadata(entries._shipped_root() / name)
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
        baseline_cells = _baseline_cells(baseline, prior_value, best_value)
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


def _baseline_cells(baseline, prior_value, best_value) -> list[str]:
    """The baseline's cells of an entry's row: link, FIDs, whether it beats it."""
    if not baseline:
        return ["-", "-", "-"]
    link = f"[{baseline}]({baseline}/README.md)"
    other = read_metadata(entries._shipped_root() / baseline).get("metrics", {})
    _, _, other_prior, other_best = _fid_cells(other)
    if other_prior is None:
        return [link, "-", "-"]
    beats = [
        "yes" if mine < theirs else "no"
        for mine, theirs in ((prior_value, other_prior), (best_value, other_best))
    ]
    return [link, f"{other_prior:.2f} / {other_best:.2f}", " / ".join(beats)]


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
    for name in entries._shipped_names():
        folder = entries._shipped_root() / name
        if not (folder / METADATA_FILE).is_file():
            continue
        metadata = read_metadata(folder)
        if weights_status(metadata) != "absent":
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
    path = path or (entries._shipped_root() / "README.md")
    with open(path, "w") as handle:
        handle.write(text)
    return text


__all__ = ["INDEX_HEADER", "baseline_of", "markdown_table", "write_index"]
