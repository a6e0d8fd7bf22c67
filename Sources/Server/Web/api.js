// The server's HTTP API as the page uses it (docs/server.md). Errors carry the server's message and the field it
// names, so the form can show them next to that field.

export class APIError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

async function answer(response) {
  const text = await response.text();
  let body = {};
  try {
    body = text ? JSON.parse(text) : {};
  } catch {
    body = { error: { message: text } };
  }
  if (!response.ok) {
    const error = body.error || {};
    throw new APIError(response.status, error.message || `HTTP ${response.status}`, error.field);
  }
  return body;
}

export async function plugins() {
  return (await answer(await fetch("/v1/plugins"))).plugins;
}

/** Uploads a File or Blob (PNG or JPEG); its record: id, width, height. */
export async function uploadImage(blob) {
  return answer(await fetch("/v1/images", { method: "POST", body: blob }));
}

export async function submitJob(plugin, params, inputs) {
  return answer(await fetch("/v1/jobs", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ plugin, params, inputs }),
  }));
}

export async function job(id) {
  return answer(await fetch(`/v1/jobs/${encodeURIComponent(id)}`));
}

export async function cancelJob(id) {
  return answer(await fetch(`/v1/jobs/${encodeURIComponent(id)}`, { method: "DELETE" }));
}

export function imageURL(id) {
  return `/v1/images/${id}`;
}

/** Follows a job's events; `onEvent(name, data)` for each; returns a function that stops listening. */
export function followJob(id, onEvent) {
  const source = new EventSource(`/v1/jobs/${encodeURIComponent(id)}/events`);
  for (const name of ["state", "progress"]) {
    source.addEventListener(name, (event) => onEvent(name, JSON.parse(event.data)));
  }
  return () => source.close();
}

export const endedStates = ["succeeded", "failed", "cancelled"];
