// The page: a plugin picker and its generated form, the inputs the plugin declares (pictures, a painted mask,
// several weighted images for fusion, a depth map or a photo for ControlNet), and the runs: a queue of this
// browser's jobs with progress from their events, and a gallery of results. Jobs are kept by id in this browser,
// so a reload finds them again.
import * as api from "./api.js";
import { ParamForm } from "./form.js";
import { MaskEditor } from "./mask.js";

const $ = (id) => document.getElementById(id);
const jobsKey = "kandinsky.jobs";
const pluginKey = "kandinsky.plugin";
const maxKeptJobs = 50;

const state = {
  plugins: [],
  plugin: null,
  // input key -> [{ id, url, width, height, weight }] (one item unless the input is repeated)
  inputs: {},
  promptWeight: 0.3,
  // ControlNet: the depth the server estimated from the photo (an image id), shown beside it.
  estimatedDepth: null,
  jobs: new Map(),
  followers: new Map(),
};

const form = new ParamForm($("params"));
const mask = new MaskEditor({
  stage: $("stage"),
  viewport: $("viewport"),
  picture: $("picture"),
  canvas: $("mask"),
  onChange: () => {
    $("brush-size").value = mask.size;
    $("brush-size-value").textContent = mask.size;
  },
});

// MARK: plugins and inputs

function pluginHasMask(plugin) {
  return plugin.inputs.some((input) => input.kind === "mask");
}

function choosePlugin(id) {
  const plugin = state.plugins.find((candidate) => candidate.id === id) || state.plugins[0];
  state.plugin = plugin;
  localStorage.setItem(pluginKey, plugin.id);
  $("plugin").value = plugin.id;
  $("plugin-description").textContent = plugin.description;
  form.show(plugin);
  for (const key of Object.keys(state.inputs)) {
    if (!plugin.inputs.some((input) => input.key === key)) delete state.inputs[key];
  }
  renderInputs();
  $("mask-tools").hidden = !pluginHasMask(plugin);
  $("mask").hidden = !pluginHasMask(plugin);
  $("run-error").textContent = "";
}

function renderInputs() {
  const container = $("inputs");
  container.replaceChildren();
  const plugin = state.plugin;
  const visible = plugin.inputs.filter((input) => input.kind !== "mask");
  if (!visible.length && !pluginHasMask(plugin)) {
    container.textContent = "This plugin takes no pictures.";
    return;
  }
  if (plugin.id === "fusion") container.append(promptWeightSlot());
  for (const input of visible) container.append(inputSlot(input));
  if (pluginHasMask(plugin)) {
    const note = document.createElement("p");
    note.className = "help";
    note.textContent = "Mask: paint over the picture in the middle (white = repaint), or import one with the toolbar.";
    container.append(note);
  }
}

function promptWeightSlot() {
  const slot = document.createElement("div");
  slot.className = "input-slot";
  const label = document.createElement("label");
  label.htmlFor = "weight-prompt";
  label.textContent = `Prompt weight: ${state.promptWeight}`;
  const slider = weightSlider("weight-prompt", state.promptWeight, (value) => {
    state.promptWeight = value;
    label.textContent = `Prompt weight: ${value}`;
  });
  const help = document.createElement("span");
  help.className = "help";
  help.textContent = "the prompt is mixed as one more item; empty prompt: images only";
  slot.append(label, slider, help);
  return slot;
}

function weightSlider(id, value, onInput) {
  const slider = document.createElement("input");
  slider.type = "range";
  slider.className = "weight";
  slider.id = id;
  slider.min = "0";
  slider.max = "1";
  slider.step = "0.05";
  slider.value = String(value);
  slider.addEventListener("input", () => onInput(Number(slider.value)));
  return slider;
}

function inputSlot(input) {
  const slot = document.createElement("div");
  slot.className = "input-slot";
  slot.dataset.input = input.key;
  const id = `input-${input.key}`;
  const chooser = document.createElement("label");
  chooser.className = "file-button";
  chooser.textContent = input.repeated ? `Add ${input.key}s` : `Choose ${input.key}`;
  const file = document.createElement("input");
  file.type = "file";
  file.id = id;
  file.accept = "image/png,image/jpeg";
  file.multiple = input.repeated;
  file.addEventListener("change", () => addFiles(input, [...file.files]));
  chooser.append(file);
  const help = document.createElement("span");
  help.className = "help";
  help.textContent = `${input.help}${input.optional ? " (optional)" : ""}; drop files here`;
  const error = document.createElement("span");
  error.className = "error";
  error.id = `${id}-error`;
  error.setAttribute("role", "alert");
  const thumbs = document.createElement("div");
  thumbs.className = "thumbs";
  const items = state.inputs[input.key] || [];
  items.forEach((item, index) => thumbs.append(thumbnail(input, item, index)));
  if (state.plugin.id === "controlnet-depth" && input.key === "image" && state.estimatedDepth) {
    const figure = document.createElement("figure");
    const image = document.createElement("img");
    image.src = api.imageURL(state.estimatedDepth);
    image.alt = "depth estimated by the server from the photo";
    const caption = document.createElement("figcaption");
    caption.textContent = "estimated depth";
    figure.append(image, caption);
    thumbs.append(figure);
  }
  slot.append(chooser, " ", help, error, thumbs);
  slot.addEventListener("dragover", (event) => {
    event.preventDefault();
    slot.classList.add("dragging");
  });
  slot.addEventListener("dragleave", () => slot.classList.remove("dragging"));
  slot.addEventListener("drop", (event) => {
    event.preventDefault();
    slot.classList.remove("dragging");
    addFiles(input, [...event.dataTransfer.files]);
  });
  return slot;
}

function thumbnail(input, item, index) {
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  image.src = item.url;
  image.alt = `${input.key} ${index + 1}`;
  const caption = document.createElement("figcaption");
  caption.textContent = `${item.width}x${item.height}`;
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Remove";
  remove.setAttribute("aria-label", `remove ${input.key} ${index + 1}`);
  remove.addEventListener("click", () => {
    state.inputs[input.key].splice(index, 1);
    renderInputs();
  });
  figure.append(image, caption, remove);
  if (input.repeated) {
    const label = document.createElement("label");
    label.htmlFor = `weight-${input.key}-${index}`;
    label.textContent = `weight ${item.weight}`;
    const slider = weightSlider(`weight-${input.key}-${index}`, item.weight, (value) => {
      item.weight = value;
      label.textContent = `weight ${value}`;
    });
    figure.append(label, slider);
  }
  return figure;
}

async function addFiles(input, files) {
  const error = $(`input-${input.key}-error`);
  error.textContent = "";
  for (const file of files) {
    try {
      const record = await api.uploadImage(file);
      await useImage(input.key, record);
    } catch (failure) {
      error.textContent = `${file.name}: ${failure.message}`;
      return;
    }
  }
}

/** Makes an uploaded or resulting image (its record) the value of an input. */
async function useImage(key, record) {
  const input = state.plugin.inputs.find((candidate) => candidate.key === key);
  if (!input) return;
  const item = { id: record.id, url: api.imageURL(record.id), width: record.width, height: record.height, weight: 0.5 };
  state.inputs[key] = input.repeated ? [...(state.inputs[key] || []), item] : [item];
  if (key === "image" || (key === "depth" && !state.inputs.image)) {
    await mask.load(item.url);
    $("stage-hint").textContent = pluginHasMask(state.plugin) ? "Paint the part to repaint." : "";
  }
  if (state.plugin.id === "controlnet-depth" && key === "image") estimateDepth(item.id);
  renderInputs();
}

/** ControlNet from a photo: the server's depth estimate, shown beside the photo (the plugin estimates it again). */
async function estimateDepth(imageID) {
  state.estimatedDepth = null;
  try {
    const job = await api.submitJob("depth", {}, { image: imageID });
    trackJob(job, { silent: true, onSuccess: (done) => {
      state.estimatedDepth = done.results[0];
      if (state.plugin.id === "controlnet-depth") renderInputs();
    } });
  } catch (failure) {
    $("input-image-error").textContent = `depth estimate: ${failure.message}`;
  }
}

// MARK: running

async function run() {
  const plugin = state.plugin;
  form.clearErrors();
  $("run-error").textContent = "";
  for (const element of document.querySelectorAll(".input-slot .error")) element.textContent = "";
  const params = form.values();
  const inputs = {};
  for (const input of plugin.inputs) {
    const items = state.inputs[input.key] || [];
    if (input.repeated) items.forEach((item, index) => (inputs[`${input.key}${index + 1}`] = item.id));
    else if (items.length) inputs[input.key] = items[0].id;
  }
  if (plugin.id === "fusion") {
    const images = state.inputs.image || [];
    const weights = images.map((item) => item.weight);
    if ((params.prompt || "").trim() !== "") weights.unshift(state.promptWeight);
    params.weights = `[${weights.join(", ")}]`;
  }
  $("run").disabled = true;
  try {
    if (pluginHasMask(plugin)) {
      if (!mask.hasPicture) throw new api.APIError(0, "choose the picture to edit first", "image");
      if (mask.isEmpty()) throw new api.APIError(0, "paint the part to repaint on the picture first", "mask");
      inputs.mask = (await api.uploadImage(await mask.exportPNG())).id;
    }
    const job = await api.submitJob(plugin.id, params, inputs);
    rememberJob(job.id);
    trackJob(job);
  } catch (failure) {
    showRunError(failure);
  } finally {
    $("run").disabled = false;
  }
}

function showRunError(failure) {
  const field = failure.field;
  if (field && form.showError(field, failure.message)) return;
  const inputError = field && $(`input-${field.replace(/\d+$/, "")}-error`);
  if (inputError) {
    inputError.textContent = failure.message;
    return;
  }
  $("run-error").textContent = failure.message;
}

function storedJobs() {
  try {
    return JSON.parse(localStorage.getItem(jobsKey) || "[]");
  } catch {
    return [];
  }
}

function rememberJob(id) {
  const ids = [id, ...storedJobs().filter((known) => known !== id)].slice(0, maxKeptJobs);
  localStorage.setItem(jobsKey, JSON.stringify(ids));
}

function forgetJob(id) {
  localStorage.setItem(jobsKey, JSON.stringify(storedJobs().filter((known) => known !== id)));
  state.jobs.delete(id);
  document.querySelector(`[data-job="${id}"]`)?.remove();
}

/** Shows a job in the queue (or, once it has ended, in the gallery) and follows its events until it ends. */
function trackJob(job, { silent = false, onSuccess = null } = {}) {
  if (!silent) state.jobs.set(job.id, job);
  const update = (latest) => {
    if (!silent) {
      state.jobs.set(latest.id, latest);
      renderJob(latest);
    }
    if (api.endedStates.includes(latest.state)) {
      const follower = state.followers.get(latest.id);
      state.followers.delete(latest.id);
      follower?.();
      if (latest.state === "succeeded" && onSuccess) onSuccess(latest);
      // A fresh result of a plugin without a mask is shown in the middle (pictures being masked stay).
      if (latest.state === "succeeded" && follower && !silent && !pluginHasMask(state.plugin)) {
        mask.load(api.imageURL(latest.results[0]));
      }
    }
  };
  update(job);
  if (api.endedStates.includes(job.state)) return;
  let progress = {};
  const stop = api.followJob(job.id, (name, data) => {
    if (name === "progress") {
      progress = data;
      const current = state.jobs.get(job.id) || job;
      if (!silent) {
        const { step, total, stage } = data;
        renderJob({ ...current, state: "running", step, total, stage, eta_seconds: data.eta_seconds });
      }
    } else {
      update({ ...data, eta_seconds: progress.eta_seconds });
    }
  });
  state.followers.set(job.id, stop);
}

function describe(job) {
  const params = job.resolved_params || job.params || {};
  const shown = ["prompt", "seed", "num_inference_steps", "guidance_scale", "strength", "weights", "inpaint_area"];
  return shown.filter((key) => params[key] !== undefined).map((key) => `${key}: ${params[key]}`).join(" · ");
}

function statusText(job) {
  const eta = job.eta_seconds !== undefined && job.eta_seconds !== null ? `, ${Math.ceil(job.eta_seconds)} s left` : "";
  if (job.state === "queued") {
    return job.queue_position !== undefined ? `queued (${job.queue_position} ahead)` : "queued";
  }
  return `${job.stage || ""} step ${job.step ?? 0} of ${job.total ?? "?"}${eta}`;
}

function renderJob(job) {
  const existing = document.querySelector(`[data-job="${job.id}"]`);
  // Progress of a job already shown updates it in place, so its Cancel button keeps the focus and the pointer.
  if (existing && existing.dataset.state === job.state && !api.endedStates.includes(job.state)) {
    const bar = existing.querySelector("progress");
    bar.max = job.total || 1;
    bar.value = job.step || 0;
    existing.querySelector(".status").textContent = statusText(job);
    return;
  }
  existing?.remove();
  const item = document.createElement("li");
  item.dataset.job = job.id;
  item.dataset.state = job.state;
  const title = document.createElement("div");
  const stateLabel = document.createElement("span");
  stateLabel.className = "state";
  stateLabel.textContent = job.state;
  title.append(stateLabel, ` ${job.plugin}`);
  item.append(title);
  if (job.state === "succeeded") {
    for (const result of job.results) item.append(resultFigure(job, result));
    $("gallery").prepend(item);
    return;
  }
  const details = document.createElement("div");
  details.className = "params";
  details.textContent = job.error ? job.error : describe(job);
  item.append(details);
  if (!api.endedStates.includes(job.state)) {
    const bar = document.createElement("progress");
    bar.max = job.total || 1;
    bar.value = job.step || 0;
    bar.setAttribute("aria-label", `progress of job ${job.id}`);
    const status = document.createElement("div");
    status.className = "status";
    status.setAttribute("aria-live", "polite");
    status.textContent = statusText(job);
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.textContent = "Cancel";
    cancel.className = "cancel";
    cancel.addEventListener("click", async () => {
      try {
        await api.cancelJob(job.id);
      } catch (failure) {
        status.textContent = failure.message;
      }
    });
    item.append(bar, status, cancel);
    $("queue").prepend(item);
  } else {
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", () => forgetJob(job.id));
    item.append(dismiss);
    $("queue").prepend(item);
  }
}

function resultFigure(job, result) {
  const figure = document.createElement("figure");
  const image = document.createElement("img");
  image.src = api.imageURL(result);
  image.alt = `result of ${job.plugin}: ${(job.resolved_params || job.params).prompt || "no prompt"}`;
  image.dataset.result = result;
  const caption = document.createElement("figcaption");
  caption.className = "params";
  caption.textContent = describe(job);
  const buttons = document.createElement("div");
  buttons.className = "buttons";
  const reuse = document.createElement("button");
  reuse.type = "button";
  reuse.textContent = "Use as input";
  reuse.addEventListener("click", async () => {
    if (!state.plugin.inputs.some((input) => input.key === "image")) choosePlugin("img2img");
    await useImage("image", { id: result, ...(await imageSize(api.imageURL(result))) });
  });
  const again = document.createElement("button");
  again.type = "button";
  again.textContent = "Use these parameters again";
  again.addEventListener("click", () => {
    choosePlugin(job.plugin);
    form.fill(job.resolved_params || job.params);
  });
  const download = document.createElement("a");
  download.href = api.imageURL(result);
  download.download = `${job.plugin}-${job.seed ?? "result"}.png`;
  download.textContent = "Download PNG";
  buttons.append(reuse, again, download);
  figure.append(image, caption, buttons);
  return figure;
}

async function imageSize(url) {
  const image = new Image();
  image.src = url;
  await image.decode();
  return { width: image.naturalWidth, height: image.naturalHeight };
}

// MARK: mask tools and keys

function setEraser(on) {
  mask.erasing = on;
  $("tool-eraser").setAttribute("aria-pressed", String(on));
  $("tool-brush").setAttribute("aria-pressed", String(!on));
}

function wireMaskTools() {
  $("tool-brush").addEventListener("click", () => setEraser(false));
  $("tool-eraser").addEventListener("click", () => setEraser(true));
  $("brush-size").addEventListener("input", () => mask.setSize(Number($("brush-size").value)));
  $("brush-hardness").addEventListener("input", () => (mask.hardness = Number($("brush-hardness").value) / 100));
  $("overlay-opacity").addEventListener("input", () => mask.setOpacity(Number($("overlay-opacity").value) / 100));
  $("undo").addEventListener("click", () => mask.undo());
  $("redo").addEventListener("click", () => mask.redo());
  $("clear").addEventListener("click", () => mask.clear());
  $("invert").addEventListener("click", () => mask.invert());
  $("zoom-fit").addEventListener("click", () => mask.fit());
  $("mask-import").addEventListener("change", async () => {
    const file = $("mask-import").files[0];
    if (file && mask.hasPicture) await mask.importImage(file);
  });
  $("mask-export").addEventListener("click", async () => {
    const blob = await mask.exportPNG();
    const link = $("mask-download");
    const reader = new FileReader();
    reader.onload = () => {
      link.href = reader.result;
      link.hidden = false;
      link.click();
    };
    reader.readAsDataURL(blob);
  });
  document.addEventListener("keydown", (event) => {
    const typing = event.target.closest("input, textarea, select") && event.target.type !== "range";
    if (typing || $("mask-tools").hidden) return;
    if (event.key === "[") mask.setSize(mask.size * 0.8);
    else if (event.key === "]") mask.setSize(mask.size * 1.25 + 1);
    else if (event.key === "e" || event.key === "E") setEraser(true);
    else if (event.key === "b" || event.key === "B") setEraser(false);
    else if (event.key === "0") mask.fit();
    else if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      if (event.shiftKey) mask.redo();
      else mask.undo();
    } else return;
    event.preventDefault();
  });
  window.addEventListener("resize", () => mask.fit());
}

// MARK: start

/** A server started with --token: the token is kept in a same-site cookie, which the page's requests and event
 * streams carry (an EventSource cannot send an Authorization header). */
function askForToken() {
  $("server-status").textContent = "This server needs its token (kandinsky serve --token).";
  const form = $("token-form");
  form.hidden = false;
  $("token").focus();
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    document.cookie = `kandinsky_token=${encodeURIComponent($("token").value)}; SameSite=Strict; path=/`;
    location.reload();
  });
}

async function start() {
  wireMaskTools();
  $("run").addEventListener("click", run);
  $("plugin").addEventListener("change", () => choosePlugin($("plugin").value));
  try {
    state.plugins = await api.plugins();
  } catch (failure) {
    if (failure.status === 401) askForToken();
    else $("server-status").textContent = `The server did not answer: ${failure.message}`;
    return;
  }
  for (const plugin of state.plugins) {
    const option = document.createElement("option");
    option.value = plugin.id;
    option.textContent = plugin.name;
    $("plugin").append(option);
  }
  choosePlugin(localStorage.getItem(pluginKey) || "text2img");
  // Jobs of this browser, oldest first so the newest ends up on top.
  for (const id of storedJobs().reverse()) {
    try {
      trackJob(await api.job(id));
    } catch (failure) {
      if (failure.status === 404) forgetJob(id);
    }
  }
  document.body.dataset.ready = "true";
}

start();
