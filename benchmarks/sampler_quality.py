"""Sample quality per latent sampler on the zoo entries: FID/KID and time.

For each zoo entry (default: the MNIST ones) this loads the shipped weights
(`ek.zoo.load`, sha256-checked) and measures plain sampling (`prior`),
truncation, DDLS (step size chosen per entry on 2,000 samples with another
seed), rejection (DRS) and Metropolis-Hastings with the entry's recipe
settings: FID and KID from 10,000 samples against the test split on the
offline domain-classifier features, and the wall time per 1,000 samples.
It calls `ebgan_keras.zoo.stages.evaluate`, the same code that wrote the
entries' model cards; results are kept per entry in `--run-root` (pass the
zoo build's run folders to reuse what the build measured, or a fresh folder
to measure again). Rows go to `benchmarks/results/sampler_quality.json`.

Usage:
    KERAS_BACKEND=jax python benchmarks/sampler_quality.py
    KERAS_BACKEND=jax python benchmarks/sampler_quality.py --entries \\
        ebgan_pt_mnist --num-samples 2000 --run-root /tmp/sq   (quicker)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import library_versions  # noqa: E402
from _common import machine_info  # noqa: E402
from _common import write_rows  # noqa: E402

MNIST_ENTRIES = ("ebgan_mnist", "ebgan_pt_mnist", "began_mnist", "magan_mnist")
MNIST_ENTRIES += ("gan_mnist",)


def measure(entry: str, run_root: str, num_samples: int | None) -> list[dict]:
    """Measures every sampler of `entry`; returns one row per sampler."""
    import keras

    from ebgan_keras import zoo
    from ebgan_keras.zoo import stages

    model = zoo.load(entry, compile=False)
    config = stages.read_config(entry)
    results = stages.evaluate(
        model, config, os.path.join(run_root, entry), num_samples=num_samples
    )
    sweep = results.pop("_ddls_sweep", None)
    # Results reused from a zoo build were measured on the build's backend.
    backend = keras.backend.backend()
    card = zoo.describe(entry)
    if card.get("metrics", {}).get("prior", {}).get("fid") == results["prior"]["fid"]:
        backend = card.get("evaluation", {}).get("backend", backend)
    prior = results["prior"]["fid"]
    base = {**machine_info(), "versions": library_versions()}
    rows = []
    for sampler, result in results.items():
        settings = {
            key: value
            for key, value in result["sampler"].items()
            if key not in ("name", "batch_size", "jit_compile", "record_energy")
        }
        rows.append(
            {
                **base,
                "entry": entry,
                "sampler": sampler,
                "backend": backend,
                "fid": round(result["fid"], 3),
                "kid": round(result["kid"], 4),
                "fid_change_vs_prior_%": round(
                    100 * (result["fid"] - prior) / prior, 1
                ),
                "seconds_per_1000": round(result["seconds_per_1000"], 3),
                "num_samples": result["num_samples"],
                "settings": settings,
                "protocol": result["report"]["fid"]["protocol"],
                "ddls_sweep": sweep if sampler == "ddls" else None,
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", nargs="+", default=list(MNIST_ENTRIES))
    parser.add_argument(
        "--run-root",
        default="runs/sampler_quality",
        help="folder of per-entry results (resumable; default: %(default)s)",
    )
    parser.add_argument(
        "--num-samples", type=int, default=None, help="default: the recipe's 10000"
    )
    args = parser.parse_args(argv)
    rows = []
    for entry in args.entries:
        rows += measure(entry, args.run_root, args.num_samples)
        for row in rows[-5:]:
            print(
                f"{row['entry']:<24} {row['sampler']:<20} FID {row['fid']:8.2f} "
                f"({row['fid_change_vs_prior_%']:+.0f}%)  KID {row['kid']:.3f}  "
                f"{row['seconds_per_1000']:.2f} s/1000"
            )
    path = write_rows("sampler_quality", rows, ("entry", "sampler", "num_samples"))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
