"""Look at the built book in a real browser: every page in headless Chromium, one full-page screenshot each.

    .venv/bin/python tools/check_book.py [--book _build/html] [--screenshots _build/screenshots]

The book is served from 127.0.0.1 (an http.server on a free port, in a thread of this process, so it
cannot outlive the check) and driven over the Chrome DevTools Protocol on a pipe (--remote-debugging-pipe):
standard library only, no driver binary and no port for the browser. Every host but 127.0.0.1 resolves to
nothing, so the check is the same online and offline: a page that needs a CDN fails here.

Pages: every .html of the book outside its asset folders (_static, _sources, _images, ...): the chapters
of _toc.yml, the root index.html that redirects into the book, and Sphinx's search.html and genindex.html,
which the navbar's search box and the index link open (they are pages a reader sees, and search.html runs
the most JavaScript of all). Every file of _toc.yml must have its page.

A page fails on: a JavaScript exception or console error; a request answered >= 400 or not answered at
all (a missing image, script or style sheet, an external host); an <img> with naturalWidth 0 after load
(a broken image); a notebook page showing fewer loaded figures in its cell outputs than its notebook
(copied by Sphinx to _sources/) has image outputs, or a notebook page with no figure at all; content wider than
the article's column at 1280 px (a table, a code block's lines, an image, an output), whether it runs off the
column or scrolls sideways in its wrapper: the reader has to scroll it either way.

The screenshots are laid out as a reader sees the page at 1280 px: the viewport is made as tall as the page
(up to Chromium's 16384 px) and shot as it stands. The last line printed is JSON: {"pages": N, "screenshots": N, "failures": N}; the exit status is 1 on
any failure.
"""

from __future__ import annotations

import argparse
import base64
import fcntl
import functools
import http.server
import json
import math
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

VIEWPORT = {"width": 1280, "height": 900}
MAX_SCREENSHOT_HEIGHT = 16_384  # Chromium's largest texture; a longer page is cut there (and says so)
PAGE_TIMEOUT_S = 60.0
IDLE_S = 0.5  # no request in flight for this long after the load event: the page has settled
# The mimetypes myst-nb renders before an image when one output carries several (its HTML priority list).
ABOVE_IMAGES = ("application/vnd.jupyter.widget-view+json", "application/javascript", "text/html")
HIDDEN_OUTPUT_TAGS = {"remove-output", "remove-cell", "remove_output", "remove_cell"}
INSTALL_HINT = "run `make chromium` (the install step of `make check-book`: apt-get install chromium)"

IMAGES_JS = """(async () => {
  const images = [...document.images];
  images.forEach((img) => { img.loading = "eager"; });
  await Promise.all(images.map((img) => img.complete ? null : new Promise((done) => {
    img.addEventListener("load", done); img.addEventListener("error", done); setTimeout(done, 10000);
  })));
  return images.map((img) => ({src: img.getAttribute("src"), width: img.naturalWidth,
                               output: img.closest(".cell_output") !== null}));
})()"""


# Content wider than the article's column (the content box of the theme's <article>, else of Sphinx's role=main,
# else of the body): an element whose own box is wider (a table running
# off the page, or scrolling sideways inside a wrapper: the reader scrolls it either way), or a box that scrolls
# or clips sideways because its content is wider than it (a code block's long lines). Only the outermost wide
# element is named (not a table's rows), and a scrolling box only when nothing inside it is named. Left out:
# hidden and zero-size elements (a closed <details>: a hide-input cell), inline text (a wide line is its block's),
# and what is clipped on purpose (clip, clip-path: screen-reader text, MathJax's assistive MathML): it widens its
# box's scrollWidth, but nobody sees it.
OVERFLOW_JS = """(() => {
  const column = document.querySelector(".bd-article") || document.querySelector("[role=main]") || document.body;
  const style = getComputedStyle(column);
  const room = column.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const hidden = (el, s) => !el.checkVisibility() || s.clip !== "auto" || s.clipPath !== "none";
  const seen = (s, box) => s.visibility === "visible" && box.width > 0 && box.height > 0;
  const media = "img, svg, canvas, video, iframe, object, embed";  // one box even when inline
  const scrolls = (s) => s.overflowX !== "visible";
  const clips = (s) => s.overflowX === "hidden" || s.overflowX === "clip";  // no scrollbar: what is outside is lost
  const describe = (el) => {
    const classes = [...el.classList].slice(0, 3).map((c) => "." + c).join("");
    const text = (el.innerText || el.getAttribute("alt") || el.getAttribute("src") || "").replace(/\\s+/g, " ").trim();
    return {element: el.localName + (el.id ? "#" + el.id : "") + classes,
            text: text.length > 40 ? text.slice(0, 40) + "..." : text,
            kind: el.matches("table") || el.querySelector("table") ? "table"
                : el.matches("pre, code") || el.querySelector("pre") ? "text"
                : el.matches(media) ? "media" : "other"};
  };
  // Whether something visible inside a scrolling box lies beyond its left or right edge.
  const spills = (parent, left, right) => [...parent.childNodes].some((node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      if (!node.data.trim() || !node.parentElement.checkVisibility({visibilityProperty: true})) return false;
      const range = document.createRange();
      range.selectNodeContents(node);
      const box = range.getBoundingClientRect();
      return box.width > 0 && (box.right > right + 1 || box.left < left - 1);
    }
    if (node.nodeType !== Node.ELEMENT_NODE) return false;
    const s = getComputedStyle(node);
    if (hidden(node, s)) return false;
    const box = node.getBoundingClientRect();
    return seen(s, box) && (box.right > right + 1 || box.left < left - 1) || !scrolls(s) && spills(node, left, right);
  });
  const found = [];
  // Reports the wide content under parent; scroller: the nearest box inside the column it scrolls in.
  const walk = (parent, scroller) => {
    let named = false;
    for (const el of parent.children) {
      const s = getComputedStyle(el);
      if (hidden(el, s)) continue;
      const box = el.getBoundingClientRect();
      if (seen(s, box) && (s.display !== "inline" || el.matches(media)) && box.width > room + 1) {
        found.push({...describe(el), width: Math.round(box.width), in: scroller && describe(scroller).element,
                    clips: scroller !== null && clips(getComputedStyle(scroller))});
        named = true;
      } else if (!scrolls(s)) {
        named = walk(el, scroller) || named;
      } else if (walk(el, el)) {
        named = true;
      } else if (seen(s, box) && el.scrollWidth > el.clientWidth + 1) {
        const left = box.left + el.clientLeft;
        if (spills(el, left, left + el.clientWidth)) {
          found.push({...describe(el), width: el.scrollWidth, shows: el.clientWidth, clips: clips(s)});
          named = true;
        }
      }
    }
    return named;
  };
  walk(column, null);
  return {room: Math.round(room), found};
})()"""
# What to do about content wider than its column, by the kind OVERFLOW_JS gives it.
FIXES = {
    "table": "round or narrow the table (fewer digits, shorter or fewer columns, or transpose it)",
    "text": "wrap or shorten its lines",
    "media": "scale it to the column (max-width: 100%)",
    "other": "narrow it or let its content wrap",
}

# After a resize: two frames (the page's resize handlers run in them), then the CSS transitions the new size set off
# (the theme's table of contents animates its vh-based max-height), for at most 2 s.
SETTLED_JS = """new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(() => {
  const transitions = document.getAnimations().filter((a) => a instanceof CSSTransition);
  Promise.race([Promise.allSettled(transitions.map((a) => a.finished)), new Promise((t) => setTimeout(t, 2000))])
    .then(() => requestAnimationFrame(() => done(true)));
})))"""


class BrowserError(RuntimeError):
    pass


def _above_9(fd: int) -> int:
    moved = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return moved


class Chromium:
    """Headless Chromium driven over the DevTools protocol on fds 3 (commands) and 4 (replies and events)."""

    def __init__(self, executable: str) -> None:
        self.profile = tempfile.mkdtemp(prefix="check-book-chromium-")
        # The child's ends move above fd 9 so that the shell below never closes what it has just placed on 3 or 4.
        to_browser_r, self._to_browser = map(_above_9, os.pipe())
        self._from_browser, from_browser_w = map(_above_9, os.pipe())
        flags = [
            "--headless",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--mute-audio",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-default-apps",
            # Nothing leaves the machine: only the book's server resolves.
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
            f"--window-size={VIEWPORT['width']},{VIEWPORT['height']}",
            "about:blank",
        ]
        if os.geteuid() == 0:
            flags.append("--no-sandbox")  # Chromium refuses to start its sandbox as root
        # bash (dash takes single-digit fds only) puts the pipe ends on the fds --remote-debugging-pipe uses.
        shell = f'exec "$0" "$@" 3<&{to_browser_r} 4>&{from_browser_w} {to_browser_r}<&- {from_browser_w}>&-'
        self.log = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ["/bin/bash", "-c", shell, executable, *flags],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            pass_fds=(to_browser_r, from_browser_w),
        )
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.version = self.send("Browser.getVersion", timeout=30)["product"]

    def _read(self, timeout: float) -> None:
        """Reads what the browser has written within ``timeout`` seconds into replies and events."""
        ready, _, _ = select.select([self._from_browser], [], [], max(timeout, 0.0))
        if not ready:
            return
        chunk = os.read(self._from_browser, 1 << 20)
        if not chunk:
            self.log.seek(0)
            raise BrowserError(f"chromium exited:\n{self.log.read().decode(errors='replace')[-3000:]}")
        self._buffer += chunk
        if b"\0" not in chunk:  # a message (a screenshot: megabytes) is still arriving
            return
        *messages, self._buffer = self._buffer.split(b"\0")
        for raw in messages:
            message = json.loads(raw)
            if "id" in message:
                self._replies[message["id"]] = message
            else:
                self.events.append(message)

    def pump(self, seconds: float) -> None:
        """Collects events for ``seconds``."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self._read(left)

    def send(
        self, method: str, params: dict[str, Any] | None = None, session: str | None = None, timeout: float = PAGE_TIMEOUT_S
    ) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        end = time.monotonic() + timeout
        while self._next_id not in self._replies:
            if time.monotonic() > end:
                raise BrowserError(f"{method}: no answer in {timeout:.0f} s")
            self._read(end - time.monotonic())
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply["result"]

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=10)
        except (BrowserError, OSError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)
        self.log.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class Page:
    """One tab in a fresh profile (a first visit: no storage, no cache, whatever page came before): navigates
    to a URL, waits until it has settled, and names what went wrong on it."""

    def __init__(self, browser: Chromium) -> None:
        self.browser = browser
        self.context = browser.send("Target.createBrowserContext")["browserContextId"]
        target = browser.send("Target.createTarget", {"url": "about:blank", "browserContextId": self.context})["targetId"]
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable")
        self.call("Network.setCacheDisabled", {"cacheDisabled": True})
        self.call("Emulation.setDeviceMetricsOverride", {**VIEWPORT, "deviceScaleFactor": 1, "mobile": False})
        self.first_event = len(browser.events)

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session)

    def _events(self) -> list[dict[str, Any]]:
        return [e for e in self.browser.events[self.first_event :] if e.get("sessionId") == self.session]

    def load(self, url: str) -> None:
        self.first_event = len(self.browser.events)
        navigation = self.call("Page.navigate", {"url": url})
        if navigation.get("errorText"):
            raise BrowserError(f"navigation failed: {navigation['errorText']}")
        end = time.monotonic() + PAGE_TIMEOUT_S
        idle_since = None
        while time.monotonic() < end:
            self.browser.pump(0.1)
            events = self._events()
            loaded = any(e["method"] == "Page.loadEventFired" for e in events)
            in_flight = {e["params"]["requestId"] for e in events if e["method"] == "Network.requestWillBeSent"}
            in_flight -= {
                e["params"]["requestId"] for e in events if e["method"] in ("Network.loadingFinished", "Network.loadingFailed")
            }
            if loaded and not in_flight and self._ready():
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= IDLE_S:
                    return
            else:
                idle_since = None
        raise BrowserError(f"did not finish loading in {PAGE_TIMEOUT_S:.0f} s")

    def _ready(self) -> bool:
        try:  # a redirecting page (the root index.html) replaces its document while we ask
            return self.evaluate("document.readyState") == "complete"
        except BrowserError:
            return False

    def evaluate(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True, "returnByValue": True})
        if "exceptionDetails" in result:
            raise BrowserError(f"evaluating in the page: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def problems(self) -> list[str]:
        """JavaScript errors, console errors and failed requests seen since the last load."""
        self.browser.pump(0.2)  # the events of the last requests (images loaded late) may still be on their way
        found = []
        urls = {}
        for event in self._events():
            method, params = event["method"], event["params"]
            if method == "Network.requestWillBeSent":
                urls[params["requestId"]] = params["request"]["url"]
            elif method == "Runtime.exceptionThrown":
                details = params["exceptionDetails"]
                found.append(f"JavaScript error: {details.get('exception', {}).get('description') or details['text']}")
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "assert"):
                text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
                found.append(f"console error: {text}")
            elif (
                method == "Log.entryAdded" and params["entry"]["level"] == "error" and params["entry"]["source"] != "network"
            ):  # failed requests are reported below, with their URL
                found.append(f"console error ({params['entry']['source']}): {params['entry']['text']}")
            elif (
                method == "Network.responseReceived"
                and params["response"]["status"] >= 400
                and urlsplit(params["response"]["url"]).path != "/favicon.ico"
            ):  # the browser's own guess
                found.append(f"HTTP {params['response']['status']} for {params['response']['url']}")
            elif (
                method == "Network.loadingFailed"
                and not params.get("canceled")
                and params.get("errorText") != "net::ERR_HTTP_RESPONSE_CODE_FAILURE"
            ):  # the >= 400 above
                found.append(f"request failed ({params['errorText']}): {urls.get(params['requestId'], '?')}")
        return list(dict.fromkeys(found))

    def screenshot(self, path: Path) -> str:
        """A full-page PNG at ``path``, as a reader sees the page at 1280 px; returns a note when the page was taller
        than Chromium can shoot. Leaves the viewport as tall as the page."""
        # Not captureBeyondViewport: Chromium (156, headless) passes the page through a 1x1 px viewport on the way
        # (a resize event sees innerWidth 1), the theme's media queries switch to its narrow layout (the sidebars
        # slide out as off-canvas drawers) and the capture catches the CSS transitions sliding back: sidebars gone,
        # the article shifted left past the image's edge. A viewport as tall as the page keeps the 1280 px layout,
        # and the capture takes the viewport as it stands.
        height = 0
        for _ in range(3):  # a taller viewport can make the page taller (vh units: search.html): measure again
            content = self.call("Page.getLayoutMetrics")["cssContentSize"]["height"]
            wanted = min(math.ceil(content), MAX_SCREENSHOT_HEIGHT)
            if wanted == height:
                break
            height = wanted
            self.call(
                "Emulation.setDeviceMetricsOverride",
                {"width": VIEWPORT["width"], "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
            self.evaluate(SETTLED_JS)
        shot = self.call("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return f" (cut at {MAX_SCREENSHOT_HEIGHT} of {math.ceil(content)} px)" if height < content else ""

    def close(self) -> None:
        self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})


def book_pages(book: Path) -> list[str]:
    """Every page of the book: its .html files outside the asset folders Sphinx names with a leading _."""
    return sorted(
        p.relative_to(book).as_posix()
        for p in book.rglob("*.html")
        if not any(part.startswith("_") for part in p.relative_to(book).parts[:-1])
    )


def toc_files(toc: Path) -> list[str]:
    """The files _toc.yml lists (root, chapters, sections), without their suffixes."""

    def walk(node: Any) -> list[str]:
        if isinstance(node, list):
            return [f for item in node for f in walk(item)]
        if not isinstance(node, dict):
            return []
        own = [str(node[key]) for key in ("root", "file") if key in node]
        return own + [f for key in ("parts", "chapters", "sections") for f in walk(node.get(key, []))]

    return [str(Path(f).with_suffix("")) for f in walk(yaml.safe_load(toc.read_text()))]


def notebook_figures(book: Path, page: str) -> int | None:
    """How many figures the page's notebook shows in its outputs (None when the page is no notebook)."""
    source = book / "_sources" / Path(page).with_suffix(".ipynb")
    if not source.is_file():
        return None
    count = 0
    for cell in json.loads(source.read_text())["cells"]:
        if cell["cell_type"] != "code" or HIDDEN_OUTPUT_TAGS & set(cell.get("metadata", {}).get("tags", [])):
            continue
        for output in cell.get("outputs", []):
            mimetypes = output.get("data", {})
            if any(m.startswith("image/") for m in mimetypes) and not any(m in mimetypes for m in ABOVE_IMAGES):
                count += 1
    return count


def overflows(page: Page) -> list[str]:
    """The page's content wider than its article's column, each named with its width and its fix."""
    measured = page.evaluate(OVERFLOW_JS)
    found = []
    for item in measured["found"]:
        what = item["element"] + (f' "{item["text"]}"' if item["text"] else "")
        if "shows" in item:
            how = f"holds content {item['width']} px wide in {item['shows']} px, so "
            how += "part of it is cut off" if item["clips"] else "it scrolls sideways"
        elif item["in"]:
            how = f"is {item['width']} px wide, so "
            how += f"{item['in']} cuts it off" if item["clips"] else f"it scrolls sideways in {item['in']}"
        else:
            how = f"is {item['width']} px wide, so it runs off the column"
        found.append(f"wider than its column ({measured['room']} px): {what} {how}: {FIXES[item['kind']]}")
    return found


def check_page(page: Page, url: str, figures: int | None) -> tuple[list[str], str]:
    """Loads one page; returns its problems and a summary of its images."""
    page.load(url)
    images = page.evaluate(IMAGES_JS)
    found = [f"broken image {img['src']} (naturalWidth 0)" for img in images if img["width"] == 0]
    shown = sum(1 for img in images if img["output"] and img["width"] > 0)
    if figures is not None and shown < max(figures, 1):
        found.append(
            f"missing figures: its notebook has {figures} image outputs, the page shows {shown}"
            if figures
            else "missing figures: a notebook page with no figure in its outputs"
        )
    found += overflows(page)
    found += page.problems()
    summary = f"{len(images)} images" + (f", {shown}/{figures} notebook figures" if figures is not None else "")
    return found, summary


def serve(book: Path) -> http.server.ThreadingHTTPServer:
    """An http.server for ``book`` on a free port of 127.0.0.1, in a daemon thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # the browser reports what failed
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(book)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--book", type=Path, default=Path("_build/html"), help="the built book (default: _build/html)")
    parser.add_argument(
        "--screenshots",
        type=Path,
        default=Path("_build/screenshots"),
        help="one full-page PNG per page lands here, in the book's layout (default: _build/screenshots)",
    )
    parser.add_argument(
        "--toc", default="_toc.yml", help="every file it lists must have its page (default: _toc.yml; --toc '' skips this)"
    )
    parser.add_argument(
        "--chromium",
        default=os.environ.get("CHROMIUM") or shutil.which("chromium"),
        help="the browser (default: $CHROMIUM, else chromium on PATH)",
    )
    args = parser.parse_args(argv)

    book = args.book.resolve()
    if not (book / "index.html").is_file():
        parser.error(f"no built book at {args.book}/ (no index.html): run `make reproduce`, or build it")
    if not args.chromium:
        parser.error(f"chromium not found: {INSTALL_HINT}")
    pages = book_pages(book)
    listed = toc_files(Path(args.toc)) if args.toc else []
    failures = [f"{file}.html: listed in {args.toc} but not built" for file in listed if not (book / f"{file}.html").is_file()]
    for stale in args.screenshots.rglob("*.png"):
        stale.unlink()

    server = serve(book)
    browser = Chromium(args.chromium)
    screenshots = 0
    try:
        print(f"check-book: {len(pages)} pages of {args.book} in {browser.version} (served on 127.0.0.1:{server.server_port})")
        for name in pages:
            page = Page(browser)
            try:
                found, summary = check_page(page, f"http://127.0.0.1:{server.server_port}/{name}", notebook_figures(book, name))
                shot = args.screenshots / Path(name).with_suffix(".png")
                summary += page.screenshot(shot)
                screenshots += 1
            except BrowserError as error:
                found, summary, shot = [str(error)], "not checked", None
            finally:
                page.close()
            failures += [f"{name}: {problem}" for problem in found]
            print(f"{'FAIL' if found else 'ok  '} {name}: {summary}" + (f" -> {shot}" if shot else ""))
            for problem in found:
                print(f"     {problem}")
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
    if failures:
        print(f"check-book: {len(failures)} failures:", *failures, sep="\n  ")
    print(json.dumps({"pages": len(pages), "screenshots": screenshots, "failures": len(failures)}))
    return 1 if failures or not pages else 0


if __name__ == "__main__":
    sys.exit(main())
