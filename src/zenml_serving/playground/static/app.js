// The playground page: read /info, build the form, invoke sync or async, follow a job's
// events, cancel it, and keep this tab's recent jobs (sessionStorage) re-openable.

import { ApiClient, curlLine } from "./api.js";
import { SchemaForm, routeServerErrors } from "./form.js";
import { copyText, renderOutputs } from "./render.js";
import { StreamError, followEventStream } from "./sse.js";

const JOBS_ITEM = "zenml-serving.playground.jobs";
const MAX_JOBS = 20;
const FINAL_EVENTS = new Set(["job.completed", "job.failed", "job.cancelled", "job.timed_out"]);
const FINAL_STATUSES = new Set(["completed", "failed", "cancelled", "timed_out", "expired"]);
const STEP_LABELS = {
  pending: "pending",
  running: "running",
  completed: "completed",
  failed: "failed",
  skipped: "not run",
  cancelled: "cancelled",
  timed_out: "timed out",
  unknown: "no report",
};

const $ = (id) => document.getElementById(id);

const state = {
  info: null,
  form: null,
  /** The run on screen: {kind: "sync"|"async", jobId?, controller, cancelling?} or null. */
  run: null,
  /** Which job the run panel shows (async), for the recent list's highlight. */
  shownJob: null,
  events: 0,
  /** Chunks shown, the step whose chunks were last appended, chunks received per step. */
  chunks: 0,
  chunkStep: null,
  chunksOf: {},
  chunkGap: false,
};

const api = new ApiClient(document.baseURI, askForKey);

// ---------------------------------------------------------------- formatting helpers

function formatMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "";
  if (ms < 1) return `${ms.toFixed(3)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

function shortId(id) {
  return String(id).slice(0, 8);
}

function setStatus(text, tone = "") {
  const node = $("run-status");
  node.textContent = text;
  node.dataset.tone = tone;
}

// ---------------------------------------------------------------- auth

function askForKey(rejected, challenge) {
  const dialog = $("auth-dialog");
  const input = $("auth-key");
  $("auth-message").textContent = rejected
    ? "The service rejected this key (401). Enter the right key; it is kept in this tab only."
    : "This service needs an API key. It is kept in this tab only (sessionStorage) and sent as " +
      "\"Authorization: Bearer …\" on every call." + (challenge ? ` (${challenge})` : "");
  input.value = "";
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const key = dialog.returnValue === "ok" ? input.value.trim() : "";
      input.value = "";
      resolve(key || null);
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
  });
}

function showAuthState(hasKey) {
  $("auth-state").hidden = !hasKey;
}

// ---------------------------------------------------------------- recent jobs (sessionStorage)

function loadJobs() {
  try {
    const jobs = JSON.parse(sessionStorage.getItem(JOBS_ITEM) || "[]");
    return Array.isArray(jobs) ? jobs : [];
  } catch {
    return [];
  }
}

function saveJobs(jobs) {
  try {
    sessionStorage.setItem(JOBS_ITEM, JSON.stringify(jobs.slice(0, MAX_JOBS)));
  } catch {
    // storage full or disabled: the list is only a convenience
  }
}

function upsertJob(jobId, patch) {
  const jobs = loadJobs();
  const index = jobs.findIndex((j) => j.job_id === jobId);
  if (index >= 0) jobs[index] = { ...jobs[index], ...patch };
  else jobs.unshift({ job_id: jobId, ...patch });
  saveJobs(jobs);
  renderRecent();
}

function renderRecent() {
  const jobs = loadJobs();
  const list = $("recent-jobs");
  list.replaceChildren();
  $("recent-empty").hidden = jobs.length > 0;
  for (const job of jobs) {
    const item = document.createElement("li");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "job";
    button.dataset.job = job.job_id;
    button.dataset.status = job.status || "queued";
    if (job.job_id === state.shownJob) button.setAttribute("aria-current", "true");
    const id = document.createElement("code");
    id.textContent = shortId(job.job_id);
    const status = document.createElement("span");
    status.className = "badge";
    status.dataset.status = job.status || "queued";
    status.textContent = job.status || "queued";
    const when = document.createElement("span");
    when.className = "muted";
    when.textContent = job.created_at ? new Date(job.created_at).toLocaleTimeString() : "";
    const params = document.createElement("span");
    params.className = "job-params muted";
    params.textContent = JSON.stringify(job.parameters || {});
    button.append(id, " ", status, " ", when, params);
    button.setAttribute("aria-label", `Re-open job ${job.job_id} (${job.status || "queued"})`);
    button.addEventListener("click", () => reopen(job.job_id));
    item.append(button);
    list.append(item);
  }
}

async function refreshRecentStatuses() {
  for (const job of loadJobs()) {
    if (FINAL_STATUSES.has(job.status)) continue;
    const { response, body } = await api.json(`jobs/${encodeURIComponent(job.job_id)}`);
    if (response.status === 404) upsertJob(job.job_id, { status: "expired" });
    else if (response.ok && body) upsertJob(job.job_id, { status: body.status });
  }
}

// ---------------------------------------------------------------- steps panel

function levels(steps) {
  const byName = new Map(steps.map((s) => [s.name, s]));
  const memo = new Map();
  const level = (name, seen = new Set()) => {
    if (memo.has(name)) return memo.get(name);
    if (seen.has(name)) return 0;
    seen.add(name);
    const up = byName.get(name)?.upstream || [];
    const value = up.length ? 1 + Math.max(...up.map((u) => level(u, seen))) : 0;
    memo.set(name, value);
    return value;
  };
  return new Map(steps.map((s) => [s.name, level(s.name)]));
}

function renderSteps(steps) {
  const list = $("steps");
  list.replaceChildren();
  const depth = levels(steps);
  for (const step of steps) {
    const li = document.createElement("li");
    li.className = "step";
    li.dataset.step = step.name;
    li.dataset.status = "pending";
    li.style.setProperty("--level", String(depth.get(step.name) || 0));
    const head = document.createElement("div");
    head.className = "step-head";
    const dot = document.createElement("span");
    dot.className = "step-dot";
    dot.setAttribute("aria-hidden", "true");
    const name = document.createElement("span");
    name.className = "step-name";
    name.textContent = step.name;
    const status = document.createElement("span");
    status.className = "step-status badge";
    status.textContent = STEP_LABELS.pending;
    const duration = document.createElement("span");
    duration.className = "step-duration";
    head.append(dot, name, status, duration);
    const detail = document.createElement("div");
    detail.className = "step-detail muted";
    const params = Object.values(step.inputs || {})
      .filter((b) => b.from === "parameter")
      .map((b) => b.parameter);
    const bits = [];
    bits.push(step.upstream?.length ? `after ${step.upstream.join(", ")}` : "first");
    if (params.length) bits.push(`parameters: ${params.join(", ")}`);
    if (step.retries) bits.push(`retries: ${step.retries}`);
    detail.textContent = bits.join(" · ");
    const error = document.createElement("div");
    error.className = "step-error";
    error.hidden = true;
    li.append(head, detail, error);
    list.append(li);
  }
}

function stepItem(name) {
  return [...$("steps").children].find((li) => li.dataset.step === name) || null;
}

function setStep(name, status, { duration_ms: durationMs, error, attempts } = {}) {
  const li = stepItem(name);
  if (!li) return;
  li.dataset.status = status;
  li.querySelector(".step-status").textContent = STEP_LABELS[status] || status;
  const duration = li.querySelector(".step-duration");
  if (durationMs !== undefined && durationMs !== null) {
    duration.textContent = formatMs(durationMs) + (attempts > 1 ? ` (${attempts} attempts)` : "");
  } else if (status === "pending" || status === "running") {
    duration.textContent = "";
  }
  const box = li.querySelector(".step-error");
  if (error) {
    box.textContent = `${error.type || "Error"}: ${error.message || ""}`;
    box.hidden = false;
  } else if (status !== "failed") {
    box.hidden = true;
    box.textContent = "";
  }
}

function resetRun() {
  for (const li of $("steps").children) setStep(li.dataset.step, "pending");
  $("error-box").hidden = true;
  $("outputs").replaceChildren();
  const p = document.createElement("p");
  p.className = "muted";
  p.textContent = "Waiting for the outputs…";
  $("outputs").append(p);
  $("outputs-meta").textContent = "";
  $("events").replaceChildren();
  resetChunks();
  state.events = 0;
  $("events-count").textContent = "(0)";
  $("job-label").textContent = "";
  $("parameters-error").hidden = true;
  $("capture-error").hidden = true;
  state.form?.clearErrors();
}

/** The run ended: pending steps did not run; a running one ends as `running` says. */
function finishSteps(running = "unknown") {
  for (const li of $("steps").children) {
    if (li.dataset.status === "pending") setStep(li.dataset.step, "skipped");
    if (li.dataset.status === "running") setStep(li.dataset.step, running);
  }
}

function showError(title, detail, tone = "error") {
  $("error-title").textContent = title;
  $("error-detail").textContent = detail || "";
  $("error-box").dataset.tone = tone;
  $("error-box").hidden = false;
}

function showJobError(status, error) {
  const where = error.step ? `step '${error.step}': ` : "";
  showError(`Job ${status.replace("_", " ")}`, `${where}${error.type}: ${error.message}`, status === "cancelled" ? "warn" : "error");
}

function showOutputs(outputs, durationMs) {
  renderOutputs(outputs, $("outputs"));
  $("outputs-meta").textContent = durationMs !== undefined && durationMs !== null ? `in ${formatMs(durationMs)}` : "";
}

/** Chunks a step emit()s, appended as they arrive: text as is, anything else as JSON. */
function resetChunks() {
  state.chunks = 0;
  state.chunkStep = null;
  state.chunksOf = {};
  state.chunkGap = false;
  $("partial").textContent = "";
  $("partial-meta").textContent = "";
  $("partial-box").hidden = true;
}

function appendChunk(event) {
  const box = $("partial");
  let text = typeof event.chunk === "string" ? event.chunk : `${JSON.stringify(event.chunk ?? null)}\n`;
  if (state.chunkStep !== event.step) {
    if (state.chunkStep !== null && !box.textContent.endsWith("\n")) text = `\n${text}`;
    text = `[${event.step}] ${text}`;
    state.chunkStep = event.step;
  }
  state.chunks += 1;
  const received = (state.chunksOf[event.step] || 0) + 1;
  state.chunksOf[event.step] = received;
  if (event.seq !== undefined && event.seq !== received) state.chunkGap = true;
  box.append(document.createTextNode(text));
  const gap = state.chunkGap ? " (some dropped or missed: see the numbers in Events)" : "";
  $("partial-meta").textContent = `${state.chunks} chunk${state.chunks === 1 ? "" : "s"}${gap}`;
  $("partial-box").hidden = false;
  box.scrollTop = box.scrollHeight;
}

function logEvent(event) {
  state.events += 1;
  $("events-count").textContent = `(${state.events})`;
  const li = document.createElement("li");
  li.dataset.type = event.type;
  const at = event.at ? new Date(event.at * 1000).toLocaleTimeString() : "";
  const bits = [`#${event.id ?? "?"}`, event.type];
  if (event.step) bits.push(event.step);
  if (event.seq !== undefined) bits.push(`chunk ${event.seq}`);
  if (event.duration_ms !== undefined) bits.push(formatMs(event.duration_ms));
  li.textContent = `${bits.join("  ")}  ${at}`;
  $("events").append(li);
}

// ---------------------------------------------------------------- request building

function mode() {
  return document.querySelector('input[name="mode"]:checked')?.value || "sync";
}

function captureOverride() {
  const select = $("capture-mode");
  const rate = $("capture-sample-rate");
  if (!select.value) return { ok: true, value: undefined };
  const value = { mode: select.value };
  if (select.value === "sampled" && !rate.hidden) {
    if (rate.validity.badInput) return { ok: false, error: "sample rate: not a number" };
    if (rate.value.trim() !== "") value.sample_rate = Number(rate.value);
  }
  return { ok: true, value };
}

/** The exact request the Run button sends, or the client-side errors that stop it. */
function buildRequest() {
  const collected = state.form.collect();
  const capture = captureOverride();
  const body = { parameters: collected.values };
  if (capture.value) body.capture_override = capture.value;
  // The mode is always named: a service answering ZenML's client (ZENML_SERVING_API=zenml)
  // gives the native answers this page reads only to requests that name it.
  const path = mode() === "async" ? "invoke?mode=async" : "invoke?mode=sync";
  return { ok: collected.ok && capture.ok, errors: collected.errors, captureError: capture.error, path, url: api.url(path), body };
}

function updateCurl() {
  if (!state.form) return;
  const request = buildRequest();
  const area = $("curl-line");
  area.value = request.ok
    ? curlLine({ url: request.url, body: request.body, withKey: Boolean(api.key) })
    : "# fix the marked fields to get a curl line";
  area.rows = Math.min(8, Math.max(2, Math.ceil(area.value.length / 60)));
}

// ---------------------------------------------------------------- running

function setRunning(run) {
  state.run = run;
  $("run").disabled = Boolean(run) || !state.info;
  $("cancel").disabled = !run;
}

function showProblem(response, problem) {
  const title = problem?.title || `HTTP ${response.status}`;
  let detail = problem?.detail || "";
  if (response.status === 429) {
    const retry = response.headers.get("Retry-After");
    detail += retry ? ` (Retry-After: ${retry} s)` : "";
  }
  if (response.status === 401) detail = detail || "an API key is required";
  showError(`${title} (${response.status})`, detail);
  setStatus(`${title}`, "error");
}

function showValidation(problem) {
  const routed = routeServerErrors(problem?.errors);
  const unplaced = state.form.showErrors(routed.params);
  const other = [...routed.other, ...Object.entries(unplaced).map(([k, m]) => `${k}: ${m.join("; ")}`)];
  $("parameters-error").textContent = other.join("; ");
  $("parameters-error").hidden = other.length === 0;
  $("capture-error").textContent = routed.capture.join("; ");
  $("capture-error").hidden = routed.capture.length === 0;
  for (const li of $("steps").children) setStep(li.dataset.step, "skipped");
  $("outputs").replaceChildren();
  setStatus("Invalid request: see the marked fields", "error");
  if (!state.form.focusFirstError()) {
    (routed.capture.length ? $("capture-mode") : $("run")).focus();
  }
}

async function onRun(event) {
  event.preventDefault();
  if (state.run || !state.form) return;
  const request = buildRequest();
  state.form.clearErrors();
  $("parameters-error").hidden = true;
  $("capture-error").hidden = true;
  if (!request.ok) {
    state.form.showErrors(request.errors);
    if (request.captureError) {
      $("capture-error").textContent = request.captureError;
      $("capture-error").hidden = false;
    }
    setStatus("Fix the marked fields first", "error");
    if (!state.form.focusFirstError()) $("capture-sample-rate").focus();
    return;
  }
  resetRun();
  if (mode() === "async") await runAsync(request);
  else await runSync(request);
}

async function runSync(request) {
  const controller = new AbortController();
  setRunning({ kind: "sync", controller });
  state.shownJob = null;
  renderRecent();
  $("job-label").textContent = "(sync)";
  setStatus("Running (sync: step results arrive with the response)…", "busy");
  try {
    const { response, body } = await api.json(request.path, { method: "POST", body: request.body, signal: controller.signal });
    if (response.ok) {
      for (const li of $("steps").children) setStep(li.dataset.step, "skipped");
      for (const step of body.steps || []) setStep(step.name, step.status, step);
      showOutputs(body.outputs, body.duration_ms);
      $("job-label").textContent = `(sync, invocation ${shortId(body.invocation_id)})`;
      setStatus(`Completed in ${formatMs(body.duration_ms)}`, "ok");
    } else if (response.status === 422) {
      showValidation(body);
    } else if (body?.step) {
      for (const li of $("steps").children) setStep(li.dataset.step, "unknown");
      // detail reads "step 'x' raised ValueError: message": show the message once.
      const message = String(body.detail || "").replace(/^step '[^']*' raised [^:]*: /, "");
      const error = { type: body.error_type || body.title, message };
      setStep(body.step, response.status === 499 ? "skipped" : "failed", { error: response.status === 499 ? undefined : error });
      $("outputs").replaceChildren();
      showProblem(response, body);
    } else {
      finishSteps();
      $("outputs").replaceChildren();
      showProblem(response, body);
    }
  } catch (error) {
    finishSteps();
    $("outputs").replaceChildren();
    if (controller.signal.aborted) {
      setStatus("Cancelled: the request was aborted, so the service stopped the invocation", "warn");
    } else {
      showError("Request failed", String(error?.message || error));
      setStatus("Request failed", "error");
    }
  } finally {
    setRunning(null);
  }
}

async function runAsync(request) {
  setStatus("Submitting…", "busy");
  const { response, body } = await api.json(request.path, { method: "POST", body: request.body });
  if (response.status === 422) {
    showValidation(body);
    return;
  }
  if (response.status !== 202) {
    finishSteps();
    showProblem(response, body);
    return;
  }
  upsertJob(body.job_id, {
    status: body.status,
    created_at: Date.now(),
    parameters: request.body.parameters,
    capture_override: request.body.capture_override,
    last_event_id: "",
  });
  await follow(body.job_id, 0);
}

function applyEvent(jobId, event) {
  logEvent(event);
  const patch = {};
  if (event.id !== undefined) patch.last_event_id = String(event.id);
  switch (event.type) {
    case "job.queued":
      patch.status = "queued";
      setStatus(`Job ${shortId(jobId)} queued`, "busy");
      break;
    case "job.started":
      patch.status = "running";
      setStatus(`Job ${shortId(jobId)} running`, "busy");
      break;
    case "step.started":
      setStep(event.step, "running");
      break;
    case "step.completed":
      setStep(event.step, "completed", event);
      break;
    case "step.failed":
      setStep(event.step, "failed", event);
      break;
    case "step.chunk":
      appendChunk(event);
      break;
    case "job.completed":
      patch.status = "completed";
      finishSteps();
      showOutputs(event.outputs, event.duration_ms);
      setStatus(`Job ${shortId(jobId)} completed${event.duration_ms ? ` in ${formatMs(event.duration_ms)}` : ""}`, "ok");
      break;
    default:
      if (FINAL_EVENTS.has(event.type)) {
        const status = event.type.slice(4);
        patch.status = status;
        if (status === "failed" && event.error?.step) setStep(event.error.step, "failed", { error: event.error });
        finishSteps(status === "failed" ? "unknown" : status);
        $("outputs").replaceChildren();
        if (event.error) showJobError(status, event.error);
        setStatus(`Job ${shortId(jobId)} ${status.replace("_", " ")}`, status === "cancelled" ? "warn" : "error");
      }
  }
  upsertJob(jobId, patch);
}

/** Show job `jobId` and follow its events after id `after` until its final event. */
async function follow(jobId, after) {
  const controller = new AbortController();
  setRunning({ kind: "async", jobId, controller });
  state.shownJob = jobId;
  renderRecent();
  $("job-label").textContent = `(job ${shortId(jobId)})`;
  const query = after ? `?after=${encodeURIComponent(after)}` : "";
  try {
    await followEventStream(api.url(`stream/${encodeURIComponent(jobId)}`) + query, {
      fetch: (url, init) => api.fetch(url, init),
      signal: controller.signal,
      isFinal: (event) => FINAL_EVENTS.has(event.type),
      onState: (s) => {
        if (s === "reconnecting") setStatus(`Job ${shortId(jobId)}: stream dropped, reconnecting…`, "busy");
      },
      onEvent: (sse) => {
        if (sse.type === "heartbeat") return;
        let event;
        try {
          event = JSON.parse(sse.data);
        } catch {
          return;
        }
        applyEvent(jobId, event);
      },
    });
  } catch (error) {
    if (error instanceof StreamError && error.response.status === 404) {
      upsertJob(jobId, { status: "expired" });
      showError("Job not found", "the service no longer has this job (finished jobs expire)");
      setStatus(`Job ${shortId(jobId)} expired`, "error");
    } else {
      // Streaming failed: show where the job is now.
      await showJobView(jobId);
    }
  } finally {
    if (state.run?.controller === controller) setRunning(null);
  }
}

async function cancelRun() {
  const run = state.run;
  if (!run) return;
  if (run.kind === "sync") {
    run.controller.abort();
    return;
  }
  $("cancel").disabled = true;
  setStatus(`Cancelling job ${shortId(run.jobId)}…`, "busy");
  const { response, body } = await api.json(`jobs/${encodeURIComponent(run.jobId)}/cancel`, { method: "POST" });
  if (!response.ok) {
    showProblem(response, body);
    if (state.run === run) $("cancel").disabled = false;
  }
  // The stream brings job.cancelled (after the running step, if any, returns).
}

/** GET /jobs/{id} and draw it; returns the view (null if unknown). */
async function showJobView(jobId) {
  const { response, body } = await api.json(`jobs/${encodeURIComponent(jobId)}`);
  if (response.status === 404) {
    upsertJob(jobId, { status: "expired" });
    showError("Job not found", "the service no longer has this job (finished jobs expire)");
    setStatus(`Job ${shortId(jobId)} expired`, "error");
    return null;
  }
  if (!response.ok) {
    showProblem(response, body);
    return null;
  }
  for (const step of body.steps || []) setStep(step.name, step.status, step);
  upsertJob(jobId, { status: body.status });
  if (body.status === "completed") {
    finishSteps();
    showOutputs(body.outputs, body.duration_ms);
    setStatus(`Job ${shortId(jobId)} completed in ${formatMs(body.duration_ms)}`, "ok");
  } else if (FINAL_STATUSES.has(body.status)) {
    finishSteps(body.status === "failed" ? "unknown" : body.status);
    $("outputs").replaceChildren();
    if (body.error) {
      if (body.error.step && body.status === "failed") setStep(body.error.step, "failed", { error: body.error });
      showJobError(body.status, body.error);
    }
    setStatus(`Job ${shortId(jobId)} ${body.status.replace("_", " ")}`, body.status === "cancelled" ? "warn" : "error");
  } else {
    setStatus(`Job ${shortId(jobId)} ${body.status}`, "busy");
  }
  return body;
}

async function reopen(jobId) {
  if (state.run?.kind === "sync") {
    setStatus("Wait for the running request (or cancel it) first", "warn");
    return;
  }
  state.run?.controller.abort();
  setRunning(null);
  const job = loadJobs().find((j) => j.job_id === jobId);
  if (job?.parameters) state.form.fill(job.parameters);
  $("capture-mode").value = job?.capture_override?.mode || "";
  $("capture-sample-rate").value = job?.capture_override?.sample_rate ?? "";
  syncSampleRate();
  document.querySelector('input[name="mode"][value="async"]').checked = true;
  updateCurl();
  resetRun();
  state.shownJob = jobId;
  renderRecent();
  $("job-label").textContent = `(job ${shortId(jobId)})`;
  const view = await showJobView(jobId);
  if (view && !FINAL_STATUSES.has(view.status)) {
    await follow(jobId, Number(job?.last_event_id || 0));
  }
}

// ---------------------------------------------------------------- start

function syncSampleRate() {
  const sampled = $("capture-mode").value === "sampled";
  for (const node of document.querySelectorAll(".sample-rate")) node.hidden = !sampled;
}

function renderInfo(info) {
  const pipeline = info.pipeline || {};
  const snapshot = info.snapshot || {};
  $("pipeline-name").textContent = pipeline.name || "(unnamed pipeline)";
  document.title = `${pipeline.name} · zenml-serving playground`;
  $("snapshot-id").textContent = snapshot.id || "";
  $("snapshot-name").textContent = snapshot.name ? `(${snapshot.name})` : "";
  $("zenml-version").textContent = snapshot.zenml_version || "?";
  renderSteps(info.steps || []);
  const outputs = (pipeline.outputs || []).map((o) => o.name);
  $("outputs-meta").textContent = outputs.length ? `(${outputs.join(", ")})` : "";
  state.form = new SchemaForm(pipeline.parameters_schema || {}, $("fields"), updateCurl);
}

async function loadInfo() {
  $("load-error").hidden = true;
  let result;
  try {
    result = await api.json("info");
  } catch (error) {
    result = { response: { ok: false, status: 0 }, body: { detail: String(error) } };
  }
  if (!result.response.ok) {
    const banner = $("load-error");
    banner.replaceChildren(`Could not load /info (${result.response.status || "network error"}): ${result.body?.detail || result.body?.title || ""} `);
    const retry = document.createElement("button");
    retry.type = "button";
    retry.textContent = "Retry";
    retry.addEventListener("click", loadInfo);
    banner.append(retry);
    banner.hidden = false;
    $("pipeline-name").textContent = "Unavailable";
    return;
  }
  state.info = result.body;
  renderInfo(result.body);
  setRunning(null);
  updateCurl();
  refreshRecentStatuses();
}

function start() {
  api.onKeyChange = (hasKey) => {
    showAuthState(hasKey);
    updateCurl();
  };
  showAuthState(Boolean(api.key));
  $("forget-key").addEventListener("click", () => { api.key = ""; });
  $("run-form").addEventListener("submit", onRun);
  $("cancel").addEventListener("click", cancelRun);
  $("capture-mode").addEventListener("change", () => { syncSampleRate(); updateCurl(); });
  $("capture-sample-rate").addEventListener("input", updateCurl);
  for (const radio of document.querySelectorAll('input[name="mode"]')) radio.addEventListener("change", updateCurl);
  $("copy-curl").addEventListener("click", () => copyText($("curl-line").value, null, $("copy-state")));
  renderRecent();
  document.body.dataset.ready = "loading";
  loadInfo().finally(() => { document.body.dataset.ready = state.info ? "true" : "error"; });
}

start();
