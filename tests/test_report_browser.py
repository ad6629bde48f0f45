"""The HTML report in a real browser (Chromium from Debian, headless): what it lays out has
the title, every section and every chart; nothing in it runs or is fetched; it prints to
PDF with each stage on its own page. Without Chromium these tests skip, saying so (.ci/run
installs it)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from moves_world import cutover_argv
from report_world import Recorded, record

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="Chromium is not installed (Debian: apt-get install chromium)"
)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> tuple[Recorded, Path]:
    world = record(tmp_path_factory.mktemp("browser"))
    target = world.folder / "report.html"
    done = subprocess.run(
        cutover_argv(world.runbook, "report", "--all", "-o", str(target)),
        env={**os.environ, **world.environ},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return world, target


def chromium(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # Its own profile in the test's folder; no sandbox (CI runs as root), no GPU.
    argv = [BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    argv += [f"--user-data-dir={folder / 'profile'}", *args]
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=folder)


def test_the_browser_lays_out_the_title_every_section_and_every_chart(page):
    world, target = page
    done = chromium(world.folder, "--dump-dom", target.as_uri())
    dom = done.stdout
    assert "<title>cutover report: test cutover: old → new</title>" in dom, done.stderr[-2000:]
    assert dom.count("<svg") == 12
    assert dom.count('<figure class="chart"') == 12
    assert dom.count('<section class="stage"') == 5
    assert '<section id="journal">' in dom
    for heading in ("Summary", "Rollbacks", "Hold restarts", "Sign-offs", "The journal"):
        assert f"<h3>{heading}</h3>" in dom
    # Nothing ran: the note's script is text, no element runs or fetches anything.
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert re.search(r"<(script|iframe|object|embed|link|img)\b", dom) is None
    assert re.findall(r'\b(?:src|href)="(?!#)[^"]*"', dom) == []


def test_a_screenshot_shows_the_report_drawn(page):
    from PIL import Image  # matplotlib's own dependency

    world, target = page
    shot = world.folder / "shot.png"
    chromium(world.folder, f"--screenshot={shot}", "--window-size=1200,1600", target.as_uri())
    image = Image.open(shot).convert("L")
    assert image.size == (1200, 1600)
    # The title's band is not blank, nor is the page: dark text on white, and colour.
    title = image.crop((0, 0, 1200, 60))
    assert title.getextrema()[0] < 80
    histogram = image.histogram()
    assert sum(histogram[:128]) > 2000  # text and lines
    assert sum(histogram[250:]) > 0.5 * 1200 * 1600  # mostly page


def test_it_prints_to_pdf_with_each_stage_on_its_own_page(page):
    world, target = page
    pdf = world.folder / "report.pdf"
    chromium(world.folder, f"--print-to-pdf={pdf}", "--no-pdf-header-footer", target.as_uri())
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF")
    pages = len(re.findall(rb"/Type\s*/Page\b", data))
    assert pages >= 6  # the summary, then five visits each from a new page
