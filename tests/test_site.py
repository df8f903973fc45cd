"""The documentation site in a real browser: `scripts/check_site.py`.

Runs where Chromium (Debian's `chromium`), Playwright and MkDocs are
installed (`pip install -e ".[docs]"`, `apt-get install chromium`) and skips,
saying which is missing, where not.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "check_site.py"
sys.path.insert(0, str(SCRIPT.parent))
import check_site  # noqa: E402

pytestmark = pytest.mark.slow


def _missing() -> str | None:
    if check_site.find_chromium(None) is None:
        return "no Chromium installed (apt-get install chromium)"
    for module in ("playwright", "mkdocs", "mkdocstrings", "mkdocs_gen_files"):
        if importlib.util.find_spec(module) is None:
            return f'{module} is not installed (pip install -e ".[docs]")'
    return None


def _run(*args: str) -> subprocess.CompletedProcess:
    missing = _missing()
    if missing:
        pytest.skip(missing)
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
    )


def test_every_page_opens_without_errors(tmp_path):
    result = _run("--screenshots", str(tmp_path))
    assert result.returncode == 0, result.stderr[-4000:]
    pages = int(result.stdout.split("check_site: ")[1].split(" pages")[0])
    assert pages >= 40  # home, guides, zoo cards, benchmarks, API reference
    for name in ("home.png", "zoo_card.png"):
        shot = tmp_path / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert shot.stat().st_size > 20_000


def test_problems_are_found(tmp_path):
    (tmp_path / "good").mkdir()
    (tmp_path / "index.html").write_text(
        '<html><head><link rel="icon" href="data:,"></head><body>'
        '<img src="missing.png"><a href="good/">ok</a><a href="nowhere/">x</a>'
        '<a href="good/#nope">x</a><script>console.error("boom")</script>'
        "</body></html>"
    )
    (tmp_path / "good" / "index.html").write_text(
        '<html><head><link rel="icon" href="data:,"></head><body>'
        '<h1 id="here">fine</h1><a href="../good/#here">x</a></body></html>'
    )
    result = _run("--site", str(tmp_path), "--no-screenshots")
    assert result.returncode == 1
    problems = result.stderr.splitlines()
    assert "/: console error: boom" in problems
    assert any(line.startswith("/: broken image: ") for line in problems)
    assert any(line.startswith("/: dead link ") for line in problems)
    assert any(line.startswith("/: dead anchor ") for line in problems)
    assert not any(line.startswith("/good/") for line in problems)
    assert problems[-1] == "check_site: 2 pages, 6 problems"
