"""Renders every `benchmarks/results/*.json` into `benchmarks/RESULTS.md`.

Each benchmark script calls `write_report()` after saving its rows; it can
also be run alone: `python benchmarks/_report.py`. Known result files get a
table with chosen columns; any other file gets a generic table of its
scalar fields, so no row is ever dropped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
RESULTS_DIR = Path(os.environ.get("EK_BENCH_RESULTS_DIR", BENCHMARKS / "results"))
REPORT = RESULTS_DIR.parent / "RESULTS.md"


def _fmt(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict) and "median" in value:
        return f"{value['median']:.3g} [{value['min']:.3g}, {value['max']:.3g}]"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value).replace("|", "/")


def table(rows: list[dict], columns: list[tuple[str, object]]) -> str:
    """A Markdown table of `rows`.

    Args:
        rows: list of dict. The result rows.
        columns: list of `(header, key_or_function)`: a key of the row or a
            function of the row.

    Returns:
        str. The table, one line per row.

    Example:

    >>> table([{"a": 1}], [("A", "a")]).splitlines()[2]
    '| 1 |'
    """
    lines = ["| " + " | ".join(h for h, _ in columns) + " |"]
    lines.append("|" + "---|" * len(columns))
    for row in rows:
        cells = [_fmt(c(row) if callable(c) else row.get(c)) for _, c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _variant(row: dict) -> str:
    if row.get("implementation", "").startswith("plain"):
        return "jit" if row["backend"] == "jax" else "eager"
    jit = row.get("jit_compile")
    if row.get("backend") == "torch":
        name = "torch.compile" if jit else "eager"
    elif row.get("backend") == "tensorflow":
        name = "XLA" if jit else "tf.function"
    else:
        name = "jit" if jit else "eager"
    return f"{name}, spe={row.get('steps_per_execution')}"


def _load(row: dict) -> str:
    load = row.get("load_average")
    return f"{load[0]:.2f}" if load else ""


def _machine(rows: list[dict]) -> str:
    seen = []
    for row in rows:
        facts = (
            row.get("machine"),
            row.get("cpu_model"),
            row.get("cpu_count"),
            ",".join(row.get("cpu_flags") or []),
            row.get("gpu"),
        )
        if facts not in seen:
            seen.append(facts)
    seen = [facts for facts in seen if facts[0] is not None]
    return "\n".join(
        f"- machine `{m}`: {cpu}, {n} cores, flags {flags or '?'}, GPU: {gpu or 'none'}"
        for m, cpu, n, flags, gpu in seen
    )


def _peak_lines(rows: list[dict]) -> list[str]:
    """The peaks that the rows' MFU divide by, each with its probes."""
    summaries = sorted({r["peak_summary"] for r in rows if r.get("peak_summary")})
    older = sorted(
        {
            r["peak_gflops"]
            for r in rows
            if r.get("peak_gflops") and not r.get("peak_summary")
        }
    )
    lines = [f"- Peak of a run: {summary}." for summary in summaries]
    if older:
        lines.append(
            f"- Older rows: FP32 matmul peak of numpy alone (2048^2), {older} GFLOP/s."
        )
    return lines + [""] if lines else []


def _mfu(row: dict) -> str:
    if row.get("mfu_error"):
        return "n/a: above the peak (measurement error)"
    return "" if row.get("mfu") is None else f"{row['mfu']}"


def render_train(rows: list[dict]) -> str:
    """The section of `train_throughput.json`."""
    ok = [r for r in rows if "steps_per_s" in r]
    failed = [r for r in rows if "error" in r]
    parts = ["## Training throughput (`train_throughput.py`)", "", _machine(rows), ""]
    parts += _peak_lines(ok)
    parts.append(
        "Steps/s: median [min, max] of the repeats, compilation and warm-up left out. "
        "Ratios are medians over the plain PyTorch / plain JAX loop of the same run. "
        "MFU = FLOPs per step (analytic, backward = 2x forward) x steps/s / peak."
    )
    for config in sorted({r["config"] for r in rows}):
        config_rows = [r for r in ok if r["config"] == config]
        if not config_rows:
            continue
        first = config_rows[0]
        parts += [
            "",
            f"### Config {config}: {first.get('description', '')}",
            "",
            f"Batch {first.get('batch_size')}, image {first.get('image_shape')}, "
            f"{(first.get('flops_per_step') or 0) / 1e9:.3g} GFLOP per step.",
            "",
            table(
                sorted(config_rows, key=lambda r: -r["steps_per_s"]["median"]),
                [
                    ("implementation", "implementation"),
                    ("backend", "backend"),
                    ("mode", _variant),
                    ("steps/s", "steps_per_s"),
                    ("images/s", "images_per_s"),
                    ("GFLOP/s", "achieved_gflops"),
                    ("MFU", _mfu),
                    ("x plain torch", "ratio_to_plain_torch"),
                    ("x plain JAX", "ratio_to_plain_jax"),
                    ("torch threads", "torch_threads"),
                    ("quick", "quick"),
                    ("load", _load),
                    ("date", "date"),
                ],
            ),
        ]
    if failed:
        parts += ["", "Runs that failed (kept, not dropped):", ""]
        parts.append(
            table(
                failed,
                [
                    ("config", "config"),
                    ("worker", "implementation"),
                    ("error", "error"),
                ],
            )
        )
    return "\n".join(parts)


def render_generic(name: str, rows: list[dict]) -> str:
    """A table of the scalar fields of any other result file."""
    columns = []
    for row in rows:
        for key, value in row.items():
            if key not in columns and not isinstance(value, (list, dict)):
                columns.append(key)
    skip = {"platform", "machine", "cpu_model", "python", "pipeline"}
    columns = [c for c in columns if c not in skip]
    return "\n".join(
        [
            f"## {name} (`{name}.py`)",
            "",
            _machine(rows),
            "",
            table(rows, [(c, c) for c in columns]),
        ]
    )


def render_scaling(rows: list[dict]) -> str:
    """The section of `scaling.json`."""
    parts = ["## Scaling (`scaling.py`)", "", _machine(rows), ""]
    plot = RESULTS_DIR / "scaling.png"
    if plot.exists():
        parts += ["![scaling](results/scaling.png)", ""]
    parts.append(
        table(
            rows,
            [
                ("sweep", "sweep"),
                ("backend", "backend"),
                ("batch", "batch_size"),
                ("image", "image_shape"),
                ("processes", "processes"),
                ("steps/s", "steps_per_s"),
                ("images/s", "images_per_s"),
                ("2 / 1 workers", "ratio_to_one_worker"),
                ("MFU", _mfu),
                ("load", _load),
                ("date", "date"),
            ],
        )
    )
    return "\n".join(parts)


def render_sampler_quality(rows: list[dict]) -> str:
    """The FID/KID/time table of every sampler on every zoo entry."""
    rows = sorted(rows, key=lambda r: (r["entry"], r["fid"]))
    return "\n".join(
        [
            "## Sampler quality on the zoo entries (`sampler_quality.py`)",
            "",
            _machine(rows),
            "",
            "FID/KID: "
            + "; ".join(
                sorted(
                    {
                        f"{p.get('features')} features, {p.get('num_generated')} "
                        f"samples vs {p.get('num_reference')} {p.get('reference')}/"
                        f"{p.get('reference_split')} images"
                        for p in (r.get("protocol", {}) for r in rows)
                    }
                )
            )
            + "; change of FID against plain sampling (`prior`) in %. Sorted "
            "by FID within each entry.",
            "",
            table(
                rows,
                [
                    ("entry", "entry"),
                    ("sampler", "sampler"),
                    ("FID", "fid"),
                    ("vs prior %", "fid_change_vs_prior_%"),
                    ("KID", "kid"),
                    ("s / 1000 samples", "seconds_per_1000"),
                    ("settings", "settings"),
                    ("backend", "backend"),
                ],
            ),
        ]
    )


def render_sampler_throughput(rows: list[dict]) -> str:
    """The DDLS throughput table and the cost of the calibrated samplers."""
    ddls = [r for r in rows if r.get("benchmark", "ddls") == "ddls"]
    calibrated = [r for r in rows if r.get("benchmark") == "calibrated"]
    parts = ["## Sampler throughput (`sampler_throughput.py`)", "", _machine(rows)]
    parts += [""] + _peak_lines(ddls)
    parts += [
        "",
        "DDLS on the MNIST MLP networks (config A's), chains of `num_steps` "
        "Langevin steps; one step is a forward pass of G and D and the gradient "
        "with respect to z (`2 x batch x (F_G + F_D)` FLOPs). Sorted by speed.",
        "",
        table(
            sorted(ddls, key=lambda r: -r["steps_per_second"]),
            [
                ("implementation", "implementation"),
                ("Keras backend", "keras_backend"),
                ("device", "device"),
                ("batch", "batch_size"),
                ("steps", "num_steps"),
                ("steps/s", "steps_per_second"),
                ("latent steps/s", "latent_steps_per_second"),
                ("GFLOP/s", "achieved_gflops"),
                ("MFU", _mfu),
                ("x plain torch", "ratio_to_plain_torch"),
                ("x plain JAX", "ratio_to_plain_jax"),
                ("quick", "quick"),
                ("load", _load),
                ("date", "date"),
            ],
        ),
    ]
    if calibrated:
        parts += [
            "",
            "Calibrated samplers on the zoo entry `ebgan_pt_mnist` (calibration "
            "untimed): seconds per 1,000 accepted samples.",
            "",
            table(
                calibrated,
                [
                    ("sampler", "implementation"),
                    ("Keras backend", "keras_backend"),
                    ("device", "device"),
                    ("s / 1000 accepted", "seconds_per_1000_accepted"),
                    ("acceptance rate", "acceptance_rate"),
                    ("chain length", "chain_length"),
                    ("quick", "quick"),
                    ("load", _load),
                    ("date", "date"),
                ],
            ),
        ]
    return "\n".join(parts)


def write_report() -> Path:
    """Regenerates `benchmarks/RESULTS.md` from all result files.

    Returns:
        The path of RESULTS.md.
    """
    sections = [
        "# Benchmark results",
        "",
        "Generated by `benchmarks/_report.py` from `benchmarks/results/*.json`; "
        "do not edit by hand. Numbers on a shared 2-core CPU are noisy: each row "
        "records the 1-minute load average at measurement time.",
    ]
    notes = BENCHMARKS / "NOTES.md"
    if notes.exists():
        sections += ["", notes.read_text().strip()]
    renderers = {
        "train_throughput": render_train,
        "scaling": render_scaling,
        "sampler_quality": render_sampler_quality,
        "sampler_throughput": render_sampler_throughput,
    }
    for path in sorted(RESULTS_DIR.glob("*.json")):
        rows = json.loads(path.read_text())
        if not isinstance(rows, list):
            rows = [rows]
        render = renderers.get(path.stem)
        sections += ["", render(rows) if render else render_generic(path.stem, rows)]
    REPORT.write_text("\n".join(sections) + "\n")
    return REPORT


if __name__ == "__main__":
    print(write_report())
