"""``afdetect review`` without a browser: the server's API, the sidecar, the exports."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb
from conftest import DATA
from scipy.signal import resample_poly
from test_cli import assert_clean_error, run

from afdetect.errors import InputError
from afdetect.io.records import open_stream
from afdetect.models import DEFAULT_MODEL, load_classifier
from afdetect.monitor.ec57 import Ec57Options, compare_record, summarise_records
from afdetect.monitor.episodes import EpisodeRule
from afdetect.monitor.rhythm import read_rhythm_marks
from afdetect.monitor.scan import ScanConfig, step_model

pytest.importorskip("fastapi", reason="afdetect review needs fastapi (pip install '.[review]')")
pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx")

from fastapi.testclient import TestClient

from afdetect.review.adjudication import Adjudication, ChangeError
from afdetect.review.rate import heart_rate
from afdetect.review.recordings import open_recordings, read_reference, read_scan, read_scan_file
from afdetect.review.report import scan_step
from afdetect.review.server import create_app, open_reviews
from afdetect.review.trace import MAX_COLUMNS, chunk

FS = 128
# Where af1's parts begin, in seconds: sinus (MIT-BIH 100), AF (AFTDB a01 three times),
# sinus, AF (a01 twice), sinus; 840 s in all.
AF1_PARTS = [(0, "(N"), (180, "(AFIB"), (360, "(N"), (540, "(AFIB"), (660, "(N")]


def make_af_record(folder: Path, name: str = "af1") -> Path:
    """``folder/name``: a 14-min, 128-Hz WFDB record with two AF stretches, made from the
    real records in tests/data, and its hand-made rhythm annotations ``name.atr``."""
    sinus = resample_poly(wfdb.rdrecord(str(DATA / "mitdb" / "100"), channels=[0]).p_signal[:, 0],
                          16, 45)  # 360 -> 128 Hz
    af = wfdb.rdrecord(str(DATA / "aftdb" / "a01"), channels=[0]).p_signal[:, 0]
    parts = [sinus[:180 * FS], np.tile(af, 3), sinus[180 * FS:360 * FS], np.tile(af, 2),
             sinus[360 * FS:540 * FS]]
    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(name, fs=FS, units=["mV"], sig_name=["ECG"],
                p_signal=np.concatenate(parts)[:, None], fmt=["16"], write_dir=str(folder))
    starts = np.cumsum([0] + [len(p) for p in parts])[:-1]
    assert [s / FS for s in starts] == [s for s, _ in AF1_PARTS]
    wfdb.wrann(name, "atr", starts, symbol=["+"] * len(starts),
               aux_note=[a for _, a in AF1_PARTS], fs=FS, write_dir=str(folder))
    return folder / name


@pytest.fixture(scope="module")
def scanned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(af1 record, output folder holding its scan), scanned once with the default model."""
    root = tmp_path_factory.mktemp("review")
    record = make_af_record(root / "data")
    out = root / "out"
    recordings, failures = open_recordings(
        [record], out_dir=out, model=lambda: step_model(load_classifier(DEFAULT_MODEL)))
    assert not failures and len(recordings) == 1
    return record, out


def client_for(record: Path, out: Path, tmp_path: Path) -> TestClient:
    """A client on a fresh copy of the scan (so each test starts its own review)."""
    mine = tmp_path / "out"
    mine.mkdir()
    shutil.copy(out / "af1.scan.json", mine)
    recordings, failures = open_recordings([record, DATA / "mitdb" / "100"], out_dir=mine,
                                           scan_file=None, model=None)
    assert [str(f) for f in failures] == [f"{DATA / 'mitdb' / '100'}: no scan, and no model "
                                          "given to make one"]
    reviews, bad = open_reviews(recordings)
    assert not bad
    return TestClient(create_app(reviews))


def test_the_scan_finds_both_af_stretches(scanned: tuple[Path, Path]) -> None:
    _, out = scanned
    (rec,) = read_scan_file(out / "af1.scan.json").values()
    af = [e for e in rec["episodes"] if e["label"] == "A"]
    assert len(af) == 2
    assert af[0]["start_s"] == pytest.approx(180, abs=20)
    assert af[1]["start_s"] == pytest.approx(540, abs=20)


def _assert_json_error(response, status: int) -> str:  # type: ignore[no-untyped-def]
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in response.text
    message: str = response.json()["error"]
    assert message and "\n" not in message
    return message


@pytest.mark.parametrize("path", [
    "/api/records/nope", "/api/records/nope/signal?start=0&stop=10&columns=5",
    "/api/records/..%2F..%2Fetc%2Fpasswd", "/api/records/%2E%2E/signal?start=0&stop=1&columns=1",
    "/static/..%2F..%2Fcli.py", "/static/..%2Fserver.py", "/static/%2E%2E%2Fserver.py",
    "/static/nothing.js", "/static/../recordings.py", "/etc/passwd", "/api/records/af1/../../x",
])
def test_anything_outside_the_recordings_is_404(scanned: tuple[Path, Path], tmp_path: Path,
                                                path: str) -> None:
    client = client_for(*scanned, tmp_path)
    assert _assert_json_error(client.get(path), 404) == "not found"
    assert "def " not in client.get(path).text  # no source file leaked


def test_the_page_and_its_assets_come_from_the_package(scanned: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    client = client_for(*scanned, tmp_path)
    page = client.get("/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from the internet
    for name in ("app.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and len(asset.text) > 500
        assert "https://" not in asset.text and "http://" not in asset.text


@pytest.mark.parametrize("query", [
    "", "start=0&stop=100", "start=x&stop=100&columns=10", "start=0&stop=1e3&columns=10",
    "start=100&stop=100&columns=10", "start=-5&stop=100&columns=10",
    "start=0&stop=100&columns=0", f"start=0&stop=100&columns={MAX_COLUMNS + 1}",
    f"start=0&stop={3601 * FS}&columns=100", f"start={840 * FS}&stop={841 * FS}&columns=10",
])
def test_malformed_signal_requests_are_400(scanned: tuple[Path, Path], tmp_path: Path,
                                           query: str) -> None:
    client = client_for(*scanned, tmp_path)
    _assert_json_error(client.get(f"/api/records/af1/signal?{query}"), 400)


@pytest.mark.parametrize("body", [
    b"{not json", b"[]", b'"reject"', b"{}",
    b'{"action": "reject", "episode": "a1"}',  # no reviewer
    b'{"action": "reject", "episode": "a1", "reviewer": ""}',
    b'{"action": "explode", "episode": "a1", "reviewer": "x"}',
    b'{"action": "reject", "episode": "a9", "reviewer": "x"}',
    b'{"action": "reject", "episode": "a1", "reviewer": "x", "extra": 1}',
    b'{"action": "bounds", "episode": "a1", "reviewer": "x", "start_s": NaN}',
    b'{"action": "bounds", "episode": "a1", "reviewer": "x", "start_s": "soon"}',
    b'{"action": "bounds", "episode": "a1", "reviewer": "x", "end_s": 9999}',
    b'{"action": "bounds", "episode": "a1", "reviewer": "x", "start_s": 300, "end_s": 200}',
    b'{"action": "relabel", "episode": "a1", "reviewer": "x", "label": "Z"}',
    b'{"action": "add", "reviewer": "x", "start_s": 10}',
    b'{"action": "reset", "episode": "r1", "reviewer": "x"}',
])
def test_malformed_changes_are_400_and_change_nothing(scanned: tuple[Path, Path],
                                                      tmp_path: Path, body: bytes) -> None:
    client = client_for(*scanned, tmp_path)
    before = client.get("/api/records/af1").json()["review"]
    _assert_json_error(client.post("/api/records/af1/changes", content=body,
                                   headers={"Content-Type": "application/json"}), 400)
    assert client.get("/api/records/af1").json()["review"] == before
    assert not (tmp_path / "out" / "af1.review.json").exists()  # nothing was written


def test_a_change_from_another_site_is_refused(scanned: tuple[Path, Path],
                                              tmp_path: Path) -> None:
    """A page elsewhere can post a "simple" text/plain request without asking first; it
    must change nothing, and a Host other than this machine's is refused outright."""
    record, out = scanned
    shutil.copy(out / "af1.scan.json", tmp_path)
    recordings, _ = open_recordings([record], out_dir=tmp_path)
    client = TestClient(create_app(open_reviews(recordings)[0], allowed_hosts=["127.0.0.1"]),
                        base_url="http://127.0.0.1")
    body = json.dumps({"action": "reject", "episode": "a1", "reviewer": "x"})
    sneaky = client.post("/api/records/af1/changes", content=body,
                         headers={"Content-Type": "text/plain"})
    assert _assert_json_error(sneaky, 400).endswith("must be a JSON object (application/json)")
    assert not (tmp_path / "af1.review.json").exists()
    rebound = client.get("/api/records", headers={"Host": "attacker.example"})
    assert rebound.status_code == 400 and "af1" not in rebound.text


def test_the_signal_comes_in_bounded_chunks_at_the_resolution_drawn(
        scanned: tuple[Path, Path], tmp_path: Path) -> None:
    record, _ = scanned
    client = client_for(*scanned, tmp_path)
    truth = wfdb.rdrecord(str(record), channels=[0]).p_signal[:, 0]
    truth -= np.median(truth)  # the whole record: the chunk asked for below
    # zoomed out: an hour's worth of request clipped to the record, one min/max per column
    wide = client.get(f"/api/records/af1/signal?start=0&stop={3600 * FS}&columns=700").json()
    assert wide["mode"] == "minmax" and wide["stop"] == 840 * FS
    assert len(wide["min"]) == len(wide["max"]) == 700
    step = wide["per_column"]
    assert step == pytest.approx(840 * FS / 700)
    for i in (0, 123, 699):
        part = truth[int(np.floor(i * step)):int(np.floor((i + 1) * step)) if i < 699 else None]
        assert wide["min"][i] == pytest.approx(part.min(), abs=1e-3)
        assert wide["max"][i] == pytest.approx(part.max(), abs=1e-3)
    assert [a["aux"] for a in wide["annotations"]] == [a for _, a in AF1_PARTS]
    # zoomed in: the samples themselves, in mV, and only the annotations in range
    near = client.get(f"/api/records/af1/signal?start={179 * FS}&stop={181 * FS}&columns=400"
                      ).json()
    assert near["mode"] == "raw" and len(near["values"]) == 2 * FS
    part = truth[179 * FS:181 * FS]
    np.testing.assert_allclose(near["values"], part - np.median(part), atol=2e-3)
    assert near["offset_mv"] == pytest.approx(np.median(part) + wide["offset_mv"], abs=2e-3)
    assert near["annotations"] == [{"sample": 180 * FS, "symbol": "+", "aux": "(AFIB"}]
    assert wide["beats"] is None  # longer than a page one reads: no beats
    assert all(179 * FS <= b < 181 * FS for b in near["beats"]) and near["beats"]


def test_detected_beats_fall_on_the_reference_beats() -> None:
    record = DATA / "mitdb" / "100"
    stream = open_stream(record)
    _, annotations = read_reference(record, "atr", stream.fs, stream.duration_s)
    assert annotations is not None
    for start_s in (0, 100, 1000, 1770):
        start = round(start_s * stream.fs)
        got = chunk(stream, start, start + round(30 * stream.fs), 1000, annotations)
        reference = np.array([a["sample"] for a in got["annotations"]
                              if a["symbol"] in "NLRBAaJSVrFejnE/fQ?"])  # beats only
        beats = np.array(got["beats"])
        assert abs(len(beats) - len(reference)) <= 1
        error = np.abs(beats[:, None] - reference[None, :]).min(axis=1) / stream.fs
        assert np.mean(error < 0.05) >= 0.94  # within 50 ms


def test_the_heart_rate_follows_the_reference_beats(scanned: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    record = DATA / "mitdb" / "100"
    stream = open_stream(record)
    _, annotations = read_reference(record, "atr", stream.fs, stream.duration_s)
    assert annotations is not None
    rate = heart_rate(stream)
    assert len(rate) == 31  # 30 min 5.6 s: 31 minutes begun
    beats = annotations.samples[[s in "NLRBAaJSVrFejnE/fQ?" for s in annotations.symbols]]
    t = beats / stream.fs
    reference = np.array([60 * (len(b) - 1) / (b[-1] - b[0]) for b in
                          (t[(t >= 60 * i) & (t < 60 * (i + 1))] for i in range(31))])
    error = np.abs(rate - reference)
    assert np.median(error) < 1.0 and np.mean(error < 3) > 0.9, error
    # the API computes it once per recording, and the page gets it per minute
    client = client_for(*scanned, tmp_path)
    got = client.get("/api/records/af1/heart-rate").json()
    assert got["bin_s"] == 60 and len(got["bpm"]) == 14
    assert all(v is None or 20 <= v <= 300 for v in got["bpm"])
    assert got == client.get("/api/records/af1/heart-rate").json()


def _change(client: TestClient, **body: object) -> dict:
    response = client.post("/api/records/af1/changes", json={"reviewer": "Dr Test", **body})
    assert response.status_code == 200, response.text
    review: dict = response.json()["review"]
    return review


def test_changes_are_saved_resumed_and_exported(scanned: tuple[Path, Path],
                                                tmp_path: Path) -> None:
    record, _ = scanned
    client = client_for(*scanned, tmp_path)
    overview = client.get("/api/records/af1").json()
    assert overview["review"]["status"] == "not started"
    assert overview["reference"][1] == {"rhythm": "(AFIB", "start_s": 180.0, "end_s": 360.0}
    a1, a2 = overview["review"]["episodes"]
    assert (a1["id"], a2["id"]) == ("a1", "a2") and a1["status"] == "pending"
    _change(client, action="reject", episode="a1")
    _change(client, action="bounds", episode="a2", end_s=a2["end_s"] - 20)
    _change(client, action="note", episode="a2", note="offset moved to the last AF beat")
    review = _change(client, action="add", start_s=60, end_s=120, note="missed")
    expected_af = (a2["end_s"] - 20 - a2["start_s"]) + 60
    assert review["af_seconds"] == pytest.approx(expected_af, abs=1e-3)
    assert review["af_burden"] == pytest.approx(expected_af / 840, abs=1e-6)
    assert review["status"] == "3 of 3 reviewed"  # rejected, confirmed (moved), added
    statuses = {e["id"]: e["status"] for e in review["episodes"]}
    assert statuses == {"a1": "rejected", "a2": "confirmed", "r1": "added"}

    sidecar = json.loads((tmp_path / "out" / "af1.review.json").read_text())
    assert sidecar["format"] == "afdetect-review/1" and sidecar["scan"] == "af1.scan.json"
    scan = read_scan_file(tmp_path / "out" / "af1.scan.json")["af1"]
    keys = ("label", "start_s", "end_s")  # the algorithm's decision kept (clock times aside)
    assert sidecar["algorithm_episodes"] == [{k: e[k] for k in keys} for e in scan["episodes"]]
    kept = {e["id"]: e for e in sidecar["episodes"]}
    assert kept["a2"]["original"]["end_s"] == a2["end_s"]  # beside the reviewer's bounds
    assert kept["a2"]["end_s"] == pytest.approx(a2["end_s"] - 20)
    assert kept["a1"]["reviewed_by"] == "Dr Test" and kept["a1"]["reviewed_at"]
    assert [h["action"] for h in sidecar["history"]] == ["reject", "bounds", "note", "add"]
    assert not list((tmp_path / "out").glob(".*tmp"))  # atomic writes leave no temp files

    # a new session on the same folder resumes where this one stopped
    recordings, _ = open_recordings([record], out_dir=tmp_path / "out")
    reviews, _ = open_reviews(recordings)
    again = TestClient(create_app(reviews))
    assert again.get("/api/records/af1").json()["review"]["episodes"] == review["episodes"]
    assert again.get("/api/records").json()["records"][0]["status"] == "3 of 3 reviewed"
    signed = again.post("/api/records/af1/changes",
                        json={"reviewer": "Dr Test", "action": "signoff"}).json()["review"]
    assert signed["status"] == "signed off" and signed["signed_off"]["by"] == "Dr Test"

    files = again.post("/api/records/af1/export").json()["files"]
    assert files == {"annotations": str(tmp_path / "out" / "af1.rev"),
                     "csv": str(tmp_path / "out" / "af1.reviewed.csv"),
                     "report": str(tmp_path / "out" / "af1.reviewed.pdf")}
    assert_reviewed_report(Path(files["report"]).read_bytes(), "Dr Test", expected_af / 840,
                           scan["af_burden"], signed=True,
                           decisions="0 confirmed, 1 with bounds edited, 0 relabelled, "
                                     "1 rejected, 1 added, 0 pending (of 3)")
    marks = read_rhythm_marks(tmp_path / "out" / "af1", "rev")
    af_marks = [(s / FS, aux) for s, aux in marks]
    assert af_marks[0] == (0, "(N") and (60, "(AFIB") in af_marks and (120, "(N") in af_marks
    assert (round(a2["start_s"] * FS) / FS, "(AFIB") in af_marks
    assert (round((a2["end_s"] - 20) * FS) / FS, "(N") in af_marks
    assert sum(aux == "(AFIB" for _, aux in af_marks) == 2  # a1 rejected: no AF there
    with open(files["csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["episode"], r["status"]) for r in rows] == [
        ("r1", "added"), ("a1", "rejected"), ("a2", "confirmed")]
    assert {r["signed_off_by"] for r in rows} == {"Dr Test"}
    assert rows[2]["algorithm_end_s"] == str(a2["end_s"])


def pdf_text(pdf: bytes) -> str:
    """The text of a PDF, by poppler's pdftotext, its whitespace runs made single spaces."""
    if shutil.which("pdftotext") is None:
        pytest.skip("no pdftotext on PATH (apt-get install poppler-utils)")
    text = subprocess.run(["pdftotext", "-", "-"], input=pdf, capture_output=True,
                          check=True).stdout.decode()
    return " ".join(text.split())


def assert_reviewed_report(pdf: bytes, reviewer: str, burden: float, algorithm: float,
                           signed: bool, decisions: str) -> None:
    """``pdf`` is the report of af1 marked as reviewed by ``reviewer``: the reviewed
    ``burden`` beside the ``algorithm``'s, the ``decisions`` line, the sign-off."""
    assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
    text = pdf_text(pdf)
    assert "AF report (reviewed): af1" in text
    when = "20..-..-.. ..:.. UTC"
    assert re.search(f"Reviewed by {reviewer} \\(changes {when}", text)
    assert f"Episodes reviewed {decisions}" in text
    assert re.search(f"AF burden {100 * burden:.1f}% \\(0 h .. min .. s\\) after review; "
                     f"the algorithm's {100 * algorithm:.1f}%", text)
    if signed:
        assert re.search(f"Sign-off signed off by {reviewer}, {when}", text)
    else:
        assert "Sign-off not signed off" in text
    # every page says so, and none says the episodes still await review
    pages = len(re.findall(r"page \d+ of \d+", text))
    assert text.count(f"checked on the ECG by {reviewer}") >= pages >= 2
    assert "must be reviewed" not in text


def test_the_pdf_report_downloads_and_follows_the_review(scanned: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    client = client_for(*scanned, tmp_path)
    scan = read_scan_file(tmp_path / "out" / "af1.scan.json")["af1"]
    untouched = pdf_text(client.get("/api/records/af1/report.pdf").content)
    assert "AF report (review not started): af1" in untouched
    assert "Review not started: the AF episodes are the algorithm's" in untouched
    assert "Reviewed by nobody yet (no change yet)" in untouched
    _change(client, action="confirm", episode="a1")
    review = _change(client, action="relabel", episode="a2", label="O")
    response = client.get("/api/records/af1/report.pdf")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == 'attachment; filename="af1.reviewed.pdf"'
    assert_reviewed_report(response.content, "Dr Test", review["af_burden"],
                           scan["af_burden"], signed=False,
                           decisions="1 confirmed, 0 with bounds edited, 1 relabelled, "
                                     "0 rejected, 0 added, 0 pending (of 2)")
    text = pdf_text(response.content)
    assert "AF episodes after review" in text and "AF episode 1: onset at" in text
    assert "AF episode 2" not in text  # relabelled: no AF there any more
    assert not list((tmp_path / "out").glob("*.pdf"))  # a download writes nothing there
    assert _assert_json_error(client.get("/api/records/nope/report.pdf"), 404) == "not found"


def test_an_old_scan_without_its_step_still_reports(scanned: tuple[Path, Path]) -> None:
    _, out = scanned
    settings, entries = read_scan(out / "af1.scan.json")
    assert settings["step_s"] == pytest.approx(512 / 300)
    starts = np.array([w["start_s"] for w in entries["af1"]["windows"]])
    window_s = entries["af1"]["windows"][0]["end_s"] - starts[0]
    step = scan_step({}, starts, window_s, out / "af1.scan.json")
    assert step / settings["step_s"] == pytest.approx(round(step / settings["step_s"]))


def test_a_change_after_sign_off_needs_a_new_one(tmp_path: Path) -> None:
    review = Adjudication.open(tmp_path / "x.review.json", "x", 100.0, 600.0, {"episodes": [
        {"label": "N", "start_s": 0, "end_s": 200}, {"label": "A", "start_s": 200, "end_s": 400},
        {"label": "O", "start_s": 400, "end_s": 600}]}, tmp_path / "x.scan.json")
    assert review.af_burden == pytest.approx(200 / 600)
    review.apply("signoff", "A. Reviewer")
    assert review.status == "signed off"
    review.apply("relabel", "A. Reviewer", "a1", label="O")
    assert review.status == "1 of 1 reviewed" and review.af_burden == 0
    # a rejected episode takes the rhythm before it; a relabelled one its new label
    assert [(e.label, e.start_s, e.end_s) for e in review.reviewed_episodes()] == [
        ("N", 0, 200), ("O", 200, 600)]
    review.apply("reject", "A. Reviewer", "a1")
    assert [(e.label, e.end_s) for e in review.reviewed_episodes()] == [("N", 400), ("O", 600)]


def test_an_episode_to_the_end_of_the_recording_can_be_moved(tmp_path: Path) -> None:
    # the scan's times are rounded to the millisecond: 1805.556 s for a recording of
    # 650,000 samples at 360 Hz (1805.5556 s), as MIT-BIH record 201 ends in AF
    duration = 650000 / 360
    review = Adjudication.open(tmp_path / "x.review.json", "x", 360.0, duration, {"episodes": [
        {"label": "N", "start_s": 0, "end_s": 1607.68},
        {"label": "A", "start_s": 1607.68, "end_s": round(duration, 3)}]},
        tmp_path / "x.scan.json")
    review.apply("bounds", "A. Reviewer", "a1", start_s=1617.68)
    assert (review.episodes[0].start_s, review.episodes[0].end_s) == (1617.68, 1805.556)
    assert review.af_seconds == pytest.approx(duration - 1617.68, abs=1e-3)
    with pytest.raises(ChangeError, match=r"offset 1805\.557 s must satisfy"):
        review.apply("bounds", "A. Reviewer", "a1", end_s=1805.557)


def test_a_bad_sidecar_is_reported_and_never_overwritten(scanned: tuple[Path, Path],
                                                         tmp_path: Path) -> None:
    record, out = scanned
    shutil.copy(out / "af1.scan.json", tmp_path)
    (tmp_path / "af1.review.json").write_text("{broken")
    recordings, _ = open_recordings([record], out_dir=tmp_path)
    reviews, bad = open_reviews(recordings)
    assert not reviews and len(bad) == 1
    assert str(bad[0]).startswith(f"{tmp_path / 'af1.review.json'}: unreadable review sidecar")
    assert (tmp_path / "af1.review.json").read_text() == "{broken"


def test_a_given_scan_file_is_used_and_a_bad_one_named(scanned: tuple[Path, Path],
                                                       tmp_path: Path) -> None:
    record, out = scanned
    given = tmp_path / "scans" / "night.json"
    given.parent.mkdir()
    shutil.copy(out / "af1.scan.json", given)
    recordings, failures = open_recordings([record], out_dir=tmp_path / "unused",
                                           scan_file=given, model=None)
    assert not failures and recordings[0].scan_path == given
    assert recordings[0].sidecar_path == given.parent / "af1.review.json"
    (tmp_path / "bad.json").write_text('{"recordings": [{"record": "af1"}]}')
    with pytest.raises(InputError, match=r"bad\.json: recording 1: no sampling rate"):
        open_recordings([record], out_dir=tmp_path, scan_file=tmp_path / "bad.json")
    # a stored scan of another recording of the same name is refused, not drawn
    other = tmp_path / "other"
    other.mkdir()
    wfdb.wrsamp("af1", fs=FS, units=["mV"], sig_name=["ECG"],
                p_signal=np.zeros((60 * FS, 1)), fmt=["16"], write_dir=str(other))
    recordings, failures = open_recordings([other / "af1"], out_dir=out, scan_file=None)
    assert not recordings and "does not match" in str(failures[0])
    # a stored scan made with other settings than those asked for is not used
    recordings, failures = open_recordings([record], out_dir=out, config=ScanConfig())
    assert len(recordings) == 1 and not failures  # the defaults: as it was made
    asked = ScanConfig(hop_s=20, rule=EpisodeRule(af_threshold=0.5))
    recordings, failures = open_recordings([record], out_dir=out, config=asked)
    assert not recordings
    assert str(failures[0]) == (f"{out / 'af1.scan.json'}: made with other scan settings "
                                "(af_threshold 0.6 not 0.5): scan again into another --out, "
                                "or leave the scan options out to use it")
    # two recordings of one name would share a sidecar: the second is refused
    recordings, failures = open_recordings([record, other / "af1"], out_dir=out)
    assert [r.name for r in recordings] == ["af1"]
    assert str(failures[0]).startswith(f"{other / 'af1'}: another recording named 'af1'")


def test_the_command_serves_and_reports_bad_input(scanned: tuple[Path, Path],
                                                  tmp_path: Path) -> None:
    record, out = scanned
    result = run("review", tmp_path / "missing", "--no-browser", "--out", tmp_path)
    assert_clean_error(result)
    assert "missing" in result.stderr and "nothing to review" in result.stderr
    shutil.copy(out / "af1.scan.json", tmp_path)
    result = run("review", record, "--out", tmp_path, "--threshold", "0.5", "--no-browser")
    assert_clean_error(result, "af1.scan.json: made with other scan settings", "nothing to "
                       "review")
    proc = subprocess.Popen([sys.executable, "-m", "afdetect.cli", "review", str(record),
                             "--out", str(tmp_path), "--port", "0", "--no-browser"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("afdetect review: 1 recording(s) at http://127.0.0.1:"), line
        url = line.split(" at ")[1].split()[0]
        import httpx

        listing = httpx.get(url + "api/records", timeout=30).json()
        assert listing["records"][0]["name"] == "af1"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # another address only when asked, and with a warning
    proc = subprocess.Popen([sys.executable, "-m", "afdetect.cli", "review", str(record),
                             "--out", str(tmp_path), "--port", "0", "--no-browser",
                             "--host", "0.0.0.0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith("afdetect review: 1 recording(s) at http://")
        warning = proc.stderr.readline()
        assert warning.startswith("afdetect: warning: serving on 0.0.0.0: anyone who can "
                                  "reach this machine"), warning
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_the_command_exports_the_review_without_serving(scanned: tuple[Path, Path],
                                                        tmp_path: Path) -> None:
    record, out = scanned
    shutil.copy(out / "af1.scan.json", tmp_path)
    exports = tmp_path / "exports"
    result = run("review", record, "--out", tmp_path, "--export", exports)
    assert_clean_error(result, f"{tmp_path / 'af1.review.json'}: no review of this recording "
                               "yet", "nothing exported")
    assert not exports.exists()  # nothing written, and no scan made
    (recording,), _ = open_recordings([record], out_dir=tmp_path)
    (review,), _ = open_reviews([recording])
    review.review.apply("reject", "Dr Cli", "a2")
    result = run("review", record, "--out", tmp_path, "--export", exports)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("af1: 1 of 2 reviewed, AF burden ")
    assert sorted(p.name for p in exports.iterdir()) == [
        "af1.rev", "af1.reviewed.csv", "af1.reviewed.pdf"]
    assert_reviewed_report((exports / "af1.reviewed.pdf").read_bytes(), "Dr Cli",
                           review.review.af_burden, recording.scan["af_burden"], signed=False,
                           decisions="0 confirmed, 0 with bounds edited, 0 relabelled, "
                                     "1 rejected, 0 added, 1 pending (of 2)")
    # someone else's annotation file of that name is never replaced
    (exports / "af1.rev").unlink()
    shutil.copy(DATA / "mitdb" / "100.atr", exports / "af1.rev")
    result = run("review", record, "--out", tmp_path, "--export", exports)
    assert_clean_error(result, f"{exports / 'af1.rev'}: exists and holds annotations afdetect "
                               "did not write")
    assert (exports / "af1.rev").read_bytes() == (DATA / "mitdb" / "100.atr").read_bytes()


def _ec57(reference: list, detected: list, record: Path, options: Ec57Options) -> dict:
    """What scoring the annotation file of ``detected`` marks gives, as JSON would carry it."""
    stream = open_stream(record.with_suffix(".hea"))
    counts = compare_record(reference, detected, stream.n_samples, stream.fs, options)
    return json.loads(json.dumps(summarise_records({record.name: counts})))


def test_evaluate_scores_either_decision_of_a_sidecar_as_its_annotation_file(
        scanned: tuple[Path, Path], tmp_path: Path) -> None:
    record, out = scanned
    data = tmp_path / "data"
    data.mkdir()
    for suffix in (".hea", ".dat", ".atr"):
        shutil.copy(record.with_suffix(suffix), data)
    mine = tmp_path / "out"
    mine.mkdir()
    shutil.copy(out / "af1.scan.json", mine)
    (recording,), _ = open_recordings([data / "af1"], out_dir=mine)
    (reviewed,), _ = open_reviews([recording])
    review = reviewed.review
    review.apply("reject", "Dr Score", "a1")
    review.apply("bounds", "Dr Score", "a2", end_s=review.episodes[1].end_s - 25)
    review.apply("add", "Dr Score", start_s=200, end_s=330)
    review.export(data)  # data/af1.rev: the reviewed rhythm
    result = run("scan", data / "af1", "--annotations", "afd", "--annotations-dir", data)
    assert result.returncode == 0, result.stderr  # data/af1.afd: the algorithm's rhythm
    reference = read_rhythm_marks(data / "af1", "atr")
    sidecar = mine / "af1.review.json"
    for decision, annotator, flags in (("reviewed", "rev", []),
                                       ("algorithm", "afd", []),
                                       ("reviewed", "rev", ["--compare-from", "300"])):
        result = run("evaluate", "--episodes", "--data", data, "--review", sidecar,
                     "--decision", decision, "--json", *flags)
        assert result.returncode == 0, result.stderr
        got = json.loads(result.stdout)
        options = Ec57Options(start_s=float(flags[1]) if flags else 0.0)
        expected = _ec57(reference, read_rhythm_marks(data / "af1", annotator), data / "af1",
                         options)
        assert {k: got[k] for k in expected} == expected, (decision, flags)
        assert got["decision"] == decision
    reviewed_burden = json.loads(run("evaluate", "--episodes", "--data", data, "--review",
                                     mine, "--json").stdout)["records"]["af1"]
    assert reviewed_burden["detected_burden"] == pytest.approx(review.af_burden, abs=2e-3)
    table = run("evaluate", "--episodes", "--data", data, "--review", sidecar,
                "--decision", "algorithm")
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("algorithm episodes of 1 review(s) against the 'atr' "
                                   "annotations in ")
    assert "episode Se" in table.stdout and "windows:" not in table.stdout


def test_evaluate_names_each_bad_sidecar_in_one_line(scanned: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    record, out = scanned
    data = record.parent
    (recording,), _ = open_recordings([record], out_dir=out)
    good = tmp_path / "good" / "af1.review.json"
    good.parent.mkdir()
    review = Adjudication.open(good, "af1", recording.stream.fs, recording.stream.duration_s,
                               recording.scan, out / "af1.scan.json")
    review.apply("confirm", "Dr Score", "a1")
    sidecar = json.loads(good.read_text())
    broken = tmp_path / "broken.review.json"
    broken.write_text('{"format": "afdetect-review/1", "record": ')
    not_one = out / "af1.scan.json"  # a scan, not a review
    other = tmp_path / "other.review.json"
    other.write_text(json.dumps({**sidecar, "record": "nope"}))
    longer = tmp_path / "longer.review.json"
    longer.write_text(json.dumps({**sidecar, "duration_s": 900.0}))
    odd = tmp_path / "odd.review.json"
    odd.write_text(json.dumps({**sidecar, "episodes": [{"id": "a1"}]}))
    result = run("evaluate", "--episodes", "--data", data, "--review", good, broken, not_one,
                 other, longer, odd, tmp_path / "missing.review.json")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and "af1" in result.stdout
    assert result.stderr.splitlines() == [
        f"afdetect: error: {broken}: unreadable review sidecar (Expecting value: line 1 "
        "column 43 (char 42))",
        f"afdetect: error: {not_one}: not a review sidecar (no \"format\": "
        "\"afdetect-review/1\"; `afdetect review` writes RECORD.review.json)",
        f"afdetect: error: {other}: the review of record 'nope', which is not in {data} "
        "(no nope.hea)",
        f"afdetect: error: {longer}: the review of 'af1' (900 s at 128 Hz) does not match "
        f"{data / 'af1.hea'} (840 s at 128 Hz)",
        f"afdetect: error: {odd}: unreadable review sidecar (entry 1 of 'episodes' is not an "
        "episode with end_s, id, label, start_s)",
        f"afdetect: error: {tmp_path / 'missing.review.json'}: no such review sidecar"]
    result = run("evaluate", "--episodes", "--data", data, "--review", broken)
    assert_clean_error(result, f"{broken}: unreadable review sidecar",
                       "no review could be scored")
    assert len(result.stderr.strip().splitlines()) == 2
    assert_clean_error(run("evaluate", "--episodes", "--data", data, "--review", good,
                           "--threshold", "0.5"), "--threshold does not apply to --review")
    assert_clean_error(run("evaluate", "--data", data, "--review", good),
                       "--review scores AF episodes: it needs --episodes")
