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
  loading: false, // an example or an upload is on its way
  resultPrompts: null, // the prompts (as JSON) the shown mask was made with
  autoReport: null, // the example report the page filled in (replaced by the next case's)
};
const WINDOW_NAMES = {
  auto: "auto (percentiles)",
  lung: "lung",
  soft_tissue: "soft tissue",
  bone: "bone",
};

// ------------------------------------------------------------------ server calls and messages
// what fetch's own error ("Failed to fetch", "NetworkError when attempting to fetch resource.")
// means here: no answer from the server at all
const NO_ANSWER =
  "no answer from the server: it has stopped (e.g. Ctrl-C in its terminal) or the connection " +
  "dropped; start medseg-r serve again and reload the page";
async function call(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (error) {
    throw Object.assign(new Error(NO_ANSWER), { status: 0 });
  }
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

/** Show a message; ``kind`` names the request it came from: the next success of that kind takes
 * it away (clearError(kind)). */
function showError(message, kind = "") {
  $("error-text").textContent = message;
  $("error").dataset.kind = kind;
  $("error").classList.remove("hidden");
}
/** Take the message away (only one of ``kind`` when given). */
function clearError(kind) {
  if (kind === undefined || $("error").dataset.kind === kind) $("error").classList.add("hidden");
}
function setStatus(text) {
  $("status").textContent = text;
  document.body.dataset.state = state.segmenting ? "segmenting" : "idle";
}
/** While a case loads or a segmentation runs, the controls that would claim the session again
 * wait (the server would answer 409): the examples, the upload and Segment. */
function setBusy() {
  const busy = state.loading || state.segmenting;
  for (const b of document.querySelectorAll("#examples button, #file")) b.disabled = busy;
  $("segment").disabled = busy || !state.caseInfo;
}
async function guarded(action, kind) {
  try {
    clearError();
    return await action();
  } catch (error) {
    // the page sends one such request at a time: a 409 while it is not segmenting is the server
    // still finishing this page's previous one, not a segmentation the user started
    const message =
      error.status === 409 && !state.segmenting
        ? "the server is still busy with this page's last request: try again"
        : error.message;
    showError(message, kind);
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
/** Load a case (an example or an upload): ``request`` sends it; one at a time, not while
 * segmenting. */
async function load(status, request) {
  state.loading = true;
  setBusy();
  await guarded(async () => {
    setStatus(status);
    showCase(await request());
  }, "input");
  state.loading = false;
  setBusy();
}

async function loadExample(name) {
  if (!hasSession() || state.loading || state.segmenting) return;
  await load("loading example…", () => post(api(`example/${name}`)));
}

async function upload(file) {
  if (!hasSession() || state.loading || state.segmenting) return;
  const limit = state.info.max_upload_mb * 1024 * 1024;
  if (file.size > limit) {
    showError(
      `${file.name} is ${(file.size / 1048576).toFixed(1)} MB: larger than the server's limit of ` +
        `${state.info.max_upload_mb} MB (medseg-r serve --max-upload-mb)`,
      "input",
    );
    return;
  }
  await load(`uploading ${file.name}…`, () =>
    call(api(`upload?name=${encodeURIComponent(file.name)}`), { method: "POST", body: file }),
  );
}

function showCase(info) {
  state.caseInfo = info;
  state.result = null;
  state.prompts = { box: null, points: [] };
  state.history = [];
  $("viewer").dataset.rev = 0; // the server counts segmentations per case
  // nothing of the previous case stays: its picture (until this one's has come), its timing
  $("viewer").classList.add("empty");
  $("placeholder").textContent = "loading the picture…";
  $("timing").textContent = "";
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
  // a one-slice volume (a DICOM radiograph, a 2-D NIfTI) is shown and prompted as an image: no
  // slice slider; window presets only for CT values
  const stack = volume && info.slices > 1;
  $("slice-row").classList.toggle("hidden", !stack);
  $("slice").max = info.slices - 1;
  $("slice").value = state.z;
  $("window").classList.toggle("hidden", !(stack || (volume && info.ct)));
  $("window").value = state.window;
  for (const b of document.querySelectorAll(".tool, #undo, #clear")) b.disabled = stack;
  // the report the page filled in for the previous example goes with it; one typed stays
  const typed = $("report").value.trim() && $("report").value !== state.autoReport;
  if (!typed && (info.example_report || state.autoReport)) {
    $("report").value = info.example_report || "";
    state.autoReport = info.example_report;
    parseSoon(0);
  }
  // tall images fit the screen
  $("viewer").style.maxWidth = `calc(78vh * ${info.width / info.height})`;
  prompts.setImage(info.width, info.height);
  prompts.enabled = !stack;
  prompts.setPrompts(state.prompts);
  showResult(null);
  showStale();
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
    if (seq !== state.parseSeq) return; // a later keystroke wins
    showParsed(view);
    clearError("parse");
  } catch (error) {
    if (seq === state.parseSeq) showError(error.message, "parse");
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
 * report), take the old mask away rather than show it beside prompts it no longer matches. A mask
 * kept (auto off) says that it is from other prompts. */
function segmentAgain() {
  if (!state.result) return;
  const nothing = !state.prompts.box && !state.prompts.points.length && !$("report").value.trim();
  if (nothing) {
    state.result = null;
    refreshLayers();
    showResult(null);
    setStatus("ready");
  } else if ($("auto").checked) segment();
  showStale();
}
/** Say when the mask shown was made with other prompts than those drawn (none on its way). */
function showStale() {
  const stale =
    state.result && !state.segmenting && state.resultPrompts !== JSON.stringify(state.prompts);
  $("stale").classList.toggle("hidden", !stale);
}

// ------------------------------------------------------------------ segmentation and results
async function segment() {
  if (!state.caseInfo || state.loading) return;
  if (state.segmenting) {
    state.again = true; // prompts changed meanwhile: segment once more when this one is done
    return;
  }
  const started = performance.now();
  state.segmenting = true;
  setStatus("segmenting…");
  setBusy();
  const body = {
    report: $("report").value,
    box: state.prompts.box,
    points: state.prompts.points,
    window: state.window,
  };
  const sent = JSON.stringify(state.prompts);
  const view = await guarded(() => post(api("segment"), body), "segment");
  if (view) await showSegmentation(view, sent, started);
  state.segmenting = false; // only now: the page's controls wait for the layers of the result
  setBusy();
  if (view) {
    $("viewer").dataset.rev = view.rev;
    setStatus(`done (rev ${view.rev})`);
  } else setStatus(state.caseInfo ? "ready" : "");
  const again = state.again && view;
  state.again = false;
  if (again) segment();
  showStale();
}

async function showSegmentation(view, sent, started) {
  state.result = view;
  state.resultPrompts = sent;
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
    (view.model_not_run
      ? `model not run (${view.model_not_run}: an empty mask)`
      : t.encoder_runs
        ? `encoder run (${t.prefix_cache_hits ? "prefix from cache" : "new image"})`
        : "encoder result reused (prompt change)");
  showResult(view);
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
    $("notice").textContent = `${shipped.notice}.`; // it says on what: the details on hover
    $("notice").title = `trained on ${shipped.trained_on}`;
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
  setInterval(
    () => post(api("ping")).then(() => clearError("ping"), (e) => showError(e.message, "ping")),
    every,
  );
  showResult(null); // the download links greyed out
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
$("error-close").onclick = () => clearError();
$("base").onload = () => {
  $("viewer").classList.remove("empty");
  $("placeholder").classList.add("hidden");
};
$("base").onerror = () => {
  if (state.caseInfo) $("placeholder").textContent = "the picture could not be loaded";
};
// a greyed-out download link does nothing (showResult takes it out of the tab order too)
for (const a of document.querySelectorAll("#downloads a"))
  a.onclick = (e) => {
    if (a.classList.contains("disabled")) e.preventDefault();
  };
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
