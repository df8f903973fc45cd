"""The convergence curve of a zoo entry: a held-out FID measured during training.

The training stage of `zoo build` records, after every `every_epochs` epochs,
the FID of plain samples of one fixed latent batch against the first 2,000
training images (the held-out images the DDLS sweep also uses, never the test
split), on the entry's feature extractor and feature size. The records go to
`convergence.json` in the run folder as they are measured, keyed by epoch, so
a resumed run rewrites the epochs it repeats (with the same numbers: training
resumes exactly) and keeps the others. The card plots the curve and says
whether the entry converged: whether FID moved by less than `tolerance` of
its value over the last `tail` share of the training steps.
"""

from __future__ import annotations

import os

import numpy as np

from ebgan_keras import files

#: The run folder's file of convergence records.
CONVERGENCE_FILE = "convergence.json"
#: The card's picture of the curve.
CONVERGENCE_PLOT = "convergence.png"
#: Held-out training images and generated images per measurement.
NUM_IMAGES = 2000
#: The share of the steps at the end, and the relative FID change in it, under
#: which an entry counts as converged.
TAIL = 0.2
TOLERANCE = 0.05


def every_epochs(epochs: int, points: int = 50) -> int:
    """Epochs between two measurements: every epoch, or about `points` in all.

    Args:
        epochs: int. The run's number of epochs.
        points: int. At most about this many measurements. Defaults to `50`.

    Returns:
        A positive int.
    """
    return max(1, int(np.ceil(int(epochs) / int(points))))


def read_records(path) -> list[dict]:
    """The records of a `convergence.json` (an empty list where there is none).

    Args:
        path: str. The file.

    Returns:
        A list of `{"epoch", "step", "fid"}` dicts, by epoch.
    """
    value = files.read_json(path, None)
    if not isinstance(value, dict) or not isinstance(value.get("records"), list):
        return []
    return list(value["records"])


def summary(records: list[dict], tail: float = TAIL, tolerance: float = TOLERANCE):
    """Whether a curve converged: FID moved by < `tolerance` over its last `tail`.

    The window starts at the last record at or before `(1 - tail)` of the
    final step and ends at the final record; the change is
    `|FID_end - FID_start| / FID_start`.

    Args:
        records: list of dicts. `read_records`'s output.
        tail: float. Share of the steps at the end. Defaults to `0.2`.
        tolerance: float. Largest relative change that counts as converged.
            Defaults to `0.05`.

    Returns:
        `None` when there are fewer than two records, else a dict with
        `converged`, `change`, `start_step`, `end_step`, `start_fid`,
        `end_fid`, `best_fid`, `best_step`, `tail` and `tolerance`.

    Example:

    >>> rows = [{"step": s, "fid": f} for s, f in [(1, 50.0), (8, 10.0), (10, 9.8)]]
    >>> summary(rows)["converged"]
    True
    """
    if len(records) < 2:
        return None
    end = records[-1]
    boundary = (1.0 - float(tail)) * end["step"]
    start = records[0]
    for record in records[:-1]:
        if record["step"] <= boundary:
            start = record
    change = abs(end["fid"] - start["fid"]) / max(abs(start["fid"]), 1e-12)
    best = min(records, key=lambda r: r["fid"])
    return {
        "converged": bool(change < tolerance),
        "change": float(change),
        "start_step": int(start["step"]),
        "end_step": int(end["step"]),
        "start_fid": float(start["fid"]),
        "end_fid": float(end["fid"]),
        "best_fid": float(best["fid"]),
        "best_step": int(best["step"]),
        "tail": float(tail),
        "tolerance": float(tolerance),
    }


def plot(records: list[dict], path: str, title: str = "") -> None:
    """Writes the curve (held-out FID against training steps) as a PNG.

    Args:
        records: list of dicts. `read_records`'s output.
        path: str. The PNG file.
        title: str. The plot's title. Defaults to `""`.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    steps = [r["step"] for r in records]
    fids = [r["fid"] for r in records]
    figure, axes = plt.subplots(figsize=(5, 3.2), dpi=100)
    axes.plot(steps, fids, marker="o", markersize=2.5)
    if steps:
        axes.axvspan((1 - TAIL) * steps[-1], steps[-1], alpha=0.12, color="grey")
    axes.set_xlabel("training step")
    axes.set_ylabel(f"held-out FID ({NUM_IMAGES} images)")
    axes.set_yscale("log")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    files.atomic_write(path, lambda p: figure.savefig(p, format="png"))
    plt.close(figure)


def card_record(run_dir: str, out_dir: str, title: str = "") -> dict | None:
    """The card's convergence record of a run, with its picture written.

    Args:
        run_dir: str. The run folder (its `convergence.json`).
        out_dir: str. The entry folder; `convergence.png` is written there.
        title: str. The plot's title. Defaults to `""`.

    Returns:
        `None` where the run recorded no curve, else a dict with `records`
        and `summary` (see `summary`), for the entry's `metadata.json`.
    """
    records = read_records(os.path.join(run_dir, CONVERGENCE_FILE))
    if not records:
        return None
    plot(records, os.path.join(out_dir, CONVERGENCE_PLOT), title)
    return {"records": records, "summary": summary(records)}


def card_lines(record: dict | None) -> list[str]:
    """The markdown lines of a card's convergence section.

    Args:
        record: dict or None. `card_record`'s output (as the metadata holds
            it).

    Returns:
        A list of lines (no heading).
    """
    if not record or not record.get("summary"):
        return [
            "No convergence curve was recorded for this entry (it was trained "
            "before the zoo's training stage recorded one), so it does not show "
            "that training had converged."
        ]
    s = record["summary"]
    verdict = "converged" if s["converged"] else "**had not converged**"
    return [
        f"![held-out FID during training]({CONVERGENCE_PLOT})",
        "",
        f"Held-out FID ({NUM_IMAGES} plain samples of one fixed latent batch "
        f"against the first {NUM_IMAGES} training images, measured "
        f"{len(record['records'])} times during training): "
        f"{s['start_fid']:.2f} at step {s['start_step']:,} and "
        f"{s['end_fid']:.2f} at the last step ({s['end_step']:,}), a change of "
        f"{100 * s['change']:.1f}% over the last {100 * s['tail']:.0f}% of the "
        f"steps, so by this card's rule (a change under "
        f"{100 * s['tolerance']:.0f}%) the entry {verdict}. Lowest: "
        f"{s['best_fid']:.2f} at step {s['best_step']:,}.",
    ]
