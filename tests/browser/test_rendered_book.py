"""Open every page of the built book in headless Chromium and check what a reader sees.

Run by ``make browser`` (part of ``make test``) after the quick book build;
``BOOK_HTML_DIR`` points at the built HTML. Every page is read at a phone's width
and a laptop's (``reader_checks.WIDTHS``): math rendered and whole, images loaded
and described, links alive, solutions closed until one click opens them, no
plumbing in sight, wide tables in a scroll box, navigation that opens. A
full-page screenshot of each lands in ``BOOK_SCREENSHOT_DIR``. Skipped, with the
reason, only when no Chromium binary can be found.
"""

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

import pytest
import reader_checks
import yaml

ROOT = Path(__file__).resolve().parents[2]
HTML_DIR = Path(os.environ.get("BOOK_HTML_DIR", ROOT / "_build/quick/_build/html"))
SCREENSHOTS = Path(os.environ.get("BOOK_SCREENSHOT_DIR", ROOT / "_build/screenshots"))
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [c["file"] for part in TOC["parts"] for c in part["chapters"]]
CHROMIUM = (
    os.environ.get("CHROMIUM")
    or shutil.which("chromium")
    or shutil.which("chromium-browser")
)

# Text that means LaTeX was left unrendered (outside code blocks).
RAW_MATH_MARKERS = ("$$", "\\(", "\\[", "\\begin{", "\\frac", "\\theta")


@pytest.fixture(scope="module")
def server():
    if not (HTML_DIR / "index.html").exists():
        pytest.fail(f"no built book at {HTML_DIR}: run the quick book build first")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(HTML_DIR))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        # Debian's Chromium here; Playwright's own build where it was installed
        # (the GitHub workflow runs `playwright install chromium`).
        bundled = Path(p.chromium.executable_path)
        executable = CHROMIUM or (str(bundled) if bundled.exists() else None)
        if executable is None:
            pytest.skip(
                "no Chromium: install Debian's 'chromium' (make browser tries as root)"
            )
        browser = p.chromium.launch(
            executable_path=executable,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


def load(browser, url: str, width: int = reader_checks.DESKTOP):
    """Open ``url`` ``width`` px wide; return the page and its console errors."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    # Nothing outside localhost may be needed: block it and report the attempt.
    page.route(
        "**/*",
        lambda route: (
            route.continue_()
            if urlparse(route.request.url).hostname in ("127.0.0.1", None)
            else (errors.append(f"external request {route.request.url}"), route.abort())
        ),
    )
    page.goto(url, wait_until="load")
    page.evaluate(  # wait until MathJax has typeset the page
        "async () => { if (window.MathJax?.startup) await MathJax.startup.promise; }"
    )
    if page.evaluate("document.querySelector('mjx-container') !== null"):
        # and until _static/fit-to-column.js has fitted the equations to the column
        page.wait_for_function("document.documentElement.dataset.mathFitted")
    return page, errors


@pytest.mark.parametrize("width", reader_checks.WIDTHS)
@pytest.mark.parametrize("page_path", PAGES)
def test_page_renders_for_a_reader(server, browser, page_path, width):
    url = urljoin(server, page_path + ".html")
    page, errors = load(browser, url, width)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    name = f"{page_path.replace('/', '_')}_{width}px.png"
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)
    problems = [p for check in reader_checks.READING_CHECKS for p in check(page)]
    problems += [p for check in reader_checks.CLICKING_CHECKS for p in check(page)]
    assert not problems, f"{page_path} at {width} px:\n" + "\n".join(problems)

    text = page.evaluate(
        """() => { const b = document.querySelector('main') || document.body;
                   const c = b.cloneNode(true);
                   c.querySelectorAll('pre, code, script, style, mjx-container')
                    .forEach(e => e.remove());
                   return c.innerText; }"""
    )
    raw = [m for m in RAW_MATH_MARKERS if m in text]
    assert not raw, f"{page_path}: unrendered math {raw}"
    source = (ROOT / page_path).with_suffix(".ipynb")
    source = source if source.exists() else source.with_suffix(".md")
    if "$" in source.read_text():
        assert page.locator("mjx-container").count() > 0, (
            f"{page_path}: no MathJax output"
        )

    broken = page.evaluate(
        "() => Array.from(document.images)"
        ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)"
    )
    assert not broken, f"{page_path}: images that did not load: {broken}"

    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        parsed = urlparse(href)
        if parsed.hostname != "127.0.0.1":
            continue
        target = HTML_DIR / unquote(parsed.path).lstrip("/")
        if target.is_dir():
            target = target / "index.html"
        assert target.exists(), f"{page_path}: broken internal link {href}"

    if page_path.startswith("notebooks/"):
        colab = page.eval_on_selector_all(
            "a[href*='colab.research.google.com']", "els => els.map(e => e.href)"
        )
        repo = urlparse(CONFIG["repository"]["url"]).path.strip("/")
        # the converted notebook on the colab branch (_static/colab-branch.js)
        expected = f"/github/{repo}/blob/colab/{page_path}.ipynb"
        assert any(urlparse(h).path == expected for h in colab), (
            f"{page_path}: Colab link should end with {expected}, found {colab}"
        )
        others = page.eval_on_selector_all(
            "a[href*='github.com']", "els => els.map(e => e.href)"
        )
        assert not [
            h for h in others if "/blob/colab/" in h and "colab.research" not in h
        ]
    assert not errors, f"{page_path}: console errors {errors}"
    page.close()


FIXTURES = Path(__file__).with_name("fixtures")


@pytest.mark.parametrize("width", reader_checks.WIDTHS)
@pytest.mark.parametrize(
    "check",
    reader_checks.READING_CHECKS + reader_checks.CLICKING_CHECKS,
    ids=lambda check: check.__name__,
)
def test_each_check_catches_its_fixture(browser, check, width):
    """Each check reports the page that has its problem, at both widths."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_content((FIXTURES / f"{check.__name__}.html").read_text())
    assert check(page), f"{check.__name__} missed the problem of its fixture page"
    page.close()
