/* MedSeg-R serve: the page's state and its calls to the server (see medseg_r/serve/app.py). */
"use strict";

const $ = (id) => document.getElementById(id);
const state = {
  session: null,
  info: null,
  caseInfo: null,
  result: null,
  z: 0,
  window: "auto",
  prompts: { box: null, points: [] },
  history: [],
  parseSeq: 0,
  parseTimer: null,
  again: false,
  segmenting: false,
  autoReport: null, // the example report the page filled in (replaced by the next example's)
};
const WINDOW_NAMES = {
  auto: "auto (percentiles)",
  lung: "lung",
  soft_tissue: "soft tissue",
  bone: "bone",
};

// ------------------------------------------------------------------ server calls and messages
async function call(path, options = {}) {
  const response = await fetch(path, options);
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const message = (body && body.error) || `HTTP ${response.status}`;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return body;
}
const api = (path) => `/api/session/${state.session}/${path}`;
const post = (path, body) =>
  call(path, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body || {}),
  });

function showError(message) {
  $("error-text").textContent = message;
  $("error").classList.remove("hidden");
}
function clearError() {
  $("error").classList.add("hidden");
}
function setStatus(text) {
  $("status").textContent = text;
  document.body.dataset.state = state.segmenting ? "segmenting" : "idle";
}
async function guarded(action) {
  try {
    clearError();
    return await action();
  } catch (error) {
    showError(error.message);
    // a failed call leaves what was there: a running segmentation runs on, a loaded case stays
    setStatus(state.segmenting ? "segmenting…" : state.caseInfo ? "ready" : "");
    return null;
  }
}
function hasSession() {
  if (state.info) return true;
  showError("the page has no session with the server (it could not open one): reload the page");
  return false;
}

// ------------------------------------------------------------------ input
async function loadExample(name) {
  if (!hasSession()) return;
  await guarded(async () => {
    setStatus("loading example…");
    showCase(await post(api(`example/${name}`)));
  });
}

async function upload(file) {
  if (!hasSession()) return;
  const limit = state.info.max_upload_mb * 1024 * 1024;
  if (file.size > limit) {
    showError(
      `${file.name} is ${(file.size / 1048576).toFixed(1)} MB: larger than the server's limit of ` +
        `${state.info.max_upload_mb} MB (medseg-r serve --max-upload-mb)`,
    );
    return;
  }
  await guarded(async () => {
    setStatus(`uploading ${file.name}…`);
    showCase(
      await call(api(`upload?name=${encodeURIComponent(file.name)}`), {
        method: "POST",
        body: file,
      }),
    );
  });
}

function showCase(info) {
  state.caseInfo = info;
  state.result = null;
  state.prompts = { box: null, points: [] };
  state.history = [];
  $("viewer").dataset.rev = 0; // the server counts segmentations per case
  $("viewer").classList.remove("empty");
  const volume = info.kind === "volume";
  document.body.classList.toggle("volume", volume);
  state.z = volume ? Math.floor(info.slices / 2) : 0;
  state.window = info.window;
  const spacing = info.spacing_mm
    ? `, ${info.spacing_mm[1]} x ${info.spacing_mm[0]} mm pixels`
    : "";
  const slices = info.slice_mm ? ` x ${info.slices} slices (${info.slice_mm} mm)` : " x 1 slice";
  $("case-info").textContent =
    `${info.name}: ${info.format}, ${info.width} x ${info.height}` +
    (volume ? slices : "") +
    spacing;
  $("slice-row").classList.toggle("hidden", !volume);
  $("slice").max = info.slices - 1;
  $("slice").value = state.z;
  $("window").classList.toggle("hidden", !volume);
  $("window").value = state.window;
  for (const b of document.querySelectorAll(".tool, #undo, #clear")) b.disabled = volume;
  const typed = $("report").value.trim() && $("report").value !== state.autoReport;
  if (info.example_report && !typed) {
    $("report").value = state.autoReport = info.example_report;
    parseSoon(0);
  }
  $("placeholder").classList.add("hidden");
  // tall images fit the screen
  $("viewer").style.maxWidth = `calc(78vh * ${info.width / info.height})`;
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
    $("slice-label").textContent =
      `z = ${state.z} of ${info.slices - 1} (${Math.round(frac * 100)} % from the ` + `caudal end)`;
  }
}

/** Load the mask and attention layers of the current result; resolves when both are shown. */
function refreshLayers() {
  const r = state.result;
  const layers = [
    ["mask-layer", "mask", true],
    ["attention-layer", "attention", r && r.has_attention],
  ];
  const loads = [];
  for (const [id, what, available] of layers) {
    const img = $(id);
    if (!r || !available) {
      img.removeAttribute("src");
      continue;
    }
    loads.push(
      new Promise((resolve) => {
        img.onload = img.onerror = resolve;
      }),
    );
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
    const view = await post("/api/parse", { report: text });
    if (seq === state.parseSeq) showParsed(view); // a later keystroke wins
  } catch (error) {
    if (seq === state.parseSeq) showError(error.message);
  }
}

// ------------------------------------------------------------------ prompts
function changePrompts(change) {
  state.history.push(JSON.parse(JSON.stringify(state.prompts)));
  change(state.prompts);
  prompts.setPrompts(state.prompts);
  segmentAgain();
}
function undo() {
  if (!state.history.length) return;
  state.prompts = state.history.pop();
  prompts.setPrompts(state.prompts);
  segmentAgain();
}
/** After a prompt change: segment again (auto), or, with nothing left to segment (no prompt, no
 * report), take the old mask away rather than show it beside prompts it no longer matches. */
function segmentAgain() {
  if (!$("auto").checked || !state.result) return;
  const nothing = !state.prompts.box && !state.prompts.points.length && !$("report").value.trim();
  if (!nothing) return segment();
  state.result = null;
  refreshLayers();
  showResult(null);
  setStatus("ready");
}

// ------------------------------------------------------------------ segmentation and results
async function segment() {
  if (!state.caseInfo) return;
  if (state.segmenting) {
    state.again = true; // prompts changed meanwhile: segment once more when this one is done
    return;
  }
  const started = performance.now();
  state.segmenting = true;
  setStatus("segmenting…");
  $("segment").disabled = true;
  const body = {
    report: $("report").value,
    box: state.prompts.box,
    points: state.prompts.points,
    window: state.window,
  };
  const view = await guarded(() => post(api("segment"), body));
  state.segmenting = false;
  $("segment").disabled = false;
  if (!view) {
    setStatus(state.caseInfo ? "ready" : "");
    state.again = false;
    return;
  }
  state.result = view;
  if (view.kind === "volume") {
    state.z = view.show_slice;
    $("slice").value = state.z;
    refreshBase();
  }
  await refreshLayers();
  const t = view.timing,
    roundTrip = (performance.now() - started) / 1000;
  window.medsegTiming = { roundTrip, ...t };
  $("timing").textContent =
    `${roundTrip.toFixed(2)} s on this page: model ${t.model_seconds.toFixed(2)} s, ` +
    `server ${t.server_seconds.toFixed(2)} s, queue ${t.queue_seconds.toFixed(2)} s; ` +
    (t.encoder_runs
      ? `encoder run (${t.prefix_cache_hits ? "prefix from cache" : "new image"})`
      : "encoder result reused (prompt change)");
  showResult(view);
  $("viewer").dataset.rev = view.rev;
  setStatus(`done (rev ${view.rev})`);
  if (state.again) {
    state.again = false;
    segment();
  }
}

// ------------------------------------------------------------------ start
const prompts = new PromptCanvas($("prompts"), (p) =>
  changePrompts((s) => {
    if (p.box) s.box = p.box;
    else s.points.push(p.point);
  }),
);

function selectTool(tool) {
  prompts.tool = tool;
  for (const b of document.querySelectorAll(".tool"))
    b.classList.toggle("active", b.dataset.tool === tool);
}

async function start() {
  const info = await guarded(() => post("/api/session"));
  if (!info) return;
  state.session = info.session;
  state.info = info;
  const m = info.model;
  $("model-info").textContent =
    `${m.backbone}` +
    (m.checkpoint ? ` · ${m.checkpoint}` : "") +
    (m.trained_priors ? "" : " · untrained report modules (masks of the plain backbone)");
  const shipped = m.shipped_weights;
  if (shipped) {
    $("notice").textContent = `${shipped.notice}. Trained on ${shipped.trained_on}.`;
    $("notice").classList.remove("hidden");
  }
  $("upload-limit").textContent = `up to ${info.max_upload_mb} MB`;
  for (const e of info.examples) {
    const b = document.createElement("button");
    b.textContent = e.title;
    b.dataset.example = e.name;
    b.onclick = () => loadExample(e.name);
    $("examples").appendChild(b);
  }
  for (const [name, label] of Object.entries(WINDOW_NAMES))
    $("window").add(new Option(label, name));
  window.addEventListener("pagehide", () => navigator.sendBeacon(api("end")));
  // keep the session while the page is open: ping well within the server's --idle-minutes
  const every = Math.min(300, Math.max(10, (info.idle_minutes * 60) / 3)) * 1000;
  setInterval(() => post(api("ping")).catch((e) => showError(e.message)), every);
  setStatus("ready");
}

$("file").onchange = (e) => {
  if (e.target.files[0]) upload(e.target.files[0]);
  e.target.value = "";
};
$("report").addEventListener("input", () => parseSoon());
$("segment").onclick = segment;
$("undo").onclick = undo;
$("clear").onclick = () =>
  changePrompts((s) => {
    s.box = null;
    s.points = [];
  });
$("error-close").onclick = clearError;
$("show-mask").onchange = showLayers;
$("show-attention").onchange = showLayers;
$("slice").oninput = (e) => {
  state.z = Number(e.target.value);
  refreshPicture();
};
$("window").onchange = (e) => {
  state.window = e.target.value;
  refreshPicture();
};
for (const b of document.querySelectorAll(".tool")) b.onclick = () => selectTool(b.dataset.tool);
selectTool("box");
start();
