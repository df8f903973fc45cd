"""`ebgan-keras eval`: FID, KID, IS, precision and recall of a model's samples."""

from __future__ import annotations

from ebgan_keras.cli import models
from ebgan_keras.cli import options
from ebgan_keras.cli import sampling
from ebgan_keras.cli.errors import UsageError

EVAL_EXAMPLE = """examples:
  ebgan-keras eval runs/quickstart/model.keras --metrics fid,kid --num 10000 \\
      --reference mnist
  ebgan-keras eval runs/f/model.keras --reference fashion_mnist --json f.json
  ebgan-keras eval ebgan_pt_mnist --num 2000 --reference mnist_subset  (zoo entry)

  ebgan-keras eval ebgan_pt_mnist --sampler ddls --num 2000  (DDLS's samples)

--features auto picks mnist_classifier for mnist / mnist_subset references,
fashion_mnist_classifier for fashion_mnist (both offline, 28x28 grey) and
inception_v3 otherwise (needs its weights): ek.metrics.auto_features.
--sampler scores that sampler's samples (a zoo entry's with its card's
settings); rejection, mh and --ddls-temperature calibrated calibrate the
energy on the first --num-calibration (2,000) images of the
--calibration-split (test) split of the reference data set."""


def add_parser(subparsers) -> None:
    """Adds `eval` and its flags to the subparsers of `ebgan-keras`."""
    evaluate = options.subparser(
        subparsers,
        "eval",
        "measure FID/KID/IS/precision-recall of a saved model",
        "Generate --num images from a saved model (or a zoo entry) and compare "
        "them with a reference data set; prints each value with its protocol "
        "(features, sample counts, reference split, seed).",
        EVAL_EXAMPLE,
    )
    evaluate.add_argument(
        "model_file",
        metavar="FILE_OR_ENTRY",
        help="a .keras model file, or the name of a zoo entry",
    )
    evaluate.add_argument(
        "--metrics",
        type=options.metric_names,
        default=("fid", "kid"),
        help=f"comma-separated, of {', '.join(options.METRICS)} (default: fid,kid)",
    )
    evaluate.add_argument(
        "--num",
        type=options.positive_int,
        default=10000,
        help="generated images (default: 10000)",
    )
    evaluate.add_argument(
        "--reference",
        help="reference data set name for ek.data.load (default: a zoo entry's "
        "own reference, else mnist)",
    )
    evaluate.add_argument(
        "--reference-split", default="test", help="reference split (default: test)"
    )
    evaluate.add_argument(
        "--num-reference",
        type=options.positive_int,
        help="reference images used (default: the whole split)",
    )
    evaluate.add_argument(
        "--features",
        choices=options.FEATURES,
        default="auto",
        help="feature extractor (default: auto)",
    )
    evaluate.add_argument(
        "--seed", type=options.seed, default=0, help="seed (default: 0)"
    )
    evaluate.add_argument("--json", help="also write the results to this JSON file")
    options.add_sampler_options(evaluate, "eval")


def run(args) -> int:
    """Runs `ebgan-keras eval`; see `ebgan-keras eval --help`."""
    if args.num < 2:
        raise UsageError(f"--num must be at least 2. Received: {args.num}")
    sampling.check_sampler_options(args)
    models.check_output_files(args.json)
    model = models.load_model(args.model_file)
    import dataclasses

    import numpy as np

    from ebgan_keras import samplers
    from ebgan_keras.metrics import EvaluationReport
    from ebgan_keras.metrics import MetricResult
    from ebgan_keras.metrics import evaluate as evaluate_model
    from ebgan_keras.metrics import resolve_features

    reference_name = args.reference or models.default_reference(model)
    features = resolve_features(args.features, reference_name)
    reference = models.load_real(
        model, reference_name, args.reference_split, "--reference"
    )
    sampler, note = sampling.make_sampler(args, model, reference_name)
    if note:
        print(note)
    # The samples the zoo's evaluation stage scores for a card's row: the same
    # seed stream, clipped to the pixel range (BEGAN's generator has no tanh).
    # Chunks that stream through the extractor: memory flat in --num.
    prior = {"class_name": "prior", "config": {"seed": args.seed}}
    chunks = samplers.sample_in_chunks(sampler or samplers.get(prior), model, args.num)
    generated = (np.clip(images, -1.0, 1.0) for images, _ in chunks)
    if features.endswith("_classifier") and model.image_shape[:2] != (28, 28):
        # The domain classifiers read 28x28: both sides are resized the same way.
        from ebgan_keras.zoo.stages import to_feature_size

        limit = args.num_reference
        real = np.concatenate([np.asarray(batch) for batch in reference], axis=0)
        reference = to_feature_size(real[:limit] if limit else real, (28, 28))
        generated = (to_feature_size(images, (28, 28)) for images in generated)
    try:
        report = evaluate_model(
            generated,
            reference=reference,
            metrics=args.metrics,
            num_samples=args.num,
            features=features,
            seed=args.seed,
            num_reference=args.num_reference,
            reference_name=reference_name,
            reference_split=args.reference_split,
            kid_subset_size=min(1000, args.num),
        )
    except (ValueError, OSError) as error:
        raise UsageError(f"cannot evaluate {args.model_file!r}: {error}") from None
    # The sampler is part of the protocol: a number without it means nothing.
    sampler_id = options.SAMPLER_IDS[args.sampler]
    report = EvaluationReport(
        {
            name: MetricResult(
                result.metric,
                result.values,
                dataclasses.replace(
                    result.protocol,
                    details={**result.protocol.details, "sampler": sampler_id},
                ),
            )
            for name, result in report.items()
        }
    )
    print(report)
    if args.json:
        from ebgan_keras import files

        results = report.to_dict()
        if sampler is not None:
            for result in results.values():
                result["protocol"]["details"]["sampler_config"] = sampler.get_config()
        files.write_json(args.json, results)
    return 0
