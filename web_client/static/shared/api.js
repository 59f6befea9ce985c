// HTTP API (/api/v1) helpers: JSON in, JSON out, Bearer token.

/** Error for a failed HTTP call; .status is the HTTP status (0 for a network error). */
export class HttpError extends Error {
  constructor(status, code, message) {
    super(message || `HTTP ${status}`);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
  }
}

const STATUS_CODES = {
  400: "bad_request",
  401: "unauthorized",
  403: "forbidden",
  404: "not_found",
  409: "conflict",
  429: "rate_limited",
  503: "unavailable",
};

/**
 * @param {string} path
 * @param {{method?: string, token?: string, body?: any, timeoutMs?: number}} [options]
 */
export async function apiFetch(path, { method = "GET", token, body, timeoutMs = 10000 } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "same-origin",
      signal: controller.signal,
    });
  } catch (err) {
    throw new HttpError(0, controller.signal.aborted ? "timeout" : "unavailable", String(err));
  } finally {
    clearTimeout(timer);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null;
  }
  if (!response.ok) {
    const error = (data && data.error) || {};
    throw new HttpError(
      response.status,
      error.code || STATUS_CODES[response.status] || "internal",
      error.message || `HTTP ${response.status}`,
    );
  }
  return data;
}

export function getCatalog() {
  return apiFetch("/api/v1/catalog");
}

export function getIceServers(token) {
  return apiFetch("/api/v1/ice-servers", { token });
}

export function login(username, password) {
  return apiFetch("/api/v1/auth/login", { method: "POST", body: { username, password } });
}
