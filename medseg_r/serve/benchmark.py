"""Latency of the web page, measured in a real headless Chromium against ``medseg-r serve``.

    python -m medseg_r.serve.benchmark [--backbones sam_tiny litemedsam] [--repeats 5] [--size 512]
                                       [--json FILE]

For each backbone: a MedSeg-R checkpoint with every gate at 0.1 (as ``predict_speed``: no MedSeg-R
path is skipped; ``sam_tiny`` random-initialised, ``litemedsam`` with its shipped pretrained
weights), ``medseg-r serve`` started as a command, one page opened. Three situations, ``--repeats``
times each, timed by the page from the click on Segment until the mask layer is drawn (the figure it
shows as "on this page"), beside the model time and the server time it reports:

* ``new image``: a fresh ``size`` x ``size`` PNG is uploaded before each click (the whole encoder
  runs);
* ``report changed``: the same image with another report (the encoder resumes after its cached
  prefix);
* ``prompt changed``: the same image and report with another box (the decoder alone runs).

Needs Playwright (``pip install -e '.[test]'``) and Chromium. Prints medians; ``--json`` keeps
every run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import statistics
import tempfile
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, TypeVar

from ..benchmarks.predict_speed import make_checkpoint

T = TypeVar("T")

REPORTS = [
    "A 2 cm round dense nodule in the right upper lobe.",
    "Patchy opacity in the left lower zone.",
    "Spiculated mass in the left upper lobe.",
    "Ground-glass opacity in the right lower lobe.",
    "Round nodule in the right middle zone.",
    "Irregular mass in the left mid zone.",
    "Cavitary lesion in the right upper zone.",
]




def _png(size: int, seed: int) -> bytes:
    from PIL import Image

    from ..example import chest_like_image

    buffer = io.BytesIO()
    Image.fromarray(chest_like_image(size, seed=seed)[0]).save(buffer, format="PNG")
    return buffer.getvalue()


def _segment(page, rev: int) -> Dict[str, float]:
    page.click("#segment")
    page.wait_for_selector(f'#viewer[data-rev="{rev}"]', timeout=600_000)
    return page.evaluate("window.medsegTiming")


def _off_a_running_loop(work: Callable[[], T]) -> T:
    """``work()``, in a thread of its own when this thread runs an asyncio loop (a notebook, or
    another sync Playwright session open here): Playwright's sync API refuses such a thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="latency-benchmark") as pool:
        return pool.submit(work).result()  # the work's error, if any, is raised here


def measure(
    backbone: str, *, repeats: int, size: int, chromium: str, workdir: str
) -> Dict[str, List[dict]]:
    """The page's timings for ``backbone`` in each situation, ``repeats`` times each."""
    return _off_a_running_loop(lambda: _measure(backbone, repeats=repeats, size=size,
                                                chromium=chromium, workdir=workdir))


def _measure(
    backbone: str, *, repeats: int, size: int, chromium: str, workdir: str
) -> Dict[str, List[dict]]:
    from playwright.sync_api import sync_playwright

    from .browser import ServerProcess, launch_chromium

    ckpt = os.path.join(workdir, f"{backbone}.ckpt")
    make_checkpoint(backbone, ckpt)
    runs: Dict[str, List[dict]] = {"new image": [], "report changed": [], "prompt changed": []}
    with ServerProcess(["--checkpoint", ckpt]) as server, sync_playwright() as playwright:
        browser = launch_chromium(playwright, chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        page.goto(server.url)
        page.wait_for_selector("#examples button")
        page.uncheck("#auto")
        rev = 0
        for i in range(repeats):
            page.set_input_files(
                "#file",
                files=[
                    {
                        "name": f"bench{i}.png",
                        "mimeType": "image/png",
                        "buffer": _png(size, seed=100 + i),
                    }
                ],
            )
            page.wait_for_function(
                f"document.getElementById('case-info').innerText.startsWith('bench{i}.png')"
            )
            page.fill("#report", REPORTS[0])
            rev = 1
            runs["new image"].append(_segment(page, rev))
        for i in range(repeats):
            page.fill(
                "#report", REPORTS[1 + i % (len(REPORTS) - 1)] + " " * (i // (len(REPORTS) - 1))
            )
            rev += 1
            runs["report changed"].append(_segment(page, rev))
        for i in range(repeats):
            page.evaluate(
                f"state.prompts = {{box: [{10 + 5 * i}, 20, {size // 2}, {size // 2}], points: []}}"
            )
            rev += 1
            runs["prompt changed"].append(_segment(page, rev))
        browser.close()
    return runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbones", nargs="+", default=["sam_tiny", "litemedsam"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--json", help="write every run here")
    args = parser.parse_args(argv)
    from .browser import INSTALL_HINT, find_chromium

    chromium = find_chromium()
    if chromium is None:
        parser.error(INSTALL_HINT)
    results = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as workdir:
        for backbone in args.backbones:
            results[backbone] = measure(
                backbone, repeats=args.repeats, size=args.size, chromium=chromium, workdir=workdir
            )
    print(
        f"{args.size} x {args.size} PNG, median of {args.repeats}; load average before "
        f"{load_before[0]:.2f}, after {os.getloadavg()[0]:.2f}"
    )
    print("| backbone | situation | on the page | model | server |")
    print("|---|---|---|---|---|")
    for backbone, runs in results.items():
        for situation, timings in runs.items():
            med = {
                k: statistics.median(t[k] for t in timings)
                for k in ("roundTrip", "model_seconds", "server_seconds")
            }
            print(
                f"| `{backbone}` | {situation} | {med['roundTrip']:.2f} s | "
                f"{med['model_seconds']:.2f} s | "
                f"{med['server_seconds']:.2f} s |"
            )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(
                {"size": args.size, "repeats": args.repeats, "runs": results}, handle, indent=2
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
