"""Pages of the documentation site generated from the repository at build time.

Run by `mkdocs build` through the `mkdocs-gen-files` plugin (see `mkdocs.yml`),
never by hand: it writes nothing into `docs/`. It turns

- every zoo entry's card (`zoo/NAME/README.md`) into `zoo/NAME.md`, with the
  entry's pictures (`*.png`, `*.gif`) copied beside it into `zoo/NAME/`,
- the zoo's table (`zoo/README.md`) into `zoo/index.md`,
- the benchmark reports (`benchmarks/RESULTS.md`, `benchmarks/NOTES.md`,
  `benchmarks/results/*.md`) into `benchmarks/`, with their plots,

so the site shows what the entries and the benchmark scripts wrote, never a
copy that can fall behind. Relative links between these files are rewritten
to the pages they became; a link to any other repository file becomes its
path in code font (the site holds no source files), so no link is dead.
"""

from __future__ import annotations

import posixpath
import re
from pathlib import Path

import mkdocs_gen_files

ROOT = Path(__file__).resolve().parent.parent
PICTURES = (".png", ".gif", ".jpg", ".svg")
# `[text](target)` and `![alt](target)`; the target has no spaces or brackets.
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")


def sources() -> dict[str, str]:
    """Maps repository paths to the site paths they are generated into."""
    pages = {"zoo/README.md": "zoo/index.md"}
    for card in sorted(ROOT.glob("zoo/*/README.md")):
        name = card.parent.name
        pages[f"zoo/{name}/README.md"] = f"zoo/{name}.md"
        for picture in sorted(card.parent.iterdir()):
            if picture.suffix in PICTURES:
                pages[f"zoo/{name}/{picture.name}"] = f"zoo/{name}/{picture.name}"
    pages["benchmarks/RESULTS.md"] = "benchmarks/results.md"
    pages["benchmarks/NOTES.md"] = "benchmarks/notes.md"
    for report in sorted(ROOT.glob("benchmarks/results/*")):
        if report.suffix == ".md":
            pages[f"benchmarks/results/{report.name}"] = f"benchmarks/{report.stem}.md"
        elif report.suffix in PICTURES:
            pages[f"benchmarks/results/{report.name}"] = (
                f"benchmarks/results/{report.name}"
            )
    return pages


def rewrite_links(text: str, source: str, page: str, pages: dict[str, str]) -> str:
    """Points the relative links of `source` at the site paths of `pages`."""

    def replace(match: re.Match) -> str:
        bang, label, target = match.groups()
        if re.match(r"^[a-z]+:|^#|^/", target):
            return match.group(0)
        path, _, anchor = target.partition("#")
        repo_path = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        if repo_path in pages:
            new = posixpath.relpath(pages[repo_path], posixpath.dirname(page))
            return f"{bang}[{label}]({new}{'#' + anchor if anchor else ''})"
        # Not part of the site: name the repository file instead of linking it.
        return f"{label} (`{repo_path}`)" if label else f"`{repo_path}`"

    return LINK.sub(replace, text)


def main() -> None:
    pages = sources()
    for source, page in pages.items():
        path = ROOT / source
        if source.endswith(".md"):
            text = rewrite_links(path.read_text(), source, page, pages)
            with mkdocs_gen_files.open(page, "w") as f:
                f.write(text)
        else:
            with mkdocs_gen_files.open(page, "wb") as f:
                f.write(path.read_bytes())


main()
