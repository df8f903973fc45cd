"""Checks the documentation site in a real browser (headless Chromium).

Builds the site (`mkdocs build --strict`) into a temporary folder, serves it on
localhost, opens every page in headless Chromium driven by Playwright, and
fails on

- a console error or an uncaught exception on a page,
- a request of the page that failed or answered 4xx/5xx (a missing script,
  stylesheet or picture),
- a broken image (`<img>` that did not decode: `naturalWidth == 0`),
- a dead internal link: a link to a page of the site that does not exist, or
  to an anchor (`page/#id`) that the page does not have.

Then it saves screenshots of the home page and of one zoo card (default:
`docs/images/home.png` and `docs/images/zoo_card.png`).

Chromium is the system's (Debian: `apt-get install chromium`), launched with
a fresh profile and no background networking; Playwright downloads no browser.
Usage:

    python scripts/check_site.py                  # build, check, screenshots
    python scripts/check_site.py --site site      # check an already built site
    python scripts/check_site.py --site site --no-screenshots
    python scripts/check_site.py --screenshots /tmp/shots --chromium /usr/bin/chromium

Exit code 0 when every page passes, 1 with one line per problem otherwise,
2 when Chromium or Playwright is missing.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ZOO_CARD = "zoo/ebgan_pt_mnist/"
VIEWPORT = {"width": 1280, "height": 900}
# What a page reports about itself once loaded: its ids, links and images.
PAGE_REPORT = """() => ({
  ids: Array.from(document.querySelectorAll('[id]'), e => e.id),
  links: Array.from(document.querySelectorAll('a[href]'), a => a.href),
  images: Array.from(document.images, i => ({
    src: i.currentSrc || i.src, ok: i.complete && i.naturalWidth > 0})),
})"""


def find_chromium(explicit: str | None) -> str | None:
    """The Chromium executable: `--chromium`, `$CHROMIUM`, else on the PATH."""
    for candidate in (explicit, os.environ.get("CHROMIUM")):
        if candidate:
            return candidate if Path(candidate).is_file() else None
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def build_site(out: Path) -> None:
    """Runs `mkdocs build --strict` into `out`."""
    env = dict(os.environ, DISABLE_MKDOCS_2_WARNING="true", NO_MKDOCS_2_WARNING="1")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
    )


def serve(site: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serves `site` on a free localhost port; returns the server and its URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def site_pages(site: Path) -> list[str]:
    """Every page of the built site, as paths relative to its root."""
    pages = []
    for index in sorted(site.rglob("index.html")):
        relative = index.parent.relative_to(site).as_posix()
        pages.append("" if relative == "." else relative + "/")
    return pages


def check(site: Path, chromium: str, screenshots: Path | None) -> list[str]:
    """Opens every page; returns the problems found (empty: all pass)."""
    from playwright.sync_api import sync_playwright

    server, base = serve(site)
    problems: list[str] = []
    ids: dict[str, set[str]] = {}
    links: dict[str, set[str]] = {}
    pages = site_pages(site)
    try:
        with sync_playwright() as playwright, tempfile.TemporaryDirectory() as profile:
            context = playwright.chromium.launch_persistent_context(
                profile,
                executable_path=chromium,
                headless=True,
                args=CHROMIUM_FLAGS,
                viewport=VIEWPORT,
            )
            for path in pages:
                page = context.new_page()
                errors: list[str] = []
                page.on(
                    "console",
                    lambda message, errors=errors: (
                        errors.append(f"console {message.type}: {message.text}")
                        if message.type == "error"
                        else None
                    ),
                )
                page.on(
                    "pageerror",
                    lambda error, errors=errors: errors.append(f"exception: {error}"),
                )
                page.on(
                    "requestfailed",
                    lambda request, errors=errors: errors.append(
                        f"request failed: {request.url} ({request.failure})"
                    ),
                )
                page.on(
                    "response",
                    lambda response, errors=errors: (
                        errors.append(f"HTTP {response.status}: {response.url}")
                        if response.status >= 400
                        else None
                    ),
                )
                page.goto(base + path, wait_until="networkidle")
                report = page.evaluate(PAGE_REPORT)
                ids[path] = set(report["ids"])
                links[path] = set(report["links"])
                for image in report["images"]:
                    if not image["ok"]:
                        errors.append(f"broken image: {image['src']}")
                problems += [f"/{path}: {error}" for error in errors]
                if screenshots is not None and path in ("", ZOO_CARD):
                    screenshots.mkdir(parents=True, exist_ok=True)
                    name = "home.png" if path == "" else "zoo_card.png"
                    page.screenshot(path=str(screenshots / name))
                page.close()
            context.close()
    finally:
        server.shutdown()
    problems += dead_links(site, base, pages, ids, links)
    if screenshots is not None and ZOO_CARD not in pages:
        problems.append(f"/{ZOO_CARD}: the zoo card of the screenshot is missing")
    return problems


def dead_links(
    site: Path,
    base: str,
    pages: list[str],
    ids: dict[str, set[str]],
    links: dict[str, set[str]],
) -> list[str]:
    """Internal links to a page or an anchor that the site does not have."""
    problems = []
    known = set(pages)
    for source, targets in links.items():
        for url in sorted(targets):
            if not url.startswith(base):
                continue  # another site: not checked (the browser check is offline)
            parsed = urllib.parse.urlparse(url[len(base) :])
            target = urllib.parse.unquote(parsed.path)
            if target.endswith("index.html"):
                target = target[: -len("index.html")]
            if target in known:
                if parsed.fragment and parsed.fragment not in ids[target]:
                    problems.append(f"/{source}: dead anchor {url}")
                continue
            # A file of the site (a picture, a download), else dead.
            if target.endswith("/") or not (site / target).is_file():
                problems.append(f"/{source}: dead link {url}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", help="a built site to check (default: build one)")
    parser.add_argument(
        "--screenshots",
        default=str(ROOT / "docs" / "images"),
        help="folder for home.png and zoo_card.png (default: docs/images)",
    )
    parser.add_argument(
        "--no-screenshots", action="store_true", help="take no screenshots"
    )
    parser.add_argument("--chromium", help="the Chromium executable")
    args = parser.parse_args(argv)
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print(
            "check_site: no Chromium found (apt-get install chromium, or --chromium "
            "PATH)",
            file=sys.stderr,
        )
        return 2
    try:
        import playwright  # noqa: F401
    except ImportError:
        print(
            'check_site: Playwright is missing: pip install -e ".[docs]"',
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(args.site) if args.site else Path(tmp) / "site"
        if not args.site:
            build_site(site)
        shots = None if args.no_screenshots else Path(args.screenshots)
        problems = check(site, chromium, shots)
        count = len(site_pages(site))
    for problem in problems:
        print(problem, file=sys.stderr)
    print(
        f"check_site: {count} pages, {len(problems)} problems",
        file=sys.stderr if problems else sys.stdout,
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
