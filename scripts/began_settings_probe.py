"""Probe BEGAN settings on MNIST or Fashion-MNIST: how `k`, diversity and FID move.

Trains `ek.BEGAN` with the zoo's 32x32 networks for `--steps` steps and, every
`--every` steps, records `k`, the energies, the per-pixel standard deviation
of 256 samples (a collapse detector: real digits ~0.3) and the FID of 2,000
samples against 2,000 test images (the offline domain classifier). Rows go to
`<out>/<name>/log.json`, sample grids to `<out>/<name>/grid_<step>.png`.

These probes chose the settings of the `began_mnist` and `began_fashion_mnist`
recipes; their cards quote the results. Usage:

    python scripts/began_settings_probe.py --name ttur8 --gamma 1.0 \
        --lambda-k 0.05 --d-lr 2.5e-5 --g-lr 2e-4 --steps 3000
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import ebgan_keras as ek  # noqa: E402
from ebgan_keras.zoo import stages  # noqa: E402

FEATURES = {"mnist": "mnist_classifier", "fashion_mnist": "fashion_mnist_classifier"}


def parse_args() -> argparse.Namespace:
    """Command-line arguments of the probe."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="name of this probe's folder")
    parser.add_argument("--out", default="began_probes", help="parent folder")
    parser.add_argument("--data", default="mnist", choices=sorted(FEATURES))
    parser.add_argument("--gamma", type=float, default=0.5)
    parser.add_argument("--lambda-k", type=float, default=1e-3)
    parser.add_argument("--d-lr", type=float, default=1e-4, help="Adam lr of D")
    parser.add_argument("--g-lr", type=float, default=None, help="default: --d-lr")
    parser.add_argument("--filters", type=int, default=16, help="n of both nets")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--every", type=int, default=500)
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    keras.utils.set_random_seed(0)
    model = ek.BEGAN(
        ek.networks.began_generator(
            latent_dim=64, image_size=32, channels=1, filters=args.filters
        ),
        ek.networks.began_discriminator(
            image_size=32, channels=1, filters=args.filters, hidden_dim=64
        ),
        gamma=args.gamma,
        lambda_k=args.lambda_k,
        seed=0,
    )
    model.compile(
        keras.optimizers.Adam(args.d_lr, beta_1=0.5),
        keras.optimizers.Adam(args.g_lr or args.d_lr, beta_1=0.5),
    )
    data = ek.data.load(
        args.data, batch_size=args.batch, image_size=32, channels=1, seed=0
    ).repeat()
    test = ek.data.load(
        args.data,
        split="test",
        batch_size=500,
        shuffle=False,
        drop_remainder=False,
        image_size=32,
        channels=1,
    )
    reference = np.concatenate([np.asarray(batch) for batch in test])[:2000]
    reference = stages.to_feature_size(reference, (28, 28))
    folder = os.path.join(args.out, args.name)
    os.makedirs(folder, exist_ok=True)
    rows = []
    start = time.time()

    class Probe(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            images = np.asarray(model.generate(2000, seed=1))
            report = ek.metrics.evaluate(
                stages.to_feature_size(images, (28, 28)),
                reference=reference,
                metrics=("fid",),
                features=FEATURES[args.data],
                seed=0,
            )
            row = {
                "step": (epoch + 1) * args.every,
                "seconds": round(time.time() - start, 1),
                "pixel_std": round(float(images[:256].std(axis=0).mean()), 4),
                "fid_2000": round(float(report["fid"]), 2),
                **{key: round(float(value), 4) for key, value in logs.items()},
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
            ek.plot.grid(
                images[:64], path=os.path.join(folder, f"grid_{row['step']}.png")
            )
            with open(os.path.join(folder, "log.json"), "w") as handle:
                json.dump({"args": vars(args), "rows": rows}, handle, indent=1)

    model.fit(
        data,
        epochs=args.steps // args.every,
        steps_per_epoch=args.every,
        callbacks=[Probe()],
        verbose=0,
    )


if __name__ == "__main__":
    main()
