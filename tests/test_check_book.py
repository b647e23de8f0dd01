"""tools/check_book.py in headless Chromium on a hand-made book: each kind of fault is reported with its page,
a clean page passes, and a screenshot is the page as laid out at 1280 px. Needs Chromium: `make test` installs Debian's where it can; without one these tests are
skipped with the way to enable them, unless DMLFACES_REQUIRE_BROWSER=1 (CI) makes a missing browser a failure."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
# A 1x1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title></head><body>{body}</body></html>"


def _notebook(image_outputs: int) -> str:
    output = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "", "text/plain": "<Figure>"}}
    cells = [
        {"cell_type": "code", "metadata": {}, "source": "plot()", "execution_count": 1, "outputs": [output]}
        for _ in range(image_outputs)
    ]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


pytestmark = pytest.mark.browser
MISSING = (
    "chromium is not installed: install it (`make chromium` on Debian or Ubuntu, as root or with sudo) and "
    "put it on PATH, or set CHROMIUM=/path/to/chromium"
)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if found is None:
        if os.environ.get("DMLFACES_REQUIRE_BROWSER") == "1":
            pytest.fail(MISSING)
        pytest.skip(f"browser check not run: {MISSING}")
    return found


def _check(book: Path, tmp_path: Path, chromium: str, toc: Path | None = None) -> tuple[int, str, dict]:
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "check_book.py"),
            "--book",
            str(book),
            "--screenshots",
            str(tmp_path / "shots"),
            "--toc",
            str(toc or ""),
            "--chromium",
            chromium,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return result.returncode, result.stdout + result.stderr, json.loads(result.stdout.splitlines()[-1])


def test_a_clean_book_passes_with_one_screenshot_a_page(tmp_path: Path, chromium: str) -> None:
    book = tmp_path / "html"
    (book / "_images").mkdir(parents=True)
    (book / "_images" / "dot.png").write_bytes(PNG)
    (book / "index.html").write_text(_page("<p>home</p><img src='_images/dot.png'>"))
    (book / "chapter.html").write_text(_page("<div class='cell_output'><img src='_images/dot.png'></div>"))
    (book / "_sources").mkdir()
    (book / "_sources" / "chapter.ipynb").write_text(_notebook(1))
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: index\nchapters:\n  - file: chapter\n")

    code, output, summary = _check(book, tmp_path, chromium, toc)

    assert code == 0, output
    assert summary == {"pages": 2, "screenshots": 2, "failures": 0}
    assert (tmp_path / "shots" / "chapter.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_kind_of_fault_is_reported_with_its_page(tmp_path: Path, chromium: str) -> None:
    book = tmp_path / "html"
    (book / "_images").mkdir(parents=True)
    (book / "_images" / "dot.png").write_bytes(PNG)
    (book / "_images" / "corrupt.png").write_bytes(b"not a png")
    (book / "index.html").write_text(_page("<p>home</p>"))
    (book / "missing_image.html").write_text(_page("<img src='_images/nowhere.png'>"))
    (book / "corrupt_image.html").write_text(_page("<img src='_images/corrupt.png'>"))
    (book / "script_error.html").write_text(_page("<script>undefinedFunction();</script>"))
    (book / "console_error.html").write_text(_page("<script>console.error('it broke');</script>"))
    (book / "cdn.html").write_text(_page("<script src='https://cdn.example.org/lib.js'></script>"))
    (book / "figures.html").write_text(_page("<div class='cell_output'><img src='_images/dot.png'></div>"))
    (book / "no_figure.html").write_text(_page("<p>no plot</p>"))
    (book / "_sources").mkdir()
    (book / "_sources" / "figures.ipynb").write_text(_notebook(2))
    (book / "_sources" / "no_figure.ipynb").write_text(_notebook(0))
    toc = tmp_path / "_toc.yml"
    toc.write_text("format: jb-book\nroot: index\nchapters:\n  - file: figures\n  - file: unbuilt.md\n")

    code, output, summary = _check(book, tmp_path, chromium, toc)

    assert code == 1, output
    expected = {
        "unbuilt.html: listed in": "",
        "missing_image.html: broken image _images/nowhere.png": "",
        "missing_image.html: HTTP 404 for http://127.0.0.1:": "/_images/nowhere.png",
        "corrupt_image.html: broken image _images/corrupt.png": "",
        "script_error.html: JavaScript error: ReferenceError: undefinedFunction is not defined": "",
        "console_error.html: console error: it broke": "",
        "cdn.html: request failed (net::ERR_NAME_NOT_RESOLVED): https://cdn.example.org/lib.js": "",
        "figures.html: missing figures: its notebook has 2 image outputs, the page shows 1": "",
        "no_figure.html: missing figures: a notebook page with no figure in its outputs": "",
    }
    failures = output.split("failures:", 1)[1]
    for start, end in expected.items():
        assert any(line.strip().startswith(start) and line.strip().endswith(end) for line in failures.splitlines()), (
            f"{start}...{end} not reported:\n{output}"
        )
    assert not [line for line in failures.splitlines() if line.strip().startswith("index.html")], output
    assert summary == {"pages": 8, "screenshots": 8, "failures": 9}


def _article(body: str) -> str:
    """A page laid out like the book's theme: its content in an <article class="bd-article"> 600 px wide."""
    return _page(f"<article class='bd-article' role='main' style='width: 600px; padding: 0 20px'>{body}</article>")


NUMBERS = "".join(f"<td>0.12345678{i}</td>" for i in range(12))  # ~1100 px of cells no line break can narrow


def test_content_wider_than_its_column_fails_naming_it_with_its_width_and_fix(tmp_path: Path, chromium: str) -> None:
    book = tmp_path / "html"
    (book / "_images").mkdir(parents=True)
    (book / "_images" / "dot.png").write_bytes(PNG)
    (book / "index.html").write_text(_article("<p>home</p>"))
    # The way myst-nb shows a DataFrame: in a wrapper that scrolls, so the page itself keeps its width.
    (book / "scrolling_table.html").write_text(
        _article(f"<div class='output text_html' style='overflow-x: auto'><table id='results'><tr>{NUMBERS}</tr></table></div>")
    )
    (book / "table.html").write_text(_article(f"<table class='dataframe'><tr>{NUMBERS}</tr></table>"))
    (book / "code.html").write_text(
        _article("<div class='highlight'><pre style='overflow-x: auto'>total = " + " + ".join(["weight"] * 60) + "\n</pre></div>")
    )
    (book / "image.html").write_text(_article("<img src='_images/dot.png' alt='a wide plot' width='900' height='10'>"))

    code, output, summary = _check(book, tmp_path, chromium)

    assert code == 1, output
    failures = [line.strip() for line in output.split("failures:", 1)[1].splitlines()[:-1]]
    expected = {
        "scrolling_table.html": (
            'table#results "0.123456780 0.123456781',
            "so it scrolls sideways in div.output.text_html",
            "round or narrow the table",
        ),
        "table.html": ('table.dataframe "0.123456780', "so it runs off the column", "round or narrow the table"),
        "code.html": ('pre "total = weight + weight', "px wide in 600 px, so it scrolls sideways", "wrap or shorten its lines"),
        "image.html": ('img "a wide plot" is 900 px wide', "so it runs off the column", "max-width: 100%"),
    }
    for page, parts in expected.items():
        lines = [line for line in failures if line.startswith(f"{page}: wider than its column (600 px): {parts[0]}")]
        assert len(lines) == 1 and all(part in lines[0] for part in parts), f"{page} not reported as {parts}:\n{output}"
        width = int(lines[0].split(" px wide")[0].rsplit(" ", 1)[1])
        assert width > 600, lines[0]
    assert summary == {"pages": 5, "screenshots": 5, "failures": 4}, output


def test_content_that_fits_its_column_or_is_hidden_passes(tmp_path: Path, chromium: str) -> None:
    book = tmp_path / "html"
    (book / "_images").mkdir(parents=True)
    (book / "_images" / "dot.png").write_bytes(PNG)
    wide = f"<table><tr>{NUMBERS}</tr></table>"
    (book / "index.html").write_text(
        _article(
            "<div class='output' style='overflow-x: auto'><table><tr><td>0.12</td><td>0.34</td></tr></table></div>"
            "<div class='highlight'><pre style='overflow-x: auto'>total = weight + bias\n</pre></div>"
            "<img src='_images/dot.png' width='900' style='max-width: 100%'>"
            f"<div style='display: none'>{wide}</div>"
            f"<div style='visibility: hidden'>{wide}</div>"
            "<div style='height: 0; overflow: visible'><div style='width: 2000px'></div></div>"
            # A hide-input cell: the code is in a closed <details> until the reader opens it.
            f"<details><summary>Show code</summary><pre style='overflow-x: auto'>{'x' * 300}</pre></details>"
            # Screen-reader text, as Sphinx themes hide it.
            f"<div style='overflow-x: auto'><span style='position: absolute; width: 1px; height: 1px; overflow: hidden;"
            f" clip: rect(0, 0, 0, 0); white-space: nowrap'>{'skip to the content ' * 40}</span></div>"
            # Display math in the shape MathJax 3 renders it: the visible formula fits; the assistive MathML beside it is clipped
            # to nothing but still widens its scrolling wrapper's scrollWidth.
            "<div class='math' style='overflow-x: auto'><mjx-container style='display: block; position: relative'>"
            "<mjx-math style='display: inline-block'>x + y</mjx-math><mjx-assistive-mml style='position: absolute;"
            " top: 0; left: 0; display: block; width: 1500px; overflow: hidden; clip: rect(1px, 1px, 1px, 1px)'>"
            "<math><mi>x</mi><mo>+</mo><mi>y</mi></math></mjx-assistive-mml></mjx-container></div>"
        )
    )

    code, output, summary = _check(book, tmp_path, chromium)

    assert code == 0, output
    assert summary == {"pages": 1, "screenshots": 1, "failures": 0}


def test_a_screenshot_shows_the_page_as_laid_out_at_1280_px(tmp_path: Path, chromium: str) -> None:
    """The layout of the theme in small: a 200 px sidebar left of the content from 960 px up, that slides in
    (here slowly) when the window grows that wide. A capture that passes the page through a narrower viewport
    comes back without it and with the content moved to the left edge."""
    book = tmp_path / "html"
    book.mkdir()
    (book / "index.html").write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><meta name='viewport' content='width=device-width, "
        "initial-scale=1'><title>t</title><style>body { margin: 0; display: flex } .side { flex: 0 0 200px; "
        "height: 3000px; background: #f00; margin-left: -200px } @media (min-width: 960px) { .side { margin-left: 0; "
        "transition: margin-left 60s linear } } .main { flex: 1; height: 3000px; background: #00f }</style></head>"
        "<body><div class='side'></div><div class='main'></div></body></html>"
    )

    code, output, _ = _check(book, tmp_path, chromium)

    assert code == 0, output
    shot = Image.open(tmp_path / "shots" / "index.png").convert("RGB")
    assert shot.width == 1280 and shot.height >= 3000, (shot.size, output)
    for y in (0, 1500, 2999):
        assert [shot.getpixel((x, y)) for x in (0, 199, 200, 1279)] == [(255, 0, 0)] * 2 + [(0, 0, 255)] * 2, (
            f"row {y} of the screenshot is not the page at 1280 px (sidebar 0-199, content from 200)"
        )
