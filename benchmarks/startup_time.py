"""Start-up time: `import keras`, `import ebgan_keras` and the command line.

Each command runs in a fresh Python process, `--runs` times (the commands
interleaved, so that a burst of load on a shared CPU hits all of them alike),
and the wall time of the whole process is kept: interpreter start, imports,
the command, and shutdown. The rows give the median and the min. The
`import ebgan_keras` process also times its own `import ebgan_keras` after
`import keras` (`in_process_extra_over_keras_s`, median): the package's cost
without the noise of whole processes on a shared CPU.

Every child process reports at exit (an `atexit` hook) which of `tensorflow`,
`matplotlib`, `matplotlib.pyplot`, `keras`, `jax` and `torch` ended up in
`sys.modules`. The command line is run as the console script runs it, in
`python -c`: `sys.argv[0]` is set to `"ebgan-keras"`, then
`from ebgan_keras.cli import main; sys.exit(main())` (the two lines of the
script that `pip` writes), so that the same hook can report its modules.
The command-line rows run with `KERAS_BACKEND` unset (Keras's own default,
`~/.keras/keras.json`), as a user would type them.

Targets: `ebgan-keras --help` and `ebgan-keras zoo list` < 1.0 s;
`import ebgan_keras` under JAX < 1.5 s (see `benchmarks/NOTES.md` for what this
machine reaches: `import keras` alone takes longer here).

    python benchmarks/startup_time.py                 # 7 runs, saves the rows
    python benchmarks/startup_time.py --quick         # 3 runs
    python benchmarks/startup_time.py --root /tmp/base --label before --no-save

Rows go to `benchmarks/results/startup_time.json` (replacing the rows of the
same command, backend, label and machine) unless `--no-save`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent
ROOT = BENCHMARKS.parent
RESULTS_DIR = Path(os.environ.get("EK_BENCH_RESULTS_DIR", BENCHMARKS / "results"))
BACKENDS = ("jax", "torch", "tensorflow")
TRACKED_MODULES = (
    "tensorflow",
    "matplotlib",
    "matplotlib.pyplot",
    "keras",
    "jax",
    "torch",
)
MARKER = "STARTUP_MODULES "

# Printed at exit by every child, after whatever the command imported.
_REPORT_HOOK = f"""\
import atexit, json, sys
def _report_modules():
    names = set(sys.modules)
    found = {{
        name: any(m == name or m.startswith(name + ".") for m in names)
        for name in {TRACKED_MODULES!r}
    }}
    found["matplotlib.pyplot"] = "matplotlib.pyplot" in names
    found["extra_s"] = globals().get("_EXTRA_OVER_KERAS_S")
    package = sys.modules.get("ebgan_keras")
    found["ebgan_keras_file"] = getattr(package, "__file__", None)
    print({MARKER!r} + json.dumps(found), file=sys.__stderr__, flush=True)
atexit.register(_report_modules)
"""

# `import ebgan_keras` imports Keras first anyway; timing the two steps in
# the process gives its own cost without the noise of whole processes.
_IMPORT_EBGAN_KERAS_BODY = """\
import time
import keras
_start = time.perf_counter()
import ebgan_keras
_EXTRA_OVER_KERAS_S = time.perf_counter() - _start
"""

_CLI_BODY = """\
sys.argv[0] = "ebgan-keras"
from ebgan_keras.cli import main
sys.exit(main())
"""


def cases(backends=BACKENDS) -> list[dict]:
    """The commands to time: imports per backend, then the command line.

    Args:
        backends: sequence of str. Keras backends of the import rows.
            Defaults to all three.

    Returns:
        list of dict with `command` (as shown), `backend`, `code` (the
        `python -c` program) and `args` (its arguments).
    """
    rows = []
    for backend in backends:
        rows.append(
            dict(
                command='python -c "import keras"',
                backend=backend,
                code="import keras\n",
                args=[],
            )
        )
        rows.append(
            dict(
                command='python -c "import ebgan_keras"',
                backend=backend,
                code=_IMPORT_EBGAN_KERAS_BODY,
                args=[],
            )
        )
    for args in (["--help"], ["zoo", "list"]):
        rows.append(
            dict(
                command="ebgan-keras " + " ".join(args),
                backend="default",
                code=_CLI_BODY,
                args=args,
            )
        )
    return rows


def run_once(case: dict, root: Path) -> tuple[float, dict]:
    """Runs one case in a fresh process.

    Args:
        case: dict. One entry of `cases()`.
        root: Path. Folder whose `ebgan_keras` package is imported.

    Returns:
        `(seconds, modules)`: the process's wall time and which tracked
        modules it had imported.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(root), env.get("PYTHONPATH", "")) if p
    )
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if case["backend"] == "default":
        env.pop("KERAS_BACKEND", None)
    else:
        env["KERAS_BACKEND"] = case["backend"]
    command = [sys.executable, "-c", _REPORT_HOOK + case["code"], *case["args"]]
    start = time.perf_counter()
    # `python -c` puts the working folder first on `sys.path`: run in `root`
    # so that its `ebgan_keras` is the one imported.
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=root)
    seconds = time.perf_counter() - start
    lines = [line for line in result.stderr.splitlines() if line.startswith(MARKER)]
    if result.returncode != 0 or not lines:
        raise RuntimeError(
            f"{case['command']} (KERAS_BACKEND={case['backend']}) failed with "
            f"exit code {result.returncode}:\n{result.stderr[-3000:]}"
        )
    found = json.loads(lines[-1][len(MARKER) :])
    imported = found.pop("ebgan_keras_file")
    if imported is not None and not Path(imported).resolve().is_relative_to(root):
        raise RuntimeError(
            f"{case['command']} imported {imported}, not the package under "
            f"--root {root}."
        )
    return seconds, found


def measure(runs: int, root: Path, backends=BACKENDS) -> list[dict]:
    """Times every case `runs` times, interleaved; one row per case.

    Args:
        runs: int. Processes per case.
        root: Path. Folder whose `ebgan_keras` package is imported.
        backends: sequence of str. Keras backends of the import rows.

    Returns:
        list of dict rows (`command`, `backend`, `median_s`, `min_s`,
        `max_s`, `runs`, `times_s`, `modules`, and for `import ebgan_keras`
        `extra_over_import_keras_s`, the difference of the medians).
    """
    todo = cases(backends)
    times = {i: [] for i in range(len(todo))}
    extras = {i: [] for i in range(len(todo))}
    modules = {}
    for _ in range(runs):
        for i, case in enumerate(todo):
            seconds, found = run_once(case, root)
            times[i].append(seconds)
            extra = found.pop("extra_s")
            if extra is not None:
                extras[i].append(extra)
            modules[i] = found
    rows = []
    for i, case in enumerate(todo):
        rows.append(
            {
                "benchmark": "startup_time",
                "command": case["command"],
                "backend": case["backend"],
                "median_s": round(statistics.median(times[i]), 3),
                "min_s": round(min(times[i]), 3),
                "max_s": round(max(times[i]), 3),
                "runs": runs,
                "times_s": [round(t, 3) for t in times[i]],
                "modules": modules[i],
            }
        )
        if extras[i]:
            rows[-1]["in_process_extra_over_keras_s"] = round(
                statistics.median(extras[i]), 3
            )
    keras_median = {
        row["backend"]: row["median_s"]
        for row in rows
        if row["command"] == 'python -c "import keras"'
    }
    for row in rows:
        if row["command"] == 'python -c "import ebgan_keras"':
            extra = row["median_s"] - keras_median[row["backend"]]
            row["extra_over_import_keras_s"] = round(extra, 3)
    return rows


def format_table(rows: list[dict]) -> str:
    """The rows as a Markdown table.

    Args:
        rows: list of dict. Rows of `measure`.

    Returns:
        str. One line per row.
    """
    lines = [
        "| command | backend | median s | min s | minus keras s "
        "| in-process extra s | tensorflow | matplotlib (pyplot) | keras |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        found = row["modules"]
        extra = row.get("extra_over_import_keras_s")
        in_process = row.get("in_process_extra_over_keras_s")
        lines.append(
            f"| `{row['command']}` | {row['backend']} | {row['median_s']:.2f} "
            f"| {row['min_s']:.2f} | {'' if extra is None else f'{extra:+.2f}'} "
            f"| {'' if in_process is None else f'{in_process:.3f}'} "
            f"| {'yes' if found['tensorflow'] else 'no'} "
            f"| {'yes' if found['matplotlib'] else 'no'} "
            f"({'yes' if found['matplotlib.pyplot'] else 'no'}) "
            f"| {'yes' if found['keras'] else 'no'} |"
        )
    return "\n".join(lines)


def save(rows: list[dict], path: Path) -> Path:
    """Merges rows into the results file, replacing those of the same key.

    The key is `command`, `backend`, `label` and `machine`.

    Args:
        rows: list of dict. New rows.
        path: Path. The JSON file.

    Returns:
        The path written.
    """
    stored = json.loads(path.read_text()) if path.exists() else []
    keys = ("command", "backend", "label", "machine")

    def key(row):
        return tuple(row.get(k) for k in keys)

    new_keys = {key(row) for row in rows}
    merged = [row for row in stored if key(row) not in new_keys] + list(rows)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=None, help="default 7")
    parser.add_argument("--quick", action="store_true", help="3 runs")
    parser.add_argument("--backends", default=",".join(BACKENDS))
    parser.add_argument(
        "--root",
        default=str(ROOT),
        help="folder whose ebgan_keras is measured (default: this checkout)",
    )
    parser.add_argument(
        "--label", default="current", help="row label, e.g. 'before' or 'after'"
    )
    parser.add_argument("--no-save", action="store_true", help="write nothing")
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else (3 if args.quick else 7)
    if runs < 1:
        parser.error(f"--runs must be at least 1. Received: --runs {runs}")
    backends = [b for b in args.backends.split(",") if b]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or not backends:
        parser.error(
            f"--backends takes names from {list(BACKENDS)}. "
            f"Received: --backends {args.backends}"
        )
    sys.path.insert(0, str(BENCHMARKS))
    from _common import library_versions
    from _common import machine_info

    machine = machine_info()
    rows = measure(runs, Path(args.root).resolve(), backends)
    for row in rows:
        row.update(
            label=args.label,
            root=str(Path(args.root).resolve()),
            quick=runs < 7,
            **machine,
            versions=library_versions(),
        )
    print(f"{runs} runs per command, label {args.label!r}, root {args.root}")
    print(format_table(rows))
    if not args.no_save:
        path = save(rows, RESULTS_DIR / "startup_time.json")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
