"""`gcahng serve` in a real browser: Debian's Chromium driven by Playwright, on a generated index.

Skipped with the reason where Chromium or Playwright is missing, except under CI=true, where
that is a failure. Saves a screenshot of the results page under the test's temporary folder,
or to the file GCAHNG_SCREENSHOT names (`GCAHNG_SCREENSHOT=docs/serve.png` renews the README's).
"""
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw
from serving_world import make_checkpoint

from gcahng.cli.main import cli

CHROMIUM = "/usr/bin/chromium"
SHAPES = ("circle", "square", "triangle", "diamond")
K = 6


def _browser_or_skip():
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "Playwright for Python is not installed (pip install playwright)"
    if missing is None and not os.access(CHROMIUM, os.X_OK):
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run under CI: {missing}")
        pytest.skip(missing)
    return sync_playwright


def _draw(shape: str, colour: tuple[int, int, int], seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (160, 160), tuple(int(v) for v in rng.integers(215, 250, 3)))
    draw = ImageDraw.Draw(image)
    c, r = 80 + int(rng.integers(-12, 12)), 44 + int(rng.integers(-8, 10))
    box = (c - r, c - r, c + r, c + r)
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(c, c - r), (c + r, c + r), (c - r, c + r)], fill=colour)
    else:
        draw.polygon([(c, c - r), (c + r, c), (c, c + r), (c - r, c)], fill=colour)
    return image


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    sync_playwright = _browser_or_skip()
    root = tmp_path_factory.mktemp("browser")
    colours = [(231, 76, 60), (52, 152, 219), (46, 204, 113), (241, 196, 15), (155, 89, 182), (230, 126, 34)]
    for s, shape in enumerate(SHAPES):
        (root / "gallery" / shape).mkdir(parents=True)
        for i, colour in enumerate(colours):
            _draw(shape, colour, 10 * s + i).save(root / "gallery" / shape / f"{i}.png")
    (root / "notes.txt").write_text("not an image\n")
    ckpt = make_checkpoint(root / "model.pt")
    runner = CliRunner()
    for args in (["export", ckpt, "--out", root / "model.onnx"],
                 ["index", "--model", root / "model.onnx", "--images", root / "gallery", "--out", root / "index",
                  "--workers", "0"]):
        result = runner.invoke(cli, [str(a) for a in args])
        assert result.exit_code == 0, result.output
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "gcahng", "serve", "--index", str(root / "index"),
                                "--port", str(port), "-k", str(K)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/api/info", timeout=2).read()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"gcahng serve did not start: {process.stdout.read().decode()}")
            time.sleep(0.3)
    try:
        yield url, root, sync_playwright
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def page(server):
    url, root, sync_playwright = server
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"])
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#gallery .thumb")
        yield page, root
        context.close()
        browser.close()


def _result_ids(page):
    return [int(x) for x in page.locator("#results .result").evaluate_all("els => els.map(e => e.dataset.id)")]


def test_upload_shows_k_results_with_its_gallery_copy_first(page):
    page, root = page
    assert "24 images" in page.locator("#facts").inner_text() and "onnx" in page.locator("#facts").inner_text()
    page.set_input_files("#file-input", str(root / "gallery" / "triangle" / "2.png"))
    page.wait_for_function(f"document.querySelectorAll('#results .result').length === {K}")
    first = page.locator("#results .result").first
    assert first.locator(".rank").inner_text() == "#1" and first.locator(".label").inner_text() == "triangle"
    assert float(first.locator(".score").inner_text()) > 0.999
    assert page.locator("#query-title").inner_text() == "2.png"


def test_clicking_a_result_makes_it_the_query(page):
    page, _ = page
    target = page.locator("#results .result").nth(2)
    clicked, label = int(target.get_attribute("data-id")), target.locator(".label").inner_text()
    target.click()
    page.wait_for_function(f"document.querySelector('#query-sub').textContent.includes('#{clicked}')")
    assert page.locator("#query-title").inner_text() == label
    assert _result_ids(page)[0] == clicked
    assert page.locator("#results .result.match").count() + page.locator("#results .result.mismatch").count() == K


def test_gallery_click_pages_and_k(page, tmp_path):
    page, _ = page
    screenshot = Path(os.environ.get("GCAHNG_SCREENSHOT") or tmp_path / "serve.png")
    page.locator("#gallery .thumb").nth(13).click()
    page.wait_for_function("document.querySelector('#query-sub').textContent.includes('#13')")
    assert _result_ids(page)[0] == 13
    page.locator("#k").fill("9")
    page.locator("#k").dispatch_event("change")
    page.wait_for_function("document.querySelectorAll('#results .result').length === 9")
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000


def test_text_upload_shows_an_error_message(page):
    page, root = page
    page.set_input_files("#file-input", str(root / "notes.txt"))
    page.wait_for_selector("#error:not([hidden])")
    assert "not a usable image" in page.locator("#error").inner_text()
