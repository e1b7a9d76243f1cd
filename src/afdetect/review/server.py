"""The review application: a JSON API over the recordings and their adjudications, and the
page (plain HTML, CSS and JavaScript shipped in the package, nothing from the internet).

API (every error is JSON ``{"error": "..."}``: 404 for anything outside the recordings
under review, 400 for a malformed request):

- ``GET /api/records``: the recordings with their burden and review status.
- ``GET /api/records/{key}``: one recording's overview: P(AF) per window, the algorithm's
  episodes, the reference rhythm, the review.
- ``GET /api/records/{key}/signal?start=&stop=&columns=``: samples ``[start, stop)`` for
  ``columns`` pixel columns (:func:`afdetect.review.trace.chunk`).
- ``GET /api/records/{key}/heart-rate``: the heart rate per minute (computed on the first
  request, then kept).
- ``POST /api/records/{key}/changes``: one adjudication change (:class:`Change`).
- ``POST /api/records/{key}/export``: write the reviewed annotations, the CSV and the PDF
  report next to the sidecar.
- ``GET /api/records/{key}/report.pdf``: the PDF report of the review as it stands, as a
  download (nothing is written next to the sidecar).
"""

from __future__ import annotations

import copy
import ipaddress
import math
import socket
import sys
import tempfile
import threading
import webbrowser
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from afdetect.errors import AfdetectError, InputError
from afdetect.review.adjudication import Adjudication, ChangeError
from afdetect.review.rate import BIN_S, heart_rate, recording_beats
from afdetect.review.recordings import ReviewRecording
from afdetect.review.report import REPORT_SUFFIX, export_review, write_reviewed_report
from afdetect.review.trace import MAX_COLUMNS, MAX_SPAN_S, chunk

STATIC_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                ".css": "text/css; charset=utf-8"}


class Change(BaseModel):
    """One adjudication change, as the page posts it (see
    :meth:`afdetect.review.adjudication.Adjudication.apply`)."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["confirm", "reject", "relabel", "bounds", "note", "add", "reset", "signoff"]
    reviewer: str = Field(min_length=1, max_length=200)
    episode: str | None = Field(default=None, max_length=64)
    label: str | None = Field(default=None, max_length=8)
    start_s: float | None = Field(default=None, allow_inf_nan=False)
    end_s: float | None = Field(default=None, allow_inf_nan=False)
    note: str | None = Field(default=None, max_length=4000)


@dataclass
class Reviewed:
    """A recording, its adjudication, and the lock that orders changes to it; its detected
    beats and heart rate per minute once asked for (a lock of their own: a long
    computation does not hold up the review)."""

    recording: ReviewRecording
    review: Adjudication
    lock: threading.Lock
    rate: list[float | None] | None = None
    beats: np.ndarray | None = None
    rate_lock: threading.Lock = field(default_factory=threading.Lock)

    def detected_beats(self) -> np.ndarray:
        """(n_beats,) int64 samples of the beats over the whole recording (found once)."""
        with self.rate_lock:
            if self.beats is None:
                self.beats = recording_beats(self.recording.stream)
            return self.beats

    def snapshot(self) -> Adjudication:
        """A copy of the review as it stands, to write from without holding up changes."""
        with self.lock:
            return copy.deepcopy(self.review)


def open_reviews(recordings: list[ReviewRecording]) -> tuple[list[Reviewed], list[InputError]]:
    """Open (or resume) the adjudication of each recording; bad sidecars are returned."""
    out, failures = [], []
    for rec in recordings:
        try:
            review = Adjudication.open(rec.sidecar_path, rec.name, rec.stream.fs,
                                       rec.stream.duration_s, rec.scan, rec.scan_path)
        except InputError as exc:
            failures.append(exc)
            continue
        out.append(Reviewed(rec, review, threading.Lock()))
    return out, failures


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        if err.get("type") == "json_invalid":
            return "malformed request: the body is not valid JSON"
        if tuple(err.get("loc", ())) == ("body",):  # also a JSON body sent as text/plain
            return "malformed request: the body must be a JSON object (application/json)"
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{where}: {err.get('msg', 'invalid')}" if where else
                     str(err.get("msg", "invalid")))
    return "malformed request: " + "; ".join(parts)


def _static_files() -> dict[str, bytes]:
    """The page's files by name, read once from the installed package."""
    folder = resources.files("afdetect.review") / "static"
    return {f.name: f.read_bytes() for f in folder.iterdir()
            if f.is_file() and f.name.rsplit(".", 1)[-1] in ("html", "js", "css")}


def create_app(reviews: list[Reviewed], allowed_hosts: list[str] | None = None) -> FastAPI:
    """The application over ``reviews``; ``allowed_hosts`` limits the Host header (a page
    on another site cannot then reach the API through DNS rebinding)."""
    app = FastAPI(title="afdetect review", docs_url=None, redoc_url=None, openapi_url=None)
    if allowed_hosts:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts)
    by_key = {r.recording.key: r for r in reviews}
    static = _static_files()

    @app.exception_handler(RequestValidationError)
    async def bad_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return _error(400, _validation_message(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return _error(exc.status_code, "not found" if exc.status_code == 404 else
                      str(exc.detail))

    @app.exception_handler(ChangeError)
    async def change_error(_: Request, exc: ChangeError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(AfdetectError)
    async def afdetect_error(_: Request, exc: AfdetectError) -> JSONResponse:
        return _error(500, str(exc))

    @app.exception_handler(OSError)
    async def os_error(_: Request, exc: OSError) -> JSONResponse:
        return _error(500, f"{exc.filename or 'writing'}: {exc.strerror or exc}; "
                           "nothing was overwritten")

    def find(key: str) -> Reviewed:
        if key not in by_key:
            raise HTTPException(404)
        return by_key[key]

    @app.get("/")
    def index() -> Response:
        return Response(static["index.html"], media_type=STATIC_TYPES[".html"])

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/static/{name}")
    def asset(name: str) -> Response:
        if name not in static:
            raise HTTPException(404)
        return Response(static[name], media_type=STATIC_TYPES["." + name.rsplit(".", 1)[-1]],
                        headers={"Cache-Control": "no-cache"})

    @app.get("/api/records")
    def records() -> dict[str, Any]:
        return {"records": [_listing(r) for r in reviews]}

    @app.get("/api/records/{key}")
    def record(key: str) -> dict[str, Any]:
        r = find(key)
        with r.lock:
            return _overview(r)

    @app.get("/api/records/{key}/signal")
    def signal(key: str, start: int, stop: int, columns: int) -> dict[str, Any]:
        r = find(key)
        stream = r.recording.stream
        if not 0 <= start < stop:
            raise HTTPException(400, "need 0 <= start < stop (samples)")
        if start >= stream.n_samples:
            raise HTTPException(400, f"start {start} is past the end ({stream.n_samples} "
                                     "samples)")
        if not 1 <= columns <= MAX_COLUMNS:
            raise HTTPException(400, f"columns must be 1 to {MAX_COLUMNS}")
        if (stop - start) / stream.fs > MAX_SPAN_S:
            raise HTTPException(400, f"at most {MAX_SPAN_S:g} s per request")
        return chunk(stream, start, stop, columns, r.recording.annotations)

    @app.get("/api/records/{key}/heart-rate")
    def rate(key: str) -> dict[str, Any]:
        r = find(key)
        beats = r.detected_beats()
        with r.rate_lock:
            if r.rate is None:
                r.rate = [None if math.isnan(v) else round(float(v), 1)
                          for v in heart_rate(r.recording.stream, beats=beats)]
        return {"bin_s": BIN_S, "bpm": r.rate}

    @app.post("/api/records/{key}/changes")
    def change(key: str, body: Change) -> dict[str, Any]:
        r = find(key)
        with r.lock:
            r.review.apply(body.action, body.reviewer, body.episode, body.label, body.start_s,
                           body.end_s, body.note)
            return {"review": r.review.state()}

    @app.post("/api/records/{key}/export")
    def export(key: str) -> dict[str, Any]:
        r = find(key)
        beats, review = r.detected_beats(), r.snapshot()
        return {"files": export_review(r.recording, review, beats, review.path.parent),
                "review": review.summary()}

    @app.get("/api/records/{key}/report.pdf")
    def report(key: str) -> Response:
        r = find(key)
        beats, review = r.detected_beats(), r.snapshot()
        with tempfile.TemporaryDirectory(prefix="afdetect-review-") as folder:
            pdf = write_reviewed_report(r.recording, review, beats,
                                        Path(folder) / f"{key}{REPORT_SUFFIX}")
            content = pdf.read_bytes()
        return Response(content, media_type="application/pdf", headers={
            "Content-Disposition": f'attachment; filename="{key}{REPORT_SUFFIX}"',
            "Cache-Control": "no-store"})

    return app


def _listing(r: Reviewed) -> dict[str, Any]:
    rec = r.recording
    return {"key": rec.key, "name": rec.name, "duration_s": rec.stream.duration_s,
            "fs": rec.stream.fs, "start_time": rec.start_time, "start_date": rec.start_date,
            "has_reference": rec.reference is not None,
            "algorithm_burden": rec.scan.get("af_burden"), **r.review.summary()}


def _overview(r: Reviewed) -> dict[str, Any]:
    rec, windows = r.recording, r.recording.scan["windows"]
    return {**_listing(r), "source": rec.stream.source, "lead": rec.stream.lead,
            "n_samples": rec.stream.n_samples, "scan": str(rec.scan_path),
            "sidecar": str(rec.sidecar_path),
            "windows": {"start_s": [w["start_s"] for w in windows],
                        "end_s": [w["end_s"] for w in windows],
                        # P(AF) as the episodes saw it: 0 where the atrial check ruled
                        "p_af": [0.0 if w.get("atrial_organised") else w["probabilities"]["A"]
                                 for w in windows]},
            "algorithm_episodes": [e.to_dict() for e in r.review.algorithm_episodes],
            "reference": None if rec.reference is None else [
                {"rhythm": i.rhythm, "start_s": round(i.start_s, 3), "end_s": round(i.end_s, 3)}
                for i in rec.reference],
            "review": r.review.state()}


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(reviews: list[Reviewed], host: str = "127.0.0.1", port: int = 8765,
          open_browser: bool = True) -> None:
    """Serve ``reviews`` on ``host:port`` (0: any free port) until interrupted.

    Prints the URL; opens the default browser on it unless ``open_browser`` is false.
    Anything but a loopback address gets a warning: the reviews are then open to the
    network.
    """
    import uvicorn

    try:
        sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host
                                    else socket.AF_INET)
    except OSError as exc:
        raise AfdetectError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                            "choose another with --port/--host") from None
    port = sock.getsockname()[1]
    loopback = is_loopback(host)
    if not loopback:
        print(f"afdetect: warning: serving on {host}: anyone who can reach this machine can "
              "read these recordings and change their review", file=sys.stderr)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://[{shown}]:{port}/" if ":" in shown else f"http://{shown}:{port}/"
    allowed = None if not loopback else ["127.0.0.1", "localhost", "[::1]", "::1"]
    app = create_app(reviews, allowed_hosts=allowed)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    print(f"afdetect review: {len(reviews)} recording(s) at {url} (Ctrl+C to stop)", flush=True)
    if open_browser:
        webbrowser.open(url)
    server.run(sockets=[sock])
