"""`ebgan-keras zoo`: list, describe and build the entries of the model zoo."""

from __future__ import annotations

import json
import os

from ebgan_keras.cli import models
from ebgan_keras.cli import options
from ebgan_keras.cli.errors import UsageError

ZOO_EXAMPLE = """examples:
  ebgan-keras zoo list
  ebgan-keras zoo describe ebgan_pt_mnist
  ebgan-keras zoo build ebgan_pt_mnist --out my_zoo/ebgan_pt_mnist
  ebgan-keras zoo build began_celeba --data /path/to/img_align_celeba
  ebgan-keras zoo build began_celeba --data-dir /path/to/tensorflow_datasets
  ebgan-keras zoo build ebgan_pt_mnist --out /tmp/e --epochs 1 \\
      --steps-per-epoch 20 --data mnist_subset --num-samples 500 \\
      --reference mnist_subset          (a shrunk smoke run)
  ebgan-keras sample ebgan_pt_mnist --sampler ddls --out ddls.png
  ebgan-keras zoo build gan_mnist --evaluate-only --out zoo_builds/gan_mnist
                                        (re-measure a trained entry)
  ebgan-keras zoo build gan_mnist --card-only --out zoo_builds/gan_mnist
                                        (its card after its notes changed)

Rerun the same build command after an interruption to resume it."""


def add_parser(subparsers) -> None:
    """Adds `zoo` and its flags to the subparsers of `ebgan-keras`."""
    zoo = options.subparser(
        subparsers,
        "zoo",
        "pretrained models: list, describe, build",
        "List the entries of the model zoo (ebgan_keras.zoo), print an entry's "
        "model card, or build an entry from its recipe: data, training, "
        "evaluation and model card, resumable from --run-dir. `sample` and "
        "`eval` take an entry's name in place of a file and load its trained "
        "weights (checked by sha256).",
        ZOO_EXAMPLE,
    )
    zoo.add_argument(
        "action",
        choices=("list", "describe", "build"),
        help="list the entries, describe NAME, or build NAME",
    )
    zoo.add_argument("name", nargs="?", metavar="NAME", help="zoo entry")
    zoo.add_argument(
        "--out",
        metavar="ENTRY_DIR",
        help="build: the entry folder to write (default: zoo_builds/NAME)",
    )
    zoo.add_argument(
        "--run-dir",
        metavar="RUN_DIR",
        help="build: checkpoints and logs; rerun to resume (default: OUT/run, "
        "so that a build writes only under its --out)",
    )
    zoo.add_argument(
        "--epochs",
        type=options.positive_int,
        help="build: override the recipe's epochs",
    )
    zoo.add_argument(
        "--steps-per-epoch",
        type=options.positive_int,
        help="build: override the steps per epoch (one pass over the data)",
    )
    zoo.add_argument(
        "--data",
        help="build: override the training data set: a name for ek.data.load or "
        "the folder of the images (e.g. CelebA's img_align_celeba); the "
        "reference follows it when the recipe scores against its training data",
    )
    _add_build_options(zoo)


def _add_build_options(zoo) -> None:
    """The flags of `zoo build` (and `describe --json`)."""
    zoo.add_argument(
        "--data-dir",
        metavar="TFDS_DIR",
        help="build: the TFDS data folder where the data is prepared (default: "
        "$TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    zoo.add_argument(
        "--num-samples",
        type=options.positive_int,
        help="build: generated images per metric (default: the recipe's 10000)",
    )
    zoo.add_argument("--reference", help="build: override the reference data set")
    zoo.add_argument(
        "--reference-split",
        help="build: override the reference split (e.g. 'train[-10000:]' for "
        "an image folder without CelebA's partition file)",
    )
    zoo.add_argument(
        "--evaluate-only",
        action="store_true",
        help="build: no training; re-measure the trained entry NAME with its "
        "recipe's evaluation (its weights, checked by sha256) and write a new "
        "card (--out may be the entry's own folder)",
    )
    zoo.add_argument(
        "--card-only",
        action="store_true",
        help="build: no training, no measuring; rewrite the trained entry "
        "NAME's card after its config's text (notes, summary, paper, dataset, "
        "licence) changed, from the numbers it has (anything else changed is "
        "refused)",
    )
    zoo.add_argument(
        "--json", action="store_true", help="describe: print the card as JSON"
    )


def _entry_line(entry: dict) -> str:
    if entry.get("weights") == "broken":
        return f"{entry['name']:<24} BROKEN: {entry.get('error', '?')}"
    fid = entry.get("fid")
    quality = "-"
    if fid:
        # `prior`: no sampler beats plain sampling by more than the noise band.
        best = "prior: none better" if fid["sampler"] == "prior" else fid["sampler"]
        quality = f"FID {fid['value']:.2f} ({best})"
    shape = "x".join(str(d) for d in entry.get("image_shape") or ())
    return (
        f"{entry['name']:<24} {entry.get('class') or '?':<8} {shape:<8} "
        f"{entry.get('weights', '?'):<8} {quality}"
    )


def run(args) -> int:
    """Runs `ebgan-keras zoo`, delegating to `ebgan_keras.zoo`."""
    build_options = ("out", "run_dir", "epochs", "steps_per_epoch", "data")
    build_options += ("data_dir", "num_samples", "reference", "reference_split")
    if args.action != "build":
        given = [name for name in build_options if getattr(args, name) is not None]
        given += ["evaluate_only"] if args.evaluate_only else []
        given += ["card_only"] if args.card_only else []
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise UsageError(f"{flag} is only for `zoo build`. Received: {flag}")
    if args.action == "list":
        if args.name is not None:
            raise UsageError(f"`zoo list` takes no NAME. Received: {args.name!r}")
        entries = list(models.zoo_module().list_entries())
        print(f"{'name':<24} {'class':<8} {'images':<8} {'weights':<8} quality")
        for entry in entries:
            print(_entry_line(entry))
        if not entries:
            print("(the zoo has no entries)")
        return 0
    if not args.name:
        raise UsageError(
            f"`zoo {args.action}` needs the NAME of an entry (see `ebgan-keras zoo "
            "list`). Received: no NAME"
        )
    zoo_module = models.zoo_module(args.name)
    if args.action == "describe":
        description = models.zoo_call(zoo_module.describe, args.name, "describe")
        if args.json or not description.get("card"):
            print(json.dumps(description, indent=1, sort_keys=True, default=str))
        else:
            print(description["card"])
            print(f"(entry folder: {description['path']})")
        return 0
    overrides = {
        name: getattr(args, name)
        for name in build_options[2:]
        if getattr(args, name) is not None
    }
    if args.evaluate_only:
        trains = [n for n in ("epochs", "steps_per_epoch", "data") if n in overrides]
        if trains:
            flag = "--" + trains[0].replace("_", "-")
            raise UsageError(
                f"{flag} trains; --evaluate-only does not. Received: {flag} with "
                "--evaluate-only"
            )
    if args.card_only:
        given = [f"--{n.replace('_', '-')}" for n in overrides]
        given += ["--run-dir"] if args.run_dir is not None else []
        given += ["--evaluate-only"] if args.evaluate_only else []
        if given:
            raise UsageError(
                f"--card-only takes only --out. Received: {given[0]} with --card-only"
            )
        metadata = models.zoo_call(
            lambda name: zoo_module.rewrite_card(name, out_dir=args.out),
            args.name,
            "build",
        )
        out = args.out or os.path.join("zoo_builds", args.name)
        print(f"Rewrote the card of {args.name} -> {out} (nothing measured again)")
        return 0
    build = zoo_module.reevaluate if args.evaluate_only else zoo_module.build
    metadata = models.zoo_call(
        lambda name: build(name, out_dir=args.out, run_dir=args.run_dir, **overrides),
        args.name,
        "build",
    )
    measured = ", ".join(
        f"{sampler}: FID {result['fid']:.2f}"
        for sampler, result in metadata["metrics"].items()
    )
    out = args.out or os.path.join("zoo_builds", args.name)
    print(
        f"Built {args.name} in {metadata['training']['wall_time_s'] / 60:.1f} min "
        f"of training ({metadata['training']['steps']} steps) -> {out} ({measured})"
    )
    return 0
