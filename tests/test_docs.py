"""Every ```python block of the documentation (`docs/**/*.md`) runs.

Each block runs in its own Python process, in a temporary folder, on the
backend of the test run. Lines of HTML comments right above a block (invisible
on the site) tell the test how to run it:

- `<!-- docs-test: replace OLD => NEW -->`: run the block with the text OLD
  replaced by NEW (small sizes: fewer epochs, steps, samples). OLD must occur
  in the block, so a stale replacement fails instead of silently doing nothing.
- `<!-- docs-test: continue -->`: the block runs after the previous block of
  the same page, in the same process (it uses that block's names).
- `<!-- docs-test: slow -->`: runs only with `--run-slow`.
- `<!-- docs-test: skip REASON -->`: never runs (data that is not available
  offline, a cluster, a TPU, hours of training); REASON is required.

Blocks that need no marker run as written. The default run executes the
fast blocks once, under TensorFlow (as the suite does for other
backend-independent checks); `--run-slow` runs every block on every backend.
The parsing itself (markers well formed, replacements that match) is checked
on every backend.
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MARKER = re.compile(r"^<!-- docs-test: (\w+)(?: (.*?))? -->$")
FENCE = re.compile(r"^```python\s*$")
TIMEOUT_S = 600


@dataclasses.dataclass
class Block:
    page: str
    line: int
    code: str
    slow: bool = False
    skip: str | None = None
    continues: bool = False

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def parse_page(path: Path) -> list[Block]:
    """The python blocks of one page, their markers applied."""
    page = str(path.relative_to(DOCS))
    lines = path.read_text().splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        if not FENCE.match(lines[i]):
            i += 1
            continue
        start = i
        markers = []
        j = i - 1
        while j >= 0 and lines[j].startswith("<!-- docs-test:"):
            match = MARKER.match(lines[j])
            if match is None:
                raise ValueError(f"{page}:{j + 1}: malformed marker {lines[j]!r}")
            markers.insert(0, match.groups())
            j -= 1
        i += 1
        body = []
        while i < len(lines) and lines[i].rstrip() != "```":
            body.append(lines[i])
            i += 1
        block = Block(page, start + 1, "\n".join(body) + "\n")
        for kind, argument in markers:
            if kind == "replace":
                old, sep, new = (argument or "").partition(" => ")
                if not sep or old not in block.code:
                    raise ValueError(
                        f"{block.id}: replacement {argument!r} does not match the block"
                    )
                block.code = block.code.replace(old, new)
            elif kind == "skip":
                if not argument:
                    raise ValueError(f"{block.id}: skip needs a reason")
                block.skip = argument
            elif kind == "slow":
                block.slow = True
            elif kind == "continue":
                if not blocks or blocks[-1].page != page:
                    raise ValueError(f"{block.id}: continue with no block before it")
                block.continues = True
            else:
                raise ValueError(f"{block.id}: unknown marker {kind!r}")
        blocks.append(block)
        i += 1
    return blocks


def collect() -> tuple[list[Block], list[str]]:
    """The runnable units (a block with the blocks it continues prepended),
    and the errors of the pages whose markers are wrong."""
    units, errors = [], []
    for path in sorted(DOCS.rglob("*.md")):
        try:
            blocks = parse_page(path)
        except ValueError as error:
            errors.append(str(error))
            continue
        for block in blocks:
            if block.continues:
                before = units[-1]
                block = dataclasses.replace(
                    block,
                    code=before.code + block.code,
                    slow=block.slow or before.slow,
                    skip=block.skip or before.skip,
                )
            units.append(block)
    return units, errors


BLOCKS, ERRORS = collect()


def test_docs_markers_are_well_formed():
    assert not ERRORS


def test_docs_have_runnable_blocks():
    # The extraction finds the guides' examples; most of them run.
    assert len(BLOCKS) >= 8
    assert sum(block.skip is None for block in BLOCKS) >= len(BLOCKS) // 2


def test_markers_are_checked(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "<!-- docs-test: replace epochs=9 => epochs=1 -->\n```python\nx = 1\n```\n"
    )
    global DOCS
    docs, DOCS = DOCS, tmp_path
    try:
        with pytest.raises(ValueError, match="does not match"):
            parse_page(page)
        page.write_text("<!-- docs-test: skip -->\n```python\nx = 1\n```\n")
        with pytest.raises(ValueError, match="needs a reason"):
            parse_page(page)
        page.write_text(
            "<!-- docs-test: replace = 1 => = 2 -->\n"
            "<!-- docs-test: slow -->\n```python\nx = 1\n```\n"
        )
        (block,) = parse_page(page)
        assert block.code == "x = 2\n" and block.slow and block.skip is None
    finally:
        DOCS = docs


def _params():
    for block in BLOCKS:
        marks = []
        if block.skip:
            marks.append(pytest.mark.skip(reason=block.skip))
        if block.slow:
            marks.append(pytest.mark.slow)
        yield pytest.param(block, id=block.id, marks=marks)


@pytest.mark.parametrize("block", list(_params()))
def test_docs_block_runs(block, request, tmp_path):
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if not request.config.getoption("--run-slow") and backend != "tensorflow":
        pytest.skip("docs blocks run under TensorFlow by default; --run-slow: all")
    script = tmp_path / "block.py"
    script.write_text(block.code)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + sys.path))
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, (
        f"{block.id} failed:\n{block.code}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
