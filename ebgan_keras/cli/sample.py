"""`ebgan-keras sample`: a grid of samples from a saved model or a zoo entry."""

from __future__ import annotations

from ebgan_keras.cli import models
from ebgan_keras.cli import options
from ebgan_keras.cli import sampling

SAMPLE_EXAMPLE = """examples:
  ebgan-keras sample runs/quickstart/model.keras --out samples.png
  ebgan-keras sample runs/quickstart/model.keras --sampler ddls --num 64 \\
      --out ddls.png --npz ddls.npz --seed 1
  ebgan-keras sample ebgan_pt_mnist --sampler ddls --out ddls.png  (a zoo entry)
  ebgan-keras sample ebgan_pt_mnist --sampler ddls --ddls-temperature calibrated \\
      --animate chains.gif
  ebgan-keras sample ebgan_pt_mnist --sampler rejection --out drs.png

--npz writes `images` (N, H, W, C) in [-1, 1] and their `latents` (N, D).
A zoo entry samples with the settings of its card (config.json's
evaluation.samplers; for DDLS the step size its card chose). rejection, mh
and --ddls-temperature calibrated fit a logistic calibration of the energy
(ek.samplers.EnergyCalibration) on the first --num-calibration (2,000)
images of the --calibration-split (test) split of --reference: real images
the model never trained on."""


def add_parser(subparsers) -> None:
    """Adds `sample` and its flags to the subparsers of `ebgan-keras`."""
    sample = options.subparser(
        subparsers,
        "sample",
        "draw samples from a saved model into a PNG grid",
        "Load a model saved by `ebgan-keras train` or `model.save` (a .keras "
        "file) and write a grid of samples, optionally improved by a latent "
        "sampler (ek.samplers). A name that is not a file is looked up in the "
        "model zoo (`ebgan-keras zoo list`).",
        SAMPLE_EXAMPLE,
    )
    sample.add_argument(
        "model_file",
        metavar="FILE_OR_ENTRY",
        help="a .keras model file, or the name of a zoo entry",
    )
    options.add_sampler_options(sample, "sample")
    sample.add_argument(
        "--num", type=options.positive_int, default=64, help="samples (default: 64)"
    )
    sample.add_argument(
        "--seed", type=options.seed, default=0, help="seed (default: 0)"
    )
    sample.add_argument(
        "--out", default="samples.png", help="PNG grid to write (default: samples.png)"
    )
    sample.add_argument("--npz", help="also write images and latents to this .npz")
    sample.add_argument(
        "--animate",
        metavar="FILE.gif",
        help="with --sampler ddls: also write an animated GIF of the chains "
        f"(the first {options.MAX_ANIMATED_CHAINS} samples, one grid cell per chain) "
        "moving through latent space",
    )
    sample.add_argument(
        "--animate-every",
        type=options.positive_int,
        metavar="K",
        help="with --animate: one frame every K steps, and the last "
        "(default: about 20 frames, K = max(1, steps // 20))",
    )


def run(args) -> int:
    """Runs `ebgan-keras sample`; see `ebgan-keras sample --help`."""
    sampling.check_sampler_options(args)
    models.check_output_files(args.out, args.npz, args.animate)
    model = models.load_model(args.model_file)
    import numpy as np

    from ebgan_keras import files
    from ebgan_keras import memory
    from ebgan_keras import plot

    memory.check_fits(  # the grid holds every sample (float32, then its pixels)
        12.0 * args.num * np.prod(model.image_shape), f"--num {args.num} in one grid"
    )
    sampler, note = sampling.make_sampler(args, model, args.reference)
    if note:
        print(note)
    if args.animate:
        sampler.record_every = args.animate_every or max(1, sampler.num_steps // 20)
    images, latents = sampling.draw(args, model, sampler)
    files.atomic_write(args.out, lambda path: plot.grid(images, path))
    written = [args.out]
    if args.npz:
        arrays = {"images": np.asarray(images), "latents": np.asarray(latents)}
        files.atomic_write(args.npz, lambda path: np.savez_compressed(path, **arrays))
        written.append(args.npz)
    if args.animate:
        chains = sampler.latent_path[:, : options.MAX_ANIMATED_CHAINS]
        frames = np.stack([np.asarray(model.generate(z)) for z in chains])
        files.atomic_write(args.animate, lambda path: plot.animation(frames, path))
        written.append(
            f"{args.animate} ({len(frames)} frames, steps "
            f"{sampler.path_steps[0]}..{sampler.path_steps[-1]} every "
            f"{sampler.record_every})"
        )
    print(
        f"Wrote {args.num} samples ({args.sampler} sampler) to " + " and ".join(written)
    )
    return 0
