// The ganserve web page: a plain client of the /v1 API (no framework, no build step).

const KEY_STORAGE = "ganserve.apiKey";
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const $ = (id) => document.getElementById(id);

// ---- messages -----------------------------------------------------------------------------
//
// Each view says what it does next to its own form (`<prefix>-status`, `<prefix>-error`): a
// translation's "done" is never shown on another tab. The page-level line (`#notice`) and box
// (`#error`) are for what concerns the whole page: the API key, a service that cannot be reached.

let noticeTimer = null;

// A short page-level notice that goes away by itself.
function notice(text) {
  const line = $("notice");
  line.textContent = text;
  line.hidden = !text;
  clearTimeout(noticeTimer);
  if (text) noticeTimer = setTimeout(() => (line.hidden = true), 4000);
}

function showError(text) {
  const box = $("error");
  box.textContent = text;
  box.hidden = !text;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function errorText(err) {
  return err instanceof ApiError ? `${err.message} (${err.code})` : String(err.message || err);
}

// A page-level failure (loading the catalog, the datasets…): the key prompt for a 401.
function report(err) {
  if (err instanceof ApiError && err.status === 401) {
    askForKey(err.message);
    return;
  }
  showError(errorText(err));
}

// The status line and error box of one part of the page (`<prefix>-status`, `<prefix>-error`,
// next to its form or table), for what that part does: its errors show there, not at the top.
function messagesOf(prefix) {
  const status = () => $(`${prefix}-status`);
  const error = $(`${prefix}-error`);
  return {
    say(text) {
      if (status()) status().textContent = text;
    },
    clear() {
      if (status()) status().textContent = "";
      error.textContent = "";
      error.hidden = true;
    },
    fail(err) {
      if (err instanceof ApiError && err.status === 401) return askForKey(err.message);
      if (status()) status().textContent = "";
      error.textContent = errorText(err);
      error.hidden = false;
    },
  };
}

// ---- API key ------------------------------------------------------------------------------

function apiKey() {
  return localStorage.getItem(KEY_STORAGE) || "";
}

function askForKey(message) {
  showError(message || "This service needs an API key.");
  $("key-form").hidden = false;
  $("api-key").focus();
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const key = $("api-key").value.trim();
  if (!key) return;
  localStorage.setItem(KEY_STORAGE, key);
  $("api-key").value = "";
  $("key-form").hidden = true;
  showError("");
  notice("API key saved.");
  start();
});

$("key-clear").addEventListener("click", () => {
  localStorage.removeItem(KEY_STORAGE);
  notice("API key forgotten.");
});

// ---- HTTP ---------------------------------------------------------------------------------

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The ApiError of a failed response, from its problem-details body (`code`, `detail`) when it
// has one.
async function errorOf(response) {
  let problem = null;
  try {
    problem = await response.json();
  } catch {
    // not JSON
  }
  return new ApiError(
    response.status,
    (problem && problem.code) || `http_${response.status}`,
    (problem && problem.detail) || `The request failed with status ${response.status}.`,
  );
}

// fetch, with a failed request or an error status thrown as an ApiError.
async function send(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "network_error", `The service could not be reached: ${err.message}`);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

async function api(path, { method = "GET", json, form } = {}) {
  const headers = authHeaders();
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form) {
    body = form;
  }
  const response = await send(path, { method, headers, body });
  return response.status === 204 ? null : response.json();
}

// Images may need the API key, which <img src> cannot send: fetch them as blobs.
async function imageUrl(path) {
  const response = await send(path, { headers: authHeaders() });
  return URL.createObjectURL(await response.blob());
}

// ---- jobs ---------------------------------------------------------------------------------

function describe(job) {
  const pct = Math.round((job.progress || 0) * 100);
  let text = `Job ${job.id}: ${job.status} (${pct}%)`;
  const detail = job.progress_detail;
  if (detail && detail.step !== undefined) {
    text += ` — step ${detail.step} of ${detail.total}`;
    if (detail.losses) {
      const losses = Object.entries(detail.losses)
        .map(([name, value]) => `${name} ${Number(value).toFixed(3)}`)
        .join(", ");
      if (losses) text += ` — ${losses}`;
    }
  }
  return text;
}

function jobFailure(job) {
  if (job.status === "cancelled") return new ApiError(0, "cancelled", `Job ${job.id} was cancelled.`);
  const error = job.error || {};
  return new ApiError(0, error.code || "job_failed", error.message || `Job ${job.id} failed.`);
}

// Follow a job until it ends, calling onUpdate at every change: server-sent events from
// /v1/jobs/{id}/events, read with fetch so that the API key goes along (EventSource cannot send
// a header). If the stream breaks before the job ends, long-polling takes over.
async function followJob(id, onUpdate, signal) {
  let last = null;
  try {
    last = await streamJob(id, onUpdate, signal);
  } catch (err) {
    if (err.name === "AbortError" || (err instanceof ApiError && err.status !== 0)) throw err;
  }
  if (last && TERMINAL.has(last.status)) return last;
  return pollJob(id, onUpdate, signal);
}

// Read the job's event stream; returns the last job it announced when the server ends it.
async function streamJob(id, onUpdate, signal) {
  const response = await send(`/v1/jobs/${encodeURIComponent(id)}/events`, {
    headers: { ...authHeaders(), Accept: "text/event-stream" },
    signal,
  });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = "message";
  let data = [];
  let last = null;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return last;
    buffer += value;
    const lines = buffer.split("\n");
    buffer = lines.pop(); // an incomplete line waits for the next chunk
    for (const raw of lines) {
      const line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
      if (line === "") {
        if ((event === "status" || event === "progress") && data.length) {
          last = JSON.parse(data.join("\n"));
          onUpdate(last);
        }
        event = "message";
        data = [];
      } else if (line.startsWith("event:")) {
        event = line.slice(6).trim();
      } else if (line.startsWith("data:")) {
        data.push(line.slice(5).replace(/^ /, ""));
      } // ":" lines are keep-alive comments
    }
  }
}

async function pollJob(id, onUpdate, signal) {
  for (;;) {
    if (signal && signal.aborted) throw new DOMException("stopped following", "AbortError");
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}?wait=10`);
    onUpdate(job);
    if (TERMINAL.has(job.status)) return job;
  }
}

// Follow a job to its end, saying its progress in a view's status line; the finished job, or
// its failure thrown.
async function runJob(job, messages) {
  messages.say(describe(job));
  const done = await followJob(job.id, (update) => messages.say(describe(update)));
  if (done.status !== "succeeded") throw jobFailure(done);
  return done;
}

// ---- tabs ---------------------------------------------------------------------------------

const tabs = [...document.querySelectorAll('[role="tab"]')];

function selectTab(tab) {
  for (const other of tabs) {
    const selected = other === tab;
    other.setAttribute("aria-selected", String(selected));
    other.tabIndex = selected ? 0 : -1;
    $(other.getAttribute("aria-controls")).hidden = !selected;
  }
  tab.focus();
  const view = tab.dataset.view;
  if (view === "models") loadModels();
  if (view === "jobs") loadJobs();
  if (view === "train") loadDatasets();
}

tabs.forEach((tab, index) => {
  tab.tabIndex = index === 0 ? 0 : -1;
  tab.addEventListener("click", () => selectTab(tab));
  tab.addEventListener("keydown", (event) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
    if (step) {
      event.preventDefault();
      selectTab(tabs[(index + step + tabs.length) % tabs.length]);
    } else if (event.key === "Home") {
      event.preventDefault();
      selectTab(tabs[0]);
    } else if (event.key === "End") {
      event.preventDefault();
      selectTab(tabs[tabs.length - 1]);
    }
  });
});

// ---- families -----------------------------------------------------------------------------

// The model families (`GET /v1/families`): what each does, trains on and can do, and the schema
// of its training config. Nothing on this page names a family: it reads them from there.
let families = [];

async function loadFamilies() {
  if (families.length) return;
  families = (await api("/v1/families")).families || [];
  fillFamilySelect();
}

function familyOf(name) {
  return families.find((f) => f.name === name);
}

// Whether a model's family has a capability flag of `/v1/families` (`inspectable`,
// `paired_discriminator`, `filterable`, `projectable`, `exportable`, `conditional`); none for a
// family the server does not list.
function can(m, capability) {
  const family = m && familyOf(m.family);
  return Boolean(family && family[capability]);
}

// ---- models -------------------------------------------------------------------------------

let models = [];

function option(value, text) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = text;
  return element;
}

// Replace a select's options (a placeholder when there are none), keeping `keep` chosen if offered.
function fillSelect(select, options, emptyText, keep = select.value) {
  select.replaceChildren(...options);
  if (!select.options.length) select.append(option("", emptyText));
  if ([...select.options].some((o) => o.value === keep)) select.value = keep;
}

function modelLabel(m) {
  return m.name && m.name !== m.id ? `${m.name} [${m.id}]` : m.id;
}

function modelOption(m) {
  return option(m.id, `${modelLabel(m)} (${m.family})`);
}

let demos = []; // the background (demo) training runs not yet ended

function emptyModelText(task) {
  const training = demos.filter((j) => (familyOf(j.params.family) || {}).task === task);
  if (!training.length) return `No ${task} models`;
  const percent = Math.round(100 * Math.max(...training.map((j) => j.progress || 0)));
  return `No model yet, the demo is training (${percent}%)`;
}

function fillModelSelect(select, task) {
  fillSelect(select, models.filter((m) => m.task === task).map(modelOption), emptyModelText(task));
}

function formatMetrics(metrics) {
  if (!metrics || typeof metrics !== "object") return "";
  return Object.entries(metrics)
    .map(([name, value]) => `${name}: ${typeof value === "number" ? +value.toFixed(4) : JSON.stringify(value)}`)
    .join(", ");
}

// Reload the catalog: the Models table and every model select on the page.
async function loadModels() {
  try {
    const data = await api("/v1/models");
    models = data.models || [];
    fillModelSelect($("translate-model"), "translate");
    fillModelSelect($("sample-model"), "sample");
    fillLatentSelect();
    loadExamples();
    fillInspectSelect();
    updateClassSelect();
    updateSampleFilter();
    fillInitSelect();
    const rows = models.map(modelRow);
    if (!rows.length) {
      const row = document.createElement("tr");
      const cell = document.createElement("td");
      cell.colSpan = 9;
      cell.className = "empty";
      cell.textContent = "No models yet: import one below, or train one.";
      row.append(cell);
      rows.push(row);
    }
    $("models-table").tBodies[0].replaceChildren(...rows);
  } catch (err) {
    report(err);
  }
}

function element(tag, className, text) {
  const made = document.createElement(tag);
  if (className) made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

function actionButton(text, label, onClick) {
  const button = element("button", "", text);
  button.type = "button";
  button.setAttribute("aria-label", label);
  button.addEventListener("click", () => onClick(button));
  return button;
}

// Whether training runs of a family can start from one of its models (`init_from`).
function fineTunable(name) {
  const family = familyOf(name);
  return Boolean(family && family.fine_tunable);
}

// The header of each column of the Models table: on a narrow screen each cell says it.
const MODEL_COLUMNS = ["Model", "Actions", "Family", "Task", "Size", "Classes", "Discriminator", "Metrics", "Created"];

// One row of the Models table: what the model is, and what can be done with it.
function modelRow(m) {
  const row = document.createElement("tr");
  row.dataset.model = m.id;
  const who = element("span", m.shared ? "badge" : "badge own", m.shared ? "shared" : "yours");
  who.title = m.shared ? "Offered to every API key" : "Imported or trained with your key";
  const title = element("div", "model-name");
  title.append(element("strong", "", m.name || m.id), " ", who);
  if (m.version) {
    const version = element("span", "badge version", `v${m.version}`);
    version.title = `Newest version: ${m.ref}, ${m.digest}`;
    title.append(version);
  }
  const cell = element("td", "model-cell");
  cell.append(title);
  const ids = [m.name && m.name !== m.id ? `id: ${m.id}` : "", m.ref ? `ref: ${m.ref}` : ""].filter(Boolean);
  if (ids.length) cell.append(element("div", "muted mono", ids.join(" · ")));
  if (m.description) cell.append(element("div", "description", m.description));
  row.append(cell, modelActions(m)); // next to the name: found at once on a narrow screen
  const size = `${m.image_size}×${m.image_size}×${m.channels}`;
  for (const text of [m.family, m.task, size, m.class_count ? String(m.class_count) : "—",
    m.discriminator ? "yes" : "no", formatMetrics(m.metrics) || "—"]) {
    row.append(element("td", "", text));
  }
  row.append(createdCell(m.created_at));
  [...row.cells].forEach((td, k) => (td.dataset.label = MODEL_COLUMNS[k]));
  return row;
}

// When the model was made: date and minute (UTC) on show, the exact time as its datetime.
function createdCell(created) {
  const cell = element("td");
  if (!created) return cell;
  const time = element("time", "", created.replace(/^(\d{4}-\d\d-\d\d)T(\d\d:\d\d).*$/, "$1 $2 UTC"));
  time.dateTime = created;
  time.title = created;
  cell.append(time);
  return cell;
}

function modelActions(m) {
  const cell = element("td", "actions");
  const list = element("div", "action-list");
  cell.append(list);
  const exports = element("div", "action-group");
  exports.setAttribute("role", "group");
  exports.setAttribute("aria-label", `Export ${m.id}`);
  exports.append(
    element("span", "label", "Export:"),
    actionButton("zip (safetensors)", `Export ${m.id} as zip (safetensors)`, (b) => exportModel(m, "safetensors", b)),
  );
  if (can(m, "exportable")) {
    exports.append(actionButton("ONNX", `Export ${m.id} as ONNX`, (b) => exportModel(m, "onnx", b)));
  }
  const manage = element("div", "action-group");
  manage.append(actionButton("Rename", `Rename or describe ${m.id}`, () => openEdit(m)));
  const remove = actionButton("Delete", `Delete ${m.id}`, (b) => deleteModel(m, b));
  remove.classList.add("danger");
  if (m.shared) remove.title = "A shared model: only an operator key may delete it";
  manage.append(remove);
  list.append(exports, manage);
  if (fineTunable(m.family)) {
    list.append(actionButton("Fine-tune from this model", `Fine-tune from this model (${m.id})`, () => fineTuneFrom(m)));
  }
  return cell;
}

const modelsMessages = messagesOf("models");

// Save a blob as a file, as a download link would.
function saveBlob(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = element("a");
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

function filenameOf(response, fallback) {
  const disposition = response.headers.get("Content-Disposition") || "";
  const utf8 = /filename\*=(?:UTF-8'')?([^;]+)/i.exec(disposition);
  if (utf8) return decodeURIComponent(utf8[1].trim().replace(/^"|"$/g, ""));
  const plain = /filename="?([^";]+)"?/i.exec(disposition);
  return plain ? plain[1] : fallback;
}

// Download a model as a zip of its folder, or its generator as ONNX: the export is created
// (POST .../exports, which waits up to 30 s for an ONNX export job), its job followed if it is
// still running (202), then the file read (GET .../exports/{format}).
async function exportModel(m, format, button) {
  const what = format === "onnx" ? "ONNX" : "zip (safetensors)";
  const exports = `/v1/models/${encodeURIComponent(m.id)}/exports`;
  showError("");
  modelsMessages.clear();
  modelsMessages.say(`Exporting ${m.id} as ${what}…`);
  button.disabled = true;
  try {
    const made = await api(`${exports}?wait=30`, { method: "POST", json: { format } });
    if (made.status === "pending") {
      const progress = (update) => modelsMessages.say(`Exporting ${m.id} as ONNX… ${describe(update)}`);
      progress(made.job);
      const done = await followJob(made.job.id, progress);
      if (done.status !== "succeeded") throw jobFailure(done);
    }
    const response = await send(made.url, { headers: authHeaders() });
    const filename = filenameOf(response, `${m.id}.${format === "onnx" ? "onnx" : "zip"}`);
    const blob = await response.blob();
    saveBlob(blob, filename);
    modelsMessages.say(`Exported ${m.id} as ${what}: ${filename} (${blob.size} bytes).`);
  } catch (err) {
    modelsMessages.fail(err);
  } finally {
    button.disabled = false;
  }
}

async function deleteModel(m, button) {
  const warning = m.shared
    ? `\n\nIt is a shared model, offered to every API key: only an operator key may delete it, and it goes for everyone.`
    : "";
  if (!window.confirm(`Delete the model ${m.id}? This cannot be undone.${warning}`)) return;
  showError("");
  modelsMessages.clear();
  button.disabled = true;
  try {
    await api(`/v1/models/${encodeURIComponent(m.id)}`, { method: "DELETE" });
    modelsMessages.say(`Model ${m.id} deleted.`);
    await loadModels();
  } catch (err) {
    button.disabled = false;
    modelsMessages.fail(err);
  }
}

// ---- rename / describe (a dialog) ----

let editing = null;
const editMessages = messagesOf("edit");

function openEdit(m) {
  editing = m;
  editMessages.clear();
  $("edit-title").textContent = `Rename the model ${m.id}`;
  $("edit-name").value = m.name || m.id;
  $("edit-description").value = m.description || "";
  $("edit-dialog").showModal();
  $("edit-name").focus();
}

$("edit-cancel").addEventListener("click", () => $("edit-dialog").close());

$("edit-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!editing) return;
  editMessages.clear();
  const body = { name: $("edit-name").value.trim(), description: $("edit-description").value.trim() };
  try {
    const updated = await api(`/v1/models/${encodeURIComponent(editing.id)}`, { method: "PATCH", json: body });
    $("edit-dialog").close();
    modelsMessages.clear();
    modelsMessages.say(`Model ${updated.id} is now named “${updated.name}”.`);
    await loadModels();
  } catch (err) {
    editMessages.fail(err);
  }
});

// ---- import ----

const importMessages = messagesOf("import");

$("import-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  importMessages.clear();
  const file = $("import-file").files[0];
  if (!file) return importMessages.fail(new Error("Choose a model file first."));
  const form = new FormData();
  form.append("file", file);
  const discriminator = $("import-discriminator").files[0];
  if (discriminator) form.append("discriminator", discriminator);
  for (const field of ["id", "name", "description"]) {
    const value = $(`import-${field}`).value.trim();
    if (value) form.append(field, value);
  }
  const submit = event.submitter || $("import-form").querySelector("button[type=submit]");
  submit.disabled = true;
  importMessages.say(`Uploading ${file.name}…`);
  try {
    const job = await api("/v1/models", { method: "POST", form });
    const progress = (update) => importMessages.say(`Importing ${file.name}: ${describe(update)}`);
    progress(job);
    const done = await followJob(job.id, progress);
    if (done.status !== "succeeded") throw jobFailure(done);
    const id = done.result && done.result.model;
    await loadModels();
    $("import-form").reset();
    importMessages.say(`Model ${id} imported (job ${done.id}): it is in the table and in every model list.`);
  } catch (err) {
    importMessages.fail(err);
  } finally {
    submit.disabled = false;
  }
});

// ---- fine-tune ----

// Open the Train view set to fine-tune `m`: its family, and it as the model to start from.
async function fineTuneFrom(m) {
  selectTab($("tab-train"));
  trainMessages.clear();
  await loadDatasets(); // a dataset of the model's kind is chosen, if there is one
  const family = familyOf(m.family);
  const fits = (d) => family && family.dataset_kinds.includes(d.kind);
  const current = datasets.find((d) => d.id === $("train-dataset").value);
  const other = datasets.find(fits);
  if (current && !fits(current) && other) $("train-dataset").value = other.id;
  setFamily(m.family);
  fillInitSelect(m.id);
  $("train-init").focus();
  const kinds = family ? family.dataset_kinds.join(" or ") : "matching";
  trainMessages.say(other
    ? `Fine-tuning from ${m.id}: pick a ${kinds} dataset and start the run.`
    : `Fine-tuning from ${m.id} needs a ${kinds} dataset: upload one below.`);
}

$("models-refresh").addEventListener("click", loadModels);

// ---- translate ----------------------------------------------------------------------------

const dropZone = $("drop-zone");
const translateFile = $("translate-file");

let exampleFile = null; // an example input chosen with one click, instead of an upload
let examplesShown = null; // "<model>:<count>" of the examples on show

async function loadExamples() {
  const model = models.find((m) => m.id === $("translate-model").value);
  const row = $("translate-examples-row");
  const key = model ? `${model.id}:${model.examples}` : null;
  if (key === examplesShown) return;
  examplesShown = key;
  if (!model || !model.examples) {
    row.hidden = true;
    return;
  }
  try {
    const data = await api(`/v1/models/${encodeURIComponent(model.id)}/examples`);
    const buttons = await Promise.all((data.examples || []).map(async (src, k) => {
      const button = document.createElement("button");
      button.type = "button";
      button.setAttribute("aria-label", `Example input ${k + 1} of ${model.id}`);
      const img = document.createElement("img");
      img.alt = "";
      img.src = await imageUrl(src);
      button.append(img);
      button.addEventListener("click", async () => {
        try {
          const blob = await (await send(src, { headers: authHeaders() })).blob();
          exampleFile = new File([blob], `example-${k + 1}.png`, { type: "image/png" });
          translateFile.value = "";
          showInput(exampleFile);
        } catch (err) {
          translateMessages.fail(err);
        }
      });
      return button;
    }));
    $("translate-examples").replaceChildren(...buttons);
    row.hidden = !buttons.length;
  } catch (err) {
    translateMessages.fail(err);
  }
}

$("translate-model").addEventListener("change", loadExamples);

function showInput(file) {
  const img = $("translate-input");
  img.src = URL.createObjectURL(file);
  img.hidden = false;
}

function previewInput() {
  exampleFile = null;
  const file = translateFile.files[0];
  const img = $("translate-input");
  if (!file) {
    img.hidden = true;
    return;
  }
  showInput(file);
}

translateFile.addEventListener("change", previewInput);
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("over");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("over");
  if (event.dataTransfer.files.length) {
    translateFile.files = event.dataTransfer.files;
    previewInput();
  }
});

const translateMessages = messagesOf("translate");

// The file name of a result image: what made it, and the job, so that names never clash.
function resultName(what, job, k) {
  const model = (job.model || "").replace(/@/, "-v").replace(/[^A-Za-z0-9._-]/g, "_");
  return `${what}-${model ? `${model}-` : ""}${job.id}${k === undefined ? "" : `-${k + 1}`}.png`;
}

// A figure of a result gallery: the image (a link that downloads it) and a Download link.
function resultFigure(url, alt, filename, caption) {
  const figure = element("figure", "result");
  const link = element("a", "thumb");
  link.href = url;
  link.download = filename;
  link.title = `Download ${filename}`;
  link.tabIndex = -1; // the Download link below is the one in the tab order
  const img = element("img");
  img.src = url;
  img.alt = alt;
  link.append(img);
  const foot = element("figcaption");
  if (caption) foot.append(element("span", "caption", caption));
  const download = element("a", "download", "Download");
  download.href = url;
  download.download = filename;
  download.setAttribute("aria-label", `Download ${alt.charAt(0).toLowerCase()}${alt.slice(1)}`);
  foot.append(download);
  figure.append(link, foot);
  return figure;
}

$("translate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  translateMessages.clear();
  const file = translateFile.files[0] || exampleFile;
  if (!file) return translateMessages.fail(new Error("Choose an image or an example first."));
  const form = new FormData();
  form.append("image", file);
  form.append("model", $("translate-model").value);
  if ($("translate-seed").value !== "") form.append("seed", $("translate-seed").value);
  form.append("mode", $("translate-mode").value);
  $("translate-output").hidden = true;
  $("translate-download").hidden = true;
  $("translate-inspect").hidden = true;
  const button = submitButton(event, $("translate-form"));
  button.disabled = true;
  try {
    translateMessages.say(`Uploading ${file.name}…`);
    const job = await runJob(await api("/v1/translations", { method: "POST", form }), translateMessages);
    const url = await imageUrl(job.result.images[0]);
    const filename = `translation-${job.id}.png`;
    $("translate-output").src = url;
    $("translate-output").hidden = false;
    $("translate-download").href = url;
    $("translate-download").download = filename;
    $("translate-download").hidden = false;
    lastTranslation = job;
    $("translate-inspect").hidden = !inspectable().some((m) => can(m, "paired_discriminator"));
    const figure = resultFigure(url, `Translation of ${file.name} (job ${shortId(job.id)})`, filename, job.model || "");
    $("translate-history").prepend(figure);
    $("translate-history-box").hidden = false;
    translateMessages.say(`Translation done (job ${job.id}).`);
  } catch (err) {
    translateMessages.fail(err);
  } finally {
    button.disabled = false;
  }
});

let lastTranslation = null;

$("translate-inspect").addEventListener("click", () => {
  if (lastTranslation) inspectJobImage(lastTranslation, 0, $("translate-model").value);
});

// ---- sample -------------------------------------------------------------------------------

let lastSeed = null;

// Offer classes 0..count-1 in a select (first option: `unset`), shown only when there are any.
// The options of a model's classes: the label's number as the value, its name as the text.
function classOptions(model) {
  return (model ? model.classes : []).map((name, k) => option(String(k), name));
}

function fillClassSelect(prefix, model, unset) {
  const labels = classOptions(model);
  $(`${prefix}-class`).replaceChildren(option("", unset), ...labels);
  $(`${prefix}-class-row`).hidden = labels.length === 0;
}

function updateClassSelect() {
  const model = models.find((m) => m.id === $("sample-model").value);
  fillClassSelect("sample", model, "any");
}

// "Keep the most real" needs a filterable family and the model's discriminator: offered only
// when the model has both.
function updateSampleFilter() {
  const model = models.find((m) => m.id === $("sample-model").value);
  const filterable = !model || can(model, "filterable");
  const usable = Boolean(model && filterable && model.discriminator);
  const box = $("sample-filter");
  box.disabled = !usable;
  if (!usable) box.checked = false;
  $("sample-filter-hint").textContent = usable || !model
    ? "The model's discriminator keeps the most real half of twice as many draws."
    : filterable
      ? "Needs the model's discriminator, and this model has none."
      : `A ${model.family} model's discriminator cannot filter its samples.`;
}

$("sample-model").addEventListener("change", () => {
  updateClassSelect();
  updateSampleFilter();
});

// What a discriminator filter did: how many it kept of how many candidates drawn.
function filterText(filter, count) {
  if (!filter) return "";
  const kept = Number.isFinite(filter.accepted) ? filter.accepted : count;
  const drawn = `${filter.candidates} candidates drawn`;
  return filter.method === "top"
    ? `The ${kept} most real of ${drawn}, as the model's discriminator judged them.`
    : `${kept} accepted of ${drawn} (rejection sampling by the model's discriminator).`;
}

const sampleMessages = messagesOf("sample");

async function sample(seed) {
  sampleMessages.clear();
  const body = { model: $("sample-model").value, count: Number($("sample-count").value) };
  if (seed !== null && seed !== undefined && seed !== "") body.seed = Number(seed);
  if (!$("sample-class-row").hidden && $("sample-class").value !== "") {
    body.class_label = Number($("sample-class").value);
  }
  if ($("sample-truncation").value !== "") body.truncation = Number($("sample-truncation").value);
  if ($("sample-filter").checked && !$("sample-filter").disabled) body.filter = { method: "top", keep: 0.5 };
  const buttons = [...$("sample-form").querySelectorAll("button")];
  for (const button of buttons) button.disabled = true;
  try {
    const job = await runJob(await api("/v1/samples", { method: "POST", json: body }), sampleMessages);
    const urls = await Promise.all(job.result.images.map(imageUrl));
    const canInspect = inspectable().some((m) => !can(m, "paired_discriminator"));
    const labels = job.result.class_labels || null;
    for (const img of $("sample-gallery").querySelectorAll("img")) URL.revokeObjectURL(img.src);
    $("sample-gallery").replaceChildren(
      ...urls.map((url, k) => {
        const label = labels ? `class ${labels[k]}` : "";
        const item = resultFigure(url, `Sample ${k + 1} of ${urls.length}`, resultName("sample", job, k), label);
        if (canInspect) {
          item.querySelector("figcaption").append(
            inspectButton(`Inspect sample ${k + 1}`, () => inspectJobImage(job, k, body.model)),
          );
        }
        return item;
      }),
    );
    lastSeed = job.params && job.params.seed !== undefined ? job.params.seed : body.seed ?? null;
    $("sample-again").disabled = lastSeed === null;
    $("sample-seed-used").textContent = lastSeed === null ? "" : `Seed: ${lastSeed}`;
    const filtered = filterText(job.result.filter, urls.length);
    $("sample-filter-used").textContent = filtered;
    $("sample-filter-used").hidden = !filtered;
    sampleMessages.say(`${urls.length} samples done (job ${job.id}).`);
  } catch (err) {
    sampleMessages.fail(err);
  } finally {
    for (const button of buttons) button.disabled = false;
    $("sample-again").disabled = lastSeed === null;
  }
}

$("sample-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sample($("sample-seed").value);
});
$("sample-again").addEventListener("click", () => {
  if (lastSeed === null) return;
  $("sample-seed").value = lastSeed;
  sample(lastSeed);
});

// ---- latent: interpolation and projection -------------------------------------------------

const drawMessages = messagesOf("latent-draw");
const interpMessages = messagesOf("latent-interp");
const projectMessages = messagesOf("latent-project");
const SIDES = ["a", "b"];
const SIDE_NAMES = { a: "start (A)", b: "end (B)" };

// The two ends of the interpolation: null (then the side's seed input, if any), or what was
// picked: {key, endpoint (as the API takes it), text, thumb (an image URL)}.
const ends = { a: null, b: null };
let drawn = null; // the samples on show: {job, urls, classLabels}
let projection = null; // the projection followed: {id, step, previewing, previewStale, finished}
let projected = null; // the last finished projection: {job, model, thumb}

function latentModel() {
  return models.find((m) => m.id === $("latent-model").value);
}

function fillLatentSelect() {
  const before = $("latent-model").value;
  fillModelSelect($("latent-model"), "sample");
  if ($("latent-model").value !== before) latentModelChanged();
  else {
    updateLatentClasses();
    updateProjectForm();
  }
}

// Projecting an image needs a model of a projectable family: the form says so otherwise.
function updateProjectForm() {
  const model = latentModel();
  const projectable = !model || can(model, "projectable");
  $("latent-project-unable").textContent = projectable ? "" : `A ${model.family} model cannot project images.`;
  $("latent-project-unable").hidden = projectable;
  $("latent-project-form").querySelector("button[type=submit]").disabled = !projectable;
}

// Class selects, for class-conditional models only, keeping what was chosen.
function updateLatentClasses() {
  const model = latentModel();
  const count = model ? model.class_count : 0;
  const labels = () => classOptions(model);
  for (const side of SIDES) {
    fillSelect($(`latent-${side}-class`), [option("", "its own"), ...labels()], "");
  }
  fillSelect($("latent-project-class"), [option("", "best fit"), ...labels()], "");
  for (const row of document.querySelectorAll(".latent-class-row")) row.hidden = count === 0;
  $("latent-project-class-row").hidden = count === 0;
}

// Latents belong to their model: a new model starts from an empty gallery and no picked ends.
function latentModelChanged() {
  drawn = null;
  $("latent-gallery").replaceChildren();
  $("latent-gallery-hint").hidden = true;
  for (const side of SIDES) setEnd(side, null);
  for (const side of SIDES) $(`latent-${side}-class`).value = "";
  updateLatentClasses();
  updateProjectForm();
  $("latent-project-use").hidden = !projected || projected.model !== $("latent-model").value;
}

$("latent-model").addEventListener("change", latentModelChanged);

function sideOf(key) {
  return SIDES.find((side) => ends[side] && ends[side].key === key);
}

function sideTaken(side) {
  return Boolean(ends[side]) || $(`latent-${side}-seed`).value !== "";
}

function setEnd(side, end) {
  ends[side] = end;
  if (end) $(`latent-${side}-seed`).value = "";
  renderEnd(side);
  markGallery();
}

function renderEnd(side) {
  const end = ends[side];
  const seed = $(`latent-${side}-seed`).value;
  const thumb = $(`latent-${side}-thumb`);
  thumb.hidden = !end;
  if (end) {
    thumb.src = end.thumb;
    thumb.alt = end.text;
  }
  $(`latent-${side}-text`).textContent = end
    ? end.text
    : seed !== ""
      ? `Seed ${seed} (the first image it draws)`
      : "Not chosen: click a sample, or type a seed.";
  $(`latent-${side}`).classList.toggle("chosen", sideTaken(side));
}

// Typing a seed replaces a picked sample or projection on that side.
for (const side of SIDES) {
  $(`latent-${side}-seed`).addEventListener("input", () => {
    if ($(`latent-${side}-seed`).value !== "" && ends[side]) setEnd(side, null);
    else renderEnd(side);
  });
}

// A job's id in short, where a full one would crowd the page (status lines say it in full).
function shortId(id) {
  return String(id).slice(0, 8);
}

function classNote(label) {
  return label === null || label === undefined ? "" : ` (class ${label})`;
}

function sampleKey(k) {
  return `${drawn.job.id}:${k}`;
}

function markGallery() {
  if (!drawn) return;
  for (const button of $("latent-gallery").children) {
    const k = Number(button.dataset.index);
    const side = sideOf(sampleKey(k));
    button.classList.toggle("end-a", side === "a");
    button.classList.toggle("end-b", side === "b");
    const mark = button.querySelector(".mark");
    mark.textContent = side ? side.toUpperCase() : "";
    mark.className = side ? `mark mark-${side}` : "mark";
    button.setAttribute("aria-label", `Sample ${k + 1}${side ? `, the ${SIDE_NAMES[side]}` : ""}`);
  }
}

// A click picks the start (A), the next one the end (B), a third starts a new pair; a click on
// a picked sample unpicks it.
function pickSample(k) {
  const key = sampleKey(k);
  const side = sideOf(key);
  if (side) return setEnd(side, null);
  const label = drawn.classLabels ? drawn.classLabels[k] : null;
  const end = {
    key,
    endpoint: { job: drawn.job.id, index: k },
    text: `Sample ${k + 1} of draw ${shortId(drawn.job.id)}${classNote(label)}`,
    thumb: drawn.urls[k],
  };
  if (!sideTaken("a")) setEnd("a", end);
  else if (!sideTaken("b")) setEnd("b", end);
  else {
    $("latent-b-seed").value = "";
    setEnd("b", null);
    setEnd("a", end);
  }
}

function renderGallery() {
  const buttons = drawn.urls.map((url, k) => {
    const button = element("button", "pick");
    button.type = "button";
    button.dataset.index = String(k);
    const img = element("img");
    img.src = url;
    img.alt = "";
    const mark = element("span", "mark");
    mark.setAttribute("aria-hidden", "true");
    button.append(img, mark);
    button.addEventListener("click", () => pickSample(k));
    return button;
  });
  $("latent-gallery").replaceChildren(...buttons);
  markGallery();
}

// Follow a job, saying its progress in a form's status line; the finished job, or thrown.
async function followWith(messages, what, job) {
  const show = (update) => messages.say(`${what}: ${describe(update)}`);
  show(job);
  const done = await followJob(job.id, show);
  if (done.status !== "succeeded") throw jobFailure(done);
  return done;
}

function submitButton(event, form) {
  return event.submitter || form.querySelector("button[type=submit]");
}

$("latent-draw-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  drawMessages.clear();
  const body = { model: $("latent-model").value, count: 8 };
  if ($("latent-draw-seed").value !== "") body.seed = Number($("latent-draw-seed").value);
  const button = submitButton(event, $("latent-draw-form"));
  button.disabled = true;
  try {
    const job = await followWith(drawMessages, "Drawing", await api("/v1/samples", { method: "POST", json: body }));
    if (job.params && job.params.model && job.params.model !== $("latent-model").value) {
      return drawMessages.say(`Samples of ${job.params.model} drawn, but the model changed since: draw again.`);
    }
    const urls = await Promise.all(job.result.images.map(imageUrl));
    drawn = { job, urls, classLabels: job.result.class_labels || null };
    renderGallery();
    $("latent-gallery-hint").hidden = false;
    const seed = job.result.seed ?? (job.params && job.params.seed);
    drawMessages.say(`${urls.length} samples drawn (job ${job.id}${seed === undefined || seed === null ? "" : `, seed ${seed}`}): click two of them.`);
  } catch (err) {
    drawMessages.fail(err);
  } finally {
    button.disabled = false;
  }
});

// One end as the API takes it, with the class chosen for it; null when not chosen.
function endpointOf(side) {
  let endpoint;
  if (ends[side]) endpoint = { ...ends[side].endpoint };
  else if ($(`latent-${side}-seed`).value !== "") endpoint = { seed: Number($(`latent-${side}-seed`).value) };
  else return null;
  const model = latentModel();
  const label = $(`latent-${side}-class`).value;
  if (model && model.class_count && label !== "") endpoint.class_label = Number(label);
  return endpoint;
}

// Links to files of a job: fetched with the API key, then saved.
function keyedLink(link, src, filename) {
  link.href = src;
  link.dataset.src = src;
  link.download = filename;
}

for (const id of ["latent-gif", "latent-npy"]) {
  $(id).addEventListener("click", async (event) => {
    event.preventDefault();
    const link = event.currentTarget;
    try {
      const response = await send(link.dataset.src, { headers: authHeaders() });
      saveBlob(await response.blob(), link.download);
    } catch (err) {
      interpMessages.fail(err);
    }
  });
}

$("latent-interp-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  interpMessages.clear();
  const start = endpointOf("a");
  const end = endpointOf("b");
  if (!start || !end) {
    const side = start ? "b" : "a";
    return interpMessages.fail(new Error(`Choose the ${SIDE_NAMES[side]}: click a sample, type a seed, or use a projection.`));
  }
  const path = $("latent-path").value;
  const body = { model: $("latent-model").value, start, end, frames: Number($("latent-frames").value), path };
  const button = submitButton(event, $("latent-interp-form"));
  button.disabled = true;
  try {
    const job = await followWith(interpMessages, "Interpolating", await api("/v1/interpolations", { method: "POST", json: body }));
    const result = job.result;
    const [animation, ...frames] = await Promise.all([result.animation.webp, ...result.images].map(imageUrl));
    const old = $("latent-animation").src;
    if (old.startsWith("blob:")) URL.revokeObjectURL(old);
    for (const img of $("latent-strip").querySelectorAll("img")) URL.revokeObjectURL(img.src);
    const count = frames.length;
    $("latent-animation").src = animation;
    $("latent-animation").alt = `The interpolation from A to B, ${count} frames, playing`;
    $("latent-frame-count").textContent = `${count} frames from A to B (${path})`;
    $("latent-strip").replaceChildren(
      ...frames.map((url, k) => {
        const img = element("img");
        img.src = url;
        img.alt = `Frame ${k + 1} of ${count}`;
        return img;
      }),
    );
    keyedLink($("latent-gif"), result.animation.gif, `interpolation-${job.id}.gif`);
    keyedLink($("latent-npy"), result.latents_url, `latents-${job.id}.npy`);
    $("latent-result").hidden = false;
    interpMessages.say(`Interpolation done (job ${job.id}): ${count} frames.`);
  } catch (err) {
    interpMessages.fail(err);
  } finally {
    button.disabled = false;
  }
});

// ---- projection ----

function showProjectTarget(url, caption) {
  const img = $("latent-project-target");
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  img.src = url;
  img.hidden = false;
  $("latent-project-target-caption").textContent = caption;
}

function showReconstruction(url, caption) {
  const img = $("latent-project-recon");
  if (img.src.startsWith("blob:") && !(projected && projected.thumb === img.src)) URL.revokeObjectURL(img.src);
  img.src = url;
  img.alt = caption;
  img.hidden = false;
  $("latent-project-recon-caption").textContent = caption;
}

$("latent-project-file").addEventListener("change", () => {
  const file = $("latent-project-file").files[0];
  if (!file) return;
  $("latent-project-box").hidden = false;
  showProjectTarget(URL.createObjectURL(file), "Your image");
});

function fixed(value, digits) {
  return Number.isFinite(value) ? Number(value).toFixed(digits) : "—";
}

function projectionDetail(job) {
  const detail = job.progress_detail || {};
  if (!Number.isFinite(detail.step)) return describe(job);
  let text = `Step ${detail.step} of ${detail.total}`;
  if (Number.isFinite(detail.loss)) text += ` — loss ${fixed(detail.loss, 4)}`;
  if (Number.isFinite(detail.psnr)) text += ` — PSNR ${fixed(detail.psnr, 2)} dB`;
  if (detail.class_label !== null && detail.class_label !== undefined) text += ` — class ${detail.class_label}`;
  return text;
}

function showProjection(run, job) {
  if (run !== projection) return;
  $("latent-project-progress").value = job.progress || 0;
  $("latent-project-detail").textContent = projectionDetail(job);
  const step = (job.progress_detail || {}).step;
  if (Number.isFinite(step) && step !== run.step && !TERMINAL.has(job.status)) {
    run.step = step;
    refreshProjectionPreview(run);
  }
}

// The current reconstruction, one request at a time: a newer step while one loads makes it
// load once more when done. No preview yet (404) is not an error.
async function refreshProjectionPreview(run) {
  if (run.previewing) {
    run.previewStale = true;
    return;
  }
  run.previewing = true;
  try {
    do {
      run.previewStale = false;
      const step = run.step;
      try {
        const url = await imageUrl(`/v1/jobs/${encodeURIComponent(run.id)}/preview?step=${step}`);
        if (run !== projection || run.finished) {
          URL.revokeObjectURL(url);
          return;
        }
        showReconstruction(url, `Reconstruction at step ${step}`);
      } catch (err) {
        if (!(err instanceof ApiError && err.status === 404)) throw err;
      }
    } while (run.previewStale && run === projection && !run.finished);
  } catch (err) {
    if (run === projection && !run.finished) projectMessages.fail(err);
  } finally {
    run.previewing = false;
  }
}

$("latent-project-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  projectMessages.clear();
  const file = $("latent-project-file").files[0];
  if (!file) return projectMessages.fail(new Error("Choose an image to project first."));
  const model = latentModel();
  if (model && !can(model, "projectable")) {
    return projectMessages.fail(new Error(`A ${model.family} model cannot project images.`));
  }
  const form = new FormData();
  form.append("image", file);
  form.append("model", $("latent-model").value);
  form.append("steps", $("latent-project-steps").value);
  if (!$("latent-project-class-row").hidden && $("latent-project-class").value !== "") {
    form.append("class_label", $("latent-project-class").value);
  }
  const button = submitButton(event, $("latent-project-form"));
  button.disabled = true;
  $("latent-project-box").hidden = false;
  showProjectTarget(URL.createObjectURL(file), "Your image");
  $("latent-project-recon").hidden = true;
  $("latent-project-recon-caption").textContent = "The reconstruction appears with the first report.";
  $("latent-project-progress").value = 0;
  $("latent-project-detail").textContent = "";
  $("latent-project-scores").hidden = true;
  $("latent-project-use").hidden = true;
  let run = null;
  try {
    projectMessages.say(`Uploading ${file.name}…`);
    const job = await api("/v1/projections", { method: "POST", form });
    run = { id: job.id, step: null, previewing: false, previewStale: false, finished: false };
    projection = run;
    $("latent-project-cancel").hidden = false;
    projectMessages.say(`Projecting ${file.name} (job ${job.id})…`);
    showProjection(run, job);
    const done = await followJob(job.id, (update) => showProjection(run, update));
    run.finished = true;
    if (done.status !== "succeeded") throw jobFailure(done);
    const result = done.result;
    const [reconstruction, target] = await Promise.all(result.images.slice(0, 2).map(imageUrl));
    showReconstruction(reconstruction, `Reconstruction (${result.steps} steps)`);
    if (target) {
      const seen = model ? ` (${model.image_size}×${model.image_size}, ${model.channels === 1 ? "grey" : "colour"})` : "";
      showProjectTarget(target, `Your image as the model sees it${seen}`);
    }
    $("latent-project-progress").value = 1;
    $("latent-project-psnr").textContent = `${fixed(result.psnr, 2)} dB`;
    $("latent-project-ssim").textContent = fixed(result.ssim, 3);
    $("latent-project-loss").textContent = Number.isFinite(result.start_loss)
      ? `${fixed(result.start_loss, 4)} → ${fixed(result.loss, 4)}`
      : fixed(result.loss, 4);
    $("latent-project-class-used").textContent = result.class_label ?? "— (no classes)";
    $("latent-project-scores").hidden = false;
    projected = { job: done, model: done.params && done.params.model ? done.params.model : form.get("model"), thumb: reconstruction };
    $("latent-project-use").hidden = projected.model !== $("latent-model").value;
    projectMessages.say(`Projection done (job ${done.id}): PSNR ${fixed(result.psnr, 2)} dB, SSIM ${fixed(result.ssim, 3)}.`);
  } catch (err) {
    if (run) run.finished = true;
    projectMessages.fail(err);
  } finally {
    updateProjectForm(); // enables the button again (for a projectable model)
    $("latent-project-cancel").hidden = true;
  }
});

$("latent-project-cancel").addEventListener("click", async () => {
  if (!projection || projection.finished) return;
  try {
    await api(`/v1/jobs/${encodeURIComponent(projection.id)}/cancel`, { method: "POST" });
    projectMessages.say(`Cancelling job ${projection.id}…`);
  } catch (err) {
    projectMessages.fail(err);
  }
});

for (const side of SIDES) {
  $(`latent-use-${side}`).addEventListener("click", () => {
    if (!projected) return;
    const label = projected.job.result.class_label;
    setEnd(side, {
      key: `projection:${projected.job.id}`,
      endpoint: { job: projected.job.id, index: 0 },
      text: `Projection ${shortId(projected.job.id)}${classNote(label)}`,
      thumb: projected.thumb,
    });
    // the same projection is one end only
    const other = side === "a" ? "b" : "a";
    if (ends[other] && ends[other].key === ends[side].key) setEnd(other, null);
    interpMessages.clear();
    interpMessages.say(`The projection of job ${projected.job.id} is the ${SIDE_NAMES[side]}.`);
    $(`latent-${side}`).scrollIntoView({ block: "nearest" });
  });
}

// ---- inspect ------------------------------------------------------------------------------

let inspectSource = null; // {job, index}: a result image of an earlier job instead of an upload

// An "Inspect" button for one result image, named for screen readers by `label`.
function inspectButton(label, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Inspect";
  button.setAttribute("aria-label", label);
  button.addEventListener("click", onClick);
  return button;
}

// Models whose discriminator draws a realness map: of an inspectable family, and with one.
function inspectable() {
  return models.filter((m) => m.discriminator && can(m, "inspectable"));
}

function fillInspectSelect() {
  fillSelect($("inspect-model"), inspectable().map(modelOption), "No model with a discriminator");
  updateInspectForm();
}

function updateInspectForm() {
  const model = models.find((m) => m.id === $("inspect-model").value);
  // a paired discriminator judges an image together with the image it translates
  const paired = can(model, "paired_discriminator");
  const fromTranslation = inspectSource && inspectSource.job.kind === "translation";
  $("inspect-input-row").hidden = !paired || Boolean(inspectSource);
  $("inspect-source").hidden = !inspectSource;
  $("inspect-upload").hidden = Boolean(inspectSource);
  if (inspectSource) {
    $("inspect-source-text").textContent =
      `Inspecting image ${inspectSource.index + 1} of job ${inspectSource.job.id}` +
      (paired && fromTranslation ? " with the image it translated." : ".");
  }
  fillClassSelect("inspect", can(model, "conditional") ? model : null, "the model's choice");
}

$("inspect-model").addEventListener("change", updateInspectForm);
$("inspect-source-clear").addEventListener("click", () => {
  inspectSource = null;
  updateInspectForm();
});

// Open the Inspect view on result image `index` of an earlier job.
function inspectJobImage(job, index, preferredModel) {
  inspectSource = { job, index };
  selectTab($("tab-inspect"));
  // a translation's result is judged with its input by a paired discriminator, a sample alone
  const paired = job.kind === "translation";
  const candidates = inspectable().filter((m) => can(m, "paired_discriminator") === paired);
  // a job records the version it ran on (`<id>@<version>`): offer that model
  const wanted = preferredModel || (job.model || "").split("@")[0];
  const preferred = candidates.find((m) => m.id === wanted) || candidates[0];
  if (preferred) $("inspect-model").value = preferred.id;
  updateInspectForm();
}

function showScores(result) {
  const number = (v) => (v === null || v === undefined ? "—" : Number(v).toFixed(3));
  $("inspect-global").textContent =
    result.global_score === null || result.global_score === undefined
      ? "— (this discriminator has no global head)"
      : number(result.global_score);
  $("inspect-mean").textContent = number(result.map_mean);
  $("inspect-min").textContent = number(result.map_min);
  $("inspect-box").textContent = (result.least_real_box || []).join(", ");
  $("inspect-scores").hidden = false;
}

const inspectMessages = messagesOf("inspect");

$("inspect-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  inspectMessages.clear();
  const form = new FormData();
  form.append("model", $("inspect-model").value);
  if (inspectSource) {
    form.append("source_job", inspectSource.job.id);
    form.append("source_image", String(inspectSource.index));
  } else {
    const file = $("inspect-file").files[0];
    if (!file) return inspectMessages.fail(new Error("Choose an image to inspect first."));
    form.append("image", file);
    if (!$("inspect-input-row").hidden && $("inspect-input").files[0]) {
      form.append("input", $("inspect-input").files[0]);
    }
  }
  if (!$("inspect-class-row").hidden && $("inspect-class").value !== "") {
    form.append("class_label", $("inspect-class").value);
  }
  const hide = ["inspect-overlay", "inspect-map", "inspect-scores", "inspect-download", "inspect-download-overlay"];
  for (const id of hide) $(id).hidden = true;
  const button = submitButton(event, $("inspect-form"));
  button.disabled = true;
  try {
    const job = await runJob(await api("/v1/inspections", { method: "POST", form }), inspectMessages);
    const [map, overlay] = await Promise.all(job.result.images.map(imageUrl));
    keyedDownload($("inspect-download"), map, resultName("realness-map", job));
    keyedDownload($("inspect-download-overlay"), overlay, resultName("realness-overlay", job));
    $("inspect-map").src = map;
    $("inspect-overlay").src = overlay;
    $("inspect-map").hidden = false;
    $("inspect-overlay").hidden = false;
    showScores(job.result);
    inspectMessages.say(`Inspection done (job ${job.id}).`);
  } catch (err) {
    inspectMessages.fail(err);
  } finally {
    button.disabled = false;
  }
});

// A download link for an image fetched already (a blob URL).
function keyedDownload(link, url, filename) {
  link.href = url;
  link.download = filename;
  link.hidden = false;
}

// ---- train --------------------------------------------------------------------------------
//
// The family follows the dataset's kind (each family lists the kinds it trains on), and the
// family's options are form fields built from its config schema (`config_schema` of
// `GET /v1/families`): numbers with their bounds, booleans as checkboxes, choices as selects.
// An empty field keeps its default and is not sent, so a fine-tune run still takes its
// architecture from its model.

const trainMessages = messagesOf("train");
const datasetMessages = messagesOf("dataset");
const BASIC_FIELDS = { steps: "train-steps", image_size: "train-size", batch_size: "train-batch" };
let datasets = [];
let shownFamily = null; // the family whose fields are on show

function currentFamily() {
  return familyOf($("train-family").value);
}

function currentDataset() {
  return datasets.find((d) => d.id === $("train-dataset").value);
}

function fillFamilySelect() {
  const select = $("train-family");
  const keep = select.value;
  select.replaceChildren(
    ...families.map((f) => option(f.name, `${f.name}: ${f.task === "translate" ? "translates images" : "draws new images"}`)),
  );
  if (familyOf(keep)) select.value = keep;
  followDataset();
}

// Offer the families that train on the chosen dataset's kind; keep the family if it fits.
function followDataset() {
  const dataset = currentDataset();
  const select = $("train-family");
  const fits = (f) => Boolean(f) && (!dataset || f.dataset_kinds.includes(dataset.kind));
  for (const item of select.options) item.disabled = !fits(familyOf(item.value));
  if (!fits(currentFamily())) {
    const first = families.find(fits);
    if (first) select.value = first.name;
  }
  const names = families.filter(fits).map((f) => f.name);
  $("train-family-hint").textContent = dataset
    ? `A dataset of kind “${dataset.kind}” trains ${names.join(" or ")}.`
    : "Each family trains on its own kind of dataset: upload one below.";
  familyChanged();
}

function setFamily(name) {
  $("train-family").value = name;
  familyChanged();
}

// A number as a person writes it (0.0002, not 2e-4 where it fits).
function numberText(value) {
  if (typeof value !== "number") return String(value);
  return Math.abs(value) >= 1e-4 || value === 0 ? String(+value.toPrecision(12)) : String(value);
}

// A number to read (10,000,000: thousands grouped), in hints only: inputs take numberText.
function readableNumber(value) {
  return typeof value === "number" && Number.isInteger(value) && Math.abs(value) >= 10000
    ? value.toLocaleString("en-US")
    : numberText(value);
}

// What a field's bounds allow, in words.
function boundsText(prop) {
  const low = prop.minimum ?? prop.exclusiveMinimum;
  let high = prop.maximum ?? prop.exclusiveMaximum;
  if (high !== undefined && high > Number.MAX_SAFE_INTEGER) high = undefined; // "any size"
  if (low === undefined && high === undefined) return "";
  const from = low === undefined ? "" : `${prop.exclusiveMinimum !== undefined ? "above" : "from"} ${readableNumber(low)}`;
  const to = high === undefined ? "" : `${prop.exclusiveMaximum !== undefined ? "below" : "to"} ${readableNumber(high)}`;
  return [from, to].filter(Boolean).join(" ");
}

function fieldHint(prop) {
  const parts = [`default ${prop.type === "boolean" ? (prop.default ? "on" : "off") : readableNumber(prop.default)}`];
  const bounds = boundsText(prop);
  if (bounds && !prop.enum) parts.push(bounds);
  const text = prop.description ? `${prop.description.charAt(0).toUpperCase()}${prop.description.slice(1)}` : "";
  return `${text}${text ? " (" : ""}${parts.join("; ")}${text ? ")" : ""}.`;
}

// One form field for one config field of the schema.
function configField(name, prop) {
  const id = `train-opt-${name}`;
  const wrap = element("div", "field option-field");
  const hint = element("p", "hint", fieldHint(prop));
  hint.id = `${id}-hint`;
  const label = element("label", "mono", name);
  label.htmlFor = id;
  let input;
  if (prop.type === "boolean") {
    input = element("input");
    input.type = "checkbox";
    input.checked = Boolean(prop.default);
    const row = element("div", "check");
    row.append(input, label);
    wrap.append(row, hint);
  } else {
    if (prop.enum) {
      input = element("select");
      for (const value of prop.enum) input.append(option(String(value), String(value)));
      input.value = String(prop.default);
    } else {
      input = element("input");
      if (prop.type === "integer" || prop.type === "number") {
        input.type = "number";
        input.step = prop.type === "integer" ? "1" : "any";
        input.inputMode = prop.type === "integer" ? "numeric" : "decimal";
        const low = prop.minimum ?? prop.exclusiveMinimum;
        const high = prop.maximum ?? prop.exclusiveMaximum;
        if (low !== undefined) input.min = String(low);
        if (high !== undefined) input.max = String(high);
      } else {
        input.type = "text";
        input.spellcheck = false;
        input.autocomplete = "off";
      }
      input.placeholder = numberText(prop.default);
    }
    wrap.append(label, input, hint);
  }
  input.id = id;
  input.name = name;
  input.dataset.field = name;
  input.setAttribute("aria-describedby", hint.id);
  return wrap;
}

// Show the family's fields: the basic ones (steps, size, batch) take its bounds and defaults,
// the others are built from its schema, run options and the family's own apart.
function familyChanged() {
  const family = currentFamily();
  if (!family) return fillInitSelect();
  if (family.name !== shownFamily) {
    shownFamily = family.name;
    const properties = family.config_schema.properties;
    for (const [name, id] of Object.entries(BASIC_FIELDS)) {
      const prop = properties[name];
      const input = $(id);
      $(`${id}-row`) && ($(`${id}-row`).hidden = !prop);
      if (!prop) continue;
      if (prop.minimum !== undefined) input.min = String(prop.minimum);
      if (prop.maximum !== undefined) input.max = String(prop.maximum);
      if (name === "batch_size") input.placeholder = numberText(prop.default); // empty: the default
      else if (!input.readOnly) input.value = String(prop.default);
    }
    $("train-sizes").replaceChildren(...family.image_sizes.map((size) => option(String(size), String(size))));
    const skipped = family.schedule_sets.filter((name) => name in BASIC_FIELDS);
    $("train-schedule-hint").hidden = !skipped.length;
    $("train-schedule-hint").textContent = skipped.length
      ? `A ${family.name} run's own schedule sets its ${skipped.map((n) => n.replace("_", " ")).join(" and ")}: see More settings.`
      : "";
    const groups = { run: [], family: [] };
    for (const [name, prop] of Object.entries(properties)) {
      if (name in BASIC_FIELDS) continue;
      (groups[prop["x-group"]] || groups.family).push(configField(name, prop));
    }
    const fieldsets = [
      ["Run options", groups.run],
      [`${family.name} hyperparameters`, groups.family],
    ].filter(([, fields]) => fields.length).map(([title, fields]) => {
      const set = element("fieldset", "option-group");
      set.append(element("legend", "", title), ...fields);
      return set;
    });
    $("train-fields").replaceChildren(...fieldsets);
    $("train-options-count").textContent = `(${groups.run.length + groups.family.length} for ${family.name})`;
  }
  fillInitSelect();
  showTrainSummary();
}

// What a family's models can do beyond their task, by its capability flags (`/v1/families`).
const CAPABILITY_TEXT = [
  ["conditional", "take class labels (when trained on a labeled dataset)"],
  ["filterable", "filter their samples by their discriminator"],
  ["projectable", "project an image into their latent space"],
  ["exportable", "export their generator to ONNX"],
];

// What the chosen family and dataset make, beside the form.
function showTrainSummary() {
  const family = currentFamily();
  const dataset = currentDataset();
  $("train-summary").hidden = !family;
  if (!family) return;
  const defaults = family.config_schema.properties;
  const sizes = family.image_sizes;
  $("train-summary-title").textContent = `${family.name}: ${family.task === "translate" ? "a model that translates images" : "a model that draws new images"}`;
  $("train-summary-text").textContent = `Trains on ${family.dataset_kinds.join(" or ")} datasets; the model joins the catalog at every checkpoint.`;
  const rows = [
    ["Dataset", dataset ? `${dataset.name} (${dataset.kind}, ${dataset.image_count} images)` : "none yet: upload one"],
    ["Image sizes", sizes.length > 4 ? `${sizes[0]} to ${sizes[sizes.length - 1]} px, powers of two` : `${sizes.join(", ")} px`],
    ["Defaults", Object.entries(BASIC_FIELDS)
      .filter(([name]) => defaults[name])
      .map(([name]) => `${name.replace("_", " ")} ${defaults[name].default}`)
      .join(", ")],
    ["Starts from", $("train-init").value
      ? `the model ${$("train-init").value} (its architecture and image size)`
      : family.fine_tunable ? `scratch, or a ${family.name} model (fine-tuning)` : "scratch, always"],
    ["Inspect", !family.inspectable
      ? "its discriminator draws no realness maps"
      : family.paired_discriminator
        ? "its discriminator draws realness maps of an image with the input it translates"
        : "its discriminator draws realness maps"],
    ["Its models can", CAPABILITY_TEXT.filter(([flag]) => family[flag]).map(([, text]) => text).join("; ") || "do their task only"],
  ];
  $("train-summary-list").replaceChildren(...rows.flatMap(([term, text]) => [element("dt", "", term), element("dd", "", text)]));
}

$("train-dataset").addEventListener("change", followDataset);
$("train-family").addEventListener("change", familyChanged);

// The "Start from model" select: the models of the chosen family (empty: a fresh run).
function fillInitSelect(keep = $("train-init").value) {
  const family = $("train-family").value;
  const select = $("train-init");
  const tunable = fineTunable(family);
  const fresh = option("", tunable ? "None: a fresh run" : `None: a ${family} run always starts fresh`);
  const choices = tunable ? models.filter((m) => m.family === family).map((m) => option(m.id, modelLabel(m))) : [];
  fillSelect(select, [fresh, ...choices], "", keep);
  select.disabled = !tunable;
  updateInitFields();
}

// A fine-tune run takes its image size from the model: show it, and keep it from being changed.
// The fields that build its generator come from the model too: their placeholders say so.
function updateInitFields() {
  const model = models.find((m) => m.id === $("train-init").value);
  const size = $("train-size");
  size.readOnly = Boolean(model);
  $("train-size-hint").hidden = !model;
  if (model) {
    size.value = model.image_size;
    size.setAttribute("aria-describedby", "train-size-hint");
  } else {
    size.removeAttribute("aria-describedby");
  }
  const family = currentFamily();
  for (const name of (family && family.generator_fields) || []) {
    const input = $(`train-opt-${name}`);
    if (!input || !("placeholder" in input) || input.tagName === "SELECT") continue;
    input.dataset.defaultPlaceholder ??= input.placeholder;
    input.placeholder = model ? "the model's" : input.dataset.defaultPlaceholder;
  }
  showTrainSummary();
}

$("train-init").addEventListener("change", updateInitFields);

// A field's value as the config takes it; undefined when it keeps its default.
function fieldValue(input, prop) {
  if (input.type === "checkbox") return input.checked === Boolean(prop.default) ? undefined : input.checked;
  if (input.tagName === "SELECT") {
    if (input.value === String(prop.default)) return undefined;
    return prop.type === "integer" || prop.type === "number" ? Number(input.value) : input.value;
  }
  const text = input.value.trim();
  if (text === "") return undefined;
  return prop.type === "integer" || prop.type === "number" ? Number(text) : text;
}

// A field that breaks its bounds, said in words (the form does not check itself: most of its
// fields are folded away, where the browser's own prompt could not point at them).
function fieldProblem(input, name, prop) {
  if (!input.checkValidity()) return `${name}: ${input.validationMessage}`;
  const value = Number(input.value);
  if (input.value === "" || !prop) return null;
  if (prop.exclusiveMinimum !== undefined && !(value > prop.exclusiveMinimum)) {
    return `${name}: must be above ${numberText(prop.exclusiveMinimum)}.`;
  }
  if (prop.exclusiveMaximum !== undefined && !(value < prop.exclusiveMaximum)) {
    return `${name}: must be below ${numberText(prop.exclusiveMaximum)}.`;
  }
  return null;
}

// The run's config from the form, or an Error naming the first field to fix (opened and focused).
function trainConfig() {
  const family = currentFamily();
  const properties = family ? family.config_schema.properties : {};
  const config = {};
  const fail = (input, message) => {
    if (input.closest("details")) input.closest("details").open = true;
    if (input.closest("#train-advanced")) $("train-advanced").open = true;
    input.focus();
    return new Error(message);
  };
  for (const [name, id] of Object.entries(BASIC_FIELDS)) {
    const input = $(id);
    if (!properties[name] && family) continue; // set by the family's own schedule
    const label = document.querySelector(`label[for="${id}"]`).textContent.trim();
    const problem = fieldProblem(input, label, properties[name]);
    if (problem) return fail(input, problem);
    if (input.value !== "") config[name] = Number(input.value);
  }
  for (const input of $("train-fields").querySelectorAll("[data-field]")) {
    const name = input.dataset.field;
    const problem = fieldProblem(input, name, properties[name]);
    if (problem) return fail(input, problem);
    const value = fieldValue(input, properties[name]);
    if (value !== undefined) config[name] = value;
  }
  const extra = $("train-extra").value.trim();
  if (extra) {
    let settings;
    try {
      settings = JSON.parse(extra);
    } catch (err) {
      return fail($("train-extra"), `The settings JSON is not valid: ${err.message}`);
    }
    if (!settings || typeof settings !== "object" || Array.isArray(settings)) {
      return fail($("train-extra"), 'The settings JSON must be an object, like {"sample_every": 50}.');
    }
    Object.assign(config, settings);
  }
  return config;
}

let datasetsRequest = null; // the reload under way: callers meanwhile share it

// Reload the caller's datasets into the Train view (choosing `selectId` when given).
function loadDatasets(selectId) {
  if (datasetsRequest && !selectId) return datasetsRequest;
  const request = (async () => {
    try {
      const data = await api("/v1/datasets");
      datasets = data.datasets || [];
      fillSelect(
        $("train-dataset"),
        datasets.map((d) => option(d.id, `${d.name} (${d.kind}, ${d.image_count} images)`)),
        "No datasets yet: upload one",
        selectId || undefined,
      );
      followDataset();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return report(err);
      datasetMessages.fail(err);
    } finally {
      if (datasetsRequest === request) datasetsRequest = null;
    }
  })();
  datasetsRequest = request;
  return request;
}

$("dataset-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  datasetMessages.clear();
  const file = $("dataset-file").files[0];
  if (!file) return datasetMessages.fail(new Error("Choose a .zip archive first."));
  const form = new FormData();
  form.append("archive", file);
  form.append("name", $("dataset-name").value);
  form.append("kind", $("dataset-kind").value);
  const button = submitButton(event, $("dataset-form"));
  button.disabled = true;
  datasetMessages.say(`Uploading ${file.name}…`);
  try {
    const dataset = await api("/v1/datasets", { method: "POST", form });
    datasetMessages.say(`Dataset ${dataset.name} uploaded (${dataset.image_count} images): chosen above.`);
    await loadDatasets(dataset.id);
  } catch (err) {
    datasetMessages.fail(err);
  } finally {
    button.disabled = false;
  }
});

// The training run the Train view shows: its loss history, newest preview and how to stop
// following it (when another run is watched).
let watched = null;

const CURVE_COLOURS = ["#2a5db0", "#c0392b", "#2e8b57", "#8e44ad", "#d35400", "#16a085"];

function lossNames(rows) {
  const names = new Set();
  for (const row of rows) {
    for (const name of Object.keys(row)) if (/^[DG]/.test(name)) names.add(name);
  }
  return [...names].sort();
}

function svg(tag, attributes, text) {
  const element = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// Draw the loss curves: one polyline per loss over the steps, on a shared y axis.
function drawCurves(rows) {
  const chart = $("train-curves");
  const names = lossNames(rows);
  const points = rows.flatMap((row) => names.map((n) => row[n]).filter(Number.isFinite));
  if (!names.length || !points.length) {
    chart.replaceChildren(svg("text", { x: 10, y: 20 }, "Loss curves appear with the first logged step."));
    return;
  }
  const [width, height, left, bottom, top] = [600, 220, 48, 24, 8];
  const steps = rows.map((row) => row.step);
  const [x0, x1] = [Math.min(...steps), Math.max(...steps)];
  const [y0, y1] = [Math.min(...points), Math.max(...points)];
  const x = (step) => left + ((step - x0) / Math.max(1, x1 - x0)) * (width - left - 8);
  const y = (v) => top + (1 - (v - y0) / (y1 - y0 || 1)) * (height - top - bottom);
  const parts = [
    svg("line", { x1: left, y1: top, x2: left, y2: height - bottom, class: "axis" }),
    svg("line", { x1: left, y1: height - bottom, x2: width - 8, y2: height - bottom, class: "axis" }),
    svg("text", { x: left - 4, y: top + 10, "text-anchor": "end" }, +y1.toPrecision(3)),
    svg("text", { x: left - 4, y: height - bottom, "text-anchor": "end" }, +y0.toPrecision(3)),
    svg("text", { x: left, y: height - 6 }, `step ${x0}`),
    svg("text", { x: width - 8, y: height - 6, "text-anchor": "end" }, `step ${x1}`),
  ];
  names.forEach((name, k) => {
    const colour = CURVE_COLOURS[k % CURVE_COLOURS.length];
    const line = rows
      .filter((row) => Number.isFinite(row[name]))
      .map((row) => `${x(row.step).toFixed(1)},${y(row[name]).toFixed(1)}`)
      .join(" ");
    parts.push(svg("polyline", { points: line, fill: "none", stroke: colour, "stroke-width": 1.5 }));
    parts.push(svg("text", { x: left + 8 + k * 90, y: top + 12, fill: colour }, name));
  });
  const latest = rows[rows.length - 1];
  chart.setAttribute(
    "aria-label",
    `Loss curves to step ${latest.step}: ` +
      names.map((n) => `${n} ${Number(latest[n]).toFixed(3)}`).join(", "),
  );
  chart.replaceChildren(...parts);
}

// Fetch the stats logged since the last read and redraw. One request at a time: a call while
// one runs makes it read once more when it is done, so no step logged meanwhile is left unread.
function refreshCurves(run) {
  if (run.statsRequest) {
    run.statsStale = true;
    return run.statsRequest;
  }
  run.statsRequest = (async () => {
    do {
      run.statsStale = false;
      await readNewStats(run);
    } while (run.statsStale && run === watched);
    run.statsRequest = null;
  })();
  return run.statsRequest;
}

async function readNewStats(run) {
  try {
    const data = await api(`/v1/jobs/${encodeURIComponent(run.id)}/stats?after=${run.lastStep}`);
    if (run !== watched || !data.stats.length) return;
    run.rows.push(...data.stats);
    run.lastStep = run.rows[run.rows.length - 1].step;
    drawCurves(run.rows);
  } catch (err) {
    if (run === watched) trainMessages.fail(err);
  }
}

async function refreshPreview(run, step) {
  run.previewStep = step;
  try {
    const url = await imageUrl(`/v1/jobs/${encodeURIComponent(run.id)}/preview?step=${step}`);
    if (run !== watched) return;
    const img = $("train-preview");
    if (img.src) URL.revokeObjectURL(img.src);
    img.src = url;
    img.alt = `Samples of job ${run.id} at step ${step}`;
    img.hidden = false;
    $("train-preview-caption").textContent = `Samples at step ${step}`;
  } catch (err) {
    if (run === watched) trainMessages.fail(err);
  }
}

function showTraining(run, job) {
  if (run !== watched) return;
  $("train-progress").value = job.progress || 0;
  $("train-detail").textContent = describe(job);
  $("train-cancel").disabled = TERMINAL.has(job.status);
  const detail = job.progress_detail || {};
  if (Number.isFinite(detail.step) && detail.step > run.lastStep) refreshCurves(run);
  if (Number.isFinite(detail.preview_step) && detail.preview_step !== run.previewStep) {
    refreshPreview(run, detail.preview_step);
  }
}

// Show a training run in the Train view and follow it until it ends.
async function watchTraining(job) {
  if (watched) watched.stop.abort();
  const run = { id: job.id, rows: [], lastStep: -1, previewStep: null, statsRequest: null, statsStale: false, stop: new AbortController() };
  watched = run;
  const params = job.params || {};
  const dataset = datasets.find((d) => d.id === params.dataset);
  $("train-run-title").textContent = [
    `Training run ${params.name || shortId(job.id)}`,
    [params.family, dataset ? `on ${dataset.name}` : ""].filter(Boolean).join(" "),
    params.init_from ? `from ${params.init_from}` : "",
  ].filter(Boolean).join(" · ");
  $("train-progress-box").hidden = false;
  $("train-preview").hidden = true;
  $("train-preview-caption").textContent = "Samples appear when the run writes its first grid.";
  drawCurves([]);
  showTraining(run, job);
  try {
    const done = await followJob(job.id, (update) => showTraining(run, update), run.stop.signal);
    await refreshCurves(run);
    if (run !== watched) return;
    if (done.status === "succeeded") {
      const model = done.result && done.result.model;
      trainMessages.say(`Training finished${model ? `: model ${model}` : ""} (job ${done.id}).`);
      loadModels();
    } else {
      trainMessages.fail(jobFailure(done));
    }
  } catch (err) {
    if (err.name !== "AbortError" && run === watched) trainMessages.fail(err);
  }
}

$("train-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  trainMessages.clear();
  const config = trainConfig();
  if (config instanceof Error) return trainMessages.fail(config);
  const body = { family: $("train-family").value, dataset: $("train-dataset").value, config };
  if ($("train-name").value) body.name = $("train-name").value;
  if ($("train-init").value) body.init_from = $("train-init").value;
  let job;
  const button = submitButton(event, $("train-form"));
  button.disabled = true;
  try {
    job = await api("/v1/training-runs", { method: "POST", json: body });
  } catch (err) {
    return trainMessages.fail(err); // next to the form: what to change in it
  } finally {
    button.disabled = false;
  }
  trainMessages.say(`Training run started${body.init_from ? ` from ${body.init_from}` : ""} (job ${job.id}).`);
  await watchTraining(job);
});

$("train-cancel").addEventListener("click", async () => {
  if (!watched) return;
  try {
    await api(`/v1/jobs/${encodeURIComponent(watched.id)}/cancel`, { method: "POST" });
    trainMessages.say(`Cancelling job ${watched.id}…`);
  } catch (err) {
    trainMessages.fail(err);
  }
});

// ---- jobs ---------------------------------------------------------------------------------

const jobsMessages = messagesOf("jobs");
const JOBS_PER_PAGE = 10;
const MAX_JOBS_LISTED = 1000; // GET /v1/jobs answers at most this many
let jobsPage = 0;
let jobThumbs = []; // the blob URLs of the thumbnails on show

async function openImage(event) {
  event.preventDefault();
  try {
    window.open(await imageUrl(event.currentTarget.dataset.src), "_blank", "noopener");
  } catch (err) {
    jobsMessages.fail(err);
  }
}

const KIND_NAMES = {
  translation: "Translation",
  sample: "Samples",
  training: "Training run",
  inspection: "Inspection",
  model_import: "Model import",
  model_export: "Model export",
  interpolation: "Interpolation",
  projection: "Projection",
};

function kindName(kind) {
  return KIND_NAMES[kind] || String(kind).replace(/_/g, " ");
}

// What the job was, in a few words: its kind and what sets it apart.
function jobTitle(job) {
  const p = job.params || {};
  switch (job.kind) {
    case "training":
      return `Training run ${p.name || shortId(job.id)}${p.family ? ` (${p.family})` : ""}`;
    case "sample":
      return `${p.count || ""} sample${p.count === 1 ? "" : "s"}${p.class_label !== undefined && p.class_label !== null ? ` of class ${p.class_label}` : ""}`.trim();
    case "interpolation":
      return `Interpolation, ${p.frames || "?"} frames`;
    case "projection":
      return `Projection, ${p.steps || "?"} steps`;
    case "model_import":
      return `Model import${p.model_id ? `: ${p.model_id}` : ""}`;
    case "model_export":
      return `Model export${p.format ? ` (${String(p.format).toUpperCase()})` : ""}`;
    default:
      return kindName(job.kind);
  }
}

function localTime(iso) {
  const when = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  const clock = `${pad(when.getHours())}:${pad(when.getMinutes())}:${pad(when.getSeconds())}`;
  const today = new Date().toDateString() === when.toDateString();
  return today ? clock : `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())} ${clock}`;
}

function timeElement(iso) {
  const time = element("time", "", localTime(iso));
  time.dateTime = iso;
  time.title = iso;
  return time;
}

function durationText(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 10) return `${seconds.toFixed(1)} s`;
  if (seconds < 90) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 90) return `${minutes} min ${Math.round(seconds - 60 * minutes)} s`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${minutes - 60 * hours} min`;
}

// How long the job ran (or has been running, or waiting).
function jobDuration(job) {
  const start = Date.parse(job.started_at || job.created_at);
  if (job.finished_at) return durationText((Date.parse(job.finished_at) - start) / 1000);
  if (job.started_at) return `${durationText((Date.now() - start) / 1000)} so far`;
  return `waiting ${durationText((Date.now() - Date.parse(job.created_at)) / 1000)}`;
}

// The image that stands for a job: its first result image, a training run's newest samples.
function thumbSource(job) {
  const images = (job.result && job.result.images) || [];
  if (job.kind === "inspection" && images.length > 1) return images[1]; // the overlay
  if (images.length) return images[0];
  const detail = job.progress_detail || {};
  if (job.kind === "training" && Number.isFinite(detail.preview_step)) {
    return `/v1/jobs/${encodeURIComponent(job.id)}/preview?step=${detail.preview_step}`;
  }
  return null;
}

function metaList(pairs) {
  const list = element("dl", "job-meta");
  for (const [term, value] of pairs) {
    const pair = element("div");
    pair.dataset.term = term.toLowerCase();
    const dd = element("dd");
    dd.append(value);
    pair.append(element("dt", "", term), dd);
    list.append(pair);
  }
  return list;
}

function jobItem(job) {
  const item = element("li", `job status-${job.status}`);
  item.dataset.job = job.id;
  const thumb = element("div", "job-thumb");
  thumb.append(element("span", "job-initial", kindName(job.kind).charAt(0)));
  const src = thumbSource(job);
  if (src) {
    thumb.dataset.src = src;
    thumb.classList.add("pending");
  }
  const main = element("div", "job-main");
  const head = element("div", "job-head");
  head.append(element("strong", "job-title", jobTitle(job)), element("span", `badge status ${job.status}`, job.status));
  if (!TERMINAL.has(job.status)) {
    head.append(element("span", "muted", `${Math.round(100 * (job.progress || 0))}%`));
  }
  main.append(head);
  const p = job.params || {};
  const model = job.model || (job.kind === "training" ? "a fresh run" : p.model_id || "—");
  const pairs = [
    ["Kind", kindName(job.kind)],
    ["Model", model],
  ];
  if (job.kind === "training" && job.result && job.result.model) pairs.push(["Made", job.result.model]);
  pairs.push(
    ["Owner", "you"],
    ["Created", timeElement(job.created_at)],
    ["Finished", job.finished_at ? timeElement(job.finished_at) : "—"],
    ["Duration", jobDuration(job)],
  );
  main.append(metaList(pairs));
  const id = element("div", "job-id muted mono", `job ${job.id}`);
  id.title = job.id;
  main.append(id);
  if (job.error && job.error.message) {
    main.append(element("div", "error-text", `Error: ${job.error.message}`));
  }
  const actions = element("div", "job-actions");
  if (job.kind === "training") {
    const watch = element("button", "small", TERMINAL.has(job.status) ? "Show run" : "Watch");
    watch.type = "button";
    watch.setAttribute("aria-label", `${watch.textContent}: job ${job.id}`);
    watch.addEventListener("click", () => {
      selectTab($("tab-train"));
      watchTraining(job);
    });
    actions.append(watch);
  }
  const images = (job.result && job.result.images) || [];
  images.forEach((src, k) => {
    const link = element("a", "image-link", `image ${k + 1}`);
    link.href = src;
    link.dataset.src = src;
    link.addEventListener("click", openImage);
    actions.append(link);
    if (job.kind === "translation" || job.kind === "sample") {
      const button = inspectButton(`Inspect image ${k + 1} of job ${job.id}`, () => inspectJobImage(job, k));
      button.classList.add("small");
      actions.append(button);
    }
  });
  if (actions.children.length) main.append(actions);
  item.append(thumb, main);
  return item;
}

// Fetch the thumbnails of the jobs on show (the images need the API key).
async function loadThumbs(list) {
  for (const thumb of list.querySelectorAll(".job-thumb[data-src]")) {
    imageUrl(thumb.dataset.src)
      .then((url) => {
        if (!list.contains(thumb)) return URL.revokeObjectURL(url);
        jobThumbs.push(url);
        const img = element("img");
        img.src = url;
        img.alt = "";
        thumb.replaceChildren(img);
        thumb.classList.remove("pending");
      })
      .catch(() => thumb.classList.remove("pending")); // expired results: the letter stays
  }
}

async function loadJobs() {
  const wanted = Math.min(MAX_JOBS_LISTED, (jobsPage + 1) * JOBS_PER_PAGE + 1);
  $("jobs-error").hidden = true;
  try {
    const data = await api(`/v1/jobs?limit=${wanted}`);
    const all = data.jobs || [];
    const pages = Math.max(1, Math.ceil(all.length / JOBS_PER_PAGE));
    if (jobsPage >= pages && all.length <= (jobsPage) * JOBS_PER_PAGE) jobsPage = pages - 1;
    const first = jobsPage * JOBS_PER_PAGE;
    const shown = all.slice(first, first + JOBS_PER_PAGE);
    const more = all.length > first + JOBS_PER_PAGE;
    for (const url of jobThumbs) URL.revokeObjectURL(url);
    jobThumbs = [];
    const items = shown.map(jobItem);
    if (!items.length) {
      const empty = element("li", "empty", "No jobs yet: translate an image, draw samples or start a training run.");
      items.push(empty);
    }
    $("jobs-list").replaceChildren(...items);
    $("jobs-prev").disabled = jobsPage === 0;
    $("jobs-next").disabled = !more;
    $("jobs-page").textContent = shown.length
      ? `${first + 1}–${first + shown.length}${more ? "" : ` of ${all.length}`}`
      : "";
    loadThumbs($("jobs-list"));
  } catch (err) {
    jobsMessages.fail(err);
  }
}

$("jobs-refresh").addEventListener("click", loadJobs);
$("jobs-prev").addEventListener("click", () => {
  jobsPage = Math.max(0, jobsPage - 1);
  loadJobs();
});
$("jobs-next").addEventListener("click", () => {
  jobsPage += 1;
  loadJobs();
});

// ---- demo models ------------------------------------------------------------------------

// While demo models train, say which, how far, and whether each is usable yet; refresh the
// model pickers when a demo publishes its first model.
async function loadDemos() {
  let jobs;
  try {
    jobs = (await api("/v1/jobs?kind=training")).jobs || [];
  } catch (err) {
    return; // the rest of the page reports errors; the banner just stays as it was
  }
  demos = jobs.filter((j) => j.params && j.params.background && !TERMINAL.has(j.status));
  const known = new Set(models.map((m) => m.id));
  const items = demos.map((job) => {
    const item = document.createElement("li");
    const name = job.params.name || job.id;
    const usable = known.has(name) ? "usable now, improving" : "first model at its first checkpoint";
    const state = job.status === "queued" ? "waiting its turn" : "training";
    item.textContent = `${name} (${job.params.family}): ${Math.round(100 * (job.progress || 0))}% ${state} — ${usable}`;
    const watch = document.createElement("button");
    watch.type = "button";
    watch.textContent = "Watch";
    watch.setAttribute("aria-label", `Watch the ${name} demo training`);
    watch.addEventListener("click", () => {
      selectTab($("tab-train"));
      watchTraining(job);
    });
    item.append(watch);
    return item;
  });
  $("demo-list").replaceChildren(...items);
  $("demo-banner").hidden = !items.length;
  await loadModels(); // new demo models, and the "demo is training (N%)" placeholders
  if (demos.length) setTimeout(loadDemos, 5000);
}

// ---- start --------------------------------------------------------------------------------

// The families first (the model pickers and the Train view read them), then the catalog.
async function start() {
  try {
    await loadFamilies();
  } catch (err) {
    return report(err); // 401: the key prompt; after the key, this runs again
  }
  await loadModels();
  loadDatasets();
  loadDemos();
}

start();
