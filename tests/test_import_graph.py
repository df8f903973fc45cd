"""The import graph of `ebgan_keras` (`scripts/import_graph.py`): no cycle, and
the core (models, networks, losses, samplers, metrics, data, backend) never
imports the run machinery, the zoo or the command line."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "import_graph.py"


def _script():
    spec = importlib.util.spec_from_file_location("import_graph", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_package_has_no_import_cycle_and_a_core_below_the_ring():
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--json", "--edges"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    report = json.loads(done.stdout)
    assert report["cycles"] == []
    assert report["core_imports_ring"] == []
    assert done.returncode == 0
    # The graph is the package's: function-level imports are edges too.
    assert report["modules"] > 50
    edges = report["graph"]
    assert "ebgan_keras.run.builder" in edges["ebgan_keras.zoo.entries"]
    assert "ebgan_keras.run.config" in edges["ebgan_keras.run.builder"]
    assert not any(
        t.startswith("ebgan_keras.zoo") for t in edges["ebgan_keras.run.config"]
    )


def test_the_script_finds_cycles_through_functions_and_core_imports_of_the_ring(
    tmp_path,
):
    script = _script()
    package = tmp_path / "ebgan_keras"
    for folder in ("models", "run"):
        (package / folder).mkdir(parents=True)
        (package / folder / "__init__.py").write_text("")
    (package / "__init__.py").write_text("from ebgan_keras import models\n")
    (package / "run" / "config.py").write_text(
        "def f():\n    from ebgan_keras.run import builder\n"
    )
    (package / "run" / "builder.py").write_text("from .config import f\n")
    (package / "models" / "base.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ebgan_keras.run import builder\n"
        "def g():\n    import ebgan_keras.run.config\n"
    )
    edges = script.graph(package)
    assert edges["ebgan_keras.run.builder"] == ["ebgan_keras.run.config"]
    assert script.cycles(edges) == [
        ["ebgan_keras.run.builder", "ebgan_keras.run.config"]
    ]
    assert script.layer_violations(edges) == [
        ["ebgan_keras.models.base", "ebgan_keras.run.config"]
    ]
