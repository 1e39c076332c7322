"""The ranking browser in a real browser: JupyterLab on localhost, driven by Chromium.

Starts JupyterLab on a copy of notebook 03, runs every cell from the page, clicks a gallery
image of the ranking browser (the image itself where ipyevents is installed, else its
"explain #k" button) and checks that the pair explanation image changed. Screenshots are kept
in ``outputs/browser/`` (ignored by git). Needs Debian's Chromium at ``/usr/bin/chromium``
(``.ci/run`` installs it; browser downloads are impossible here), Playwright for Python and
JupyterLab (the ``dev`` extras); skipped, saying which is missing, only when they are not there.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = "03_explaining_a_match.ipynb"
GALLERY = "apps_gallery.ipynb"  # one of each app, for their screenshots
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")
SHOTS = REPO / "outputs" / "browser"
RUN_TIMEOUT_MS = 420_000  # the notebook runs in < 2 min on a 2-core CPU; margin for a busy CI


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return (
            f"SKIPPED browser test: no Chromium at {CHROMIUM} (install it with "
            f"`apt-get install -y chromium`; .ci/run does)"
        )
    for module in ("playwright.sync_api", "jupyterlab"):
        try:
            __import__(module)
        except ImportError:
            return f"SKIPPED browser test: {module} is not installed (pip install -e '.[dev]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory):
    reason = _missing()
    if reason:
        print(reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("lab")
    (root / "notebooks").mkdir()
    shutil.copy(REPO / "notebooks" / NOTEBOOK, root / "notebooks" / NOTEBOOK)
    (root / "tests" / "widgets").mkdir(parents=True)
    for name in (GALLERY, "fakes.py"):
        shutil.copy(REPO / "tests" / "widgets" / name, root / "tests" / "widgets" / name)
    (REPO / "data").mkdir(exist_ok=True)
    (root / "data").symlink_to(REPO / "data")  # "../data/synth" as in the repository
    port, token = _free_port(), "workbench-browser-test"
    log = open(root / "lab.log", "w")
    cmd = [
        sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
        f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
        "--LabApp.expose_app_in_browser=True", "--ServerApp.open_browser=False",
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
    }
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {(root / 'lab.log').read_text()[-2000:]}")
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab did not start: {(root / 'lab.log').read_text()[-2000:]}")
        yield url, token
    finally:
        server.terminate()
        try:
            server.wait(20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


# only what is on screen: JupyterLab may keep an earlier notebook open as a hidden tab
CURRENT_JS = "window.jupyterapp.shell.currentWidget.node"
PAIR_IMAGE_JS = f"{CURRENT_JS}.querySelector('img.wb-pair-image')"


def _shown(page, selector: str):
    return page.locator(f"{selector} >> visible=true")


def _pair_src(page) -> str:
    return _shown(page, "img.wb-pair-image").first.get_attribute("src") or ""


def _open_and_run(page, url: str, token: str, path: str, done: str) -> None:
    """Open a notebook, wait for its kernel, run every cell, wait for the closing ``done`` text."""
    page.goto(f"{url}/lab/tree/{path}?reset&token={token}")
    page.wait_for_function(
        "() => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
        " const k = w && w.sessionContext && w.sessionContext.session"
        " && w.sessionContext.session.kernel; return k && k.status === 'idle'; }",
        timeout=120_000,
    )
    page.add_style_tag(content=".Toastify { display: none !important; }")  # news prompt
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    _shown(page, f"text={done}").first.wait_for(timeout=RUN_TIMEOUT_MS)


def test_click_a_gallery_image_explains_the_pair(lab) -> None:
    from playwright.sync_api import sync_playwright

    url, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 2400})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _open_and_run(page, url, token, f"notebooks/{NOTEBOOK}", "all checks passed")
        app = _shown(page, ".wb-ranking-browser").first
        app.wait_for(timeout=60_000)
        page.wait_for_function(
            f"() => {{ const i = {PAIR_IMAGE_JS}; return i && i.src && i.naturalWidth > 0; }}",
            timeout=60_000,
        )
        app.scroll_into_view_if_needed()
        app.screenshot(path=str(SHOTS / "01_ranking_browser.png"))
        before = _pair_src(page)
        title_before = _shown(page, ".wb-pair-explainer").first.inner_text()

        clickable_images = _shown(page, "img.wb-gallery-image").count() > 0
        try:  # ipyevents: the image itself is the click target
            import ipyevents

            target = _shown(page, "img.wb-gallery-image").nth(4)
        except ImportError:
            target = _shown(page, ".wb-open-pair").nth(4)
        assert clickable_images
        target.click()
        page.wait_for_function(
            f"(old) => {{ const i = {PAIR_IMAGE_JS}; return i && i.src !== old && i.naturalWidth > 0; }}",
            arg=before,
            timeout=60_000,
        )
        after = _pair_src(page)
        title_after = _shown(page, ".wb-pair-explainer").first.inner_text()
        caption = _shown(page, ".wb-gallery-tile").nth(4).inner_text()
        page.wait_for_timeout(300)
        app.screenshot(path=str(SHOTS / "02_after_click.png"))
        _shown(page, ".wb-pair-explainer").first.screenshot(path=str(SHOTS / "03_pair.png"))

        # a click on the query image of the pair: where does that point match? (ipyevents)
        point_title = ""
        click_ms = None
        try:
            import ipyevents  # noqa: F401

            pair_image = _shown(page, "img.wb-pair-image").first
            box = pair_image.bounding_box()
            natural = page.evaluate(f"() => {PAIR_IMAGE_JS}.naturalWidth")
            zoom = box["width"] / natural  # CSS pixels per image pixel
            tile_h = page.evaluate(f"() => {PAIR_IMAGE_JS}.naturalHeight")
            tile_w = tile_h // 2  # the notebook's model takes 128×64 images
            old = _pair_src(page)
            start = time.perf_counter()
            pair_image.click(position={"x": 0.5 * tile_w * zoom, "y": 0.12 * tile_h * zoom})
            page.wait_for_function(
                f"(old) => {{ const i = {PAIR_IMAGE_JS}; return i && i.src !== old && i.naturalWidth > 0; }}",
                arg=old,
                timeout=60_000,
            )
            click_ms = 1000 * (time.perf_counter() - start)
            page.wait_for_timeout(200)
            point_title = _shown(page, ".wb-pair-explainer").first.inner_text()
            _shown(page, ".wb-pair-explainer").first.screenshot(path=str(SHOTS / "04_point.png"))
        except ImportError:
            pass
        page.screenshot(path=str(SHOTS / "00_page.png"), full_page=True)
        browser.close()
    assert after and after != before
    assert title_after != title_before  # the caption names the newly chosen gallery image
    assert "Traceback" not in title_after
    # the distance under the clicked image is the pair panel's, named
    shown = re.search(r"1−cos (\d+\.\d{3})", caption)
    assert shown, caption
    assert f"cosine distance 1 − cos = {shown.group(1)}" in title_after
    if click_ms is not None:
        assert "correspondence of the query point" in point_title, point_title
        (SHOTS / "timings.json").write_text(json.dumps({"click_to_image_ms": round(click_ms, 1)}))
        print(f"click-to-image (correspondence) {click_ms:.0f} ms")
    assert not errors, errors


def test_each_app_renders_in_the_browser(lab) -> None:
    """The gallery notebook's apps render; a click on the receptive-field image moves the point."""
    from playwright.sync_api import sync_playwright

    url, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1500, "height": 2400})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        _open_and_run(page, url, token, f"tests/widgets/{GALLERY}", "gallery checks passed")
        shots = {
            ".wb-pair-explainer": "10_pair_explainer.png",
            ".wb-receptive-field": "11_receptive_field.png",
            ".wb-attribute-explorer": "12_attribute_explorer.png",
        }
        for selector, name in shots.items():
            app = _shown(page, selector).first
            app.wait_for(timeout=60_000)
            app.scroll_into_view_if_needed()
            app.screenshot(path=str(SHOTS / name))
        _shown(page, ".wb-attribute-explorer").nth(1).screenshot(
            path=str(SHOTS / "13_no_interpreter.png")
        )
        assert (
            "not an attribute interpreter"
            in _shown(page, ".wb-attribute-explorer").nth(1).inner_text()
        )
        try:
            import ipyevents  # noqa: F401
        except ImportError:
            clicks = False
        else:
            clicks = True
        if clicks:  # a click on the image picks the point (ipyevents)
            image = _shown(page, "img.wb-receptive-image").first
            before = image.get_attribute("src")
            box = image.bounding_box()
            image.click(position={"x": box["width"] * 0.2, "y": box["height"] * 0.8})
            page.wait_for_function(
                f"(old) => {CURRENT_JS}.querySelector('img.wb-receptive-image').src !== old",
                arg=before,
                timeout=30_000,
            )
            _shown(page, ".wb-receptive-field").first.screenshot(
                path=str(SHOTS / "14_receptive_click.png")
            )
        browser.close()
    assert not errors, errors
