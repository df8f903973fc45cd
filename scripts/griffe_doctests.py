"""A griffe extension for the docs site: doctests in docstrings as code blocks.

The package's docstrings write their examples Keras-style, an `Example:` line
and then `>>>` lines at the docstring's own indentation (not indented under
the heading as the Google style's sections are). Markdown would read those
lines as text (`[0.707, 0.707]` as a link); this extension wraps each run of
doctest lines, with the output lines that follow, in a `pycon` code fence.
Loaded by mkdocstrings (`mkdocs.yml`); the package itself is not changed.
"""

from __future__ import annotations

import griffe


def fence_doctests(text: str) -> str:
    """Wraps every unindented run of `>>>` lines and their output in a fence."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        if not lines[i].startswith(">>>"):
            out.append(lines[i])
            i += 1
            continue
        if out and out[-1].strip():
            out.append("")
        out.append("```pycon")
        while i < len(lines) and lines[i].strip():
            out.append(lines[i])
            i += 1
        out.append("```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    """Fences the doctests of every docstring griffe loads."""

    def on_instance(self, *, obj: griffe.Object, **kwargs) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
