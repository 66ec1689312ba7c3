"""Load every page of the built docs in headless Chromium at 1280x800 and fail on what a reader would see.

``python docs/browser_check.py <builddir>`` serves the build over ``http.server`` on loopback and
fails (exit 1, each problem on a line) on:

- **horizontal overflow**: the page scrolls sideways, an element reaches past the viewport, or an
  element hides part of its content horizontally (a code line to scroll to, a table column or a
  sidebar name cut off). The one exception is an element that scrolls inside itself by design:
  it, or an ancestor, carries the class ``scrolls-by-design`` (in RST, ``:class:`` on the
  directive), and it is a scroll container (``overflow-x: auto`` or ``scroll``), so that a reader
  can reach what it hides;
- **a failed resource load**: any request the server answered with 400 or more, or an image the
  browser could not decode;
- **a console error**: anything the page logs at error level, uncaught exceptions included.

It saves the index and the quick start page, as the viewport shows them, into
``<builddir>/_screenshots/`` (``index.png``, ``quickstart.png``). Needs selenium (the ``docs``
extra) and Debian's ``chromium`` and ``chromium-driver``.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.command import Command

WIDTH, HEIGHT = 1280, 800
BY_DESIGN = "scrolls-by-design"
SCREENSHOTS = {"index.html": "index.png", "quickstart.html": "quickstart.png"}
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# No network beyond loopback and nothing of a profile carried between runs: what is measured is the
# site as built, not a cache, an extension or a component update.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--window-size={WIDTH},{HEIGHT}",
)

# Runs in the page. Reports only the outermost offender of each kind, so that one wide table is one
# line and not one per cell.
_OVERFLOW_JS = """
const byDesign = arguments[0];
const doc = document.documentElement;
const width = doc.clientWidth;
const found = [];
const name = (el) => {
  const id = el.id ? '#' + el.id : '';
  const classes = [...el.classList].slice(0, 3).map((c) => '.' + c).join('');
  const text = (el.innerText || el.textContent || '').trim().replace(/\\s+/g, ' ').slice(0, 60);
  return `<${el.tagName.toLowerCase()}${id}${classes}> "${text}"`;
};
const clips = (style) => style.overflowX !== 'visible';
const clippedFrom = (el) => {
  for (let up = el; up && up !== doc; up = up.parentElement) {
    if (clips(getComputedStyle(up))) return true;
  }
  return false;
};
const clippedByAncestor = (el) => clippedFrom(el.parentElement);
const scrollsByDesign = (el, style) =>
  el.closest('.' + byDesign) !== null && ['auto', 'scroll'].includes(style.overflowX);
const under = (el, els) => els.some((other) => other !== el && other.contains(el));
if (doc.scrollWidth > width) found.push(`the page is ${doc.scrollWidth} px wide, the viewport ${width} px`);
const past = [];
const hiding = [];
for (const el of document.body.querySelectorAll('*')) {
  const style = getComputedStyle(el);
  if (style.display === 'none' || style.visibility === 'hidden') continue;
  const box = el.getBoundingClientRect();
  if (box.width === 0 && box.height === 0) continue;
  if ((box.right > width + 0.5 || box.left < -0.5) && !clippedByAncestor(el)) {
    const span = `${Math.round(box.left)}..${Math.round(box.right)} px`;
    past.push([el, `${name(el)} spans ${span}, past the ${width} px viewport`]);
  }
  if (clips(style) && el.scrollWidth > el.clientWidth + 1 && !scrollsByDesign(el, style)) {
    const hidden = `${el.scrollWidth - el.clientWidth} px of its ${el.scrollWidth} px`;
    hiding.push([el, `${name(el)} hides ${hidden} content sideways (overflow-x: ${style.overflowX})`]);
  }
}
// Text spilling out of a box that itself fits (a long line in a pre that does not scroll): named
// by the block it belongs to.
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const range = document.createRange();
for (let text = walker.nextNode(); text; text = walker.nextNode()) {
  const el = text.parentElement;
  range.selectNodeContents(text);
  const box = range.getBoundingClientRect();
  if (box.width === 0 || (box.right <= width + 0.5 && box.left >= -0.5) || clippedFrom(el)) continue;
  let block = el;
  while (block.parentElement && getComputedStyle(block).display.startsWith('inline')) block = block.parentElement;
  if (!past.some(([other]) => other === block)) {
    past.push([block, `${name(block)} has text reaching ${Math.round(box.right)} px, past the ${width} px viewport`]);
  }
}
for (const group of [past, hiding]) {
  const els = group.map(([el]) => el);
  for (const [el, text] of group) if (!under(el, els)) found.push(text);
}
for (const img of document.images) {
  if (!img.complete || img.naturalWidth === 0) found.push(`image ${img.currentSrc || img.src} did not load`);
}
return found;
"""


@dataclass
class RequestLog:
    """What the server answered, so that a resource the page failed to load is named by its status."""

    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self) -> list[str]:
        with self.lock:
            taken, self.failures = self.failures, []
        return taken


class _Handler(http.server.SimpleHTTPRequestHandler):
    log: RequestLog

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if int(code) >= 400:
            with self.log.lock:
                self.log.failures.append(f"HTTP {code} for {self.path}")

    def log_message(self, format: str, *args: object) -> None:
        pass  # the failures are reported with their page; the rest is noise


@contextlib.contextmanager
def serve(root: Path) -> Iterator[tuple[str, RequestLog]]:
    """Serve ``root`` on a free loopback port for the length of the block.

    :param root: the folder to serve.
    :return: the base URL, ending in ``/``, and the log of failed requests.
    """
    log = RequestLog()
    handler = type("Handler", (_Handler,), {"log": log})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="docs-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", log
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def chromium() -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a fresh profile, its viewport exactly ``WIDTH`` x ``HEIGHT`` CSS pixels.

    :return: the driver, quit when the block ends.
    """
    with tempfile.TemporaryDirectory(prefix="docs-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile}"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # The system's driver, matched to the system's browser: Selenium Manager would download one.
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            # --window-size sets the window; the viewport inside it is what pages are laid out in.
            driver.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
            )
            yield driver
        finally:
            driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """Take the console's entries at error level (Chromium's ``SEVERE``) logged since the last call.

    :param driver: the browser.
    :return: one line per entry.
    """
    # What driver.get_log("browser") does, typed: selenium leaves get_log unannotated.
    entries: list[dict[str, str]] = driver.execute(Command.GET_LOG, {"type": "browser"})["value"]
    return [f"console error: {entry['message']}" for entry in entries if entry["level"] == "SEVERE"]


def check_page(driver: webdriver.Chrome, url: str, requests: RequestLog) -> list[str]:
    """Load one page and list what is wrong with it.

    :param driver: the browser.
    :param url: the page's address.
    :param requests: the server's log of failed requests, taken for this page.
    :return: the problems, empty if none.
    """
    driver.get(url)  # returns after the load event: stylesheets, scripts and images are in
    found: list[str] = driver.execute_script(_OVERFLOW_JS, BY_DESIGN)
    return found + requests.take() + console_errors(driver)


def pages(build: Path) -> list[Path]:
    """Every HTML page of the build, the module sources of ``viewcode`` included.

    :param build: the build folder.
    :return: the pages, relative to it, sorted.
    """
    return sorted(p.relative_to(build) for p in build.rglob("*.html") if "_screenshots" not in p.parts)


def check_site(build: Path) -> dict[str, list[str]]:
    """Check every page and save the screenshots.

    :param build: the build folder.
    :return: the problems of each page that has any.
    """
    shots = build / "_screenshots"
    shots.mkdir(exist_ok=True)
    problems: dict[str, list[str]] = {}
    with serve(build) as (base, requests), chromium() as driver:
        for page in pages(build):
            found = check_page(driver, base + page.as_posix(), requests)
            if found:
                problems[page.as_posix()] = found
            if page.as_posix() in SCREENSHOTS:
                driver.save_screenshot(str(shots / SCREENSHOTS[page.as_posix()]))
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Check the build named on the command line; print each problem.

    :param argv: the arguments, ``sys.argv[1:]`` if None.
    :return: the exit status: 0 if every page passed, 1 if not.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("build", type=Path, help="the folder sphinx-build wrote the HTML into")
    build: Path = parser.parse_args(argv).build
    checked = pages(build)
    if not checked:
        print(f"{build}: no HTML pages")
        return 1
    problems = check_site(build)
    for page, found in problems.items():
        print(f"{page}:")
        for problem in found:
            print(f"  {problem}")
    missing = [name for name in SCREENSHOTS.values() if not (build / "_screenshots" / name).is_file()]
    print(f"docs in Chromium at {WIDTH}x{HEIGHT}: {len(checked)} pages, {len(problems)} with problems")
    print(f"screenshots: {', '.join(str(build / '_screenshots' / n) for n in SCREENSHOTS.values())}")
    if missing:
        print(f"missing screenshots: {missing}")
    return 1 if problems or missing else 0


if __name__ == "__main__":
    sys.exit(main())
