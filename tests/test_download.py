"""End-to-end download against a local PhysioNet-like server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DATA, SAMPLES
from test_cli import run

from afdetect.data.cinc import index_dataset
from afdetect.io.download import download


class _Server:
    """Serves ``files`` under /files/<database>/ with HTTP range support.

    ``cut_once`` names files whose first response stops halfway (connection dropped);
    ``corrupt`` names files always served with one byte flipped.
    """

    def __init__(self, files: dict[str, bytes], database: str = "challenge-2017/1.0.0") -> None:
        self.files = files
        self.cut_once: set[str] = set()
        self.corrupt: set[str] = set()
        self.range_requests: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                prefix = f"/files/{database}/"
                rel = self.path[len(prefix):] if self.path.startswith(prefix) else None
                if rel not in server.files:
                    self.send_error(404)
                    return
                body = server.files[rel]
                if rel in server.corrupt:
                    body = bytes([body[0] ^ 0xFF]) + body[1:]
                start = 0
                if self.headers.get("Range"):
                    server.range_requests.append(rel)
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                if rel in server.cut_once:
                    server.cut_once.discard(rel)
                    self.wfile.write(body[start:start + (len(body) - start) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body[start:])

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/files"

    def __enter__(self) -> _Server:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def physionet() -> Iterator[_Server]:
    """A few real records in PhysioNet's layout, with SHA256SUMS.txt and a decoy file."""
    files = {"REFERENCE-v3.csv": b""}
    names = ["A00001", "A00004", "A00013", "A00022"]
    rows = []
    for n in names:
        for ext in (".hea", ".mat"):
            files[f"training/{n[:3]}/{n}{ext}"] = (SAMPLES / f"{n}{ext}").read_bytes()
    labels = dict(line.split(",") for line in (SAMPLES / "REFERENCE.csv").read_text().split())
    rows = [f"{n},{labels[n]}" for n in names]
    files["REFERENCE-v3.csv"] = ("\n".join(rows) + "\n").encode()
    files["papers/big.pdf"] = b"not wanted"
    files["SHA256SUMS.txt"] = "".join(
        f"{hashlib.sha256(body).hexdigest()} {rel}\n" for rel, body in sorted(files.items())
    ).encode()
    with _Server(files) as server:
        yield server


def test_download_verifies_and_is_usable(physionet: _Server, tmp_path: Path) -> None:
    report = download(tmp_path, base_url=physionet.url, progress=False)
    assert len(report.fetched) == 9 and not report.failed
    assert not (tmp_path / "papers").exists()  # outside the default include patterns
    assert [r.name for r in index_dataset(tmp_path)] == ["A00001", "A00004", "A00013", "A00022"]
    again = download(tmp_path, base_url=physionet.url, progress=False)
    assert len(again.present) == 9 and not again.fetched


def test_interrupted_transfer_resumes(physionet: _Server, tmp_path: Path) -> None:
    rel = "training/A00/A00001.mat"
    physionet.cut_once.add(rel)
    report = download(tmp_path, base_url=physionet.url, progress=False)
    assert not report.failed
    assert rel in physionet.range_requests  # continued, not restarted
    assert (tmp_path / rel).read_bytes() == (SAMPLES / "A00001.mat").read_bytes()
    assert not list(tmp_path.rglob("*.part"))


def test_corrupted_file_is_refused(physionet: _Server, tmp_path: Path) -> None:
    rel = "training/A00/A00004.mat"
    physionet.corrupt.add(rel)
    report = download(tmp_path, base_url=physionet.url, progress=False, retries=2)
    assert report.failed == {rel: "checksum mismatch"}
    assert not (tmp_path / rel).exists()  # a wrong file never lands
    physionet.corrupt.clear()
    report = download(tmp_path, base_url=physionet.url, progress=False)
    assert report.fetched == [rel]


def test_download_mitdb_gives_a_folder_scan_can_score(tmp_path: Path) -> None:
    files = {f"100{ext}": (DATA / "mitdb" / f"100{ext}").read_bytes()
             for ext in (".hea", ".dat", ".atr")}
    files["RECORDS"] = b"100\n"
    files["SHA256SUMS.txt"] = "".join(
        f"{hashlib.sha256(body).hexdigest()} {rel}\n" for rel, body in sorted(files.items())
    ).encode()
    with _Server(files, "mitdb/1.0.0") as server:
        result = run("download", "--database", "mitdb/1.0.0", "--base-url", server.url,
                     "--out", tmp_path / "mitdb")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "mitdb" / "100.atr").read_bytes() == files["100.atr"]
    result = run("evaluate", "--episodes", "--data", tmp_path / "mitdb", "--json")
    assert result.returncode == 0, result.stderr
    assert list(json.loads(result.stdout)["records"]) == ["100"]
