// NoizeNet studio: the page's only script. Every string from the server (run, song and file
// names, settings, logs) reaches the page as a text node or an attribute value set through the
// DOM, never as markup: nothing here assigns innerHTML or outerHTML.
"use strict";

const $ = (id) => document.getElementById(id);

// h("p", {class: "x"}, "text", child): an element; strings become text nodes.
function h(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function fileUrl(path) { return "/file?path=" + encodeURIComponent(path); }
function q(params) { return new URLSearchParams(params).toString(); }
function fmt(v) {
  if (v === null || v === undefined) return "-";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(5)));
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

async function api(url, options) {
  let response;
  try {
    response = await fetch(url, options);
  } catch (err) {
    throw new Error("the studio does not answer (is it still running?)");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { body = null; }
  if (!response.ok) {
    throw new Error((body && body.error) || ("HTTP " + response.status));
  }
  return body;
}
function postJson(url, data) {
  return api(url, {method: "POST", headers: {"Content-Type": "application/json"},
                   body: JSON.stringify(data)});
}
function say(id, text, bad) {
  const node = $(id);
  node.textContent = text;
  node.className = bad ? "error" : "";
}

// -- tabs -------------------------------------------------------------------------------------
function showTab(name) {
  for (const b of document.querySelectorAll("nav button")) {
    b.classList.toggle("active", b.dataset.tab === name);
  }
  for (const s of document.querySelectorAll("section.tab")) s.hidden = s.id !== "tab-" + name;
  if (name === "takes") showTakes();
}

// -- runs -------------------------------------------------------------------------------------
let RUNS = [];

function lossSvg(points, width, height) {
  const NS = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("class", "loss");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("role", "img");
  const values = points.flatMap((p) => [p.train_loss, p.val_loss]).filter((v) => v !== null);
  svg.setAttribute("aria-label", "loss per epoch: " + points.length + " epochs");
  if (values.length === 0) return svg;
  const lo = Math.min(...values), hi = Math.max(...values);
  const n = Math.max(points.length - 1, 1);
  const x = (i) => 3 + (i / n) * (width - 6);
  const y = (v) => height - 3 - (hi === lo ? 0.5 : (v - lo) / (hi - lo)) * (height - 6);
  for (const key of ["train_loss", "val_loss"]) {
    const xy = points.map((p, i) => (p[key] === null ? null : x(i) + "," + y(p[key])))
      .filter((s) => s !== null);
    if (xy.length === 0) continue;
    const line = document.createElementNS(NS, xy.length > 1 ? "polyline" : "circle");
    if (xy.length > 1) line.setAttribute("points", xy.join(" "));
    else { const [cx, cy] = xy[0].split(","); line.setAttribute("cx", cx); line.setAttribute("cy", cy); line.setAttribute("r", 2); }
    line.setAttribute("class", key === "train_loss" ? "train" : "val");
    svg.append(line);
  }
  return svg;
}

function statusCell(status) {
  return h("td", {class: "status status-" + String(status).replace(/[^a-z]+/g, "-")}, status);
}

async function loadRuns() {
  let data;
  try { data = await api("/api/runs"); } catch (err) { say("root-line", err.message, true); return; }
  RUNS = data.runs;
  $("root-line").textContent = RUNS.length + " runs below " + data.root;
  const problems = $("runs-problems");
  problems.hidden = data.problems.length === 0;
  problems.textContent = data.problems.join("; ");
  const rows = RUNS.map((r) => h("tr", {"data-run": r.id},
    h("td", {class: "name"}, r.id),
    h("td", {}, [r.model.cell, r.model.hidden && "h" + r.model.hidden,
                 r.model.layers > 1 ? "x" + r.model.layers : null].filter(Boolean).join(" ")),
    h("td", {}, fmt(r.codec)),
    h("td", {}, fmt(r.epochs) + (r.epochs_planned ? " / " + r.epochs_planned : "")),
    h("td", {}, fmt(r.val_loss)),
    statusCell(r.status),
    h("td", {}, r.losses.length ? lossSvg(r.losses, 120, 40)
      : (r.loss_png ? h("img", {class: "loss", src: fileUrl(r.loss_png), alt: "loss curve"}) : "-")),
    h("td", {}, r.created),
    h("td", {}, h("button", {type: "button", class: "use-run"}, "Generate"))));
  $("runs-table").tBodies[0].replaceChildren(...rows);
  for (const b of document.querySelectorAll("button.use-run")) {
    b.addEventListener("click", () => {
      $("gen-run").value = b.closest("tr").dataset.run;
      onGenRun();
      showTab("generate");
    });
  }
  for (const id of ["gen-run", "takes-run", "cmp-a", "cmp-b", "train-run"]) fillRunSelect($(id));
  if (RUNS.length > 1 && $("cmp-b").selectedIndex === 0) $("cmp-b").selectedIndex = 1;
}

function fillRunSelect(select) {
  const keep = select.value;
  select.replaceChildren(...RUNS.map((r) => h("option", {value: r.id}, r.id)));
  if (RUNS.some((r) => r.id === keep)) select.value = keep;
}

// -- generate ---------------------------------------------------------------------------------
let UPLOAD = null;
let genTimer = null;

async function onGenRun() {
  const run = $("gen-run").value;
  if (!run) return;
  let details;
  try { details = await api("/api/run?" + q({run})); } catch (err) { say("gen-status", err.message, true); return; }
  $("gen-checkpoint").replaceChildren(...details.checkpoints.map((c) => h("option", {value: c}, c)));
  $("gen-val").replaceChildren(...details.val_songs.map((s) => h("option", {value: s.index}, s.label)));
  $("gen-takes").replaceChildren();
  pollGeneration(true);
}

async function onUpload() {
  const file = $("gen-file").files[0];
  UPLOAD = null;
  if (!file) return;
  document.querySelector("input[name=seed][value=upload]").checked = true;
  say("gen-upload-status", "uploading " + file.name + " ...");
  try {
    const data = await api("/api/upload?" + q({name: file.name}),
                           {method: "POST", body: file, headers: {"Content-Type": "application/octet-stream"}});
    UPLOAD = data.upload;
    say("gen-upload-status", data.name + ": " + data.seconds + " s, ready");
  } catch (err) {
    say("gen-upload-status", err.message, true);
  }
}

async function onGenerate(event) {
  event.preventDefault();
  const form = $("gen-form");
  const seed = form.querySelector("input[name=seed]:checked").value;
  const body = {
    run: $("gen-run").value, checkpoint: $("gen-checkpoint").value || "last", seed,
    offset: form.offset.value, seed_seconds: form.seed_seconds.value, seconds: form.seconds.value,
    temperature: form.temperature.value, top_p: form.top_p.value,
    variations: form.variations.value, random_seed: form.random_seed.value,
  };
  if (seed === "upload") body.upload = UPLOAD || "";
  if (seed === "val") body.val = Number($("gen-val").value);
  try {
    await postJson("/api/generate", body);
  } catch (err) {
    say("gen-status", err.message, true);
    return;
  }
  say("gen-status", "generating ...");
  pollGeneration(false);
}

async function pollGeneration(quiet) {
  clearTimeout(genTimer);
  const run = $("gen-run").value;
  let job;
  try { job = await api("/api/generate?" + q({run})); } catch (err) { say("gen-status", err.message, true); return; }
  if (job.state === "idle") { if (!quiet) say("gen-status", ""); return; }
  if (job.state === "running") {
    const live = job.rtf === null ? job.live_rtf : job.rtf;
    const rate = live === null ? "" : ", " + live + "x real time";
    const done = job.done_s === null || job.generation_s !== null ? "" : " (" + job.done_s + " s done)";
    say("gen-status", job.phase + ": " + job.audio_s + " s of audio" + done + " ... " +
        job.elapsed_s.toFixed(1) + " s so far" + rate);
    genTimer = setTimeout(() => pollGeneration(false), 400);
    return;
  }
  if (job.state === "error") { say("gen-status", job.error, true); return; }
  say("gen-status", "done: " + job.audio_s + " s of audio generated in " + job.generation_s +
      " s (" + job.rtf + "x real time), views drawn by " + job.elapsed_s + " s");
  const details = await api("/api/run?" + q({run}));
  const made = new Set(job.takes);
  const cards = details.takes.filter((t) => made.has(t.file)).map((t) => takeCard(t, job.settings));
  $("gen-takes").replaceChildren(...cards);
  loadRuns();
}

function takeCard(take, settings) {
  const rows = Object.entries(settings || take.settings || {}).map(([k, v]) => [h("dt", {}, k), h("dd", {}, fmt(v))]);
  return h("div", {class: "card take", "data-file": take.file},
    h("h3", {}, take.name),
    h("audio", {controls: true, preload: "metadata", src: fileUrl(take.file)}),
    take.spectrogram ? h("img", {src: fileUrl(take.spectrogram), alt: "spectrogram of " + take.name, loading: "lazy"}) : null,
    h("dl", {}, rows));
}

// -- takes and comparison ---------------------------------------------------------------------
let TAKES = [];

async function showTakes() {
  const run = $("takes-run").value;
  if (!run) return;
  try { TAKES = (await api("/api/run?" + q({run}))).takes; } catch (err) { TAKES = []; }
  filterTakes();
}

function filterTakes() {
  const text = $("takes-filter").value.toLowerCase();
  const kind = $("takes-kind").value;
  const shown = TAKES.filter((t) => (!kind || t.kind === kind) && t.name.toLowerCase().includes(text));
  $("takes-list").replaceChildren(...(shown.length ? shown.map((t) => takeCard(t)) : [h("p", {class: "muted"}, "no takes")]));
}

function table(header, rows) {
  return h("div", {class: "scroll"}, h("table", {},
    h("thead", {}, h("tr", {}, header.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, fmt(c))))))));
}

async function onCompare() {
  const a = $("cmp-a").value, b = $("cmp-b").value;
  let data;
  try { data = await api("/api/compare?" + q({a, b})); } catch (err) {
    $("cmp-out").replaceChildren(h("p", {class: "error"}, err.message)); return;
  }
  $("cmp-out").replaceChildren(
    h("h3", {}, "Metrics"), table(["metric", data.a, data.b], data.metrics),
    h("h3", {}, "Settings that differ"),
    data.settings.length ? table(["setting", data.a, data.b], data.settings) : h("p", {}, "none"),
    h("div", {class: "columns"},
      h("div", {class: "cmp-side"}, h("h3", {}, data.a), h("div", {class: "cards"}, data.takes_a.map((t) => takeCard(t)))),
      h("div", {class: "cmp-side"}, h("h3", {}, data.b), h("div", {class: "cards"}, data.takes_b.map((t) => takeCard(t))))));
}

// -- training ---------------------------------------------------------------------------------
let trainTimer = null;
let presets = [];
let defaultPreset = "";

async function loadPresets() {
  let data;
  try { data = await api("/api/presets"); } catch (err) { say("train-status", err.message, true); return; }
  presets = data.presets;
  defaultPreset = data.default;
  $("train-preset").options[0].textContent = "train's default (" + defaultPreset + ")";
  $("train-preset").append(...presets.map((p) => h("option", {value: p.name}, p.name)));
  showPresetHelp();
}

function showPresetHelp() {
  const p = presets.find((x) => x.name === ($("train-preset").value || defaultPreset));
  $("train-preset-help").textContent = p ? p.help : "";
}

async function onTrain(event) {
  event.preventDefault();
  const body = Object.fromEntries(new FormData($("train-form")).entries());
  try {
    const data = await postJson("/api/train", body);
    say("train-status", "started " + data.run);
    await loadRuns();
    const select = $("train-run");
    if (![...select.options].some((o) => o.value === data.run)) select.append(h("option", {value: data.run}, data.run));
    select.value = data.run;
    pollTraining();
  } catch (err) {
    say("train-status", err.message, true);
  }
}

async function onStop() {
  try {
    await postJson("/api/train/stop", {run: $("train-run").value});
    say("train-status", "stopping: the run checkpoints at its next step ...");
    pollTraining();
  } catch (err) { say("train-status", err.message, true); }
}

async function onResume() {
  try {
    await postJson("/api/train/resume", {run: $("train-run").value, epochs: $("train-resume-epochs").value});
    say("train-status", "resumed");
    pollTraining();
  } catch (err) { say("train-status", err.message, true); }
}

async function pollTraining() {
  clearTimeout(trainTimer);
  const run = $("train-run").value;
  if (!run) return;
  let data;
  try { data = await api("/api/train?" + q({run})); } catch (err) { say("train-status", err.message, true); return; }
  const log = $("train-log");
  const atEnd = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
  log.textContent = data.log;
  if (atEnd) log.scrollTop = log.scrollHeight;
  const s = data.summary;
  const epochs = s ? " - epoch " + fmt(s.epochs) + (s.epochs_planned ? " of " + s.epochs_planned : "") +
    ", val loss " + fmt(s.val_loss) + ", run status: " + s.status : "";
  $("train-status").textContent = "training job: " + data.state + epochs;
  $("train-status").className = "";
  $("train-status").dataset.state = data.state;
  $("train-status").dataset.runStatus = s ? s.status : "";
  $("train-loss").replaceChildren(s && s.losses.length ? lossSvg(s.losses, 480, 160) : "");
  if (data.state === "running" || data.state === "stopping") {
    trainTimer = setTimeout(pollTraining, 1000);
  } else {
    loadRuns();
  }
}

// -- start ------------------------------------------------------------------------------------
document.addEventListener("DOMContentLoaded", async () => {
  for (const b of document.querySelectorAll("nav button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("runs-refresh").addEventListener("click", loadRuns);
  $("gen-run").addEventListener("change", onGenRun);
  $("gen-file").addEventListener("change", onUpload);
  $("gen-form").addEventListener("submit", onGenerate);
  $("takes-run").addEventListener("change", showTakes);
  $("takes-filter").addEventListener("input", filterTakes);
  $("takes-kind").addEventListener("change", filterTakes);
  $("cmp-go").addEventListener("click", onCompare);
  $("train-form").addEventListener("submit", onTrain);
  $("train-stop").addEventListener("click", onStop);
  $("train-resume").addEventListener("click", onResume);
  $("train-run").addEventListener("change", pollTraining);
  $("train-preset").addEventListener("change", showPresetHelp);
  await Promise.all([loadRuns(), loadPresets()]);
  onGenRun();
  document.body.dataset.ready = "1";
});
