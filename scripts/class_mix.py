"""Which classes a zoo entry draws, plainly and through its energy's samplers.

Classifies `--num` samples of an entry, drawn from the prior and through
rejection sampling (calibrated on the first 2,000 training images, as the
cards' rows are), with the offline domain classifier of its data set, and
prints the share of each class next to the test split's. A sampler that
shifts the class mix away from the test split's raises FID even where
precision and recall do not move; the Fashion-MNIST cards quote this.

Usage:

    KERAS_BACKEND=jax python scripts/class_mix.py ebgan_pt_fashion_mnist
"""

from __future__ import annotations

import argparse

import numpy as np

import ebgan_keras as ek
from ebgan_keras.metrics.classifiers import load_domain_classifier
from ebgan_keras.zoo import stages


def class_shares(labels: np.ndarray, num_classes: int = 10) -> np.ndarray:
    """The share of each class among integer labels, shape `(num_classes,)`."""
    return np.bincount(labels, minlength=num_classes) / len(labels)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("entry", help="a shipped zoo entry on MNIST or Fashion-MNIST")
    parser.add_argument("--num", type=int, default=5000, help="samples per sampler")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    model = ek.zoo.load(args.entry, compile=False)
    config = stages.read_config(args.entry)
    evaluation = config["evaluation"]
    classifier = load_domain_classifier(evaluation["features"])
    size = evaluation.get("feature_size")
    train = stages._reference_images(config, None, stages.NUM_CALIBRATION, "train")

    def labels(images):
        images = stages.to_feature_size(np.asarray(images), size)
        probabilities = classifier.predict(images, batch_size=500, verbose=0)
        return np.argmax(np.asarray(probabilities), axis=1)

    rejection = ek.samplers.RejectionSampler.calibrate(model, train, seed=args.seed)
    draws = {
        "prior": model.generate(args.num, seed=args.seed),
        "rejection": rejection.sample(model, args.num)[0],
    }
    test = ek.data.load_arrays(evaluation["reference"])["y_test"]
    rows = {"test split": class_shares(test)}
    rows.update({name: class_shares(labels(images)) for name, images in draws.items()})
    print(f"{args.entry}: share of each class (domain classifier's argmax)")
    print("            " + " ".join(f"{c:>6d}" for c in range(10)) + "  TV to test")
    for name, shares in rows.items():
        distance = 0.5 * np.abs(shares - rows["test split"]).sum()
        print(
            f"{name:>11} " + " ".join(f"{v:6.3f}" for v in shares) + f"  {distance:.3f}"
        )


if __name__ == "__main__":
    main()
