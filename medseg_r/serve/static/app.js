/* MedSeg-R serve: the page's state and its calls to the server (see medseg_r/serve/app.py). */
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  session: null, info: null, caseInfo: null, result: null, z: 0, window: "auto",
  prompts: {box: null, points: []}, history: [], parseSeq: 0, parseTimer: null,
};
const WINDOW_NAMES = {auto: "auto (percentiles)", lung: "lung", soft_tissue: "soft tissue", bone: "bone"};

// ------------------------------------------------------------------ server calls and messages
async function call(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const message = (body && body.error) || `HTTP ${response.status}`;
    throw Object.assign(new Error(message), {status: response.status});
  }
  return body;
}
const api = (path) => `/api/session/${state.session}/${path}`;
const post = (path, body) => call(path, {method: "POST", headers: {"Content-Type": "application/json"},
                                         body: JSON.stringify(body || {})});

function showError(message) { $("error-text").textContent = message; $("error").classList.remove("hidden"); }
function clearError() { $("error").classList.add("hidden"); }
function setStatus(text, busy = false) {
  $("status").textContent = text;
  document.body.dataset.state = busy ? "segmenting" : "idle";
}
async function guarded(action) {
  try { clearError(); return await action(); } catch (error) { showError(error.message); setStatus("");
                                                               return null; }
}

// ------------------------------------------------------------------ input
async function loadExample(name) {
  await guarded(async () => {
    setStatus("loading example…");
    showCase(await post(api(`example/${name}`)));
  });
}

async function upload(file) {
  const limit = state.info.max_upload_mb * 1024 * 1024;
  if (file.size > limit) {
    showError(`${file.name} is ${(file.size / 1048576).toFixed(1)} MB: larger than the server's limit of ` +
              `${state.info.max_upload_mb} MB (medseg-r serve --max-upload-mb)`);
    return;
  }
  await guarded(async () => {
    setStatus(`uploading ${file.name}…`);
    showCase(await call(api(`upload?name=${encodeURIComponent(file.name)}`), {method: "POST", body: file}));
  });
}

function showCase(info) {
  state.caseInfo = info; state.result = null; state.prompts = {box: null, points: []}; state.history = [];
  $("viewer").dataset.rev = 0;  // the server counts segmentations per case
  const volume = info.kind === "volume";
  document.body.classList.toggle("volume", volume);
  state.z = volume ? Math.floor(info.slices / 2) : 0;
  state.window = info.window;
  const spacing = info.spacing_mm ? `, ${info.spacing_mm[1]} x ${info.spacing_mm[0]} mm pixels` : "";
  $("case-info").textContent = `${info.name}: ${info.format}, ${info.width} x ${info.height}` +
    (volume ? ` x ${info.slices} slices (${info.slice_mm} mm)` : "") + spacing;
  $("slice-row").classList.toggle("hidden", !volume);
  $("slice").max = info.slices - 1; $("slice").value = state.z;
  $("window").classList.toggle("hidden", !volume);
  $("window").value = state.window;
  for (const b of document.querySelectorAll(".tool, #undo, #clear")) b.disabled = volume;
  if (info.example_report && !$("report").value.trim()) { $("report").value = info.example_report; parseSoon(0); }
  $("placeholder").classList.add("hidden");
  $("viewer").style.maxWidth = `calc(78vh * ${info.width / info.height})`;  // tall images fit the screen
  $("segment").disabled = false;
  prompts.setImage(info.width, info.height);
  prompts.enabled = !volume;
  prompts.setPrompts(state.prompts);
  showResult(null);
  refreshPicture();
  setStatus("ready");
}

function refreshPicture() {
  if (!state.caseInfo) return;
  refreshBase();
  refreshLayers();
}

function refreshBase() {
  $("base").src = api(`image.png?z=${state.z}&window=${state.window}&t=${Date.now()}`);
  const info = state.caseInfo;
  if (info.kind === "volume") {
    const frac = info.slices > 1 ? state.z / (info.slices - 1) : 0;
    $("slice-label").textContent = `z = ${state.z} of ${info.slices - 1} (${Math.round(frac * 100)} % from the ` +
      `caudal end)`;
  }
}

/** Load the mask and attention layers of the current result; resolves when both are shown. */
function refreshLayers() {
  const r = state.result;
  const layers = [["mask-layer", "mask", true], ["attention-layer", "attention", r && r.has_attention]];
  const loads = [];
  for (const [id, what, available] of layers) {
    const img = $(id);
    if (!r || !available) { img.removeAttribute("src"); continue; }
    loads.push(new Promise((resolve) => { img.onload = img.onerror = resolve; }));
    img.src = api(`layer/${what}.png?z=${state.z}&rev=${r.rev}`);
  }
  showLayers();
  return Promise.all(loads);
}

function showLayers() {
  $("mask-layer").classList.toggle("hidden", !$("show-mask").checked);
  $("attention-layer").classList.toggle("hidden", !$("show-attention").checked);
}

// ------------------------------------------------------------------ report
function parseSoon(delay = 300) {
  clearTimeout(state.parseTimer);
  state.parseTimer = setTimeout(parseNow, delay);
}

async function parseNow() {
  const seq = ++state.parseSeq;
  const text = $("report").value;
  try {
    const view = await post("/api/parse", {report: text});
    if (seq === state.parseSeq) showParsed(view);  // a later keystroke wins
  } catch (error) { if (seq === state.parseSeq) showError(error.message); }
}

function cell(row, text, className) {
  const td = row.insertCell(); td.textContent = text == null || text === "" ? "–" : text;
  if (className) td.className = className;
  return td;
}

function showParsed(view) {
  const box = $("report-view"); box.textContent = "";
  for (const piece of view.pieces) {
    const span = document.createElement("span");
    span.textContent = piece.text;
    if (piece.kind) {
      span.className = `ev-${piece.kind}` + (piece.negated ? " negated" : "") + (piece.uncertain ? " uncertain" : "");
      span.title = `${piece.kind} evidence of finding ${piece.finding + 1}` + (piece.negated ? " (negated)" : "");
    }
    box.appendChild(span);
  }
  const body = $("parsed").tBodies[0]; body.textContent = "";
  for (const f of view.findings) {
    const row = body.insertRow();
    if (f.negated || f.artefact) row.className = "negated-row";
    cell(row, f.index + 1); cell(row, f.target); cell(row, f.side); cell(row, f.zones.join(", "));
    cell(row, [f.organ, f.segment, f.image_region && `image ${f.image_region}`].filter(Boolean).join(" / "));
    cell(row, f.texture.join(", ")); cell(row, f.shape.join(", "));
    cell(row, [f.size_mm && `${f.size_mm} mm`, f.size_class].filter(Boolean).join(" "));
    cell(row, f.negated ? "negated" : f.artefact ? "artefact" : f.uncertain ? "uncertain" : "");
  }
  if (!view.findings.length) { const row = body.insertRow(); cell(row, "no finding parsed").colSpan = 9; }
}

// ------------------------------------------------------------------ prompts
function changePrompts(change) {
  state.history.push(JSON.parse(JSON.stringify(state.prompts)));
  change(state.prompts);
  prompts.setPrompts(state.prompts);
  if ($("auto").checked && state.result) segment();
}
function undo() {
  if (!state.history.length) return;
  state.prompts = state.history.pop();
  prompts.setPrompts(state.prompts);
  if ($("auto").checked && state.result) segment();
}

// ------------------------------------------------------------------ segmentation and results
async function segment() {
  if (!state.caseInfo || document.body.dataset.state === "segmenting") return;
  const started = performance.now();
  setStatus("segmenting…", true);
  $("segment").disabled = true;
  const body = {report: $("report").value, box: state.prompts.box, points: state.prompts.points,
                window: state.window};
  const view = await guarded(() => post(api("segment"), body));
  $("segment").disabled = false;
  if (!view) { document.body.dataset.state = "idle"; return; }
  state.result = view;
  if (view.kind === "volume") { state.z = view.show_slice; $("slice").value = state.z; refreshBase(); }
  await refreshLayers();
  const t = view.timing, roundTrip = (performance.now() - started) / 1000;
  window.medsegTiming = {roundTrip, ...t};
  $("timing").textContent = `${roundTrip.toFixed(2)} s on this page: model ${t.model_seconds.toFixed(2)} s, ` +
    `server ${t.server_seconds.toFixed(2)} s, queue ${t.queue_seconds.toFixed(2)} s; ` +
    (t.encoder_runs ? `encoder run (${t.prefix_cache_hits ? "prefix from cache" : "new image"})`
                    : "encoder result reused (prompt change)");
  showResult(view);
  $("viewer").dataset.rev = view.rev;
  setStatus(`done (rev ${view.rev})`);
}

function size(row) {
  if (row.volume_ml != null) return `${row.volume_ml} ml`;
  if (row.voxels != null) return `${row.voxels} vox`;
  if (row.area_mm2 != null) return `${row.area_mm2} mm²`;
  return `${row.area_px} px`;
}

function showResult(view) {
  const body = $("findings").tBodies[0]; body.textContent = "";
  for (const id of ["mask", "json", "overlay", "sheet"]) {
    const a = $(`download-${id}`);
    const ok = view && view.downloads.includes(id);
    a.classList.toggle("disabled", !ok);
    if (id === "sheet") a.classList.toggle("hidden", !ok);
    a.href = ok ? api(`download/${id}?rev=${view.rev}`) : "#";
  }
  if (!view) { $("totals").textContent = ""; return; }
  for (const f of view.findings) {
    const row = body.insertRow();
    cell(row, f.index + 1); cell(row, f.target); cell(row, f.side); cell(row, f.zones.join(", "));
    cell(row, [f.organ, f.segment].filter(Boolean).join(" / ")); cell(row, size(f));
    cell(row, f.diameter && `${f.diameter.value} ${f.diameter.unit}`);
    cell(row, f.reported_size_mm && `${f.reported_size_mm} mm`);
    cell(row, f.mean_probability == null ? null : f.mean_probability.toFixed(2));
    const z = cell(row, f.z_range && (f.z_range[1] < 0 ? "none" : `z ${f.z_range[0]}–${f.z_range[1]}`),
                   "volume-only");
    if (f.z_range && f.z_range[1] >= 0) { z.style.cursor = "pointer"; z.title = "show this range";
      z.onclick = () => { state.z = Math.round((f.z_range[0] + f.z_range[1]) / 2); $("slice").value = state.z;
                          refreshPicture(); }; }
  }
  const c = view.confidence, total = view.total;
  const parts = [`mask: ${size(total)}, ${total.components} component(s)`];
  if (c.mean_probability_inside != null) parts.push(`mean probability inside ${c.mean_probability_inside.toFixed(2)}`);
  if (c.predicted_iou != null) parts.push(`predicted IoU ${c.predicted_iou.toFixed(2)}`);
  if (view.unassigned.components) parts.push(`${view.unassigned.components} component(s) no finding covers`);
  if (view.slices) parts.push(`${view.slices.described} of ${view.slices.total} slices described, ` +
                              `${view.slices.with_mask} with mask`);
  if (view.rule) parts.push(view.rule);
  $("totals").textContent = parts.join(" · ");
}

// ------------------------------------------------------------------ start
const prompts = new PromptCanvas($("prompts"), (p) => changePrompts((s) => {
  if (p.box) s.box = p.box; else s.points.push(p.point);
}));

function selectTool(tool) {
  prompts.tool = tool;
  for (const b of document.querySelectorAll(".tool")) b.classList.toggle("active", b.dataset.tool === tool);
}

async function start() {
  const info = await guarded(() => post("/api/session"));
  if (!info) return;
  state.session = info.session; state.info = info;
  const m = info.model;
  $("model-info").textContent = `${m.backbone}` + (m.checkpoint ? ` · ${m.checkpoint}` : "") +
    (m.trained_priors ? "" : " · untrained report modules (masks of the plain backbone)");
  $("upload-limit").textContent = `up to ${info.max_upload_mb} MB`;
  for (const e of info.examples) {
    const b = document.createElement("button");
    b.textContent = e.title; b.dataset.example = e.name; b.onclick = () => loadExample(e.name);
    $("examples").appendChild(b);
  }
  for (const [name, label] of Object.entries(WINDOW_NAMES)) $("window").add(new Option(label, name));
  window.addEventListener("pagehide", () => navigator.sendBeacon(api("end")));
  setInterval(() => post(api("ping")).catch((e) => showError(e.message)), 5 * 60 * 1000);
  setStatus("ready");
}

$("file").onchange = (e) => { if (e.target.files[0]) upload(e.target.files[0]); e.target.value = ""; };
$("report").addEventListener("input", () => parseSoon());
$("segment").onclick = segment;
$("undo").onclick = undo;
$("clear").onclick = () => changePrompts((s) => { s.box = null; s.points = []; });
$("error-close").onclick = clearError;
$("show-mask").onchange = showLayers;
$("show-attention").onchange = showLayers;
$("slice").oninput = (e) => { state.z = Number(e.target.value); refreshPicture(); };
$("window").onchange = (e) => { state.window = e.target.value; refreshPicture(); };
for (const b of document.querySelectorAll(".tool")) b.onclick = () => selectTool(b.dataset.tool);
selectTool("box");
start();
