"""What each model's representation is worth: 1-NN and linear-probe accuracy.

For MNIST (or Fashion-MNIST) this scores frozen features of the full train
split (60,000, to fit) on the full test split (10,000, to score) with
`ek.metrics.nearest_neighbor_accuracy` (Euclidean, as the official BiGAN
code scores its Table 1 figures, and cosine) and `ek.metrics.linear_probe`
(multinomial logistic regression, L-BFGS), for:

- raw pixels;
- BiGAN's and BigBiGAN's encoders `E(x)` (zoo entries `bigan_mnist`,
  `bigbigan_mnist`);
- latent regressors fitted here to the generators of `ebgan_pt_mnist` and
  `gan_mnist` (`ek.inversion.fit_encoder`, `||E(G(z)) - z||^2`);
- each of those encoders' last hidden layer ("E hidden", the features the
  official BiGAN code's 1-NN, `NNC_e-`, scores; `encode(x, features="hidden")`);
- the autoencoder discriminators' codes of `ebgan_pt_mnist`, `began_mnist`
  and `magan_mnist` (`model.discriminator_code`).

Encoders also get the mean per-pixel squared error of `G(E(x))` on the test
images and a picture of `x` (odd columns) next to `G(E(x))` (even columns) in
`benchmarks/results/reconstructions_<name>.png`. Every representation's row
is kept in `--run-root` as soon as it is measured (and each fitted latent
regressor's weights), so an interrupted run resumes where it stopped. Rows go
to `benchmarks/results/representation.json`, the table to
`benchmarks/results/representation.md` and `benchmarks/RESULTS.md`.

Usage:
    KERAS_BACKEND=jax python benchmarks/representation.py
    KERAS_BACKEND=jax python benchmarks/representation.py --only pixels \\
        --num-train 5000 --run-root /tmp/rep   (quicker)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RESULTS_DIR  # noqa: E402
from _common import library_versions  # noqa: E402
from _common import machine_info  # noqa: E402
from _common import write_rows  # noqa: E402

#: `benchmarks/results`, or `$EK_BENCH_RESULTS_DIR` (as for every benchmark).
RESULTS = RESULTS_DIR
#: The BiGAN paper's MNIST 1-NN accuracies (Donahue et al., 2017, Table 1).
PAPER_1NN = {"BiGAN E(x)": 0.9739, "latent regressor": 0.9744, "pixels": 0.969}

#: (representation name, kind, zoo entry) per data set.
REPRESENTATIONS = {
    "mnist": [
        ("pixels", "pixels", None),
        ("bigan_mnist E(x)", "encoder", "bigan_mnist"),
        ("bigbigan_mnist E(x)", "encoder", "bigbigan_mnist"),
        ("ebgan_pt_mnist latent regressor", "regressor", "ebgan_pt_mnist"),
        ("gan_mnist latent regressor", "regressor", "gan_mnist"),
        ("bigan_mnist E hidden", "encoder hidden", "bigan_mnist"),
        ("bigbigan_mnist E hidden", "encoder hidden", "bigbigan_mnist"),
        (
            "ebgan_pt_mnist latent regressor hidden",
            "regressor hidden",
            "ebgan_pt_mnist",
        ),
        ("gan_mnist latent regressor hidden", "regressor hidden", "gan_mnist"),
        ("ebgan_pt_mnist D code", "code", "ebgan_pt_mnist"),
        ("began_mnist D code", "code", "began_mnist"),
        ("magan_mnist D code", "code", "magan_mnist"),
    ],
    "fashion_mnist": [
        ("pixels", "pixels", None),
        ("ebgan_pt_fashion_mnist D code", "code", "ebgan_pt_fashion_mnist"),
        ("began_fashion_mnist D code", "code", "began_fashion_mnist"),
    ],
}


def load_split(name: str, num_train: int | None) -> tuple:
    """Train and test images in `[-1, 1]` `(N, 28, 28, 1)` with their labels."""
    from ebgan_keras import data

    arrays = data.load_arrays(name)

    def images(pixels):
        return pixels[..., None].astype("float32") / 127.5 - 1.0

    train_x, train_y = images(arrays["x_train"]), arrays["y_train"]
    if num_train:
        train_x, train_y = train_x[:num_train], train_y[:num_train]
    return train_x, train_y, images(arrays["x_test"]), arrays["y_test"]


def _save_reconstructions(name: str, images, reconstructions) -> str:
    from ebgan_keras import plot

    path = RESULTS / f"reconstructions_{name.split()[0]}.png"
    plot.reconstructions(images, reconstructions, str(path))
    return path.name


def _resize(images, size) -> np.ndarray:
    from ebgan_keras.zoo.stages import to_feature_size

    return np.concatenate(
        [
            to_feature_size(images[start : start + 10000], size)
            for start in range(0, len(images), 10000)
        ]
    )


def features_of(kind: str, entry: str | None, split: tuple, run_root: Path, args):
    """`(train_features, test_features, extra)` of one representation."""
    train_x, _, test_x, _ = split
    if kind == "pixels":
        return train_x.reshape(len(train_x), -1), test_x.reshape(len(test_x), -1), {}
    from ebgan_keras import inversion
    from ebgan_keras import networks
    from ebgan_keras import zoo

    model = zoo.load(entry, compile=False)
    if tuple(model.image_shape) != tuple(train_x.shape[1:]):
        # Entries trained on resized images (began_mnist: 32x32) see the
        # same bilinear, antialiased resize here.
        train_x, test_x = (_resize(x, model.image_shape[:2]) for x in (train_x, test_x))
        extra_size = {"resized_to": list(model.image_shape[:2])}
    else:
        extra_size = {}
    if kind == "code":
        return (
            model.discriminator_code(train_x),
            model.discriminator_code(test_x),
            extra_size,
        )
    extra = dict(extra_size)
    kind, _, hidden = kind.partition(" ")
    features = hidden or "latents"
    if kind == "encoder":
        encoder = model
    else:
        weights = run_root / f"{entry}_regressor.weights.h5"
        encoder_net = networks.bigan_mlp_encoder(
            model.image_shape, model.latent_dim, hidden_units=(512, 512)
        )
        if weights.exists():
            encoder = inversion.LatentRegressor(
                encoder_net, model.generator, model.latent_distribution
            )
            encoder.encoder.load_weights(str(weights))
        else:
            start = time.time()
            encoder = inversion.fit_encoder(
                model,
                train_x,
                encoder=encoder_net,
                epochs=args.regressor_epochs,
                seed=0,
                verbose=2,
            )
            encoder.encoder.save_weights(str(weights))
            history = encoder.history.history
            extra["regressor_fit_s"] = round(time.time() - start, 1)
            extra["regressor_final_latent_loss"] = float(history["latent_loss"][-1])
        extra["regressor_epochs"] = args.regressor_epochs
    if not hidden:  # the same reconstructions as the encoder's own row
        rebuilt = encoder.reconstruct(test_x)
        extra["reconstruction_mse"] = float(np.mean((rebuilt - test_x) ** 2))
        extra["reconstruction_picture"] = _save_reconstructions(
            f"{entry}_{kind}", test_x[:32], rebuilt[:32]
        )
    return (
        encoder.encode(train_x, features=features),
        encoder.encode(test_x, features=features),
        extra,
    )


def measure(name: str, kind: str, entry, split, run_root: Path, args) -> dict:
    """One row: the representation's size, 1-NN and linear-probe accuracy."""
    import ebgan_keras as ek

    _, train_y, _, test_y = split
    start = time.time()
    train_f, test_f, extra = features_of(kind, entry, split, run_root, args)
    features_s = time.time() - start
    start = time.time()
    nearest = ek.metrics.nearest_neighbor_accuracy(train_f, train_y, test_f, test_y)
    nearest_s = time.time() - start
    start = time.time()
    euclidean = ek.metrics.nearest_neighbor_accuracy(
        train_f, train_y, test_f, test_y, metric="euclidean"
    )
    euclidean_s = time.time() - start
    start = time.time()
    probe = ek.metrics.linear_probe(
        train_f, train_y, test_f, test_y, max_iterations=args.probe_iterations
    )
    probe_s = time.time() - start
    return {
        "dataset": args.dataset,
        "representation": name,
        "kind": kind,
        "entry": entry,
        "size": int(train_f.shape[1]),
        "nn_accuracy": nearest,
        "nn_accuracy_euclidean": euclidean,
        "probe_accuracy": probe,
        "num_train": len(train_y),
        "num_test": len(test_y),
        "nn_metric": "nn_accuracy: cosine; nn_accuracy_euclidean: Euclidean",
        "probe": f"logistic, L-BFGS {args.probe_iterations} iterations, l2 1e-4",
        "features_s": round(features_s, 1),
        "nn_s": round(nearest_s, 1),
        "nn_euclidean_s": round(euclidean_s, 1),
        "probe_s": round(probe_s, 1),
        **extra,
    }


def markdown(rows: list[dict]) -> str:
    """The representation table, best 1-NN first per data set."""
    lines = []
    for dataset in sorted({row["dataset"] for row in rows}):
        part = sorted(
            (row for row in rows if row["dataset"] == dataset),
            key=lambda row: -row.get("nn_accuracy_euclidean", row["nn_accuracy"]),
        )
        lines += [
            f"### Representations on {dataset} (train {part[0]['num_train']:,} "
            f"to fit, test {part[0]['num_test']:,} to score)",
            "",
            "| representation | size | 1-NN (Euclidean) | 1-NN (cosine) | "
            "linear probe | reconstruction MSE |",
            "|---|---|---|---|---|---|",
        ]
        for row in part:
            mse = row.get("reconstruction_mse")
            euclidean = row.get("nn_accuracy_euclidean")
            lines.append(
                f"| {row['representation']} | {row['size']} | "
                f"{'' if euclidean is None else f'{100 * euclidean:.2f}%'} | "
                f"{100 * row['nn_accuracy']:.2f}% | "
                f"{100 * row['probe_accuracy']:.2f}% | "
                f"{'' if mse is None else f'{mse:.4f}'} |"
            )
        lines.append("")
    lines.append(
        "Anchor (BiGAN paper, Table 1, MNIST 1-NN): BiGAN 97.39%, latent "
        "regressor 97.44%, pixels about 96.9%; the official code "
        "(jeffdonahue/bigan, `train_gan.py`) measures them with the Euclidean "
        "distance on the encoder's last hidden layer (`NNC_e-`, our \"E "
        "hidden\" rows), after 400 epochs (its README's log: 96.28% at epoch "
        "25, 97.14% at 200, 97.35% at 400; on `E(x)` itself 92.10% at 400)."
    )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", default="mnist", choices=sorted(REPRESENTATIONS))
    parser.add_argument("--only", nargs="*", help="representation names to measure")
    parser.add_argument("--num-train", type=int, default=None)
    parser.add_argument("--regressor-epochs", type=int, default=3)
    parser.add_argument("--probe-iterations", type=int, default=500)
    parser.add_argument("--run-root", default="runs/representation")
    args = parser.parse_args(argv)

    import keras

    run_root = Path(args.run_root) / args.dataset
    run_root.mkdir(parents=True, exist_ok=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    split = load_split(args.dataset, args.num_train)
    context = {
        key: value for key, value in machine_info().items() if key != "cpu_flags"
    }
    context.update(backend=keras.backend.backend(), versions=library_versions())
    rows = []
    for name, kind, entry in REPRESENTATIONS[args.dataset]:
        if args.only and name not in args.only and kind not in args.only:
            continue
        done = run_root / f"{name.replace(' ', '_')}.json"
        if done.exists():
            row = json.loads(done.read_text())
        else:
            print(f"measuring {name} ...", flush=True)
            row = {**measure(name, kind, entry, split, run_root, args), **context}
            done.write_text(json.dumps(row, indent=1))
        print(
            f"{name}: 1-NN {100 * row['nn_accuracy']:.2f}%, "
            f"probe {100 * row['probe_accuracy']:.2f}%",
            flush=True,
        )
        rows.append(row)
    write_rows("representation", rows, ("dataset", "representation", "num_train"))
    stored = json.loads((RESULTS / "representation.json").read_text())
    (RESULTS / "representation.md").write_text(markdown(stored))
    print((RESULTS / "representation.md").read_text())


if __name__ == "__main__":
    main()
