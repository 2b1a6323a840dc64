"""leaderboard.html rendered by a real headless Chromium (Debian's `chromium` package).

The page is loaded from a file:// URL with networking features off; the DOM Chromium builds
is dumped and checked for the leaderboard rows, the SVG plots, the item browser and the
<script> prompt rendered as text; a screenshot is taken and checked for content.
"""

from __future__ import annotations

import html as htmllib
import re
import shutil
import subprocess

import pytest

from prefbench.report import write_report
from tests.fixtures.report import SCRIPT_PROMPT, make_real_runs

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install -y chromium); browser test skipped"
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
         "--disable-dev-shm-usage"]  # containers often have a tiny /dev/shm


@pytest.fixture(scope="session")
def real_runs(tmp_path_factory, plugin_site):
    return make_real_runs(tmp_path_factory.getbasetemp() / "report_real", plugin_site)


def _chromium(tmp_path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          timeout=120)


@pytest.fixture(scope="module")
def rendered(real_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("browser")
    _, page = write_report(real_runs["results"], out, n_items=4, n_resamples=1000)
    return out, page


def test_chromium_renders_tables_plots_and_escaped_prompt(rendered, tmp_path):
    out, page = rendered
    proc = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    dom = proc.stdout.decode()
    assert "<title>prefbench leaderboard</title>" in dom
    # leaderboard: one row per run (3 real runs on the jsonl split)
    rows = re.findall(r'<tr class="[^"]*" data-run="([^"]+)"|<tr data-run="([^"]+)"', dom)
    assert len(rows) == 3
    assert 'class="best" data-run=' in dom
    # plots: accuracy CIs and the reliability diagram of the anchor-pairwise run, as live SVG
    assert len(re.findall(r'<svg class="plot ci-plot"', dom)) == 1
    assert len(re.findall(r'<svg class="plot reliability-plot"', dom)) == 1
    assert dom.count('<g class="ci-row">') == 3
    # item browser: 4 items, 4 thumbnails each, the first opened
    assert len(re.findall(r'<details class="item"', dom)) == 4
    assert '<details class="item" open="" data-item="p000">' in dom
    assert dom.count('src="data:image/jpeg;base64,') == 16
    # the <script> prompt is a text node: serialised escaped, and no script element exists
    assert "<script" not in dom.lower()
    escaped = htmllib.escape(SCRIPT_PROMPT, quote=False)
    assert f'<span class="prompt">{escaped}</span>' in dom


def test_chromium_screenshot_shows_the_page(rendered, tmp_path):
    from PIL import Image

    out, page = rendered
    shot = out / "leaderboard.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,1600", page.as_uri())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    img = Image.open(shot).convert("RGB")
    assert img.size == (1400, 1600)
    # a rendered page, not a blank or error screen: many colours (text, plot, thumbnails)
    colours = img.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200
    # the highlighted best row (#fff6d6) is painted
    assert any(c == (255, 246, 214) for _, c in colours)


def _dark_columns(img, y0: int, y1: int) -> list[int]:
    """x of every column with a dark (text) pixel between rows y0 and y1."""
    px = img.load()
    return [x for x in range(img.size[0]) if any(sum(px[x, y]) < 300 for y in range(y0, y1))]


def test_plot_labels_and_titles_are_not_clipped(tmp_path):
    # the longest label the plot shows (cut to 38 characters) and a long generator-plot title: in
    # Chromium the label's left edge and the title's right end must lie inside the picture
    from PIL import Image

    from prefbench.report.plots import ci_plot

    labels = ["#10 naive_sampling · prefbench-demo/rating · max_new_tokens=64 · rollouts=3",
              "#2 WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW", "#3 clip"]
    title = "demo-test: a generator benchmark with a long prompt-set name: mean score per generator, 95% CI"
    svg = ci_plot([(label, 0.5 + 0.1 * k, 0.45, 0.75) for k, label in enumerate(labels)], title)
    width = float(re.search(r'width="([\d.]+)"', svg).group(1))
    page = tmp_path / "plot.html"
    page.write_text(f'<!DOCTYPE html><html><body style="margin:0;background:#fff">{svg}</body></html>')
    shot = tmp_path / "plot.png"
    proc = _chromium(tmp_path, f"--screenshot={shot}", f"--window-size={int(width) + 200},400", page.as_uri())
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    img = Image.open(shot).convert("RGB")
    rows = _dark_columns(img, 40, 34 + 26 * len(labels))  # the label column and the whiskers
    assert rows and min(rows) >= 3, f"a label touches the picture's left edge (first dark column {min(rows)})"
    heading = _dark_columns(img, 4, 24)
    assert heading and max(heading) <= width - 3, f"the title runs past the picture ({max(heading)} of {width})"
