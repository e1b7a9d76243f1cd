"""``scan --report``: the printable AF report renders, reads, and draws at true scale."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pytest
from conftest import DATA
from test_cli import run

from afdetect import __version__
from afdetect.clock import StartTime
from afdetect.io.records import open_stream
from afdetect.models import load_classifier
from afdetect.monitor.episodes import Episode
from afdetect.monitor.report import MM, ReportOptions, _ecg_strip, write_report
from afdetect.monitor.scan import scan_stream, step_model

A01 = DATA / "aftdb" / "a01.hea"  # 60 s of AF at 128 Hz
poppler = pytest.mark.skipif(shutil.which("pdftotext") is None or
                             shutil.which("pdftoppm") is None,
                             reason="poppler-utils (pdftotext, pdftoppm) not installed")


def _text(pdf: Path) -> str:
    return subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                          text=True, check=True).stdout


def _page_sizes(pdf: Path) -> list[tuple[float, float]]:
    info = subprocess.run(["pdfinfo", "-f", "1", "-l", "99", str(pdf)], capture_output=True,
                          text=True, check=True).stdout
    return [(float(w), float(h)) for w, h in
            re.findall(r"Page\s+\d+ size:\s+([\d.]+) x ([\d.]+) pts", info)]


@poppler
def test_report_of_an_af_record_renders_and_holds_the_summary(tmp_path: Path) -> None:
    pdf = tmp_path / "report.pdf"
    result = run("scan", A01, "--report", pdf)
    assert result.returncode == 0, result.stderr
    text = _text(pdf)
    for words in ("AF report: a01", "AF burden", "100.0%", "AF episodes", "Longest AF episode",
                  "Heart rate in AF", "Heart rate, non-AF", "Lead, rate", "128 Hz",
                  "Hourly trend", f"afdetect {__version__}", "model compressed",
                  "Decision aid, not a diagnosis", "onset strips", "25 mm/s, 10 mm/mV"):
        assert words in text, words
    assert re.search(r"AF episodes\s+1\b", text)
    assert re.search(r"Heart rate in AF\s+mean \d+ bpm \(min \d+, max \d+\)", text)
    # A4: the summary in portrait, the strips in landscape (595.28 x 841.89 pt)
    assert _page_sizes(pdf) == [(595.276, 841.89), (841.89, 595.276)]
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(pdf),
                    str(tmp_path / "page")], check=True)
    (png,) = tmp_path.glob("page*.png")
    pixels = mpimg.imread(png)[..., :3]
    assert pixels.shape[0] > pixels.shape[1]  # portrait
    inked = (pixels.mean(axis=2) < 0.9).mean()
    assert 0.01 < inked < 0.5  # text and a chart, on white
    assert not list(tmp_path.glob(".report.pdf.*"))  # written atomically


def test_strips_are_at_true_scale_on_the_page() -> None:
    stream = open_stream(A01)
    fig = plt.figure(figsize=(297 * MM, 210 * MM))
    _ecg_strip(fig, stream, 2.0, 5.0, (23.5, 30.0), (297.0, 210.0), "strip", None)
    (ax,) = fig.axes
    box = ax.get_position()
    width_mm, height_mm = box.width * 297, box.height * 210
    seconds = np.diff(ax.get_xlim())[0]
    millivolts = np.diff(ax.get_ylim())[0]
    assert width_mm / seconds == pytest.approx(25.0)  # 25 mm/s
    assert height_mm / millivolts == pytest.approx(10.0)  # 10 mm/mV
    assert box.x0 * 297 == pytest.approx(23.5) and box.y0 * 210 == pytest.approx(30.0)
    plt.close(fig)


@poppler
def test_many_episodes_list_the_rest_and_the_table_continues(tmp_path: Path) -> None:
    model = step_model(load_classifier("compressed"))
    stream = open_stream(DATA / "mitdb" / "100")
    scan = scan_stream(model, stream)
    # 20 AF episodes of 30 s, each after 60 s of sinus rhythm (a hand-made detection)
    episodes = []
    for k in range(20):
        episodes += [Episode("N", 90.0 * k, 90.0 * k + 60), Episode("A", 90.0 * k + 60,
                                                                   90.0 * k + 90)]
    episodes.append(Episode("N", 1800.0, scan.duration_s))
    many = dataclasses.replace(scan, episodes=episodes)
    pdf = write_report(many, stream, tmp_path / "out" / "100.pdf",
                       ReportOptions(model=model.name, max_strips=4,
                                     start=StartTime.parse("2024-03-01T23:59:00")))
    text = _text(pdf)
    assert "2024-03-01 23:59:00" in text  # the start, then episodes in clock time
    assert "2024-03-02 00:00:00" in text and "00:00:30" in text  # the first AF onset
    assert "onset strips for the 4 longest of 20" in text
    assert text.count("listed only") == 16
    assert "AF episodes (continued)" in text
    assert len(_page_sizes(pdf)) == 1 + 1 + 2  # summary, table, two pages of strips
    assert "page 4 of 4" in text


@poppler
def test_report_for_several_recordings_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    result = run("scan", A01, DATA / "mitdb" / "100.hea", "--report", folder)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["100.pdf", "a01.pdf"]
    assert "AF report: 100" in _text(folder / "100.pdf")
    assert "No AF episode detected." in _text(folder / "100.pdf")
