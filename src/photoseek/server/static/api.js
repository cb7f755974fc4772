// Talking to the photoseek REST API: the token, JSON errors, and the browser session cookie.

const TOKEN_KEY = "photoseek.token";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail);
    this.status = status;
    this.code = code;
  }
}

export function storedToken() {
  return localStorage.getItem(TOKEN_KEY);
}

/** Move a `?token=` from the address bar into localStorage, so it is not left in history. */
export function takeTokenFromUrl() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (!token) return;
  localStorage.setItem(TOKEN_KEY, token);
  url.searchParams.delete("token");
  history.replaceState(null, "", url);
}

/** Remember a token and turn it into the cookie that lets <img> tags load thumbnails. */
export async function startSession(token) {
  if (token !== undefined) localStorage.setItem(TOKEN_KEY, token);
  await request("/api/session", { method: "POST" });
}

export function forgetToken() {
  localStorage.removeItem(TOKEN_KEY);
}

export async function request(path, { method = "GET", json, form, signal } = {}) {
  const headers = {};
  const token = storedToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let body;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (form !== undefined) {
    body = form;
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, signal });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "network", "Cannot reach the photoseek server. Is it still running?");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    throw new ApiError(response.status, data?.error ?? "error", describe(data) ?? `${response.status} ${response.statusText}`);
  }
  return data;
}

function describe(data) {
  if (!data) return null;
  if (typeof data.detail === "string") return data.detail;
  if (Array.isArray(data.detail)) return data.detail.map((d) => `${(d.loc ?? []).slice(1).join(".")}: ${d.msg}`).join("; ");
  return null;
}

/** Query-string from an object, skipping empty values; arrays repeat the key. */
export function queryString(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value === undefined || value === null || value === "") continue;
    for (const item of Array.isArray(value) ? value : [value]) search.append(key, item);
  }
  return search.toString();
}
