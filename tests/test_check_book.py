"""tools/check_book.py in headless Chromium on a hand-made book: each kind of fault is reported with its page,
and a clean page passes. Needs Chromium: `make test` installs Debian's where it can; without one these tests are
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

REPO = Path(__file__).resolve().parents[1]
# A 1x1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


def _page(body: str) -> str:
    return f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title></head><body>{body}</body></html>"


def _notebook(image_outputs: int) -> str:
    output = {"output_type": "display_data", "metadata": {}, "data": {"image/png": "", "text/plain": "<Figure>"}}
    cells = [{"cell_type": "code", "metadata": {}, "source": "plot()", "execution_count": 1, "outputs": [output]}
             for _ in range(image_outputs)]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


pytestmark = pytest.mark.browser
MISSING = ("chromium is not installed: install it (`make chromium` on Debian or Ubuntu, as root or with sudo) and "
           "put it on PATH, or set CHROMIUM=/path/to/chromium")


@pytest.fixture(scope="module")
def chromium() -> str:
    found = os.environ.get("CHROMIUM") or shutil.which("chromium")
    if found is None:
        if os.environ.get("DMLFACES_REQUIRE_BROWSER") == "1":
            pytest.fail(MISSING)
        pytest.skip(f"browser check not run: {MISSING}")
    return found


def _check(book: Path, tmp_path: Path, chromium: str, toc: Path | None = None) -> tuple[int, str, dict]:
    result = subprocess.run([sys.executable, str(REPO / "tools" / "check_book.py"), "--book", str(book),
                             "--screenshots", str(tmp_path / "shots"), "--toc", str(toc or ""), "--chromium", chromium],
                            capture_output=True, text=True, timeout=300)
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
        assert any(line.strip().startswith(start) and line.strip().endswith(end) for line in failures.splitlines()), \
            f"{start}...{end} not reported:\n{output}"
    assert not [line for line in failures.splitlines() if line.strip().startswith("index.html")], output
    assert summary == {"pages": 8, "screenshots": 8, "failures": 9}
