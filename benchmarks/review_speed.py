"""``afdetect review`` speed, measured in the browser: first paint of a 24-hour recording,
page turns, jumps, and the page's memory, in headless Chromium driven by Playwright.

The 24-h record is stitched from the MIT-BIH records as ``scan_speed.py`` does (lead 0,
360 Hz, format 212), scanned once, and served as ``afdetect review`` serves it. Times are
taken in the page (``performance.now()``, polled every animation frame):

- first paint: from navigation to the trace and overview drawn, the server already up
  (the heart rate of the whole recording is computed meanwhile, on its first request);
- heart rate: from the first navigation to the overview's heart rate drawn; the turns and
  jumps are measured after it;
- page turn: PageDown until the next page is drawn, after 300 ms on the page (the page
  prefetches its neighbours meanwhile), and back to back (no time to prefetch);
- jump: a click on the overview at a random place until that page is drawn (not cached);
- memory: the JavaScript heap after the first paint and after all the turns and jumps.

With ``--screenshot FILE.png`` it also opens ``--screenshot-record`` (a real record with
AF), selects its first AF episode and saves the page, for the manual. Prints and writes
``benchmarks/results/review_speed.json``.

    python benchmarks/review_speed.py --data ../shared/data/mitdb \\
        --screenshot docs/img/review.png --screenshot-record ../shared/data/mitdb/201
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
import uvicorn
from playwright.sync_api import Page, sync_playwright
from provenance import command_line
from scan_speed import stitch

from afdetect.atomic import write_json_atomic
from afdetect.models import DEFAULT_MODEL, load_classifier
from afdetect.monitor.scan import step_model
from afdetect.review.recordings import open_recordings
from afdetect.review.server import create_app, open_reviews

RESULTS = Path(__file__).parent / "results"

# In the page: press PageDown `n` times, each time until the next page is drawn, then wait
# `pause` ms; ms each.
TURNS_JS = """async ([n, pause]) => {
  const trace = document.getElementById("trace"), out = [];
  const frame = () => new Promise((r) => requestAnimationFrame(r));
  for (let i = 0; i < n; i++) {
    await new Promise((r) => setTimeout(r, pause));
    const before = trace.dataset.drawn, t = performance.now();
    document.dispatchEvent(new KeyboardEvent("keydown", { key: "PageDown", bubbles: true }));
    while (trace.dataset.drawn === before) await frame();
    out.push(performance.now() - t);
  }
  return out;
}"""

# In the page: click the overview at each fraction of its width until that page is drawn.
JUMPS_JS = """async (fractions) => {
  const trace = document.getElementById("trace"), overview = document.getElementById("overview");
  const frame = () => new Promise((r) => requestAnimationFrame(r));
  const box = overview.getBoundingClientRect(), out = [];
  for (const f of fractions) {
    const before = trace.dataset.drawn, t = performance.now();
    overview.dispatchEvent(new MouseEvent("click", { bubbles: true,
      clientX: box.left + 80 + f * (box.width - 90), clientY: box.top + 40 }));
    while (trace.dataset.drawn === before) await frame();
    out.push(performance.now() - t);
  }
  return out;
}"""


@contextmanager
def serving(record: Path, out: Path) -> Iterator[str]:
    """Scan ``record`` into ``out`` (unless scanned) and serve its review; yields the URL."""
    recordings, failures = open_recordings(
        [record], out_dir=out, model=lambda: step_model(load_classifier(DEFAULT_MODEL)),
        progress=True)
    if failures:
        raise SystemExit(str(failures[0]))
    reviews, bad = open_reviews(recordings)
    if bad:
        raise SystemExit(str(bad[0]))
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(reviews), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def heap_mb(page: Page) -> float:
    return round(page.evaluate("performance.memory.usedJSHeapSize") / 2**20, 1)


def stats(ms: list[float]) -> dict[str, float]:
    return {"median_ms": round(float(np.median(ms)), 1),
            "p95_ms": round(float(np.percentile(ms, 95)), 1), "max_ms": round(max(ms), 1),
            "n": len(ms)}


def first_paint(page: Page, url: str) -> float:
    """ms from navigation to the trace drawn (the overview is drawn before it)."""
    page.goto(url)
    page.wait_for_function("document.getElementById('trace').dataset.drawn !== undefined",
                           polling="raf", timeout=60_000)
    return float(page.evaluate("performance.now()"))


def measure(page: Page, url: str, turns: int, jumps: int) -> dict:
    first = [first_paint(page, url)]
    page.wait_for_function("view.rate !== null", polling=100, timeout=600_000)
    rate_s = page.evaluate("performance.now()") / 1000
    first += [first_paint(page, url) for _ in range(2)]  # a fresh page load each time
    page.wait_for_function("view.rate !== null", polling=100, timeout=60_000)
    heap_start = heap_mb(page)
    turn_ms = page.evaluate(TURNS_JS, [turns, 300])
    back_to_back_ms = page.evaluate(TURNS_JS, [turns, 0])
    rng = np.random.default_rng(0)
    jump_ms = page.evaluate(JUMPS_JS, rng.uniform(0.02, 0.98, jumps).tolist())
    page.evaluate("window.gc && window.gc()")
    return {"first_paint": stats(first), "heart_rate_s": round(rate_s, 1),
            "page_turn": stats(turn_ms),
            "page_turn_back_to_back": stats(back_to_back_ms), "jump": stats(jump_ms),
            "heap_mb": {"after_first_paint": heap_start,
                        f"after_{2 * turns}_turns_{jumps}_jumps": heap_mb(page)}}


def screenshot(page: Page, record: Path, dest: Path, workdir: Path) -> None:
    """The review of ``record`` at the onset of its last AF episode, saved to ``dest``."""
    with serving(record, workdir) as url:
        page.goto(url)
        page.wait_for_function("document.getElementById('trace').dataset.drawn !== undefined",
                               polling="raf", timeout=60_000)
        page.fill("#reviewer", "Dr A. Reviewer")
        page.locator("#episodes tbody tr").last.click()
        page.wait_for_timeout(1000)
        dest.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(dest))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mitdb"))
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--jumps", type=int, default=20)
    parser.add_argument("--screenshot", type=Path, metavar="FILE.png")
    parser.add_argument("--screenshot-record", type=Path, metavar="RECORD")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no chromium on PATH (apt-get install chromium)")
    torch.set_num_threads(1)
    result: dict = {"command": command_line(), "hours": args.hours,
                    "viewport": [1400, 900], "rows": 3}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=[
            "--no-sandbox", "--enable-precise-memory-info", "--js-flags=--expose-gc"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        record = stitch(args.data, args.hours, Path(tmp))
        start = time.perf_counter()
        with serving(record, Path(tmp) / "out") as url:
            result["scan_s"] = round(time.perf_counter() - start, 1)
            result.update(measure(page, url, args.turns, args.jumps))
        if args.screenshot:
            if args.screenshot_record is None:
                raise SystemExit("--screenshot needs --screenshot-record")
            screenshot(page, args.screenshot_record, args.screenshot, Path(tmp) / "shot")
            result["screenshot"] = str(args.screenshot)
        browser.close()
    write_json_atomic(RESULTS / "review_speed.json", result, indent=2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
