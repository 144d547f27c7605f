"""The page in a real headless Chromium against ``medseg-r serve`` started as a command: load the
example, type a report, segment, correct with a box (and a point, undone), download the mask and
compare it with ``medseg-r predict`` on the same input; then a bad upload, and the server goes on.

Needs Playwright (``pip install -e '.[test]'``) and Chromium (``apt-get install chromium``); without
Chromium the test is skipped here with that hint, and fails in CI (``CI`` set), where ``.ci/run``
installs it. Screenshots go to the test's temporary folder; ``MEDSEG_R_SCREENSHOT=FILE`` saves the
README's picture of the page (``docs/images/serve.png``: the shipped weights) there."""

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


def _load_example(page, name="chest_xray", width=256):
    page.click(f'button[data-example="{name}"]')
    page.wait_for_function(f"document.getElementById('base').naturalWidth === {width}")


def _visibility(page, selector):
    return page.eval_on_selector(selector, "e => getComputedStyle(e).visibility")


def _contrast(page, selector):
    """WCAG contrast ratio of an element's text on its panel."""
    colours = page.eval_on_selector(
        selector,
        "e => [getComputedStyle(e).color, getComputedStyle(e.closest('section')).backgroundColor]",
    )

    def luminance(css):
        channels = [int(v) / 255 for v in css[css.index("(") + 1 : -1].split(",")[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted(map(luminance, colours), reverse=True)
    return (high + 0.05) / (low + 0.05)


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
    timing = page.inner_text("#timing")  # the model did not run: no encoder result was reused
    assert "model not run (a normal study stated" in timing and "reused" not in timing
    page.fill("#report", "No pleural effusion. No nodule.")
    page.click("#segment")
    _wait_rev(page, 2)
    assert "model not run (all findings negated" in page.inner_text("#timing")


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
    assert _contrast(page, "#warnings") >= 4.5  # readable (WCAG AA) on the dark panel


def test_the_upload_button_is_reached_and_opened_by_keyboard(page, tmp_path):
    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(tmp_path / "small.png")
    choosers = []  # listened for well before a key opens one (Playwright starts intercepting then)
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    page.wait_for_selector('button[data-example="chest_xray"]')  # the page has started
    page.keyboard.press("Tab")  # the first control of the page
    assert page.evaluate("document.activeElement.id") == "file"
    outline = page.eval_on_selector('label[for="file"]', "e => getComputedStyle(e).outlineStyle")
    assert outline != "none"  # the label, which the user sees, shows the focus
    for count, key in enumerate(("Space", "Enter"), 1):
        page.keyboard.press(key)
        for _ in range(100):
            if len(choosers) == count:
                break
            page.wait_for_timeout(100)
        assert len(choosers) == count, key
    choosers[-1].set_files(str(tmp_path / "small.png"))
    page.wait_for_function("document.getElementById('base').naturalWidth === 64")


def test_greyed_out_downloads_cannot_be_focused_or_followed(page, served):
    _load_example(page)  # nothing segmented yet: the download links are greyed out
    downloads = []
    page.on("download", lambda download: downloads.append(download))
    focused = []
    for _ in range(30):
        page.keyboard.press("Tab")
        focused.append(page.evaluate("document.activeElement.id"))
    assert "segment" in focused and not [f for f in focused if f.startswith("download-")]
    assert page.get_attribute("#download-mask", "aria-disabled") == "true"
    page.focus("#download-mask")  # a script may still focus it: Enter and a click do nothing
    page.keyboard.press("Enter")
    page.evaluate("document.getElementById('download-json').click()")
    page.wait_for_timeout(500)
    assert downloads == [] and page.url == served[0].url


def test_an_error_goes_when_a_later_request_of_its_kind_succeeds(page):
    page.wait_for_selector('button[data-example="chest_xray"]')
    page.fill("#report", "nodule " * 40_000)  # 280,000 characters: over the reader's limit
    page.wait_for_selector("#error:not(.hidden)")
    assert "limit" in page.inner_text("#error-text")
    page.fill("#report", REPORT_TYPED)  # parses again: the message goes
    page.wait_for_selector("#error", state="hidden")
    page.wait_for_function("document.querySelector('#parsed tbody').innerText.includes('upper')")


def test_no_answer_from_the_server_is_said_as_such(page):
    # a stopped server (Ctrl-C mid-segmentation) showed the browser's own "Failed to fetch"
    _load_example(page)
    page.route("**/segment", lambda route: route.abort())
    page.click("#segment")
    page.wait_for_selector("#error:not(.hidden)")
    text = page.inner_text("#error-text")
    assert "no answer from the server" in text and "Failed to fetch" not in text
    page.unroute("**/segment")
    page.click("#segment")  # the server answers again: the message goes
    page.wait_for_selector("#error", state="hidden")


def test_a_double_click_loads_once_and_loads_wait_for_a_segmentation(page):
    sent = []
    page.on("request", lambda request: "/example/" in request.url and sent.append(request.url))
    page.wait_for_selector('button[data-example="chest_xray"]')
    page.dblclick('button[data-example="chest_xray"]')
    page.wait_for_function("document.getElementById('base').naturalWidth === 256")
    page.wait_for_timeout(300)
    assert len(sent) == 1 and page.is_hidden("#error")
    disabled = page.evaluate(
        """() => {
          document.getElementById("segment").click();
          const controls = ["#segment", "#file", "#examples button"];
          return controls.map((s) => document.querySelector(s).disabled);
        }"""
    )
    assert disabled == [True, True, True]  # while it segments
    _wait_rev(page, 1)
    assert not page.is_disabled("#file") and not page.is_disabled("#examples button")
    # a 409 the page did not cause by segmenting does not say it is segmenting
    busy = {"error": "this page is still segmenting; wait for it to finish"}
    page.route("**/example/*", lambda route: route.fulfill(status=409, json=busy))
    page.click('button[data-example="chest_ct"]')
    page.wait_for_selector("#error:not(.hidden)")
    assert "segmenting" not in page.inner_text("#error-text")


def test_an_upload_does_not_keep_the_examples_report_but_keeps_a_typed_one(page, tmp_path):
    Image.fromarray(np.full((64, 64), 120, np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.full((48, 48), 90, np.uint8)).save(tmp_path / "smaller.png")
    _load_example(page)
    assert "nodule" in page.input_value("#report")  # filled in by the page
    page.set_input_files("#file", str(tmp_path / "small.png"))
    page.wait_for_function("document.getElementById('base').naturalWidth === 64")
    assert page.input_value("#report") == ""
    page.wait_for_function("document.querySelector('#parsed tbody').innerText.includes('no find')")
    page.fill("#report", REPORT_TYPED)
    page.set_input_files("#file", str(tmp_path / "smaller.png"))
    page.wait_for_function("document.getElementById('base').naturalWidth === 48")
    assert page.input_value("#report") == REPORT_TYPED


def test_nothing_of_the_last_case_or_prompt_is_shown_as_current(page):
    page.wait_for_selector('button[data-example="chest_xray"]')
    assert _visibility(page, "#base") == "hidden"  # no broken picture before the first image
    assert page.is_visible("#placeholder")
    _load_example(page)
    assert _visibility(page, "#base") == "visible" and page.is_hidden("#placeholder")
    page.uncheck("#auto")
    _drag(page, BOX)
    page.click("#segment")
    _wait_rev(page, 1)
    assert page.inner_text("#timing") and page.is_hidden("#stale")
    page.click("#clear")  # the box's mask stays (no segmenting by itself), and says so
    assert page.get_attribute("#mask-layer", "src") and page.is_visible("#stale")
    page.click("#undo")  # the box is back: the mask is its own again
    assert page.is_hidden("#stale")
    page.click("#clear")
    page.route("**/image.png*", lambda route: route.abort())  # the next picture does not come
    page.click('button[data-example="chest_xray_512"]')
    page.wait_for_function("document.getElementById('case-info').innerText.includes('512')")
    assert page.inner_text("#timing") == "" and page.is_hidden("#stale")
    assert _visibility(page, "#base") == "hidden"  # not the last case's picture
    assert not page.get_attribute("#mask-layer", "src")


@pytest.mark.parametrize("width", [390, 1024])
def test_no_horizontal_scrolling_on_a_phone_or_a_small_window(page, width):
    page.set_viewport_size({"width": width, "height": 800})
    _load_example(page)
    page.click("#segment")
    _wait_rev(page, 1)
    overflow = page.evaluate(
        "[document.documentElement, ...document.querySelectorAll('.scroll, .toolbar')]"
        ".map((e) => e.scrollWidth - e.clientWidth)"
    )
    assert not any(overflow), overflow
    if width >= 1024:  # the prompt buttons stay on one line
        buttons = ('[data-tool="box"]', "#undo", "#clear")
        tops = {page.locator(s).bounding_box()["y"] for s in buttons}
        assert len(tops) == 1


def test_the_shipped_weights_notice_is_said_once(page):
    from medseg_r.model.shipped import NOTICE

    def shipped(route):
        response = route.fetch()
        body = response.json()
        body["model"]["shipped_weights"] = {
            "notice": NOTICE,
            "trained_on": "synthetic phantom chest radiographs (medseg-r make-data phantom: the "
            "1,400 training cases of seed 0)",
        }
        route.fulfill(response=response, json=body)

    page.route("**/api/session", shipped)
    page.reload()
    page.wait_for_selector("#notice:not(.hidden)")
    notice = page.inner_text("#notice")
    assert notice.lower().count("trained on") == 1 and "not for clinical use" in notice
    lines = page.eval_on_selector(
        "#notice", "e => e.clientHeight / parseFloat(getComputedStyle(e).lineHeight)"
    )
    assert lines < 2  # one line in a desktop window


def test_the_readme_screenshot(chromium):
    """``MEDSEG_R_SCREENSHOT=docs/images/serve.png``: the page as the README shows it, served with
    the shipped weights (``medseg-r serve`` without ``--checkpoint``): the chest radiograph
    example, its report typed, segmented."""
    target = os.environ.get("MEDSEG_R_SCREENSHOT")
    if not target:
        pytest.skip("MEDSEG_R_SCREENSHOT=FILE saves the README's picture of the page")
    from playwright.sync_api import sync_playwright

    with ServerProcess([]) as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 860})
        page.goto(server.url)
        _load_example(page)
        report = page.input_value("#report")  # the example's: typed as a user would
        page.fill("#report", "")
        page.locator("#report").press_sequentially(report)
        page.wait_for_function("document.querySelector('#parsed tbody').innerText.includes('lobe')")
        page.click("#segment")
        _wait_rev(page, 1)
        assert page.is_visible("#notice") and page.is_hidden("#error")
        page.screenshot(path=target)
        browser.close()


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
