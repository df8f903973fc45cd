"""Metric results that always carry the protocol they were measured with."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

PROTOCOL_FIELDS = (
    "metric",
    "features",
    "num_generated",
    "num_reference",
    "reference",
    "reference_split",
    "image_size",
    "resize",
    "seed",
)


@dataclasses.dataclass(frozen=True)
class Protocol:
    """How a number was measured: the facts needed to compare it with another.

    Args:
        metric: str. `"fid"`, `"kid"`, `"is"` or `"precision_recall"`.
        features: str. Feature extractor (e.g. `"mnist_classifier"`).
        num_generated: int. Number of generated images.
        num_reference: int. Number of reference images (0 for IS).
        reference: str. Name of the reference set (e.g. `"mnist"`).
        reference_split: str. Split of the reference set (e.g. `"test"`).
        image_size: tuple. Size `(H, W, C)` of the images given to the metric.
        resize: str. How images were resized for the extractor (e.g.
            `"bilinear to 299x299"` or `"none"`).
        seed: int or None. Seed of the generated samples and subsets.
        details: dict. Metric-specific settings (KID subsets, IS splits, k).
            Defaults to `{}`.

    Example:
    ```python
    from ebgan_keras.metrics import Protocol

    protocol = Protocol("fid", "mnist_classifier", 10000, 10000, "mnist",
                        "test", (28, 28, 1), "none", 0)
    ```
    """

    metric: str
    features: str
    num_generated: int
    num_reference: int
    reference: str
    reference_split: str
    image_size: tuple
    resize: str
    seed: int | None
    details: dict = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict:
        """The protocol as a JSON-ready dict."""
        out = dataclasses.asdict(self)
        out["image_size"] = list(self.image_size)
        return out

    def describe(self) -> str:
        """One line for humans, e.g. in a model card."""
        height, width = tuple(self.image_size)[:2]
        text = (
            f"{self.features} features, {self.num_generated} generated vs "
            f"{self.num_reference} reference ({self.reference}/"
            f"{self.reference_split}), images {height}x{width} "
            f"(resize: {self.resize}), seed {self.seed}"
        )
        if self.details:
            text += ", " + ", ".join(f"{k}={v}" for k, v in self.details.items())
        return text


class MetricResult(Mapping):
    """A metric's values together with the protocol they were measured with.

    Behaves as a read-only dict of its values (`result["fid"]`) and as a float
    when it has a main value (`float(result)`). Printing it shows the values
    and the protocol; a result with no (or an incomplete) protocol refuses to
    be printed, so that no number leaves without its protocol.

    Args:
        metric: str. Name of the metric; its value is `values[metric]` when
            present.
        values: dict. Name to float, e.g. `{"kid": 0.01, "kid_std": 0.002}`.
        protocol: `Protocol`. How the values were measured.

    Example:
    ```python
    from ebgan_keras.metrics import fid

    result = fid(images, reference=real_images, reference_name="mnist",
                 reference_split="test", features="mnist_classifier")
    print(result)            # value and protocol
    float(result)            # the FID
    result.to_dict()         # for JSON
    ```
    """

    def __init__(self, metric: str, values: dict, protocol: Protocol | None) -> None:
        self.metric = str(metric)
        self.values = {name: float(value) for name, value in dict(values).items()}
        self.protocol = protocol

    def __getitem__(self, name: str) -> float:
        return self.values[name]

    def __iter__(self):
        return iter(self.values)

    def __len__(self) -> int:
        return len(self.values)

    def __float__(self) -> float:
        if self.metric not in self.values:
            raise TypeError(
                f"The {self.metric!r} result has several values "
                f"({sorted(self.values)}); index it, e.g. "
                f"result[{next(iter(self.values))!r}]."
            )
        return self.values[self.metric]

    @property
    def value(self) -> float:
        """The main value (`values[metric]`)."""
        return float(self)

    def _checked_protocol(self) -> Protocol:
        if not isinstance(self.protocol, Protocol):
            raise ValueError(
                f"This {self.metric!r} result has no protocol, so it is not printed: "
                "a number without its feature extractor, sample counts and "
                "reference split cannot be compared with anything. Build it "
                "with a `Protocol`. Received: protocol="
                f"{self.protocol!r}"
            )
        missing = [
            name
            for name in PROTOCOL_FIELDS
            if name != "seed" and getattr(self.protocol, name) in (None, "")
        ]
        if missing:
            raise ValueError(
                f"This {self.metric!r} result's protocol lacks {missing}, so it is "
                f"not printed. Received: protocol={self.protocol!r}"
            )
        return self.protocol

    def to_dict(self) -> dict:
        """Values and protocol as a JSON-ready dict."""
        return {
            "values": dict(self.values),
            "protocol": self._checked_protocol().to_dict(),
        }

    def to_json(self) -> str:
        """`to_dict()` as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    def __str__(self) -> str:
        protocol = self._checked_protocol()
        values = ", ".join(f"{name}={value:.6g}" for name, value in self.values.items())
        return f"{values}  [{protocol.describe()}]"

    def __repr__(self) -> str:
        return f"MetricResult({self})"


class EvaluationReport(Mapping):
    """Several metric results of one evaluation, by metric name.

    Args:
        results: dict. Metric name to `MetricResult`.

    Example:
    ```python
    from ebgan_keras.metrics import evaluate

    report = evaluate(model, reference=real_images, features="mnist_classifier")
    print(report)
    report["fid"].value
    ```
    """

    def __init__(self, results: dict) -> None:
        self.results = dict(results)

    def __getitem__(self, name: str) -> MetricResult:
        return self.results[name]

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def to_dict(self) -> dict:
        """Every result as a JSON-ready dict."""
        return {name: result.to_dict() for name, result in self.results.items()}

    def __str__(self) -> str:
        return "\n".join(f"{name}: {result}" for name, result in self.results.items())

    def __repr__(self) -> str:
        return f"EvaluationReport(\n{self}\n)"
