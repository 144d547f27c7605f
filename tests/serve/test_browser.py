"""The page in a real headless Chromium against ``medseg-r serve`` started as a command: load the
example, type a report, segment, correct with a box (and a point, undone), download the mask and
compare it with ``medseg-r predict`` on the same input; then a bad upload, and the server goes on.

Needs Playwright (``pip install -e '.[test]'``) and Chromium (``apt-get install chromium``); without
Chromium the test is skipped here with that hint, and fails in CI (``CI`` set), where ``.ci/run``
installs it. Screenshots go to the test's temporary folder (``MEDSEG_R_SCREENSHOT=FILE`` also saves
the corrected page there, as for ``docs/images/serve.png``)."""

import io
import json
import os

import numpy as np
import pytest
from PIL import Image

from medseg_r.cli import main
from medseg_r.serve.browser import INSTALL_HINT, ServerProcess, find_chromium, launch_chromium

REPORT_TYPED = "2 cm round dense nodule in the right upper lobe. No pleural effusion."
BOX = (60, 40, 130, 110)  # image pixels of the 256 px example, around the nodule and beyond


@pytest.fixture(scope="module")
def chromium():
    pytest.importorskip(
        "playwright.sync_api", reason="the browser test needs: pip install -e '.[test]'"
    )
    path = find_chromium()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{INSTALL_HINT} (.ci/run installs it in CI)")
        pytest.skip(INSTALL_HINT)
    return path


def _picture(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float32)


def _drag(page, box, size=(256, 256)):
    """Drag a box given in image pixels of an image of ``size`` (width, height)."""
    area = page.locator("#prompts").bounding_box()
    scale_x, scale_y = area["width"] / size[0], area["height"] / size[1]
    page.mouse.move(area["x"] + box[0] * scale_x + 1, area["y"] + box[1] * scale_y + 1)
    page.mouse.down()
    page.mouse.move(area["x"] + box[2] * scale_x, area["y"] + box[3] * scale_y, steps=5)
    page.mouse.up()


def _click_image(page, x, y):
    area = page.locator("#prompts").bounding_box()
    page.mouse.click(area["x"] + x * area["width"] / 256, area["y"] + y * area["height"] / 256)


def _wait_rev(page, rev):
    page.wait_for_selector(f'#viewer[data-rev="{rev}"]', timeout=120_000)
    return page.evaluate("window.medsegTiming")


@pytest.fixture(scope="module")
def served(chromium, serve_checkpoint, tmp_path_factory):
    """``medseg-r serve`` as a command with TMPDIR in a test folder, and a Chromium browser. Ending
    the server (Ctrl-C) must leave that folder empty: every session folder is removed."""
    from playwright.sync_api import sync_playwright

    temp = tmp_path_factory.mktemp("server_tmp")
    server = ServerProcess(["--checkpoint", serve_checkpoint], env={"TMPDIR": str(temp)})
    playwright = sync_playwright().start()
    browser = launch_chromium(playwright, chromium)
    try:
        yield server, browser, temp
    finally:
        browser.close()
        playwright.stop()
        status = server.stop()
    assert status in (0, 130), server.lines
    assert os.listdir(temp) == []


@pytest.fixture
def page(served):
    """A fresh page (its own session); JavaScript errors fail the test."""
    server, browser, _ = served
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(server.url)
    yield page
    context.close()
    assert not errors, errors


def test_the_page_end_to_end(page, serve_checkpoint, tmp_path):
    page.click('button[data-example="chest_xray"]')
    page.wait_for_function("document.getElementById('base').naturalWidth === 256")
    page.fill("#report", REPORT_TYPED)
    page.wait_for_function("document.querySelector('#parsed tbody').innerText.includes('upper')")
    parsed = page.locator("#parsed tbody tr").first.inner_text()
    assert "nodule" in parsed and "right" in parsed and "upper" in parsed
    assert page.locator("#report-view .negated").first.inner_text() == "pleural effusion"
    page.screenshot(path=str(tmp_path / "1-report.png"))

    before = _picture(page.locator("#viewer").screenshot())
    page.click("#segment")
    first = _wait_rev(page, 1)
    after = _picture(page.locator("#viewer").screenshot())
    assert np.abs(after - before).mean() > 1.0  # the mask overlay is drawn over the image
    row = page.locator("#findings tbody tr").first.locator("td").all_inner_texts()
    assert row[1:4] == ["nodule", "right", "upper"]
    assert first["encoder_runs"] == 1 and first["roundTrip"] > 0
    page.check("#show-attention")
    page.wait_for_function("document.getElementById('attention-layer').naturalWidth === 256")
    assert page.is_visible("#attention-layer")
    page.uncheck("#show-attention")
    page.screenshot(path=str(tmp_path / "2-segmented.png"))

    page.uncheck("#auto")
    page.click('button[data-tool="box"]')
    _drag(page, BOX)
    page.click("#segment")
    second = _wait_rev(page, 2)
    assert second["encoder_runs"] == 0  # only the prompt changed: the decoder alone ran
    page.screenshot(path=str(tmp_path / "3-box.png"))
    if os.environ.get("MEDSEG_R_SCREENSHOT"):
        page.screenshot(path=os.environ["MEDSEG_R_SCREENSHOT"])

    page.check("#auto")
    page.click('button[data-tool="include"]')
    _click_image(page, 200, 200)
    _wait_rev(page, 3)  # segmented again by itself
    page.click("#undo")
    _wait_rev(page, 4)  # back to the box alone
    with page.expect_download() as download:
        page.click("#download-mask")
    download.value.save_as(str(tmp_path / "served_mask.png"))
    with page.expect_download() as download:
        page.click("#download-json")
    download.value.save_as(str(tmp_path / "served.json"))

    page.set_input_files(
        "#file",
        files=[
            {
                "name": "broken.png",
                "mimeType": "image/png",
                "buffer": b"\x89PNG\r\n\x1a\n not an image",
            }
        ],
    )
    page.wait_for_selector("#error:not(.hidden)")
    message = page.inner_text("#error-text")
    assert message.startswith("broken.png") and (
        "not a readable image" in message or "decoded" in message
    )
    page.screenshot(path=str(tmp_path / "4-bad-upload.png"))
    page.click("#segment")  # the server and the loaded example are still there
    _wait_rev(page, 5)
    assert page.is_hidden("#error")

    served = json.loads((tmp_path / "served.json").read_text())
    assert served["options"]["box"] == list(map(float, BOX)) and served["prompts"]["points"] == []
    out = tmp_path / "predict"
    box = [str(v) for v in served["options"]["box"]]
    argv = ["predict", "--example", "--report", REPORT_TYPED, "--box", *box, "--quiet"]
    assert main([*argv, "--checkpoint", serve_checkpoint, "--out", str(out)]) == 0
    assert (out / "example_mask.png").read_bytes() == (tmp_path / "served_mask.png").read_bytes()


def test_a_normal_study_reads_as_one_and_segments_to_an_empty_mask(page):
    page.click('button[data-example="chest_xray"]')
    page.wait_for_function("document.getElementById('base').naturalWidth === 256")
    page.fill("#report", "Heart size is normal. The lungs are clear.")
    page.wait_for_function("document.querySelector('#parsed tbody').innerText.includes('normal')")
    assert 'a normal study stated ("lungs are clear")' in page.inner_text("#parsed tbody")
    page.click("#segment")
    _wait_rev(page, 1)
    assert page.inner_text("#totals").startswith("mask: 0 px, 0 component(s)")
    assert page.is_hidden("#error")


def test_a_volume_with_slices_windows_and_z_ranges(page, tmp_path):
    page.click('button[data-example="chest_ct"]')
    page.wait_for_function("document.getElementById('base').naturalWidth === 192")
    assert page.is_visible("#slice") and page.input_value("#window") == "lung"
    assert page.is_disabled('button[data-tool="box"]')
    page.click("#segment")  # the example's report fills the empty text box
    _wait_rev(page, 1)
    row = page.locator("#findings tbody tr").first.locator("td").all_inner_texts()
    assert row[2:4] == ["right", "upper"] and row[-1] == "z 20\u201331"  # upper third of 32 slices
    shown = int(page.input_value("#slice"))
    assert 20 <= shown <= 31 and f"z = {shown} of 31" in page.inner_text("#slice-label")
    lung = _picture(page.locator("#viewer").screenshot())
    page.select_option("#window", "bone")
    page.wait_for_function("document.getElementById('base').src.includes('window=bone')")
    page.wait_for_function("document.getElementById('base').complete")
    assert np.abs(_picture(page.locator("#viewer").screenshot()) - lung).mean() > 1.0
    page.fill("#slice", "3")  # outside the finding's range: nothing there
    page.wait_for_function("document.getElementById('mask-layer').src.includes('z=3')")
    assert "z = 3 of 31" in page.inner_text("#slice-label")
    page.screenshot(path=str(tmp_path / "volume.png"))


def test_examples_wide_pictures_warnings_and_clearing(page, tmp_path):
    page.click('button[data-example="chest_xray"]')
    page.wait_for_function("document.getElementById('base').naturalWidth === 256")
    xray_report = page.input_value("#report")
    page.click('button[data-example="chest_ct"]')  # its own report replaces the one filled in
    page.wait_for_function("document.getElementById('base').naturalWidth === 192")
    assert page.input_value("#report") not in ("", xray_report)

    wide = np.full((256, 768), 60, np.uint8)
    wide[100:140, 300:340] = 220
    Image.fromarray(wide).save(tmp_path / "wide.png")
    page.fill("#report", "")
    page.set_input_files("#file", str(tmp_path / "wide.png"))
    page.wait_for_function("document.getElementById('base').naturalWidth === 768")
    base, layer = (page.locator(s).bounding_box() for s in ("#base", "#prompts"))
    assert abs(base["height"] - layer["height"]) < 1.5  # prompts and masks lie on the picture
    _drag(page, (300, 100, 340, 140), size=(768, 256))
    page.click("#segment")  # a box alone segments
    _wait_rev(page, 1)
    page.click("#clear")  # no prompt and no report left: the old mask goes, no error
    page.wait_for_function("!document.getElementById('mask-layer').getAttribute('src')")
    assert page.is_hidden("#error") and page.inner_text("#totals") == ""

    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(tmp_path / "blank.png")
    page.set_input_files("#file", str(tmp_path / "blank.png"))
    page.wait_for_function("document.getElementById('base').naturalWidth === 64")
    page.fill("#report", REPORT_TYPED)
    page.click("#segment")
    _wait_rev(page, 1)
    assert page.is_visible("#warnings") and "blank" in page.inner_text("#warnings")


def _session_folders(temp):
    return [name for root in os.listdir(temp) for name in os.listdir(os.path.join(temp, root))]


def test_closing_the_page_ends_its_session(served):
    import time

    server, browser, temp = served
    before = set(_session_folders(temp))
    page = browser.new_page()
    page.goto(server.url)
    page.click('button[data-example="chest_xray"]')
    page.wait_for_function("document.getElementById('base').naturalWidth === 256")
    mine = set(_session_folders(temp)) - before
    assert len(mine) == 1
    page.close(run_before_unload=True)  # the page says goodbye (pagehide -> sendBeacon)
    deadline = time.monotonic() + 10
    while mine & set(_session_folders(temp)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not mine & set(_session_folders(temp))


@pytest.mark.slow
def test_the_latency_benchmark_runs(chromium, tmp_path, capsys):
    from medseg_r.serve import benchmark

    out = tmp_path / "runs.json"
    assert (
        benchmark.main(
            ["--backbones", "sam_tiny", "--repeats", "2", "--size", "96", "--json", str(out)]
        )
        == 0
    )
    table = capsys.readouterr().out
    assert "| `sam_tiny` | prompt changed |" in table
    runs = json.loads(out.read_text())["runs"]["sam_tiny"]
    assert [r["encoder_runs"] for r in runs["new image"]] == [1, 1]
    assert [r["prefix_cache_hits"] for r in runs["report changed"]] == [1, 1]
    assert [r["encoder_runs"] for r in runs["prompt changed"]] == [0, 0]
