// Talking to the Goodeye API: the key (session storage only), JSON calls, uploads with progress.

const KEY_STORAGE = "goodeye.apiKey";

export function storedKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function storeKey(key) {
  sessionStorage.setItem(KEY_STORAGE, key);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

/** An error answer of the API: its HTTP status and the envelope's code and message. */
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }

  /** "message (code)", as shown to people. */
  get text() {
    return `${this.message} (${this.code})`;
  }
}

// Both envelopes ({"error": {...}} and {"success": false, "error": {...}}) carry code and message.
function errorFromBody(status, body) {
  const error = body && typeof body === "object" ? body.error : null;
  if (error && error.code) return new ApiError(status, error.code, error.message || "Request failed.");
  return new ApiError(status, `http_${status}`, `The server answered ${status}.`);
}

function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function authHeaders(key = storedKey()) {
  return key ? { Authorization: `Bearer ${key}` } : {};
}

function urlFor(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") url.searchParams.set(name, value);
  }
  return url;
}

async function send(method, path, { json, query, key } = {}) {
  const headers = authHeaders(key);
  if (json !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(urlFor(path, query), {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      cache: "no-store",
    });
  } catch (error) {
    throw new ApiError(0, "network_error", `The server could not be reached: ${error.message}`);
  }
  if (!response.ok) throw errorFromBody(response.status, parseJson(await response.text()));
  return response;
}

/** A JSON call; resolves to the parsed body (null for 204), rejects with ApiError. */
export async function api(method, path, options = {}) {
  const response = await send(method, path, options);
  return response.status === 204 ? null : response.json();
}

/** A multipart request through XMLHttpRequest, which reports upload progress (fetch does not). */
export function sendForm(method, path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open(method, urlFor(path));
    for (const [name, value] of Object.entries(authHeaders())) request.setRequestHeader(name, value);
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable && onProgress) onProgress(event.loaded / event.total);
    });
    request.addEventListener("load", () => {
      const body = parseJson(request.responseText);
      if (request.status >= 200 && request.status < 300) resolve(body);
      else reject(errorFromBody(request.status, body));
    });
    request.addEventListener("error", () => reject(new ApiError(0, "network_error", "The upload did not reach the server.")));
    request.send(form);
  });
}
