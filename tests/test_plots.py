"""Figures: rhythm colours match their legend, the AF threshold is drawn, long traces page."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest
from conftest import DATA, synthetic_ecg
from matplotlib.colors import to_rgba
from test_cli import run

from afdetect import plots
from afdetect.io.records import open_stream
from afdetect.models import load_classifier
from afdetect.monitor.rhythm import RhythmInterval
from afdetect.monitor.scan import scan_stream, step_model

MITBIH_RHYTHMS = ("(N", "(AFIB", "(AFL", "(B", "(T", "(VT", "(SVTA", "(IVR", "(AB", "(P",
                  "(PREX", "(SBR", "(BII", "(NOD", "(VFL")


def _captured(monkeypatch: pytest.MonkeyPatch) -> list:
    figures: list = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figures.append(fig))
    return figures


def test_reference_colours_match_the_legend_for_every_mitbih_rhythm(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    stream = open_stream(DATA / "aftdb" / "a01.hea")
    scan = scan_stream(step_model(load_classifier("compressed")), stream)
    step = scan.duration_s / (len(MITBIH_RHYTHMS) + 1)
    codes = [*MITBIH_RHYTHMS, "(XYZ"]
    reference = [RhythmInterval(code, k * step, (k + 1) * step) for k, code in enumerate(codes)]
    figures = _captured(monkeypatch)
    plots.plot_scan(scan, stream, tmp_path / "x.png", reference, threshold=0.6)
    (fig,) = figures
    timeline, bars = fig.axes[0], fig.axes[1]
    legend = bars.get_legend()
    assert legend is not None
    names = [t.get_text() for t in legend.get_texts()]
    colours = [tuple(h.get_facecolor()) for h in legend.legend_handles]
    drawn = {tuple(c.get_facecolor()[0]) for c in bars.collections}
    assert drawn <= set(colours)  # every colour drawn is in the legend
    assert len(set(colours)) == len(colours)  # and names one rhythm
    for code in MITBIH_RHYTHMS:
        colour, name = plots.rhythm_style(code)
        assert name in names and to_rgba(colour) == colours[names.index(name)]
        assert not name.startswith(plots.UNKNOWN_RHYTHM[1])
    assert "other reference rhythm (XYZ" in names
    # the detected AF colour is the reference AF colour, sinus is green, not grey
    assert plots.DETECTED["A"][0] == plots.rhythm_style("(AFIB")[0]
    assert to_rgba(plots.rhythm_style("(N")[0]) == to_rgba("tab:green")
    # the threshold is drawn on the P(AF) axes, and named in its legend
    levels = [line.get_ydata() for line in timeline.get_lines()]
    assert any(np.allclose(y, 0.6) for y in levels)
    assert "AF threshold 0.6" in [t.get_text() for t in timeline.get_legend().get_texts()]


def test_a_short_trace_is_one_image(tmp_path: Path) -> None:
    written = plots.plot_trace(synthetic_ecg(60.0, 300.0), 300.0, tmp_path / "t.png", "t",
                               {"N": 0.7, "A": 0.1, "O": 0.1, "~": 0.1})
    assert written == [tmp_path / "t.png"]


def test_a_long_trace_is_an_overview_and_pages_of_capped_height(tmp_path: Path) -> None:
    fs, minutes = 250.0, 9
    written = plots.plot_trace(synthetic_ecg(60.0 * minutes, fs), fs, tmp_path / "t.png",
                               "t", {"N": 0.7, "A": 0.1, "O": 0.1, "~": 0.1})
    rows = minutes * 60 / plots.ROW_S
    n_pages = int(np.ceil(rows / plots.ROWS_PER_PAGE))
    assert written == [tmp_path / "t.png"] + [tmp_path / f"t_page{k}.png"
                                              for k in range(1, n_pages + 1)]
    heights = [mpimg.imread(p).shape[0] for p in written]
    assert max(heights) <= 1.8 * plots.ROWS_PER_PAGE * 110 + 200  # bounded, whatever the length
    assert heights[0] < heights[1]  # the overview is one row


def test_predict_plot_of_a_long_recording_writes_pages(tmp_path: Path) -> None:
    np.save(tmp_path / "long.npy", synthetic_ecg(300.0, 250.0))  # 5 min: 15 rows
    result = run("predict", tmp_path / "long.npy", "--fs", "250", "--plot", tmp_path / "p.png")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("p*.png")) == ["p.png", "p_page1.png",
                                                               "p_page2.png"]
    assert "overview" in result.stderr and "2 pages" in result.stderr
