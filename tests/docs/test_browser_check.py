"""docs/browser_check.py finds each fault it is for, in a real headless Chromium, and passes a clean page.

One small site, a page per fault, checked once: the browser takes a few seconds to start.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("selenium", reason="the docs extra brings selenium")
if not (shutil.which("chromium") and shutil.which("chromedriver")):
    pytest.skip("needs Debian's chromium and chromium-driver", allow_module_level=True)

from docs import browser_check  # after the skips: it imports selenium

# A page of its own for each fault, and clean ones. Each names an icon, so that Chromium's own
# request for /favicon.ico does not count against the first page checked.
HEAD = '<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">'
LONG = "x" * 400
PAGES = {
    "index.html": "<p>the index</p>",
    "quickstart.html": "<p>the quick start</p>",
    "clean.html": f'<div style="width: 600px; overflow-wrap: anywhere">{LONG}</div>',
    "wide.html": '<div style="width: 2000px"><p>a table wider than the screen</p><p>its second row</p></div>',
    "code-scrolls.html": f'<pre style="width: 600px; overflow-x: auto">{LONG}</pre>',
    "sidebar-cuts.html": f'<div style="width: 200px; overflow-x: hidden; white-space: nowrap">{LONG}</div>',
    "by-design.html": f'<div class="scrolls-by-design"><pre style="width: 600px; overflow-x: auto">{LONG}</pre></div>',
    "by-design-but-cut.html": (
        f'<div class="scrolls-by-design" style="width: 600px; overflow-x: hidden; white-space: nowrap">{LONG}</div>'
    ),
    "no-stylesheet.html": '<link rel="stylesheet" href="_static/missing.css"><p>text</p>',
    "no-image.html": '<img src="_static/missing.png" alt="a chart">',
    "bad-image.html": '<img src="_static/broken.png" alt="a chart">',
    "console.html": '<script>console.error("a script failed")</script>',
    "uncaught.html": "<script>undefinedFunction()</script>",
    "sub/nested.html": f"<pre>{LONG}</pre>",
}


def write_site(build: Path, pages: dict[str, str]) -> Path:
    (build / "_static").mkdir()
    (build / "_static" / "broken.png").write_bytes(b"not a PNG")
    for name, body in pages.items():
        page = build / name
        page.parent.mkdir(exist_ok=True)
        page.write_text(f"{HEAD}</head><body>{body}</body></html>")
    return build


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_site(tmp_path_factory.mktemp("build"), PAGES)


@pytest.fixture(scope="module")
def problems(site: Path) -> dict[str, list[str]]:
    return browser_check.check_site(site)


def _only(problems: dict[str, list[str]], page: str) -> str:
    found = problems.get(page, [])
    assert len(found) == 1, found
    return found[0]


def test_every_page_is_loaded_nested_ones_too(site: Path) -> None:
    assert [p.as_posix() for p in browser_check.pages(site)] == sorted(PAGES)


def test_clean_pages_pass(problems: dict[str, list[str]]) -> None:
    for page in ("index.html", "quickstart.html", "clean.html", "by-design.html"):
        assert page not in problems, problems[page]


def test_an_element_wider_than_the_screen_fails(problems: dict[str, list[str]]) -> None:
    found = problems["wide.html"]
    assert found[0].startswith("the page is 2")  # 2000 px and the body's margin
    assert "past the" in found[1]
    assert "a table wider than the screen" in found[1]
    assert len(found) == 2  # the outermost element only, not each of its ancestors' children


def test_a_code_block_to_scroll_fails(problems: dict[str, list[str]]) -> None:
    assert "<pre>" in _only(problems, "code-scrolls.html")
    assert "(overflow-x: auto)" in _only(problems, "code-scrolls.html")


def test_content_cut_off_fails(problems: dict[str, list[str]]) -> None:
    assert "(overflow-x: hidden)" in _only(problems, "sidebar-cuts.html")


def test_scrolling_by_design_must_still_let_the_reader_scroll(problems: dict[str, list[str]]) -> None:
    assert "(overflow-x: hidden)" in _only(problems, "by-design-but-cut.html")


def test_a_line_spilling_out_of_a_box_that_fits_is_named_in_a_nested_page(problems: dict[str, list[str]]) -> None:
    page, line = problems["sub/nested.html"]  # a plain pre: its box fits, its line does not
    assert page.startswith("the page is ")
    assert line.startswith("<pre>")
    assert "has text reaching" in line


def test_a_missing_stylesheet_fails(problems: dict[str, list[str]]) -> None:
    assert any(p == "HTTP 404 for /_static/missing.css" for p in problems["no-stylesheet.html"])


def test_a_missing_image_fails(problems: dict[str, list[str]]) -> None:
    found = problems["no-image.html"]
    assert "HTTP 404 for /_static/missing.png" in found
    assert any(p.startswith("image ") and p.endswith("/_static/missing.png did not load") for p in found)


def test_an_image_the_browser_cannot_decode_fails(problems: dict[str, list[str]]) -> None:
    assert any(p.endswith("/_static/broken.png did not load") for p in problems["bad-image.html"])


def test_a_console_error_fails(problems: dict[str, list[str]]) -> None:
    found = _only(problems, "console.html")
    assert found.startswith("console error: ")
    assert "a script failed" in found


def test_an_uncaught_exception_fails(problems: dict[str, list[str]]) -> None:
    assert "undefinedFunction" in _only(problems, "uncaught.html")


def test_screenshots_of_the_index_and_quick_start_are_kept(site: Path, problems: dict[str, list[str]]) -> None:
    for name in ("index.png", "quickstart.png"):
        shot = site / "_screenshots" / name
        assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_main_exits_1_and_names_each_page(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chosen = ("index.html", "quickstart.html", "wide.html", "console.html")
    write_site(tmp_path, {name: PAGES[name] for name in chosen})
    assert browser_check.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "wide.html:\n" in out
    assert "console.html:\n" in out
    assert "4 pages, 2 with problems" in out


def test_main_exits_0_on_a_clean_site(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_site(tmp_path, {name: PAGES[name] for name in ("index.html", "quickstart.html")})
    assert browser_check.main([str(tmp_path)]) == 0
    assert "2 pages, 0 with problems" in capsys.readouterr().out


def test_main_fails_when_a_page_to_screenshot_is_missing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_site(tmp_path, {"index.html": PAGES["index.html"]})  # a build that lost its quick start
    assert browser_check.main([str(tmp_path)]) == 1
    assert "missing screenshots: ['quickstart.png']" in capsys.readouterr().out
