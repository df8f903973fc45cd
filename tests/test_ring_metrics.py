"""The ring (`run/`, `cli/`, `zoo/`) stays readable: no function over 80 lines
and no module over 500 (`scripts/ring_metrics.py`, which counts a function as
`end_lineno - lineno + 1` of its `def`, docstring included)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "ring_metrics.py"


def _script():
    spec = importlib.util.spec_from_file_location("ring_metrics", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


METRICS = _script()
RING_FILES = sorted(
    path.relative_to(METRICS.ROOT).as_posix()
    for path in METRICS.ROOT.rglob("*.py")
    if METRICS.in_ring(path)
)


@pytest.mark.parametrize("relative", RING_FILES)
def test_ring_module_is_short_and_its_functions_fit_a_screen(relative):
    path = METRICS.ROOT / relative
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= METRICS.MAX_MODULE_LINES, f"{relative}: {lines} lines"
    long = [
        (name, size)
        for name, size in METRICS.functions(path)
        if size > METRICS.MAX_FUNCTION_LINES
    ]
    assert long == [], f"{relative}: functions over 80 lines: {long}"


def test_the_counts_are_what_they_say(tmp_path):
    package = tmp_path / "ebgan_keras"
    (package / "run").mkdir(parents=True)
    body = "\n".join(f"        x{i} = {i}" for i in range(80))
    (package / "run" / "long.py").write_text(
        f'class A:\n    def method(self):\n        """Doc."""\n{body}\n'
        "\n\ndef short():\n    return 1\n"
    )
    (package / "losses.py").write_text("x = 1\n")
    assert dict(METRICS.functions(package / "run" / "long.py")) == {
        "A.method": 82,
        "short": 2,
    }
    report = METRICS.report(package)
    assert report["ring_functions_over_limit"] == [["run/long.py:A.method", 82]]
    assert report["lines_per_package"] == {"run": 87, "losses": 1, "total": 88}
