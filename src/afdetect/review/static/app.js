// afdetect review: the page. Plain JavaScript, no libraries. The server holds the
// recordings; the page asks for the signal of the page it draws (at the resolution drawn)
// and keeps a few pages in a small cache, so its memory does not grow with the recording.
"use strict";

const LABELS = { N: "normal", A: "AF", O: "other", "~": "noise" };
const PAPER_MM_PER_S = 25;   // ECG paper speed
const PAPER_MM_PER_MV = 10;  // ECG paper gain
const ROW_MM = 30;           // height of one trace row: 3 mV
const CACHE_PAGES = 12;      // signal chunks kept in memory
const $ = (id) => document.getElementById(id);

const view = {
  key: null, record: null, rate: null, t0: 0, selected: null, cursor: null,
  cache: new Map(), drawSerial: 0, paper: null,
  drag: null,  // {edge: "start_s" | "end_s", value: seconds, moved} while a bound is dragged
  dragged: false,
};

// ---------- formatting and parsing ----------

function hms(seconds, decimals = 0) {
  const neg = seconds < 0;
  let s = Math.round(Math.abs(seconds) * 10 ** decimals) / 10 ** decimals;  // 59.96 -> 1:00.0
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const sec = decimals ? s.toFixed(decimals).padStart(3 + decimals, "0")
    : String(Math.floor(s)).padStart(2, "0");
  return `${neg ? "-" : ""}${h}:${String(m).padStart(2, "0")}:${sec}`;
}

// Clock time of a point of the recording: the header's start time plus the offset, else the
// offset itself.
function clock(t, decimals = 0) {
  const start = view.record && view.record.start_time;
  if (!start) return hms(t, decimals);
  const [h, m, s] = start.split(":").map(Number);
  return hms(((h * 3600 + m * 60 + s + t) % 86400 + 86400) % 86400, decimals);
}

function duration(seconds) {
  return seconds >= 3600 ? hms(seconds) : `${Math.floor(seconds / 60)}:${
    String(Math.round(seconds % 60)).padStart(2, "0")}`;
}

// "h:mm:ss(.s)", "m:ss" or seconds -> seconds; NaN when it is none of them.
function parseTime(text) {
  const parts = text.trim().split(":");
  if (!parts.length || parts.length > 3 || parts.some((p) => !/^\d+(\.\d*)?$/.test(p))) return NaN;
  return parts.reduce((acc, p) => acc * 60 + Number(p), 0);
}

function say(text, isError = false) {
  const el = $("message");
  el.textContent = text;
  el.style.color = isError ? "#ff8a80" : "#c5e1a5";
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}

// ---------- routing ----------

function route() {
  const m = location.hash.match(/^#\/r\/([A-Za-z0-9._-]+)(?:\/t\/([\d.]+))?/);
  if (m) openRecord(m[1], m[2] === undefined ? null : Number(m[2]));
  else openList();
}

function remember() {  // the page's place in the URL, so a reload comes back to it
  history.replaceState(null, "", `#/r/${view.key}/t/${view.t0.toFixed(2)}`);
}

async function openList() {
  const { records } = await api("/api/records");
  if (records.length === 1) { location.hash = `#/r/${records[0].key}`; return; }
  view.key = null; view.record = null;
  $("record-view").hidden = true; $("list-view").hidden = false;
  $("signoff").hidden = $("export").hidden = $("report").hidden = true;
  $("title").textContent = `${records.length} recordings`;
  $("burden").textContent = ""; $("status").textContent = "";
  const body = $("records").tBodies[0];
  body.replaceChildren(...records.map((r) => {
    const tr = document.createElement("tr");
    tr.dataset.key = r.key;
    const cells = [r.name, r.start_time || "", hms(r.duration_s), pct(r.af_burden),
      r.algorithm_burden == null ? "" : pct(r.algorithm_burden), String(r.n_episodes), r.status];
    for (const c of cells) tr.insertCell().textContent = c;
    tr.onclick = () => { location.hash = `#/r/${r.key}`; };
    return tr;
  }));
}

function pct(x) { return `${(100 * x).toFixed(1)}%`; }

async function openRecord(key, t) {
  if (view.key !== key) {
    view.key = key; view.cache.clear(); view.selected = null; view.cursor = null;
    view.rate = null;
    try {
      view.record = await api(`/api/records/${key}`);
    } catch (err) { say(err.message, true); view.key = null; return; }
    api(`/api/records/${key}/heart-rate`).then((rate) => {  // computed on first request
      if (view.key === key) { view.rate = rate; showReview(); drawOverview(); }
    }).catch((err) => say(err.message, true));
  }
  $("list-view").hidden = true; $("record-view").hidden = false;
  $("signoff").hidden = $("export").hidden = $("report").hidden = false;
  $("report").href = `/api/records/${key}/report.pdf`;
  $("title").textContent = view.record.name;
  if (t !== null) view.t0 = t;
  showReview();
  layout();
}

// ---------- the review state: header, list, editor ----------

function review() { return view.record.review; }

function showReview() {
  const r = review();
  $("burden").textContent = `AF burden ${pct(r.af_burden)} (${Math.round(r.af_seconds)} s)`;
  $("status").textContent = r.signed_off
    ? `signed off by ${r.signed_off.by} at ${r.signed_off.at}` : r.status;
  const body = $("episodes").tBodies[0];
  body.replaceChildren(...r.episodes.map((e) => {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    tr.className = e.id === view.selected ? "selected" : "";
    const hr = meanRate(e.start_s, e.end_s);
    const cells = [e.id, clock(e.start_s), duration(e.end_s - e.start_s),
      hr === null ? "" : String(Math.round(hr)), LABELS[e.label] || e.label, e.status,
      e.reviewed_by || ""];
    cells.forEach((c, i) => {
      const td = tr.insertCell();
      td.textContent = c;
      if (i === 5) td.className = `status status-${e.status}`;
    });
    tr.onclick = () => selectEpisode(e.id, true);
    return tr;
  }));
  if (!r.episodes.length) {
    const td = body.insertRow().insertCell();
    td.colSpan = 7; td.className = "hint"; td.textContent = "no AF episode detected or added";
  }
  showEditor();
}

// Mean heart rate over [a, b) seconds from the per-minute rates (weighted by overlap), or null.
function meanRate(a, b) {
  if (!view.rate) return null;
  const { bin_s: bin, bpm } = view.rate;
  let sum = 0, weight = 0;
  for (let i = Math.floor(a / bin); i < Math.min(bpm.length, Math.ceil(b / bin)); i++) {
    const w = Math.min(b, (i + 1) * bin) - Math.max(a, i * bin);
    if (bpm[i] !== null && w > 0) { sum += bpm[i] * w; weight += w; }
  }
  return weight ? sum / weight : null;
}

function episode(id) { return review().episodes.find((e) => e.id === id); }

function selectEpisode(id, go) {
  view.selected = id;
  const e = episode(id);
  showReview();
  if (go && e) goTo(e.start_s - 2);
}

function showEditor() {
  const e = view.selected && episode(view.selected);
  $("editor").hidden = !e;
  if (!e) return;
  $("edit-id").textContent = e.id;
  $("edit-origin").textContent = e.original ? `algorithm: ${hms(e.original.start_s, 1)} to ${
    hms(e.original.end_s, 1)}` : "added by a reviewer";
  $("edit-label").value = e.label;
  $("edit-start").value = hms(e.start_s, 1);
  $("edit-end").value = hms(e.end_s, 1);
  $("edit-note").value = e.note;
  $("edit-who").textContent = e.reviewed_by ? `${e.status} by ${e.reviewed_by} at ${e.reviewed_at}`
    : "not reviewed yet";
}

function reviewer() {
  const name = $("reviewer").value.trim();
  if (!name) { say("enter your name as reviewer first", true); $("reviewer").focus(); }
  return name;
}

async function change(body) {
  const name = reviewer();
  if (!name) return false;
  try {
    const out = await api(`/api/records/${view.key}/changes`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ reviewer: name, ...body }),
    });
    view.record.review = out.review;
    say(`saved: ${body.action}${body.episode ? " " + body.episode : ""}`);
    showReview(); drawOverview(); drawTrace();
    return true;
  } catch (err) { say(err.message, true); return false; }
}

function timeField(id) {
  const t = parseTime($(id).value);
  if (Number.isNaN(t)) { say(`${$(id).value || "empty"}: not a time (h:mm:ss or seconds)`, true); }
  return t;
}

function editorAction(action) {
  const body = { action, episode: view.selected };
  if (action === "relabel") body.label = $("edit-label").value;
  if (action === "note") body.note = $("edit-note").value;
  if (action === "bounds") {
    body.start_s = timeField("edit-start"); body.end_s = timeField("edit-end");
    if (Number.isNaN(body.start_s) || Number.isNaN(body.end_s)) return;
  }
  change(body);
}

async function addEpisode(event) {
  event.preventDefault();
  const start = timeField("add-start"), end = timeField("add-end");
  if (Number.isNaN(start) || Number.isNaN(end)) return;
  const before = new Set(review().episodes.map((e) => e.id));
  if (await change({ action: "add", start_s: start, end_s: end, label: $("add-label").value,
    note: $("add-note").value })) {
    const added = review().episodes.find((e) => !before.has(e.id));
    $("add-start").value = $("add-end").value = $("add-note").value = "";
    if (added) selectEpisode(added.id, false);
  }
}

async function exportReview() {
  say("exporting…");
  try {
    const out = await api(`/api/records/${view.key}/export`, { method: "POST" });
    say(`exported ${out.files.annotations}, ${out.files.csv} and ${out.files.report}`);
  } catch (err) { say(err.message, true); }
}

// The PDF report as it stands, fetched so that an error shows here instead of being saved
// as the file.
async function downloadReport(event) {
  event.preventDefault();
  const key = view.key, link = event.currentTarget;
  say("making the PDF report…");
  try {
    const response = await fetch(link.href);
    if (!response.ok) {
      const body = await response.json().catch(() => ({ error: response.statusText }));
      throw new Error(body.error || response.statusText);
    }
    const url = URL.createObjectURL(await response.blob());
    const save = document.createElement("a");
    save.href = url;
    save.download = `${key}.reviewed.pdf`;
    save.click();
    setTimeout(() => URL.revokeObjectURL(url), 60000);
    say(`downloaded the PDF report of ${key}`);
  } catch (err) { say(err.message, true); }
}

// ---------- geometry of the trace ----------

function pxPerMm() { return Number($("pxmm").value) || 96 / 25.4; }
function rows() { return Number($("rows").value); }
function traceWidth() { return $("trace").clientWidth; }
function rowSeconds() { return traceWidth() / (pxPerMm() * PAPER_MM_PER_S); }
function pageSeconds() { return rows() * rowSeconds(); }

function goTo(t) {
  const rec = view.record;
  view.t0 = Math.max(0, Math.min(t, rec.duration_s - Math.min(pageSeconds(), rec.duration_s)));
  remember();
  drawOverview(); drawTrace();
}

function layout() {
  const trace = $("trace");
  trace.style.height = `${Math.round(rows() * ROW_MM * pxPerMm())}px`;
  goTo(view.t0);
}

function sizeCanvas(canvas) {  // device pixels for sharp lines; drawing in CSS pixels
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return [ctx, w, h];
}

// ---------- the overview ----------

const LANES = { p: [6, 56], hr: [68, 40], algorithm: [114, 14], review: [132, 14],
  reference: [150, 14] };
const AXIS_Y = 176;
const OVERVIEW_LEFT = 80, OVERVIEW_RIGHT = 10;  // margins of the time axis, px

function overviewTime(clientX) {  // recording time under a point of the overview
  const rect = $("overview").getBoundingClientRect();
  return ((clientX - rect.left - OVERVIEW_LEFT) / (rect.width - OVERVIEW_LEFT - OVERVIEW_RIGHT))
    * view.record.duration_s;
}

function drawOverview() {
  const rec = view.record;
  if (!rec) return;
  const canvas = $("overview");
  const [ctx, w, h] = sizeCanvas(canvas);
  const left = OVERVIEW_LEFT, span = w - left - OVERVIEW_RIGHT;
  const x = (t) => left + (t / rec.duration_s) * span;
  ctx.clearRect(0, 0, w, h);
  ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "middle"; ctx.fillStyle = "#444";
  const [py, ph] = LANES.p;
  ctx.fillText("P(AF)", 4, py + ph / 2);
  ctx.strokeStyle = "#ddd"; ctx.strokeRect(left, py, span, ph);
  const win = rec.windows;
  ctx.beginPath(); ctx.strokeStyle = "#c62828"; ctx.lineWidth = 1;
  win.p_af.forEach((p, i) => {
    const t = (win.start_s[i] + win.end_s[i]) / 2;
    const yy = py + ph * (1 - p);
    if (i) ctx.lineTo(x(t), yy); else ctx.moveTo(x(t), yy);
  });
  ctx.stroke();
  rateLane(ctx, x);
  lane(ctx, "algorithm", "Algorithm", rec.algorithm_episodes.map((e) => [e.start_s, e.end_s, e.label]), x);
  lane(ctx, "review", "Reviewed", review().reviewed_episodes.map((e) => [e.start_s, e.end_s, e.label]), x);
  if (rec.reference) {
    lane(ctx, "reference", "Reference", rec.reference.map((r) => [r.start_s, r.end_s,
      r.rhythm === "(AFIB" ? "A" : r.rhythm === "(N" ? "N" : "O", r.rhythm]), x);
  }
  axis(ctx, x, rec.duration_s, AXIS_Y);
  ctx.fillStyle = "rgba(21, 101, 192, 0.25)";  // the page the trace shows
  ctx.fillRect(x(view.t0), 2, Math.max(2, x(view.t0 + pageSeconds()) - x(view.t0)), AXIS_Y - 8);
}

function rateLane(ctx, x) {  // heart rate per minute, on its own range
  const [y, h] = LANES.hr;
  ctx.fillStyle = "#444"; ctx.fillText("HR", 4, y + h / 2);
  ctx.strokeStyle = "#ddd"; ctx.strokeRect(x(0), y, x(view.record.duration_s) - x(0), h);
  if (!view.rate) { ctx.fillText("heart rate: computing...", x(0) + 4, y + h / 2); return; }
  const { bin_s: bin, bpm } = view.rate, known = bpm.filter((v) => v !== null);
  if (!known.length) return;
  const lo = Math.min(...known), hi = Math.max(lo + 20, Math.max(...known));
  ctx.beginPath(); ctx.strokeStyle = "#1565c0";
  let drawing = false;
  bpm.forEach((v, i) => {
    if (v === null) { drawing = false; return; }
    const yy = y + h * (1 - (v - lo) / (hi - lo));
    const t = Math.min((i + 0.5) * bin, view.record.duration_s);  // the last bin may be short
    if (drawing) ctx.lineTo(x(t), yy); else ctx.moveTo(x(t), yy);
    drawing = true;
  });
  ctx.stroke();
  ctx.fillStyle = "#1565c0";
  ctx.fillText(`${Math.round(hi)}`, 50, y + 6); ctx.fillText(`${Math.round(lo)} bpm`, 34, y + h - 6);
}

const LANE_COLOURS = { A: "#c62828", N: "#c8e6c9", O: "#ffe0b2", "~": "#bdbdbd" };

function lane(ctx, name, title, intervals, x) {
  const [y, h] = LANES[name];
  ctx.fillStyle = "#444"; ctx.fillText(title, 4, y + h / 2);
  for (const [a, b, label, text] of intervals) {
    ctx.fillStyle = LANE_COLOURS[label] || "#e0e0e0";
    ctx.fillRect(x(a), y, Math.max(1, x(b) - x(a)), h);
    if (text && x(b) - x(a) > 40 && label !== "A") {
      ctx.fillStyle = "#555"; ctx.fillText(text, x(a) + 2, y + h / 2);
    }
  }
}

function axis(ctx, x, total, y) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200];
  const step = steps.find((s) => total / s <= 10) || 86400;
  ctx.strokeStyle = "#999"; ctx.fillStyle = "#444"; ctx.textBaseline = "top";
  for (let t = 0; t <= total; t += step) {
    ctx.beginPath(); ctx.moveTo(x(t), y - 4); ctx.lineTo(x(t), y); ctx.stroke();
    ctx.fillText(clock(t), x(t) - 20, y + 2);
  }
  ctx.textBaseline = "middle";
}

// ---------- the trace ----------

function chunk(start, stop, columns) {
  const key = `${start}:${stop}:${columns}`;
  let hit = view.cache.get(key);
  if (hit) { view.cache.delete(key); view.cache.set(key, hit); return hit; }  // most recent last
  hit = api(`/api/records/${view.key}/signal?start=${start}&stop=${stop}&columns=${columns}`);
  hit.catch(() => view.cache.delete(key));
  view.cache.set(key, hit);
  while (view.cache.size > CACHE_PAGES) view.cache.delete(view.cache.keys().next().value);
  return hit;
}

function pageRequest(t0) {
  const fs = view.record.fs;
  const rowSamples = Math.max(1, Math.round(rowSeconds() * fs));
  const start = Math.max(0, Math.round(t0 * fs));
  return { start, stop: start + rows() * rowSamples, rowSamples,
    columns: Math.max(1, Math.round(traceWidth())) * rows() };
}

async function drawTrace() {
  const rec = view.record;
  if (!rec) return;
  const serial = ++view.drawSerial;
  const req = pageRequest(view.t0);
  $("trace-time").textContent = `${clock(view.t0)} to ${clock(view.t0 + pageSeconds())}`;
  let data;
  try {
    data = await chunk(req.start, Math.min(req.stop, rec.n_samples), req.columns);
  } catch (err) { say(err.message, true); return; }
  if (serial !== view.drawSerial) return;  // a newer page was asked for meanwhile
  const canvas = $("trace");
  const [ctx, w, h] = sizeCanvas(canvas);
  paper(ctx, w, h);
  const mm = pxPerMm(), rowH = ROW_MM * mm, n = rows(), W = Math.round(traceWidth());
  const yOf = (row, mv) => row * rowH + rowH / 2 - mv * PAPER_MM_PER_MV * mm;
  shadeEpisodes(ctx, req, rowH, W);
  ctx.strokeStyle = "#111"; ctx.lineWidth = 1.1;
  for (let row = 0; row < n; row++) {
    ctx.save();
    ctx.beginPath(); ctx.rect(0, row * rowH, w, rowH); ctx.clip();
    ctx.beginPath();
    if (data.mode === "raw") {
      const from = row * req.rowSamples;
      const to = Math.min(data.values.length, from + req.rowSamples);
      for (let i = from; i < to; i++) {
        const xx = ((i - from) / req.rowSamples) * W;
        const yy = yOf(row, data.values[i]);
        if (i === from) ctx.moveTo(xx, yy); else ctx.lineTo(xx, yy);
      }
    } else {
      const to = Math.min(data.min.length, (row + 1) * W);
      for (let c = row * W; c < to; c++) {
        const xx = c - row * W + 0.5;
        ctx.moveTo(xx, yOf(row, data.max[c])); ctx.lineTo(xx, yOf(row, data.min[c]) + 0.5);
        if (c + 1 < to) ctx.lineTo(xx + 1, yOf(row, data.min[c + 1]));
      }
    }
    ctx.stroke();
    ctx.restore();
    ctx.fillStyle = "#333"; ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "bottom";
    ctx.fillText(clock(req.start / rec.fs + row * req.rowSamples / rec.fs, 1), 4, (row + 1) * rowH - 2);
  }
  annotations(ctx, data.annotations, req, rowH, W);
  if (data.beats) beats(ctx, data.beats, req, rowH, W);
  canvas.dataset.drawn = String(req.start);
  prefetch();
}

function paper(ctx, w, h) {  // the grid, drawn once per size and scale, then copied
  const mm = pxPerMm(), ratio = window.devicePixelRatio || 1, key = `${w}x${h}x${mm}x${ratio}`;
  if (!view.paper || view.paper.key !== key) {
    const canvas = document.createElement("canvas");
    canvas.width = Math.round(w * ratio); canvas.height = Math.round(h * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.fillStyle = "#fff8f6"; g.fillRect(0, 0, w, h);
    for (const [every, colour] of [[1, "#f8d7d2"], [5, "#eba59a"]]) {
      g.strokeStyle = colour; g.lineWidth = every === 1 ? 0.5 : 0.8; g.beginPath();
      for (let x = 0; x <= w; x += every * mm) { g.moveTo(x, 0); g.lineTo(x, h); }
      for (let y = 0; y <= h; y += every * mm) { g.moveTo(0, y); g.lineTo(w, y); }
      g.stroke();
    }
    view.paper = { key, canvas };
  }
  ctx.drawImage(view.paper.canvas, 0, 0, w, h);
}

// Where [a, b) seconds falls on the rows of the page: [row, x0, x1] pieces.
function pieces(a, b, req, W) {
  const fs = view.record.fs, out = [];
  for (let row = 0; row < rows(); row++) {
    const r0 = (req.start + row * req.rowSamples) / fs, r1 = r0 + req.rowSamples / fs;
    const lo = Math.max(a, r0), hi = Math.min(b, r1);
    if (hi > lo) out.push([row, ((lo - r0) / (r1 - r0)) * W, ((hi - r0) / (r1 - r0)) * W]);
  }
  return out;
}

function shadeEpisodes(ctx, req, rowH, W) {
  for (const e of review().episodes) {
    if (e.status === "rejected" || e.label !== "A") continue;
    ctx.fillStyle = e.id === view.selected ? "rgba(198, 40, 40, 0.16)" : "rgba(198, 40, 40, 0.08)";
    for (const [row, x0, x1] of pieces(e.start_s, e.end_s, req, W)) {
      ctx.fillRect(x0, row * rowH + 16, x1 - x0, rowH - 16);
    }
  }
  const sel = view.selected && episode(view.selected);
  if (sel) {  // the selected episode's onset and offset (where they are dragged to)
    ctx.strokeStyle = "#1565c0"; ctx.lineWidth = 2;
    const bounds = { start_s: sel.start_s, end_s: sel.end_s };
    if (view.drag) bounds[view.drag.edge] = view.drag.value;
    for (const t of [bounds.start_s, bounds.end_s]) {
      for (const [row, x0] of pieces(t, t + 1e-6, req, W)) {
        ctx.beginPath(); ctx.moveTo(x0, row * rowH); ctx.lineTo(x0, (row + 1) * rowH); ctx.stroke();
      }
    }
  }
  if (view.cursor !== null) {
    ctx.strokeStyle = "#2e7d32"; ctx.lineWidth = 1;
    for (const [row, x0] of pieces(view.cursor, view.cursor + 1e-6, req, W)) {
      ctx.beginPath(); ctx.moveTo(x0, row * rowH); ctx.lineTo(x0, (row + 1) * rowH); ctx.stroke();
    }
  }
}

function annotations(ctx, marks, req, rowH, W) {
  const fs = view.record.fs;
  ctx.font = "10px system-ui, sans-serif"; ctx.textBaseline = "top";
  for (const a of marks) {
    const t = a.sample / fs;
    for (const [row, x0] of pieces(t, t + 1e-6, req, W)) {
      const rhythm = a.symbol === "+" && a.aux;
      ctx.fillStyle = rhythm ? "#0d47a1" : "#6d4c41";
      ctx.fillText(rhythm ? a.aux : a.symbol, x0 - 3, row * rowH + (rhythm ? 16 : 4));
    }
  }
}

// Detected beats: a mark under each, and each row's mean heart rate at its right end.
function beats(ctx, samples, req, rowH, W) {
  const fs = view.record.fs, perRow = Array.from({ length: rows() }, () => []);
  ctx.fillStyle = "#1565c0";
  for (const s of samples) {
    for (const [row, x0] of pieces(s / fs, s / fs + 1e-6, req, W)) {
      perRow[row].push(s / fs);
      const y = (row + 1) * rowH - 18;
      ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x0 - 3, y + 5); ctx.lineTo(x0 + 3, y + 5);
      ctx.fill();
    }
  }
  ctx.font = "11px system-ui, sans-serif"; ctx.textBaseline = "bottom"; ctx.textAlign = "right";
  perRow.forEach((ts, row) => {
    if (ts.length >= 2) {
      const bpm = (60 * (ts.length - 1)) / (ts[ts.length - 1] - ts[0]);
      ctx.fillText(`${Math.round(bpm)} bpm`, W - 4, (row + 1) * rowH - 2);
    }
  });
  ctx.textAlign = "left";
}

function prefetch() {  // the next and previous pages, so that a page turn draws at once
  const rec = view.record, page = pageSeconds();
  for (const t of [view.t0 + page, view.t0 - page]) {
    if (t < 0 || t >= rec.duration_s) continue;
    const req = pageRequest(t);
    chunk(req.start, Math.min(req.stop, rec.n_samples), req.columns).catch(() => {});
  }
}

function traceTime(event) {  // the recording time under the mouse on the trace
  const rect = $("trace").getBoundingClientRect();
  const req = pageRequest(view.t0);
  const row = Math.min(rows() - 1, Math.floor((event.clientY - rect.top) / (ROW_MM * pxPerMm())));
  return (req.start + row * req.rowSamples) / view.record.fs
    + ((event.clientX - rect.left) / rect.width) * rowSeconds();
}

// The selected episode's onset or offset under the mouse ("start_s", "end_s"), or null.
function edgeAt(event) {
  const e = view.selected && episode(view.selected);
  if (!e) return null;
  const t = traceTime(event), tolerance = 6 / (pxPerMm() * PAPER_MM_PER_S);  // 6 px
  if (Math.abs(t - e.start_s) <= tolerance) return "start_s";
  if (Math.abs(t - e.end_s) <= tolerance) return "end_s";
  return null;
}

function dragStart(event) {
  const edge = edgeAt(event);
  if (!edge) return;
  view.drag = { edge, value: episode(view.selected)[edge], moved: false };
  event.preventDefault();
}

function dragMove(event) {
  const trace = $("trace");
  if (!view.drag) { trace.style.cursor = edgeAt(event) ? "ew-resize" : "crosshair"; return; }
  view.drag.value = Math.max(0, Math.min(view.record.duration_s, traceTime(event)));
  view.drag.moved = true;
  $(view.drag.edge === "start_s" ? "edit-start" : "edit-end").value = hms(view.drag.value, 1);
  drawTrace();
}

async function dragEnd() {
  const drag = view.drag;
  if (!drag) return;
  view.drag = null;
  if (drag.moved) {
    view.dragged = true;  // the click that ends a drag does not move the cursor
    if (!(await change({ action: "bounds", episode: view.selected, [drag.edge]: drag.value }))) {
      showEditor(); drawTrace();
    }
  }
}

// ---------- episodes in order, keys ----------

function stepEpisode(direction) {
  const list = review().episodes;
  if (!list.length) return;
  const now = view.t0 + 2;
  const next = direction > 0 ? list.find((e) => e.start_s > now + 0.01)
    : [...list].reverse().find((e) => e.start_s < now - 0.01);
  if (next) selectEpisode(next.id, true);
}

function onKey(event) {
  if (!view.record || $("record-view").hidden) return;
  if (event.target.closest && event.target.closest("input, select, textarea")) return;
  const page = pageSeconds(), row = rowSeconds();
  const moves = { ArrowRight: row / 2, ArrowLeft: -row / 2, ArrowDown: row, ArrowUp: -row,
    PageDown: page, PageUp: -page, " ": page };
  if (event.key in moves) goTo(view.t0 + moves[event.key]);
  else if (event.key === "Home") goTo(0);
  else if (event.key === "End") goTo(view.record.duration_s);
  else if (event.key === "n") stepEpisode(1);
  else if (event.key === "p") stepEpisode(-1);
  else return;
  event.preventDefault();
}

// ---------- wiring ----------

function init() {
  for (const id of ["edit-label", "add-label"]) {
    $(id).replaceChildren(...Object.entries(LABELS).map(([value, text]) => {
      const o = document.createElement("option"); o.value = value; o.textContent = `${value} (${text})`;
      return o;
    }));
  }
  $("add-label").value = "A";
  $("reviewer").value = localStorage.getItem("afdetect-reviewer") || "";
  $("reviewer").onchange = () => localStorage.setItem("afdetect-reviewer", $("reviewer").value.trim());
  $("pxmm").value = localStorage.getItem("afdetect-pxmm") || (96 / 25.4).toFixed(2);
  $("pxmm").onchange = () => { localStorage.setItem("afdetect-pxmm", $("pxmm").value); view.cache.clear(); layout(); };
  $("rows").onchange = () => { view.cache.clear(); layout(); };
  $("prev-page").onclick = () => goTo(view.t0 - pageSeconds());
  $("next-page").onclick = () => goTo(view.t0 + pageSeconds());
  $("prev-episode").onclick = () => stepEpisode(-1);
  $("next-episode").onclick = () => stepEpisode(1);
  for (const b of document.querySelectorAll("#editor [data-action]")) {
    b.onclick = () => editorAction(b.dataset.action);
  }
  for (const b of document.querySelectorAll(".from-cursor")) {
    b.onclick = () => {
      if (view.cursor === null) say("click the trace to set the cursor first", true);
      else $(b.dataset.target).value = hms(view.cursor, 1);
    };
  }
  $("add-form").onsubmit = addEpisode;
  $("signoff").onclick = () => change({ action: "signoff" });
  $("export").onclick = exportReview;
  $("report").onclick = downloadReport;
  $("overview").onclick = (event) => {
    goTo(overviewTime(event.clientX) - pageSeconds() / 2);
    $("trace").focus();
  };
  $("trace").addEventListener("mousedown", dragStart);
  $("trace").addEventListener("mousemove", dragMove);
  window.addEventListener("mouseup", dragEnd);
  $("trace").onclick = (event) => {
    if (view.dragged) { view.dragged = false; return; }
    view.cursor = Math.max(0, Math.min(view.record.duration_s, traceTime(event)));
    $("cursor").textContent = `${hms(view.cursor, 2)} (${clock(view.cursor, 2)})`;
    drawTrace();
  };
  document.addEventListener("keydown", onKey);
  let resize = null;
  window.addEventListener("resize", () => {
    clearTimeout(resize);
    resize = setTimeout(() => { if (view.record) { view.cache.clear(); layout(); } }, 150);
  });
  window.addEventListener("hashchange", route);
  route();
}

init();
