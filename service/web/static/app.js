// The ganserve web page: a plain client of the /v1 API (no framework, no build step).

const KEY_STORAGE = "ganserve.apiKey";
const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);
const $ = (id) => document.getElementById(id);

// ---- messages -----------------------------------------------------------------------------

function say(text) {
  $("status").textContent = text;
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

function report(err) {
  if (err instanceof ApiError && err.status === 401) {
    askForKey(err.message);
    return;
  }
  showError(err instanceof ApiError ? `${err.message} (${err.code})` : String(err.message || err));
  say("");
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
  say("API key saved.");
  loadModels();
  loadDatasets();
});

$("key-clear").addEventListener("click", () => {
  localStorage.removeItem(KEY_STORAGE);
  say("API key forgotten.");
});

// ---- HTTP ---------------------------------------------------------------------------------

function authHeaders() {
  const key = apiKey();
  return key ? { Authorization: `Bearer ${key}` } : {};
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
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (err) {
    throw new ApiError(0, "network_error", `The service could not be reached: ${err.message}`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = data && data.error;
    throw new ApiError(
      response.status,
      (error && error.code) || `http_${response.status}`,
      (error && error.message) || `The request failed with status ${response.status}.`,
    );
  }
  return data;
}

// Images may need the API key, which <img src> cannot send: fetch them as blobs.
async function imageUrl(path) {
  const response = await fetch(path, { headers: authHeaders() });
  if (!response.ok) {
    let message = `The image could not be loaded (status ${response.status}).`;
    let code = `http_${response.status}`;
    try {
      const data = await response.json();
      if (data && data.error) ({ message, code } = data.error);
    } catch {
      // not JSON
    }
    throw new ApiError(response.status, code, message);
  }
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

// Follow a job until it ends, calling onUpdate at every change. Without an API key this uses
// server-sent events; EventSource cannot send a header, so with a key it long-polls instead.
function followJob(id, onUpdate) {
  if (!apiKey() && "EventSource" in window) {
    return new Promise((resolve, reject) => {
      const source = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/events`);
      let last = null;
      source.addEventListener("job", (event) => {
        last = JSON.parse(event.data);
        onUpdate(last);
        if (TERMINAL.has(last.status)) {
          source.close();
          resolve(last);
        }
      });
      source.onerror = () => {
        source.close();
        if (last && TERMINAL.has(last.status)) resolve(last);
        else pollJob(id, onUpdate).then(resolve, reject); // fall back to polling
      };
    });
  }
  return pollJob(id, onUpdate);
}

async function pollJob(id, onUpdate) {
  for (;;) {
    const job = await api(`/v1/jobs/${encodeURIComponent(id)}?wait=10`);
    onUpdate(job);
    if (TERMINAL.has(job.status)) return job;
  }
}

async function runJob(job) {
  say(describe(job));
  const done = await followJob(job.id, (update) => say(describe(update)));
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

// ---- models -------------------------------------------------------------------------------

let models = [];

function option(value, text) {
  const element = document.createElement("option");
  element.value = value;
  element.textContent = text;
  return element;
}

function classNames(model) {
  const classes = model.classes;
  if (Array.isArray(classes)) return classes.map(String);
  if (typeof classes === "number" && classes > 0) {
    return Array.from({ length: classes }, (_, i) => String(i));
  }
  return [];
}

function fillModelSelect(select, task) {
  const previous = select.value;
  select.replaceChildren(
    ...models.filter((m) => m.task === task).map((m) => option(m.id, `${m.id} (${m.family})`)),
  );
  if (!select.options.length) select.append(option("", `No ${task} models`));
  if ([...select.options].some((o) => o.value === previous)) select.value = previous;
}

function formatMetrics(metrics) {
  if (!metrics || typeof metrics !== "object") return "";
  return Object.entries(metrics)
    .map(([name, value]) => `${name}: ${typeof value === "number" ? +value.toFixed(4) : JSON.stringify(value)}`)
    .join(", ");
}

async function loadModels() {
  try {
    const data = await api("/v1/models");
    models = data.models || [];
    fillModelSelect($("translate-model"), "translate");
    fillModelSelect($("sample-model"), "sample");
    updateClassSelect();
    const rows = models.map((m) => {
      const row = document.createElement("tr");
      const size = `${m.image_size}×${m.image_size}×${m.channels}`;
      const classes = classNames(m);
      for (const text of [m.id, m.family, m.task, size, classes.length ? String(classes.length) : "—",
        formatMetrics(m.metrics), m.created || ""]) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      return row;
    });
    $("models-table").tBodies[0].replaceChildren(...rows);
  } catch (err) {
    report(err);
  }
}

$("models-refresh").addEventListener("click", loadModels);

// ---- translate ----------------------------------------------------------------------------

const dropZone = $("drop-zone");
const translateFile = $("translate-file");

function previewInput() {
  const file = translateFile.files[0];
  const img = $("translate-input");
  if (!file) {
    img.hidden = true;
    return;
  }
  img.src = URL.createObjectURL(file);
  img.hidden = false;
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

$("translate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const file = translateFile.files[0];
  if (!file) return report(new Error("Choose an image first."));
  const form = new FormData();
  form.append("image", file);
  form.append("model", $("translate-model").value);
  if ($("translate-seed").value !== "") form.append("seed", $("translate-seed").value);
  $("translate-output").hidden = true;
  $("translate-download").hidden = true;
  try {
    const job = await runJob(await api("/v1/translations", { method: "POST", form }));
    const url = await imageUrl(job.result.images[0]);
    $("translate-output").src = url;
    $("translate-output").hidden = false;
    $("translate-download").href = url;
    $("translate-download").download = `translation-${job.id}.png`;
    $("translate-download").hidden = false;
    say(`Translation done (job ${job.id}).`);
  } catch (err) {
    report(err);
  }
});

// ---- sample -------------------------------------------------------------------------------

let lastSeed = null;

function updateClassSelect() {
  const model = models.find((m) => m.id === $("sample-model").value);
  const names = model ? classNames(model) : [];
  $("sample-class").replaceChildren(option("", "any"), ...names.map((n, i) => option(String(i), n)));
  $("sample-class-row").hidden = names.length === 0;
}

$("sample-model").addEventListener("change", updateClassSelect);

async function sample(seed) {
  showError("");
  const body = { model: $("sample-model").value, count: Number($("sample-count").value) };
  if (seed !== null && seed !== undefined && seed !== "") body.seed = Number(seed);
  if (!$("sample-class-row").hidden && $("sample-class").value !== "") {
    body.class_label = Number($("sample-class").value);
  }
  if ($("sample-truncation").value !== "") body.truncation = Number($("sample-truncation").value);
  try {
    const job = await runJob(await api("/v1/samples", { method: "POST", json: body }));
    const urls = await Promise.all(job.result.images.map(imageUrl));
    $("sample-gallery").replaceChildren(
      ...urls.map((url, k) => {
        const link = document.createElement("a");
        link.href = url;
        link.download = `sample-${job.id}-${k}.png`;
        const img = document.createElement("img");
        img.src = url;
        img.alt = `Sample ${k + 1} of ${urls.length}`;
        link.append(img);
        return link;
      }),
    );
    lastSeed = job.params && job.params.seed !== undefined ? job.params.seed : body.seed ?? null;
    $("sample-again").disabled = lastSeed === null;
    $("sample-seed-used").textContent = lastSeed === null ? "" : `Seed: ${lastSeed}`;
    say(`${urls.length} samples done (job ${job.id}).`);
  } catch (err) {
    report(err);
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

// ---- train --------------------------------------------------------------------------------

let trainingJob = null;

async function loadDatasets(selectId) {
  try {
    const data = await api("/v1/datasets");
    const select = $("train-dataset");
    const previous = selectId || select.value;
    select.replaceChildren(
      ...(data.datasets || []).map((d) => option(d.id, `${d.name} (${d.kind}, ${d.image_count} images)`)),
    );
    if (!select.options.length) select.append(option("", "No datasets yet: upload one"));
    if ([...select.options].some((o) => o.value === previous)) select.value = previous;
  } catch (err) {
    report(err);
  }
}

$("dataset-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const form = new FormData();
  form.append("archive", $("dataset-file").files[0]);
  form.append("name", $("dataset-name").value);
  form.append("kind", $("dataset-kind").value);
  say("Uploading the dataset…");
  try {
    const dataset = await api("/v1/datasets", { method: "POST", form });
    say(`Dataset ${dataset.name} uploaded (${dataset.image_count} images).`);
    await loadDatasets(dataset.id);
  } catch (err) {
    report(err);
  }
});

function showTraining(job) {
  $("train-progress").value = job.progress || 0;
  $("train-detail").textContent = describe(job);
  $("train-cancel").disabled = TERMINAL.has(job.status);
}

$("train-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  showError("");
  const body = {
    family: $("train-family").value,
    dataset: $("train-dataset").value,
    config: { steps: Number($("train-steps").value), image_size: Number($("train-size").value) },
  };
  if ($("train-name").value) body.name = $("train-name").value;
  try {
    const job = await api("/v1/training-runs", { method: "POST", json: body });
    trainingJob = job.id;
    $("train-progress-box").hidden = false;
    showTraining(job);
    say(`Training run started (job ${job.id}).`);
    const done = await followJob(job.id, showTraining);
    if (done.status === "succeeded") {
      const model = done.result && done.result.model;
      say(`Training finished${model ? `: model ${typeof model === "string" ? model : model.id}` : ""}.`);
      loadModels();
    } else {
      report(jobFailure(done));
    }
  } catch (err) {
    report(err);
  }
});

$("train-cancel").addEventListener("click", async () => {
  if (!trainingJob) return;
  try {
    await api(`/v1/jobs/${encodeURIComponent(trainingJob)}`, { method: "DELETE" });
    say(`Cancelling job ${trainingJob}…`);
  } catch (err) {
    report(err);
  }
});

// ---- jobs ---------------------------------------------------------------------------------

async function openImage(event) {
  event.preventDefault();
  try {
    window.open(await imageUrl(event.currentTarget.dataset.src), "_blank", "noopener");
  } catch (err) {
    report(err);
  }
}

async function loadJobs() {
  try {
    const data = await api("/v1/jobs");
    const items = (data.jobs || []).map((job) => {
      const item = document.createElement("li");
      const title = document.createElement("div");
      title.textContent = `${job.kind} — ${describe(job)}`;
      item.append(title);
      if (job.error && job.error.message) {
        const error = document.createElement("div");
        error.className = "error-text";
        error.textContent = `Error: ${job.error.message}`;
        item.append(error);
      }
      const images = (job.result && job.result.images) || [];
      images.forEach((src, k) => {
        const link = document.createElement("a");
        link.href = src;
        link.dataset.src = src;
        link.textContent = `image ${k + 1}`;
        link.addEventListener("click", openImage);
        item.append(link);
      });
      return item;
    });
    if (!items.length) {
      const empty = document.createElement("li");
      empty.textContent = "No jobs yet.";
      items.push(empty);
    }
    $("jobs-list").replaceChildren(...items);
  } catch (err) {
    report(err);
  }
}

$("jobs-refresh").addEventListener("click", loadJobs);

// ---- start --------------------------------------------------------------------------------

loadModels();
