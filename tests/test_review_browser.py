"""``afdetect review`` in a real browser: headless Chromium, driven by Playwright, reviews
a recording with two AF stretches the way a clinician does."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from test_review import (  # noqa: F401  (scanned: a fixture)
    FS,
    assert_reviewed_report,
    make_af_record,
    scanned,
)

from afdetect.monitor.rhythm import read_rhythm_marks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH (apt-get install chromium)", allow_module_level=True)
pytest.importorskip("playwright", reason="the browser tests need playwright (pip install "
                                         "playwright; it drives the system chromium)")
pytest.importorskip("fastapi", reason="afdetect review needs fastapi (pip install '.[review]')")

import uvicorn  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from afdetect.review.recordings import open_recordings  # noqa: E402
from afdetect.review.server import create_app, open_reviews  # noqa: E402


def serving(records: list[Path], out: Path) -> Iterator[str]:
    """The URL of a review of ``records`` (scans in ``out``), served on a free port of
    127.0.0.1 from a thread until the generator is closed."""
    recordings, failures = open_recordings(records, out_dir=out)
    reviews, bad = open_reviews(recordings)
    assert not failures and not bad
    sock = socket.create_server(("127.0.0.1", 0))
    app = create_app(reviews, allowed_hosts=["127.0.0.1"])
    srv = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        srv.should_exit = True
        thread.join(timeout=30)


@pytest.fixture
def server(scanned: tuple[Path, Path], tmp_path: Path) -> Iterator[tuple[str, Path]]:  # noqa: F811
    """(URL, output folder): the review of a fresh copy of af1's scan."""
    record, out = scanned
    mine = tmp_path / "out"
    mine.mkdir()
    shutil.copy(out / "af1.scan.json", mine)
    for url in serving([record], mine):
        yield url, mine


@pytest.fixture
def page() -> Iterator[Page]:
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        tab.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
        yield tab
        browser.close()
        assert not errors, errors  # no script error, no failed request


def _status(page: Page, episode: str) -> str:
    return page.locator(f"#episodes tr[data-id={episode}] td.status").inner_text()


def _burden(page: Page) -> str:
    return page.locator("#burden").inner_text()


def test_a_review_in_the_browser(server: tuple[str, Path], page: Page) -> None:
    url, out = server
    page.goto(url)  # one recording: the list goes straight to it
    expect(page.locator("#episodes tr[data-id=a2]")).to_be_visible()
    assert _burden(page).startswith("AF burden 29.")
    expect(page.locator("#episodes tr[data-id=a1] td").nth(3)).to_have_text(re.compile(r"^\d+$"))
    page.fill("#reviewer", "Dr Browser")
    page.locator("#reviewer").dispatch_event("change")

    # go to the first episode (click it in the list) and reject it
    page.click("#episodes tr[data-id=a1]")
    expect(page.locator("#editor")).to_be_visible()
    page.click("#editor [data-action=reject]")
    expect(page.locator("#episodes tr[data-id=a1] td.status")).to_have_text("rejected")

    # the next episode by keyboard (n), then move its offset 30 s earlier by typing
    page.locator("#trace").focus()
    page.keyboard.press("n")
    expect(page.locator("#edit-id")).to_have_text("a2")
    a2_start = page.input_value("#edit-start")
    offset = _seconds(page.input_value("#edit-end")) - 30
    page.fill("#edit-end", f"{offset:.1f}")
    page.click("#editor [data-action=bounds]")
    expect(page.locator("#episodes tr[data-id=a2] td.status")).to_have_text("confirmed")

    # add a missed episode: onset typed, offset from a click on the trace
    page.click("#episodes tr[data-id=a1]")  # page at 0:03:12.6
    box = page.locator("#trace").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + 20)  # middle of the first row
    page.fill("#add-start", "0:01:00")
    page.click("#add-form .from-cursor[data-target=add-end]")
    cursor = _seconds(page.input_value("#add-end"))
    assert 190 < cursor < 210
    page.click("#add")
    expect(page.locator("#episodes tr[data-id=r1] td.status")).to_have_text("added")

    saved = json.loads((out / "af1.review.json").read_text())["episodes"]
    kept = sorted((e["start_s"], e["end_s"]) for e in saved
                  if e["status"] != "rejected" and e["label"] == "A")
    assert kept == [(60.0, pytest.approx(cursor, abs=0.05)),
                    (pytest.approx(_seconds(a2_start), abs=0.05), offset)]
    expected_af = sum(b - a for a, b in kept)
    expected = f"AF burden {100 * expected_af / 840:.1f}% ({int(expected_af + 0.5)} s)"
    expect(page.locator("#burden")).to_have_text(expected)

    # reload: the review resumes, and the page comes back to where it was
    where = page.evaluate("location.hash")
    page.reload()
    expect(page.locator("#episodes tr[data-id=r1]")).to_be_visible()
    assert page.evaluate("location.hash") == where
    assert [_status(page, e) for e in ("r1", "a1", "a2")] == ["added", "rejected", "confirmed"]
    assert page.locator("#episodes tr[data-id=a1] td").nth(6).inner_text() == "Dr Browser"
    expect(page.locator("#burden")).to_have_text(expected)

    page.click("#signoff")
    expect(page.locator("#status")).to_contain_text("signed off by Dr Browser")
    page.click("#export")
    expect(page.locator("#message")).to_contain_text("exported")
    marks = [(s / FS, aux) for s, aux in read_rhythm_marks(out / "af1", "rev")]
    af = [(a[0], b[0]) for a, b in zip(marks, [*marks[1:], (840.0, "")], strict=True)
          if a[1] == "(AFIB"]
    assert len(af) == 2  # the added one and the moved one; the rejected one is gone
    for (a, b), (ka, kb) in zip(af, kept, strict=True):  # to the sample
        assert (a, b) == (pytest.approx(ka, abs=1 / FS), pytest.approx(kb, abs=1 / FS))
    assert "Dr Browser" in (out / "af1.reviewed.csv").read_text()
    algorithm = json.loads((out / "af1.scan.json").read_text())["recordings"][0]["af_burden"]
    decisions = "0 confirmed, 1 with bounds edited, 0 relabelled, 1 rejected, 1 added, " \
                "0 pending (of 3)"
    assert_reviewed_report((out / "af1.reviewed.pdf").read_bytes(), "Dr Browser",
                           expected_af / 840, algorithm, signed=True, decisions=decisions)
    # the PDF report of the review, downloaded from the page
    with page.expect_download() as download:
        page.click("#report")
    assert download.value.suggested_filename == "af1.reviewed.pdf"
    expect(page.locator("#message")).to_contain_text("downloaded the PDF report of af1")
    assert_reviewed_report(Path(download.value.path()).read_bytes(), "Dr Browser",
                           expected_af / 840, algorithm, signed=True, decisions=decisions)


def _seconds(text: str) -> float:
    h, m, s = text.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_the_trace_is_drawn_and_pages_turn(server: tuple[str, Path], page: Page) -> None:
    from PIL import Image

    url, _ = server
    page.goto(url + "#/r/af1/t/200")
    trace = page.locator("#trace")
    expect(trace).to_have_attribute("data-drawn", str(200 * FS))
    pixels = np.asarray(Image.open(io.BytesIO(trace.screenshot())).convert("RGB")).astype(int)
    dark = (pixels.sum(axis=2) < 200).mean()  # the ink of the trace
    pink = ((pixels[..., 0] > 200) & (pixels[..., 1] < 200)).mean()  # the paper's grid
    assert 0.005 < dark < 0.2, dark
    assert pink > 0.02, pink
    # the ink is where the trace is: in every row, not in one corner
    rows = np.array_split(pixels.sum(axis=2) < 200, 3)
    assert all(r.mean() > 0.002 for r in rows)
    for key, moved in (("PageDown", True), ("PageUp", True), ("ArrowRight", True)):
        before = trace.get_attribute("data-drawn")
        trace.press(key)
        if moved:
            expect(trace).not_to_have_attribute("data-drawn", before or "")
    # a click on the overview opens the trace there
    box = page.locator("#overview").bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + 80 + (box["width"] - 90) * 600 / 840, box["y"] + 40)
    expect(page.locator("#trace-time")).to_contain_text("0:09:")


def test_a_folder_opens_on_a_table_of_recordings(scanned: tuple[Path, Path],  # noqa: F811
                                                 tmp_path: Path, page: Page) -> None:
    _, out = scanned
    scan = json.loads((out / "af1.scan.json").read_text())
    for name in ("af1", "af2"):  # the same signal twice: the same scan, renamed
        make_af_record(tmp_path, name)
        scan["recordings"][0]["record"] = name
        (tmp_path / f"{name}.scan.json").write_text(json.dumps(scan))
    for url in serving([tmp_path], tmp_path):
        page.goto(url)
        rows = page.locator("#records tbody tr")
        expect(rows).to_have_count(2)
        assert rows.nth(1).locator("td").all_inner_texts() == [
            "af2", "", "0:14:00", "29.3%", "29.3%", "2", "not started"]
        rows.nth(1).click()
        expect(page.locator("#title")).to_have_text("af2")
        expect(page.locator("#episodes tr[data-id=a2]")).to_be_visible()
        page.goto("about:blank")  # before the server stops: no request left in flight


def test_an_onset_is_dragged_on_the_trace(server: tuple[str, Path], page: Page) -> None:
    url, out = server
    page.goto(url)
    page.fill("#reviewer", "Dr Drag")
    page.locator("#reviewer").dispatch_event("change")
    page.click("#episodes tr[data-id=a2]")  # the page starts 2 s before its onset
    expect(page.locator("#edit-id")).to_have_text("a2")
    onset = _seconds(page.input_value("#edit-start"))
    box = page.locator("#trace").bounding_box()
    assert box is not None
    px_per_s = float(page.input_value("#pxmm")) * 25
    x, y = box["x"] + 2 * px_per_s, box["y"] + 50
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 3 * px_per_s, y, steps=6)
    page.mouse.up()
    expect(page.locator("#episodes tr[data-id=a2] td.status")).to_have_text("confirmed")
    saved = {e["id"]: e for e in json.loads((out / "af1.review.json").read_text())["episodes"]}
    assert saved["a2"]["start_s"] == pytest.approx(onset + 3, abs=0.2)
    assert saved["a2"]["reviewed_by"] == "Dr Drag"
    assert _seconds(page.input_value("#edit-start")) == pytest.approx(onset + 3, abs=0.2)
