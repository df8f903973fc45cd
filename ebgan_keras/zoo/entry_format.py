"""An entry's format: its fixed file names, its errors, its JSON files, and
what its metrics mean (the best sampler within the noise band).

A leaf of the zoo (it imports no other zoo module): `entries`, `weights`,
`index` and `card` read it.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def read_entry_json(path: Path, what: str) -> dict:
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


def read_metadata(folder: Path) -> dict:
    """An entry folder's `metadata.json`, format-checked."""
    return read_entry_json(folder / METADATA_FILE, METADATA_FILE)


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


def weights_status(metadata: dict) -> str:
    """`"shipped"`, `"url"` or `"absent"`: where an entry's weights are."""
    return metadata.get("weights", {}).get("status", "absent")


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


__all__ = [
    "CARD_FILE",
    "CHAINS_FILE",
    "CONFIG_FILE",
    "CURVES_FILE",
    "DISCRIMINATOR_FILE",
    "ENCODER_FILE",
    "EntryFormatError",
    "FID_NOISE",
    "GENERATOR_FILE",
    "GOLDEN_ATOL",
    "GOLDEN_FILE",
    "GOLDEN_SAMPLES",
    "GRID_FILE",
    "INTERPOLATION_FILE",
    "IntegrityError",
    "METADATA_FILE",
    "NONE_BETTER",
    "RECONSTRUCTIONS_FILE",
    "WEIGHTS_SUFFIX",
    "WeightsUnavailableError",
    "best_sampler",
    "fid_change",
    "read_entry_json",
    "read_metadata",
    "weight_file",
    "weights_status",
]
