"""The stored HTML report in a real browser (Debian's headless chromium) at a phone's 375 px
and a desktop's 1280 px: the screenshot is not blank, the page does not scroll sideways on the
phone, and the DOM holds the key text, with a customer named <script> as text, not an element.

Headless chromium keeps its window at least 500 px wide, so the phone is a 375 px wide iframe
(its viewport, as a phone's screen is) on a page of the test's own: the report itself, unchanged,
in `srcdoc` (same origin), and a line of script in the outer page that writes the iframe
document's scrollWidth into the DOM, which --dump-dom then shows. The report has no scripts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html import escape
from pathlib import Path

import pytest
from conftest import OLD, Studio
from PIL import Image

CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(.ci/run installs Debian's chromium package)")
LONG_FOLDER = "2019-05-20 " + "Pitkäkuusisto-Wahlström" * 4  # no space to break at
NAMES = ["Mäkinen Anna", "<script>alert(1)", "Ylönen Åsa", LONG_FOLDER[11:]]


def chromium(tmp_path: Path, *args: str) -> str:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}", *args],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("browser")
    s = Studio(root, extra="rules:\n  - {name: old, delete_after: 5 years}\n"
                           "safety: {max_fraction_per_volume: 1.0}\n")
    s.init_volumes()
    for i, name in enumerate(NAMES[:3]):
        s.shoot("studio", f"2019-05-{10 + i:02d} {name}", mtime=OLD)
    s.shoot("studio", LONG_FOLDER, mtime=OLD)
    s.ok("scan")
    out = root / "out"
    result = s.cli("report", "--out", str(out))
    assert result.returncode == 0, result.stderr
    (html,) = out.glob("*.html")
    (doc,) = out.glob("*.json")
    return html, json.loads(doc.read_text(encoding="utf-8"))


def phone(html: Path, tmp_path: Path, width: int) -> Path:
    """A page showing the report in a `width` px wide iframe, measuring how wide it lays out."""
    page = tmp_path / f"phone-{width}.html"
    measure = ("var d = this.contentDocument.documentElement; document.body.setAttribute("
               "'data-widths', d.scrollWidth + ' ' + d.clientWidth)")
    page.write_text(
        f'<!DOCTYPE html><html><body style="margin:0"><iframe style="border:0;width:{width}px;'
        f'height:1600px" onload="{escape(measure)}" srcdoc="'
        f'{escape(html.read_text(encoding="utf-8"))}"></iframe></body></html>', encoding="utf-8")
    return page


@pytest.mark.parametrize("width", [375, 1280])
def test_the_screenshot_is_not_blank(report, tmp_path, width):
    html, _ = report
    shot = tmp_path / f"shot-{width}.png"
    chromium(tmp_path, f"--window-size={width},1600", f"--screenshot={shot}",
             phone(html, tmp_path, width).as_uri())
    with Image.open(shot) as image:
        assert image.size == (width, 1600)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 20  # text, cards, bars: not one flat colour


@pytest.mark.parametrize("width", [375, 1280])
def test_no_horizontal_scroll(report, tmp_path, width):
    html, _ = report
    dom = chromium(tmp_path, f"--window-size={max(width, 500)},900", "--dump-dom",
                   phone(html, tmp_path, width).as_uri())
    scroll, client = map(int, re.search(r'data-widths="(\d+) (\d+)"', dom).groups())
    assert client == width and scroll <= client, (scroll, client)


def test_the_dom_holds_the_key_text_and_no_injected_element(report, tmp_path):
    html, doc = report
    dom = chromium(tmp_path, "--window-size=1280,900", "--dump-dom", html.as_uri())
    assert "<script" not in dom  # the customer named <script> is text
    assert "&lt;script&gt;alert(1)" in dom
    for text in ("Mäkinen Anna", "Ylönen Åsa", "Upcoming deletions", "Audit log",
                 doc["summary"].split(";")[0]):
        assert text in dom, text
